//! The console's safety rules, pure: sessions' idle and absolute lifetimes, the lockout of an
//! account after failed logins, the per-address bound on login attempts, who may do what,
//! and what a name or a new password must be. Time is an argument; nothing here reads a
//! clock, a database or the network.

use chrono::{DateTime, TimeDelta, Utc};

/// A session unused this long is over.
pub const IDLE_TIMEOUT: TimeDelta = TimeDelta::minutes(30);
/// A session this old is over, however busy.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);
/// Failed logins in a row that lock an account.
pub const FAILURES_BEFORE_LOCK: u32 = 5;
/// How long a locked account stays locked.
pub const LOCK_DURATION: TimeDelta = TimeDelta::minutes(15);
/// Login and setup attempts one address may make in [`ATTEMPT_WINDOW`].
pub const ATTEMPTS_PER_WINDOW: u32 = 20;
/// The window [`ATTEMPTS_PER_WINDOW`] counts over.
pub const ATTEMPT_WINDOW: TimeDelta = TimeDelta::minutes(1);
/// How long a one-time setup code works.
pub const SETUP_CODE_VALIDITY: TimeDelta = TimeDelta::days(7);
/// The fewest characters of a password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The most characters of a password.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// The most characters of an operator's name.
pub const MAX_NAME_CHARS: usize = 64;

/// A terminal not heard from for this long is flagged silent, unless `serve` says otherwise.
pub const SILENT_AFTER: TimeDelta = TimeDelta::minutes(30);
/// A terminal's clock further than this from the server's is flagged.
pub const CLOCK_OFFSET_LIMIT_S: i64 = 60;
/// A terminal whose oldest waiting operation is older than this is flagged.
pub const OLDEST_WAITING_LIMIT_S: u64 = 3600;
/// The most characters of a site's name.
pub const MAX_SITE_CHARS: usize = 64;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads every page; changes nothing.
    Viewer,
    /// Also changes the schedule, quotas, policies, terminals and members.
    Operator,
    /// Also manages operators.
    Admin,
}

/// A kind of action a role may or may not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read any page.
    Read,
    /// Change the program (schedule, quotas, policies, terminals, members).
    Change,
    /// Add and disable operators.
    ManageOperators,
    /// Correct a policy in force and re-rate every member's points.
    Rerate,
}

impl Role {
    /// The role as stored and typed (`viewer`, `operator`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The role named `text`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Whether this role may take `permission`'s actions.
    pub fn may(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Change => self >= Role::Operator,
            Permission::ManageOperators | Permission::Rerate => self == Role::Admin,
        }
    }
}

/// Whether a session may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionVerdict {
    /// It goes on; its last use becomes now.
    Live,
    /// Unused for longer than [`IDLE_TIMEOUT`].
    Idle,
    /// Older than [`SESSION_LIFETIME`].
    TooOld,
}

/// Whether a session made at `created` and last used at `last_seen` may serve a request at
/// `now`.
pub fn session(
    created: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    now: DateTime<Utc>,
) -> SessionVerdict {
    if now - created >= SESSION_LIFETIME {
        SessionVerdict::TooOld
    } else if now - last_seen >= IDLE_TIMEOUT {
        SessionVerdict::Idle
    } else {
        SessionVerdict::Live
    }
}

/// An account's failed logins in a row and its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginState {
    /// Failed logins since the last success or the last lock.
    pub failures: u32,
    /// Locked until then, if it was locked.
    pub locked_until: Option<DateTime<Utc>>,
}

impl LoginState {
    /// Until when the account is locked at `now`, if it is.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    /// The state after a failed login at `now`: the [`FAILURES_BEFORE_LOCK`]th in a row
    /// locks the account for [`LOCK_DURATION`] and starts the count again.
    pub fn after_failure(self, now: DateTime<Utc>) -> LoginState {
        if self.locked_at(now).is_some() {
            // Refused without a password check; the lock is not lengthened.
            return self;
        }
        let failures = self.failures + 1;
        if failures >= FAILURES_BEFORE_LOCK {
            LoginState {
                failures: 0,
                locked_until: Some(now + LOCK_DURATION),
            }
        } else {
            LoginState {
                failures,
                locked_until: None,
            }
        }
    }

