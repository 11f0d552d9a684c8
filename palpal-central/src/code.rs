//! One-time enrollment codes: 80 random bits written as four groups of four Crockford base32
//! characters (`7KQ2-M9XD-0RTA-4VHE`), easy to read aloud and type on a kiosk. The server
//! keeps only the SHA-256 of the normalised code.

use sha2::{Digest as _, Sha256};

/// Crockford's base32 alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Makes a new code from 10 random bytes.
pub fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .map_err(|e| e.context("난수를 얻지 못했습니다 / could not get random bytes"))?;
    Ok(format(&bytes))
}

/// Writes 10 bytes as 16 base32 characters in groups of four.
pub fn format(bytes: &[u8; 10]) -> String {
    let mut bits: u128 = 0;
    for byte in bytes {
        bits = (bits << 8) | u128::from(*byte);
    }
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let shift = 5 * (15 - i);
        let index = usize::try_from((bits >> shift) & 0x1f).unwrap_or(0);
        out.push(char::from(ALPHABET[index]));
    }
    out
}

/// The canonical form of a typed code: upper case, without separators, with the letters that
/// look like digits read as those digits (O as 0, I and L as 1). `None` if it cannot be a code.
pub fn normalise(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(16);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == 16).then_some(out)
}

/// The SHA-256 of a normalised code, as stored.
pub fn hash(normalised: &str) -> [u8; 32] {
    Sha256::digest(normalised.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_four_groups_of_four() {
        let code = format(&[0xff; 10]);
        assert_eq!(code, "ZZZZ-ZZZZ-ZZZZ-ZZZZ");
        assert_eq!(format(&[0; 10]), "0000-0000-0000-0000");
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(
            normalise("7kq2 m9xd-oRTA-4vhe").as_deref(),
            Some("7KQ2M9XD0RTA4VHE")
        );
        assert_eq!(normalise("7KQ2-M9XD").as_deref(), None);
        assert_eq!(normalise("7KQ2-M9XD-0RTA-4VH!"), None);
        assert_eq!(normalise("7KQ2-M9XD-0RTA-4VHU"), None);
    }

    #[test]
    fn generated_codes_normalise_to_themselves() -> anyhow::Result<()> {
        let code = generate()?;
        assert_eq!(normalise(&code), Some(code.replace('-', "")));
        Ok(())
    }
}
