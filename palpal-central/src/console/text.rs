//! Every text the console shows, Korean first and English, from one table ([`T::pair`]).
//! A page asks for a text by its name and the request's language; nothing else in the console
//! spells a sentence a person reads.

/// The language a page is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Korean, the default.
    #[default]
    Ko,
    /// English.
    En,
}

impl Lang {
    /// The language's code (`ko`, `en`), as in `lang` attributes, `?lang=` and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    /// The language of `code`.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "ko" => Some(Lang::Ko),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language (the switch offers it).
    pub fn other(self) -> Lang {
        match self {
            Lang::Ko => Lang::En,
            Lang::En => Lang::Ko,
        }
    }
}

/// A text of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    ProgramName,
    SkipToContent,
    NavLabel,
    NavToday,
    NavSchedule,
    NavPolicies,
    NavTerminals,
    NavMembers,
    NavReconciliation,
    NavAudit,
    NavOperators,
    NotYet,
    SignOut,
    LanguageName,
    SignedInAs,
    RoleViewer,
    RoleOperator,
    RoleAdmin,
    // Sign-in and setup.
    SignInTitle,
    Name,
    Password,
    SignInButton,
    FirstTime,
    SetUpTitle,
    SetUpIntro,
    SetupCode,
    NewPassword,
    NewPasswordHint,
    NewPasswordAgain,
    SetUpButton,
    BackToSignIn,
    WrongLogin,
    AccountLocked,
    BadSetup,
    SetUpDone,
    SignedOut,
    SessionEnded,
    PasswordTooShort,
    PasswordTooLong,
    PasswordMismatch,
    NameEmpty,
    NameTooLong,
    NameBadCharacter,
    FieldMissing,
    FieldTooLong,
    // Refusals.
    NotSignedIn,
    BadCsrf,
    ForeignOrigin,
    RoleNotAllowed,
    TooManyAttempts,
    NotFound,
    InvalidForm,
    PayloadTooLarge,
    Internal,
    RefusalTitle,
    ReasonCode,
    GoHome,
    // Today.
    TodayIntro,
    TerminalsHeading,
    TerminalsEnrolled,
    TerminalsWaiting,
    TerminalsRevoked,
    RecentActivity,
    SeeAuditLog,
    // Audit log.
    AuditIntro,
    FilterByAction,
    AllActions,
    Filter,
    DownloadCsv,
    Time,
    Who,
    Action,
    Target,
    Before,
    After,
    NoEntries,
    Newer,
    Older,
    Page,
    ActionOperatorAdded,
    ActionOperatorSetUp,
    ActionOperatorDisabled,
    ActionLoginSucceeded,
    ActionLoginFailed,
    ActionAccountLocked,
    ActionSignedOut,
    // Operators.
    OperatorsIntro,
    Role,
    SetUpColumn,
    LockedColumn,
    LastLogin,
    Status,
    Active,
    Disabled,
    Yes,
    No,
    Never,
    Disable,
    DisableOperator,
    AddOperator,
    AddButton,
    NameHint,
    NameTaken,
    OperatorAdded,
    CodeOnce,
    CodeHowTo,
    SetupLink,
    ValidUntil,
    OperatorDisabled,
    NotYourself,
    NoSuchOperator,
    ActionPolicyPublished,
    ActionPolicyCancelled,
    PoliciesIntro,
    PoliciesInForce,
    PoliciesCancelled,
    PolicyName,
    EffectiveFrom,
    EffectiveUntil,
    PolicyEvents,
    PublishedBy,
    SeedFile,
    StatusPast,
    StatusInForce,
    StatusScheduled,
    Cancel,
    CancelPolicy,
    OpenEnded,
    UploadPolicy,
    UploadIntro,
    PolicyFile,
    PolicyText,
    PolicyTextHint,
    StartDate,
    StartDateHint,
    PreviewButton,
    PublishButton,
    PreviewHeading,
    PreviewIntro,
    PreviewSample,
    PreviewDays,
    PreviewNow,
    PreviewNew,
    FirstWeek,
    EventWeek,
    SpecialDay,
    StepsADay,
    AgeYears,
    PreviewReady,
    PolicyPublished,
    PolicyCancelled,
    ViewerCannotChange,
    BadStartDate,
}