    /// Whether going from `self` to `next` locked the account at `now`.
    pub fn locks(&self, next: &LoginState, now: DateTime<Utc>) -> bool {
        self.locked_at(now).is_none() && next.locked_at(now).is_some()
    }
}

/// Whether a setup code made to expire at `expires` still works at `now`.
pub fn setup_code_works(expires: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < expires
}

/// One address's login and setup attempts in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptWindow {
    /// When the window started (the first attempt in it).
    pub started: DateTime<Utc>,
    /// Attempts in it so far.
    pub attempts: u32,
}

/// Takes one attempt at `now` into `window` (an address's, if it made any): the window to
/// keep, and `Err(seconds to wait)` if the attempt is one too many.
pub fn attempt(
    window: Option<AttemptWindow>,
    now: DateTime<Utc>,
) -> (AttemptWindow, Result<(), u64>) {
    let current = window.filter(|w| now >= w.started && now - w.started < ATTEMPT_WINDOW);
    match current {
        Some(w) if w.attempts >= ATTEMPTS_PER_WINDOW => {
            let left = (w.started + ATTEMPT_WINDOW - now).num_seconds().max(1);
            (w, Err(u64::try_from(left).unwrap_or(1)))
        }
        Some(w) => (
            AttemptWindow {
                attempts: w.attempts + 1,
                ..w
            },
            Ok(()),
        ),
        None => (
            AttemptWindow {
                started: now,
                attempts: 1,
            },
            Ok(()),
        ),
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Nothing but spaces.
    Empty,
    /// Longer than [`MAX_NAME_CHARS`].
    TooLong,
    /// A character other than letters, digits, spaces and `. - _ @`.
    BadCharacter,
}

/// The name an operator is known by, trimmed: letters (any script), digits, spaces inside,
/// and `. - _ @`; at most [`MAX_NAME_CHARS`].
pub fn check_name(typed: &str) -> Result<&str, NameProblem> {
    let name = typed.trim();
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameProblem::TooLong);
    }
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || matches!(c, '.' | '-' | '_' | '@');
    if !name.chars().all(allowed) {
        return Err(NameProblem::BadCharacter);
    }
    Ok(name)
}

/// What is wrong with a terminal, as its table row flags it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TerminalFlags {
    /// Enrolled, not revoked, and not heard from within the threshold (or never).
    pub silent: bool,
    /// Its clock is more than [`CLOCK_OFFSET_LIMIT_S`] from the server's.
    pub clock_off: bool,
    /// Its oldest waiting operation is older than [`OLDEST_WAITING_LIMIT_S`].
    pub backlog_old: bool,
}

impl TerminalFlags {
    /// Whether anything is flagged.
    pub fn any(self) -> bool {
        self.silent || self.clock_off || self.backlog_old
    }
}

/// The flags of a terminal (`active`: enrolled and not revoked) last heard at `seen_at`,
/// with its last report's clock offset and oldest waiting operation, at `now`.
pub fn terminal_flags(
    active: bool,
    seen_at: Option<DateTime<Utc>>,
    clock_offset_s: Option<i64>,
    oldest_waiting_s: Option<u64>,
    silent_after: TimeDelta,
    now: DateTime<Utc>,
) -> TerminalFlags {
    TerminalFlags {
        silent: active && seen_at.is_none_or(|seen| now - seen > silent_after),
        clock_off: clock_offset_s
            .is_some_and(|s| s.unsigned_abs() > CLOCK_OFFSET_LIMIT_S.unsigned_abs()),
        backlog_old: oldest_waiting_s.is_some_and(|s| s > OLDEST_WAITING_LIMIT_S),
    }
}

