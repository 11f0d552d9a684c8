//! Record Access Control Point: any bytes decode to an error or to a message that re-encodes
//! to the same bytes; a watch answers any write with a decodable indication.
#![no_main]

use chrono::NaiveDate;
use libfuzzer_sys::fuzz_target;
use watch_protocol::{HistoryRecord, RacpMessage, WatchHistory};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = RacpMessage::decode(data) {
        assert_eq!(m.encode(), data);
    }
    let mut watch = WatchHistory::starting_at(10);
    let date = NaiveDate::from_ymd_opt(2025, 12, 1).expect("a date");
    for hour in 0..24 {
        watch
            .push(HistoryRecord::HourSteps {
                date,
                hour,
                steps: 100 * u32::from(hour),
            })
            .expect("a valid record");
    }
    let reply = watch.on_control_point(data, 23);
    assert!(RacpMessage::decode(&reply.indication).is_ok());
    assert!(reply.notifications.iter().all(|p| p.len() <= 20));
});
