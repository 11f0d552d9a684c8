//! Heart Rate Measurement: any bytes decode to an error or a value that survives
//! encode then decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use watch_protocol::HeartRateMeasurement;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = HeartRateMeasurement::decode(data) {
        let again = m.encode();
        assert_eq!(HeartRateMeasurement::decode(&again).as_ref(), Ok(&m));
        // Canonical bytes are a fixed point.
        assert_eq!(
            HeartRateMeasurement::decode(&again).unwrap().encode(),
            again
        );
    }
});
