//! Current Time: any bytes decode to an error or a value that re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watch_protocol::CurrentTime;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = CurrentTime::decode(data) {
        assert_eq!(t.encode().as_slice(), data);
        assert_eq!(CurrentTime::decode(&t.encode()), Ok(t));
        // Reading the watch's time never panics, whatever the fields.
        let _ = t.to_naive_datetime();
    }
});
