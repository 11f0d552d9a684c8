//! What can go wrong between a terminal and a watch, in words a clerk can act on.

/// Everything the link reports to the person at the terminal. Each has a stable
/// [`code`](Self::code) for the UI to switch on and messages in Korean ([`ko`](Self::ko)) and
/// English ([`en`](Self::en)) that say what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The terminal has no Bluetooth adapter (or BlueZ is not running).
    #[error("no Bluetooth adapter: {detail}")]
    NoAdapter {
        /// What the system said.
        detail: String,
    },
    /// The adapter is off and could not be turned on (rfkill, a hardware switch).
    #[error("the Bluetooth adapter is off")]
    AdapterOff,
    /// No watch with this short code or serial answered the scan.
    #[error("watch {wanted} not found nearby")]
    WatchNotFound {
        /// The short code or serial looked for.
        wanted: String,
    },
    /// The watch was seen but every connection attempt failed or timed out.
    #[error("watch {watch} out of range: no connection after {attempts} attempts")]
    WatchOutOfRange {
        /// The watch's name.
        watch: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The device does not serve the Palpal history service.
    #[error("{watch} is not a Palpal watch: {detail}")]
    NotAWatch {
        /// The device's name.
        watch: String,
        /// What is missing.
        detail: String,
    },
    /// A history transfer stopped (link lost, a lost notification, a stalled stream, a refusal).
    /// Every record before `resume_from` was received and handed over; a new fetch resumes there.
    #[error("history transfer interrupted ({reason}); resumes from sequence {resume_from}")]
    TransferInterrupted {
        /// The first sequence number not received.
        resume_from: u32,
        /// What stopped it.
        reason: String,
    },
    /// A History Data notification failed its CRC: its records were not taken.
    #[error("corrupt history record detected; refetching from sequence {resume_from}")]
    CorruptRecord {
        /// The first sequence number not received.
        resume_from: u32,
    },
    /// The watch clock differs from the terminal's by more than the tolerance.
    #[error("watch clock is off by {offset_seconds} s")]
    ClockFarOff {
        /// Watch minus terminal, in seconds: positive when the watch is ahead.
        offset_seconds: i64,
    },
    /// The watch battery is low.
    #[error("watch battery low: {percent}%")]
    LowBattery {
        /// Battery Level.
        percent: u8,
    },
    /// The watch sent a value the profile does not allow.
    #[error("watch sent an invalid value while {doing}: {detail}")]
    Protocol {
        /// What the link was doing.
        doing: &'static str,
        /// The codec's complaint.
        detail: String,
    },
    /// Any other Bluetooth failure.
    #[error("Bluetooth failure while {doing}: {detail}")]
    Bluetooth {
        /// What the link was doing.
        doing: &'static str,
        /// btleplug's or BlueZ's message.
        detail: String,
    },
}

