//! History Data notifications: any bytes decode to an error or to records that survive
//! encode then decode; the terminal's transfer state machine takes them without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watch_protocol::{crc16, HistoryNotification, HistoryTransfer};

fn check(bytes: &[u8]) {
    if let Ok(n) = HistoryNotification::decode(bytes) {
        let again = n.encode().expect("a decoded notification encodes");
        assert_eq!(HistoryNotification::decode(&again).as_ref(), Ok(&n));
    }
    let mut t = HistoryTransfer::new();
    t.start(bytes.first().copied().unwrap_or(0).into());
    let before = t.next_seq();
    match t.on_notification(bytes) {
        Ok(batch) => assert!(batch.records.iter().all(|r| r.seq >= before)),
        Err(e) => assert_eq!(e.resume_from(), Some(before)),
    }
    let _ = t.on_indication(bytes);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Most random inputs fail the CRC; also try them with a valid one so the record decoder
    // sees them.
    let mut sealed = data.to_vec();
    let crc = crc16(&sealed);
    sealed.extend_from_slice(&crc.to_le_bytes());
    check(&sealed);
});