impl T {
    /// The text in `lang`.
    pub fn get(self, lang: Lang) -> &'static str {
        let (ko, en) = self.pair();
        match lang {
            Lang::Ko => ko,
            Lang::En => en,
        }
    }

    /// The table: Korean, English.
    pub fn pair(self) -> (&'static str, &'static str) {
        match self {
            T::ProgramName => ("팔팔 운영 콘솔", "Palpal operator console"),
            T::SkipToContent => ("본문으로 건너뛰기", "Skip to content"),
            T::NavLabel => ("주 메뉴", "Main menu"),
            T::NavToday => ("오늘", "Today"),
            T::NavSchedule => ("가입 일정과 정원", "Schedule & quotas"),
            T::NavPolicies => ("포인트 정책", "Policies"),
            T::NavTerminals => ("단말기", "Terminals"),
            T::NavMembers => ("회원", "Members"),
            T::NavReconciliation => ("정산 대조", "Reconciliation"),
            T::NavAudit => ("감사 기록", "Audit log"),
            T::NavOperators => ("운영자", "Operators"),
            T::NotYet => ("(준비 중)", "(coming)"),
            T::SignOut => ("로그아웃", "Sign out"),
            T::LanguageName => ("한국어", "English"),
            T::SignedInAs => ("로그인:", "Signed in:"),
            T::RoleViewer => ("조회자", "Viewer"),
            T::RoleOperator => ("운영 담당자", "Operator"),
            T::RoleAdmin => ("관리자", "Administrator"),
            T::SignInTitle => ("로그인", "Sign in"),
            T::Name => ("이름", "Name"),
            T::Password => ("비밀번호", "Password"),
            T::SignInButton => ("로그인", "Sign in"),
            T::FirstTime => (
                "처음이신가요? 받은 설정 코드로 비밀번호를 만드세요.",
                "First time here? Set your password with the setup code you were given.",
            ),
            T::SetUpTitle => ("비밀번호 설정", "Set your password"),
            T::SetUpIntro => (
                "관리자에게 받은 설정 코드와 이름을 입력하고 새 비밀번호를 정하세요. 코드는 한 번만 쓸 수 있습니다.",
                "Enter your name and the setup code an administrator gave you, then choose a new password. The code works once.",
            ),
            T::SetupCode => ("설정 코드", "Setup code"),
            T::NewPassword => ("새 비밀번호", "New password"),
            T::NewPasswordHint => (
                "12자 이상, 256자 이하. 문장처럼 길게 만들면 기억하기 쉽고 안전합니다.",
                "12 to 256 characters. A long phrase is easy to remember and hard to guess.",
            ),
            T::NewPasswordAgain => ("새 비밀번호 확인", "New password again"),
            T::SetUpButton => ("비밀번호 설정", "Set password"),
            T::BackToSignIn => ("로그인으로 돌아가기", "Back to sign-in"),
            T::WrongLogin => (
                "이름 또는 비밀번호가 맞지 않습니다. 다시 입력해 주세요.",
                "The name or the password is wrong. Please try again.",
            ),
            T::AccountLocked => (
                "로그인에 여러 번 실패해 계정이 15분 동안 잠겼습니다. 잠시 후 다시 시도하거나 관리자에게 문의하세요.",
                "After repeated failed logins the account is locked for 15 minutes. Try again later or ask an administrator.",
            ),
            T::BadSetup => (
                "이름 또는 설정 코드가 맞지 않거나, 코드를 이미 썼거나 기한이 지났습니다. 관리자에게 새 코드를 받으세요.",
                "The name or the setup code is wrong, or the code was used or has expired. Ask an administrator for a new one.",
            ),
            T::SetUpDone => (
                "비밀번호를 설정했습니다. 이제 로그인하세요.",
                "Your password is set. You can sign in now.",
            ),
            T::SignedOut => ("로그아웃했습니다.", "You have signed out."),
            T::SessionEnded => (
                "오래 사용하지 않았거나 접속 시간이 지나 로그아웃되었습니다. 다시 로그인해 주세요.",
                "Your session ended (unused for a while, or too long). Please sign in again.",
            ),
            T::PasswordTooShort => (
                "비밀번호는 12자 이상이어야 합니다. 더 길게 정해 주세요.",
                "The password must have at least 12 characters. Please choose a longer one.",
            ),
            T::PasswordTooLong => (
                "비밀번호는 256자 이하여야 합니다.",
                "The password must have at most 256 characters.",
            ),
            T::PasswordMismatch => (
                "두 비밀번호가 다릅니다. 같은 비밀번호를 두 번 입력해 주세요.",
                "The two passwords differ. Please type the same password twice.",
            ),
            T::NameEmpty => ("이름을 입력해 주세요.", "Please enter a name."),
            T::NameTooLong => (
                "이름은 64자 이하여야 합니다.",
                "The name must have at most 64 characters.",
            ),
            T::NameBadCharacter => (
                "이름에는 글자, 숫자, 공백과 . - _ @ 만 쓸 수 있습니다.",
                "A name may have letters, digits, spaces and . - _ @ only.",
            ),
            T::FieldMissing => (
                "빠진 칸이 있습니다. 모든 칸을 채워 주세요.",
                "A field is missing. Please fill in every field.",
            ),
            T::FieldTooLong => (
                "입력한 내용이 너무 깁니다. 줄여서 다시 입력해 주세요.",
                "What was typed is too long. Please shorten it and try again.",
            ),
            T::NotSignedIn => (
                "로그인이 필요합니다. 로그인한 뒤 다시 시도해 주세요.",
                "You need to sign in. Please sign in and try again.",
            ),
            T::BadCsrf => (
                "요청을 확인할 수 없습니다(보안 토큰이 없거나 맞지 않습니다). 페이지를 새로 고친 뒤 다시 시도해 주세요. 아무것도 바뀌지 않았습니다.",
                "The request could not be verified (its security token is missing or wrong). Reload the page and try again. Nothing was changed.",
            ),
            T::ForeignOrigin => (
                "다른 사이트에서 보낸 요청은 받지 않습니다. 아무것도 바뀌지 않았습니다.",
                "Requests sent from another site are refused. Nothing was changed.",
            ),
            T::RoleNotAllowed => (
                "이 작업을 할 권한이 없습니다. 필요하면 관리자에게 요청하세요. 아무것도 바뀌지 않았습니다.",
                "Your role does not allow this. Ask an administrator if you need it. Nothing was changed.",
            ),
            T::TooManyAttempts => (
                "로그인 시도가 너무 많습니다. 1분 뒤에 다시 시도해 주세요.",
                "Too many login attempts. Please try again in a minute.",
            ),
            T::NotFound => (
                "페이지를 찾을 수 없습니다. 메뉴에서 골라 주세요.",
                "This page does not exist. Please choose one from the menu.",
            ),
            T::InvalidForm => (
                "보낸 양식을 읽을 수 없습니다. 페이지를 새로 고친 뒤 다시 시도해 주세요. 아무것도 바뀌지 않았습니다.",
                "The form sent could not be read. Reload the page and try again. Nothing was changed.",
            ),
            T::PayloadTooLarge => (
                "보낸 내용이 너무 큽니다. 아무것도 바뀌지 않았습니다.",
                "What was sent is too large. Nothing was changed.",
            ),
            T::Internal => (
                "서버 오류가 생겼습니다. 잠시 후 다시 시도해 주세요.",
                "The server failed. Please try again shortly.",
            ),
            T::RefusalTitle => ("요청을 처리하지 않았습니다", "Request not carried out"),
            T::ReasonCode => ("사유 코드", "Reason code"),
            T::GoHome => ("처음 화면으로", "Go to the start page"),
            T::TodayIntro => (
                "오늘의 운영 현황입니다.",
                "How the program is running today.",
            ),
            T::TerminalsHeading => ("단말기", "Terminals"),
            T::TerminalsEnrolled => ("등록된 단말기", "Enrolled terminals"),
            T::TerminalsWaiting => ("등록 대기", "Waiting for enrollment"),
            T::TerminalsRevoked => ("사용 중지", "Revoked"),
            T::RecentActivity => ("최근 기록", "Recent activity"),
            T::SeeAuditLog => ("감사 기록 전체 보기", "See the whole audit log"),
            T::AuditIntro => (
                "콘솔과 명령줄에서 한 모든 변경과 로그인이 최근 것부터 나옵니다.",
                "Every change and login made in the console or on the command line, newest first.",
            ),
            T::FilterByAction => ("작업 종류", "Action"),
            T::AllActions => ("모든 작업", "All actions"),
            T::Filter => ("거르기", "Filter"),
            T::DownloadCsv => ("CSV로 내려받기", "Download as CSV"),
            T::Time => ("시각 (서울)", "Time (Seoul)"),
            T::Who => ("누가", "Who"),
            T::Action => ("작업", "Action"),
            T::Target => ("대상", "Target"),
            T::Before => ("이전", "Before"),
            T::After => ("이후", "After"),
            T::NoEntries => ("기록이 없습니다.", "No entries."),
            T::Newer => ("← 최근 기록", "← Newer"),
            T::Older => ("이전 기록 →", "Older →"),
            T::Page => ("쪽", "Page"),
            T::ActionOperatorAdded => ("운영자 추가", "Operator added"),
            T::ActionOperatorSetUp => ("비밀번호 설정", "Password set up"),
            T::ActionOperatorDisabled => ("운영자 사용 중지", "Operator disabled"),
            T::ActionLoginSucceeded => ("로그인 성공", "Login succeeded"),
            T::ActionLoginFailed => ("로그인 실패", "Login failed"),
            T::ActionAccountLocked => ("계정 잠김", "Account locked"),
            T::ActionSignedOut => ("로그아웃", "Signed out"),
            T::OperatorsIntro => (
                "콘솔을 쓰는 사람들입니다. 관리자만 이 화면을 봅니다.",
                "The people who use the console. Only administrators see this page.",
            ),
            T::Role => ("역할", "Role"),
            T::SetUpColumn => ("비밀번호 설정", "Password set"),
            T::LockedColumn => ("잠김", "Locked"),
            T::LastLogin => ("마지막 로그인", "Last login"),
            T::Status => ("상태", "Status"),
            T::Active => ("사용 중", "Active"),
            T::Disabled => ("사용 중지됨", "Disabled"),
            T::Yes => ("예", "Yes"),
            T::No => ("아니요", "No"),
            T::Never => ("없음", "Never"),
            T::Disable => ("사용 중지", "Disable"),
            T::DisableOperator => ("운영자 사용 중지:", "Disable operator:"),
            T::AddOperator => ("운영자 추가", "Add an operator"),
            T::AddButton => ("추가하고 설정 코드 만들기", "Add and make a setup code"),
            T::NameHint => (
                "64자 이하. 글자, 숫자, 공백과 . - _ @",
                "Up to 64 characters: letters, digits, spaces and . - _ @",
            ),
            T::NameTaken => (
                "같은 이름의 운영자가 이미 있습니다. 다른 이름을 정해 주세요.",
                "An operator with this name exists already. Please choose another name.",
            ),
            T::OperatorAdded => ("운영자를 추가했습니다.", "The operator was added."),
            T::CodeOnce => (
                "설정 코드 (지금 한 번만 보입니다)",
                "Setup code (shown this once only)",
            ),
            T::CodeHowTo => (
                "이 코드와 설정 주소를 본인에게 직접 전해 주세요. 7일 안에 한 번 쓸 수 있습니다.",
                "Give this code and the setup address to the person directly. It works once within 7 days.",
            ),
            T::SetupLink => ("설정 주소", "Setup address"),
            T::ValidUntil => ("유효 기한", "Valid until"),
            T::OperatorDisabled => (
                "운영자를 사용 중지했습니다. 그 사람의 접속은 모두 끝났습니다.",
                "The operator was disabled; their sessions have ended.",
            ),
            T::NotYourself => (
                "자기 자신은 사용 중지할 수 없습니다. 다른 관리자에게 요청하세요.",
                "You cannot disable yourself. Ask another administrator.",
            ),
            T::NoSuchOperator => (
                "그런 운영자가 없거나 이미 사용 중지되었습니다.",
                "There is no such operator, or they are disabled already.",
            ),
            T::ActionPolicyPublished => ("정책 게시", "Policy published"),
            T::ActionPolicyCancelled => ("정책 취소", "Policy cancelled"),
            T::PoliciesIntro => ("포인트 정책은 데이터베이스에 있습니다. 단말기는 다음 동기화 때 바뀐 정책을 받습니다. 정책은 내일 이후부터만 적용할 수 있습니다(이미 적립한 날을 다시 계산하는 기능은 없습니다).", "The points policies live in the database; terminals get a change at their next sync. A policy can only start from tomorrow on (re-rating days already rated is not built)."),
            T::PoliciesInForce => ("적용 중이거나 예정된 정책", "Policies in force and scheduled"),
            T::PoliciesCancelled => ("취소된 정책", "Cancelled policies"),
            T::PolicyName => ("이름", "Name"),
            T::EffectiveFrom => ("시작일", "From"),
            T::EffectiveUntil => ("종료일", "Until"),
            T::PolicyEvents => ("행사", "Events"),
            T::PublishedBy => ("게시", "Published"),
            T::SeedFile => ("기본 정책 파일", "Published file (seed)"),
            T::StatusPast => ("끝남", "Ended"),
            T::StatusInForce => ("적용 중", "In force"),
            T::StatusScheduled => ("예정", "Scheduled"),
            T::Cancel => ("취소", "Cancel"),
            T::CancelPolicy => ("정책 취소", "Cancel policy"),
            T::OpenEnded => ("다음 정책까지", "until the next policy"),
            T::UploadPolicy => ("정책 파일 올리기", "Upload a policy file"),
            T::UploadIntro => ("TOML 정책 파일(64 KiB 이하)을 고르거나 아래에 붙여 넣으세요. 행사(배수 적립일, 특별한 날)도 정책 파일로 예약합니다. 형식은 docs/points-policy.md에 있습니다.", "Choose a TOML policy file (at most 64 KiB) or paste it below. Events (multiplier days, special days) are scheduled as policy files too. The format is in docs/points-policy.md."),
            T::PolicyFile => ("정책 파일", "Policy file"),
            T::PolicyText => ("정책 내용(TOML)", "Policy text (TOML)"),
            T::PolicyTextHint => ("파일을 고르면 파일의 내용을 씁니다.", "A chosen file is used instead of this text."),
            T::StartDate => ("시작일(선택)", "Start date (optional)"),
            T::StartDateHint => ("비워 두면 파일의 effective_from을 씁니다. 형식: 2026-12-20", "Leave empty to use the file's effective_from. Format: 2026-12-20"),
            T::PreviewButton => ("미리보기", "Preview"),
            T::PublishButton => ("게시", "Publish"),
            T::PreviewHeading => ("미리보기: 표본 회원의 포인트", "Preview: points of sample members"),
            T::PreviewIntro => ("같은 걸음 수를 매일 걸은 표본 회원을 지금 정책과 새 정책으로 계산했습니다(points-core의 실제 규칙).", "Sample members walking the same steps every day, rated under the policies in force and with the new one (points-core's real rules)."),
            T::PreviewSample => ("표본", "Sample"),
            T::PreviewDays => ("날짜", "Days"),
            T::PreviewNow => ("지금 정책", "Policies now"),
            T::PreviewNew => ("새 정책", "With the new one"),
            T::FirstWeek => ("첫 주", "First week"),
            T::EventWeek => ("행사 첫 주", "Event's first week"),
            T::SpecialDay => ("특별한 날", "Special day"),
            T::StepsADay => ("보/일", " steps a day"),
            T::AgeYears => ("세", " years old"),
            T::PreviewReady => ("정책 파일에 오류가 없습니다. 미리보기를 확인하고 게시하세요.", "The policy file has no errors. Check the preview, then publish."),
            T::PolicyPublished => ("정책을 게시했습니다. 단말기는 다음 동기화 때 받습니다.", "The policy is published. Terminals get it at their next sync."),
            T::PolicyCancelled => ("예정된 정책을 취소했습니다.", "The scheduled policy is cancelled."),
            T::ViewerCannotChange => ("보기 권한으로는 정책을 바꿀 수 없습니다.", "A viewer cannot change policies."),
            T::BadStartDate => ("시작일은 2026-12-20 같은 날짜여야 합니다.", "The start date must be a date such as 2026-12-20."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_round_trip() {
        for lang in [Lang::Ko, Lang::En] {
            assert_eq!(Lang::parse(lang.code()), Some(lang));
            assert_eq!(lang.other().other(), lang);
        }
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(T::SignOut.get(Lang::Ko), "로그아웃");
        assert_eq!(T::SignOut.get(Lang::En), "Sign out");
    }
}