/// Why a site's name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteProblem {
    /// Nothing but spaces.
    Empty,
    /// Longer than [`MAX_SITE_CHARS`].
    TooLong,
    /// A character other than letters, digits, spaces and `. , - _ ( ) #`.
    BadCharacter,
}

/// A site's name as a new terminal gets it, trimmed: letters (any script), digits, spaces
/// inside and `. , - _ ( ) #`; at most [`MAX_SITE_CHARS`].
pub fn check_site(typed: &str) -> Result<&str, SiteProblem> {
    let site = typed.trim();
    if site.is_empty() {
        return Err(SiteProblem::Empty);
    }
    if site.chars().count() > MAX_SITE_CHARS {
        return Err(SiteProblem::TooLong);
    }
    let allowed = |c: char| {
        c.is_alphanumeric() || c == ' ' || matches!(c, '.' | ',' | '-' | '_' | '(' | ')' | '#')
    };
    if !site.chars().all(allowed) {
        return Err(SiteProblem::BadCharacter);
    }
    Ok(site)
}

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    TooShort,
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    TooLong,
    /// The two typed differ.
    Mismatch,
}

/// Checks a new password typed twice.
pub fn check_new_password(password: &str, again: &str) -> Result<(), PasswordProblem> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Err(PasswordProblem::TooShort)
    } else if chars > MAX_PASSWORD_CHARS {
        Err(PasswordProblem::TooLong)
    } else if password != again {
        Err(PasswordProblem::Mismatch)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 12, 3, 1, 0, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    #[test]
    fn sessions_end_when_idle_or_old() {
        let check = |created: i64, last_seen: i64, now: i64, expect: SessionVerdict| {
            assert_eq!(
                session(at(created), at(last_seen), at(now)),
                expect,
                "created {created}, last seen {last_seen}, now {now}"
            );
        };
        check(0, 0, 0, SessionVerdict::Live);
        check(0, 0, 29, SessionVerdict::Live);
        check(0, 0, 30, SessionVerdict::Idle);
        check(0, 100, 129, SessionVerdict::Live);
        check(0, 700, 719, SessionVerdict::Live);
        check(0, 710, 720, SessionVerdict::TooOld);
        check(0, 0, 720, SessionVerdict::TooOld);
    }

    #[test]
    fn five_failures_in_a_row_lock_for_fifteen_minutes() {
        let mut state = LoginState::default();
        for i in 0..4 {
            let next = state.after_failure(at(i));
            assert!(!state.locks(&next, at(i)));
            state = next;
        }
        assert_eq!(state.failures, 4);
        let locked = state.after_failure(at(4));
        assert!(state.locks(&locked, at(4)));
        assert_eq!(locked.locked_at(at(4)), Some(at(19)));
        assert_eq!(locked.locked_at(at(18)), Some(at(19)));
        // A try while locked neither counts nor lengthens the lock.
        assert_eq!(locked.after_failure(at(10)), locked);
        assert_eq!(locked.locked_at(at(19)), None);
        // After the lock, counting starts again: one failure does not lock.
        let after = locked.after_failure(at(20));
        assert_eq!(after.failures, 1);
        assert_eq!(after.locked_at(at(20)), None);
        // A success resets the count.
        assert_eq!(LoginState::default().failures, 0);
    }

    #[test]
    fn an_address_has_twenty_attempts_a_minute() {
        let mut window = None;
        let t0 = at(0);
        for i in 0..ATTEMPTS_PER_WINDOW {
            let (next, verdict) = attempt(window, t0 + TimeDelta::seconds(i64::from(i)));
            assert_eq!(verdict, Ok(()));
            window = Some(next);
        }
        let (kept, verdict) = attempt(window, t0 + TimeDelta::seconds(45));
        assert_eq!(verdict, Err(15));
        assert_eq!(kept.attempts, ATTEMPTS_PER_WINDOW);
        let (fresh, verdict) = attempt(Some(kept), t0 + TimeDelta::seconds(60));
        assert_eq!((fresh.attempts, verdict), (1, Ok(())));
        // A window from the future (the clock moved back) starts over.
        let (fresh, verdict) = attempt(Some(kept), t0 - TimeDelta::seconds(5));
        assert_eq!((fresh.attempts, verdict), (1, Ok(())));
    }

    #[test]
    fn roles_may_what_they_should() {
        use Permission::*;
        let table = [
            (Role::Viewer, [true, false, false]),
            (Role::Operator, [true, true, false]),
            (Role::Admin, [true, true, true]),
        ];
        for (role, expect) in table {
            let got = [role.may(Read), role.may(Change), role.may(ManageOperators)];
            assert_eq!(got, expect, "{role:?}");
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn terminals_are_flagged_when_silent_off_time_or_behind() {
        let check = |active: bool,
                     seen: Option<i64>,
                     offset: Option<i64>,
                     oldest: Option<u64>,
                     expect: [bool; 3]| {
            let flags = terminal_flags(active, seen.map(at), offset, oldest, SILENT_AFTER, at(100));
            assert_eq!(
                [flags.silent, flags.clock_off, flags.backlog_old],
                expect,
                "{active} {seen:?} {offset:?} {oldest:?}"
            );
            assert_eq!(flags.any(), expect.contains(&true));
        };
        check(true, Some(70), Some(60), Some(3600), [false, false, false]);
        check(true, Some(69), Some(-61), Some(3601), [true, true, true]);
        check(true, None, None, None, [true, false, false]);
        // Waiting for enrollment or revoked: never silent.
        check(false, None, None, None, [false, false, false]);
        check(false, Some(0), Some(61), None, [false, true, false]);
    }

    #[test]
    fn site_names() {
        assert_eq!(
            check_site(" 성북구 보건소 (1층) "),
            Ok("성북구 보건소 (1층)")
        );
        assert_eq!(
            check_site("Store #12, Jongno-gu"),
            Ok("Store #12, Jongno-gu")
        );
        assert_eq!(check_site("  "), Err(SiteProblem::Empty));
        assert_eq!(check_site(&"가".repeat(65)), Err(SiteProblem::TooLong));
        assert_eq!(
            check_site("<script>alert(1)</script>"),
            Err(SiteProblem::BadCharacter)
        );
        assert_eq!(check_site("a\nb"), Err(SiteProblem::BadCharacter));
    }

    #[test]
    fn names_and_passwords() {
        assert_eq!(check_name("  김영희 "), Ok("김영희"));
        assert_eq!(check_name("kim.yh-2@seoul"), Ok("kim.yh-2@seoul"));
        assert_eq!(check_name("   "), Err(NameProblem::Empty));
        assert_eq!(check_name(&"가".repeat(64)).map(str::len), Ok(64 * 3));
        assert_eq!(check_name(&"가".repeat(65)), Err(NameProblem::TooLong));
        assert_eq!(
            check_name("<script>alert(1)</script>"),
            Err(NameProblem::BadCharacter)
        );
        assert_eq!(check_name("a\u{0}b"), Err(NameProblem::BadCharacter));
        assert_eq!(
            check_new_password("short", "short"),
            Err(PasswordProblem::TooShort)
        );
        let long = "x".repeat(257);
        assert_eq!(
            check_new_password(&long, &long),
            Err(PasswordProblem::TooLong)
        );
        assert_eq!(
            check_new_password("twelve chars", "twelve charz"),
            Err(PasswordProblem::Mismatch)
        );
        assert_eq!(
            check_new_password("열두 글자 비밀번호입니다", "열두 글자 비밀번호입니다"),
            Ok(())
        );
        assert!(setup_code_works(at(0) + SETUP_CODE_VALIDITY, at(10)));
        assert!(!setup_code_works(at(0), at(0)));
    }
}