impl LinkError {
    /// The stable code the UI switches on.
    pub fn code(&self) -> &'static str {
        match self {
            LinkError::NoAdapter { .. } => "no_adapter",
            LinkError::AdapterOff => "adapter_off",
            LinkError::WatchNotFound { .. } => "watch_not_found",
            LinkError::WatchOutOfRange { .. } => "watch_out_of_range",
            LinkError::NotAWatch { .. } => "not_a_watch",
            LinkError::TransferInterrupted { .. } => "transfer_interrupted",
            LinkError::CorruptRecord { .. } => "corrupt_record",
            LinkError::ClockFarOff { .. } => "clock_far_off",
            LinkError::LowBattery { .. } => "low_battery",
            LinkError::Protocol { .. } => "watch_protocol",
            LinkError::Bluetooth { .. } => "bluetooth",
        }
    }

    /// The message in Korean, saying what to do next.
    pub fn ko(&self) -> String {
        match self {
            LinkError::NoAdapter { .. } => "블루투스 장치를 찾을 수 없습니다. 단말기의 블루투스 수신기가 연결되어 있는지 확인하고 단말기를 다시 시작해 주세요.".into(),
            LinkError::AdapterOff => "블루투스가 꺼져 있습니다. 단말기 설정에서 블루투스를 켠 뒤 다시 시도해 주세요.".into(),
            LinkError::WatchNotFound { wanted } => format!("근처에서 워치 {wanted}을(를) 찾을 수 없습니다. 워치 화면을 켜서 단말기 가까이 두고 다시 검색해 주세요."),
            LinkError::WatchOutOfRange { watch, .. } => format!("워치 {watch}에 연결할 수 없습니다. 워치를 단말기에 더 가까이 두고 배터리가 있는지 확인한 뒤 다시 시도해 주세요."),
            LinkError::NotAWatch { watch, .. } => format!("{watch}은(는) 팔팔 워치가 아닙니다. 회원의 워치를 목록에서 다시 골라 주세요."),
            LinkError::TransferInterrupted { resume_from, .. } => format!("워치 기록 전송이 중단되었습니다. 받은 기록은 저장되었습니다. 워치를 단말기 가까이 두고 다시 동기화하면 {resume_from}번 기록부터 이어서 받습니다."),
            LinkError::CorruptRecord { resume_from } => format!("워치에서 손상된 기록을 받아 저장하지 않았습니다. 다시 동기화하면 {resume_from}번 기록부터 다시 받습니다. 계속되면 워치 점검을 안내해 주세요."),
            LinkError::ClockFarOff { offset_seconds } => format!("워치 시계가 {}. 동기화할 때 단말기 시간으로 맞추며, 자주 틀리면 워치 점검을 안내해 주세요.", offset_ko(*offset_seconds)),
            LinkError::LowBattery { percent } => format!("워치 배터리가 {percent}% 남았습니다. 회원께 워치를 충전하도록 안내해 주세요."),
            LinkError::Protocol { .. } => "워치가 알 수 없는 응답을 보냈습니다. 다시 시도하고, 계속되면 워치 교체를 안내해 주세요.".into(),
            LinkError::Bluetooth { .. } => "블루투스 통신 중 오류가 발생했습니다. 워치를 단말기 가까이 두고 다시 시도해 주세요.".into(),
        }
    }

    /// The message in English, saying what to do next.
    pub fn en(&self) -> String {
        match self {
            LinkError::NoAdapter { .. } => "No Bluetooth adapter found. Check that the terminal's Bluetooth receiver is plugged in and restart the terminal.".into(),
            LinkError::AdapterOff => "Bluetooth is off. Turn Bluetooth on in the terminal's settings, then try again.".into(),
            LinkError::WatchNotFound { wanted } => format!("Watch {wanted} was not found nearby. Wake the watch, hold it near the terminal and scan again."),
            LinkError::WatchOutOfRange { watch, .. } => format!("Cannot connect to watch {watch}. Hold it closer to the terminal, check that it has battery, and try again."),
            LinkError::NotAWatch { watch, .. } => format!("{watch} is not a Palpal watch. Pick the member's watch from the list again."),
            LinkError::TransferInterrupted { resume_from, .. } => format!("The watch's history transfer was interrupted. What arrived is saved; hold the watch near the terminal and sync again to continue from record {resume_from}."),
            LinkError::CorruptRecord { resume_from } => format!("A corrupt record came from the watch and was not saved. Sync again to fetch from record {resume_from}; if it keeps happening, have the watch checked."),
            LinkError::ClockFarOff { offset_seconds } => format!("The watch clock is {}. It is set to the terminal's time when syncing; if it drifts often, have the watch checked.", offset_en(*offset_seconds)),
            LinkError::LowBattery { percent } => format!("The watch battery is at {percent}%. Ask the member to charge the watch."),
            LinkError::Protocol { .. } => "The watch sent an answer the terminal does not understand. Try again; if it keeps happening, have the watch replaced.".into(),
            LinkError::Bluetooth { .. } => "A Bluetooth error occurred. Hold the watch near the terminal and try again.".into(),
        }
    }
}

fn split(seconds: i64) -> (i64, i64, i64) {
    let a = seconds.abs();
    (a / 3600, a % 3600 / 60, a % 60)
}

fn offset_ko(seconds: i64) -> String {
    let (h, m, s) = split(seconds);
    let amount = match (h, m) {
        (0, 0) => format!("{s}초"),
        (0, _) => format!("{m}분 {s}초"),
        _ => format!("{h}시간 {m}분"),
    };
    let way = if seconds >= 0 {
        "빠릅니다"
    } else {
        "느립니다"
    };
    format!("{amount} {way}")
}

fn offset_en(seconds: i64) -> String {
    let (h, m, s) = split(seconds);
    let amount = match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) => format!("{m} min {s} s"),
        _ => format!("{h} h {m} min"),
    };
    let way = if seconds >= 0 { "ahead" } else { "behind" };
    format!("{amount} {way}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: LinkError, code: &str, ko: &str, en: &str) {
        assert_eq!(error.code(), code);
        assert!(error.ko().contains(ko), "{}", error.ko());
        assert!(error.en().contains(en), "{}", error.en());
    }

    #[test]
    fn messages_say_what_happened_and_what_to_do() {
        check(
            LinkError::AdapterOff,
            "adapter_off",
            "블루투스를 켠 뒤",
            "Turn Bluetooth on",
        );
        check(
            LinkError::ClockFarOff {
                offset_seconds: -7500,
            },
            "clock_far_off",
            "2시간 5분 느립니다",
            "2 h 5 min behind",
        );
        check(
            LinkError::ClockFarOff { offset_seconds: 95 },
            "clock_far_off",
            "1분 35초 빠릅니다",
            "1 min 35 s ahead",
        );
        check(
            LinkError::TransferInterrupted {
                resume_from: 742,
                reason: "link lost".into(),
            },
            "transfer_interrupted",
            "742번 기록부터 이어서",
            "continue from record 742",
        );
        check(
            LinkError::CorruptRecord { resume_from: 9 },
            "corrupt_record",
            "손상된 기록",
            "corrupt record",
        );
        check(
            LinkError::LowBattery { percent: 7 },
            "low_battery",
            "7%",
            "7%",
        );
    }
}
