//! Redemption token text and bytes, as a counter's scanner could deliver them: any input is
//! refused or verified without panicking, and whatever decodes re-encodes to the same bytes.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use redemption_token::{verify, IssuerKey, KeySet, Revocations, Token};

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = Token::decode(data) {
        assert_eq!(token.encode(), data);
        assert_eq!(Token::parse(&token.to_text()), Ok(token));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = Token::parse(text) {
        assert_eq!(Token::decode(&token.encode()), Ok(token));
    }
    let key = IssuerKey::from_seed(1, [7; 32]);
    let now = Utc.with_ymd_and_hms(2026, 1, 15, 1, 0, 0).unwrap();
    let keys = KeySet::new(&[key.published(now - chrono::Duration::days(30))]).unwrap();
    // Random input never carries a valid signature, so this never reaches the PIN's Argon2id.
    let _ = verify(text, &keys, &Revocations::default(), Some("123456"), now);
});
