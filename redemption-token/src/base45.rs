//! Base45 (RFC 9285), the text encoding of the EU Digital COVID Certificate: every character is
//! in the QR code's alphanumeric set, so a QR code stores it at 5.5 bits per character.

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Encodes `bytes`: each pair of bytes becomes three characters, a last odd byte two.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(2) * 3);
    let mut push = |value: usize| out.push(char::from(ALPHABET[value]));
    for chunk in bytes.chunks(2) {
        if let [a, b] = *chunk {
            let n = usize::from(a) * 256 + usize::from(b);
            push(n % 45);
            push(n / 45 % 45);
            push(n / 2025);
        } else {
            let n = usize::from(chunk[0]);
            push(n % 45);
            push(n / 45);
        }
    }
    out
}

/// Each byte's value in the alphabet, or 0xFF. Lower case letters have their upper case
/// value: a keyboard-wedge scanner with Caps Lock on types them, and Base45 has no lower case
/// letters they could be confused with.
const VALUES: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        table[ALPHABET[i].to_ascii_lowercase() as usize] = i as u8;
        i += 1;
    }
    table
};

fn value(c: u8) -> Option<u32> {
    let v = VALUES[usize::from(c)];
    (v != 0xFF).then_some(u32::from(v))
}

/// Decodes Base45 text; `None` for a character outside the alphabet, a length that leaves one
/// character over, or a group whose value does not fit its bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 3 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 3 * 2 + 1);
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for &c in chunk.iter().rev() {
            n = n * 45 + value(c)?;
        }
        if chunk.len() == 3 {
            if n > 0xFFFF {
                return None;
            }
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            out.push(u8::try_from(n).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9285_examples() {
        for (bytes, text) in [
            (&b"AB"[..], "BB8"),
            (b"Hello!!", "%69 VD92EX0"),
            (b"base-45", "UJCLQE7W581"),
            (b"ietf!", "QED8WEX0"),
            (b"", ""),
        ] {
            assert_eq!(encode(bytes), text);
            assert_eq!(decode(text).as_deref(), Some(bytes));
        }
    }

    #[test]
    fn refuses_what_is_not_base45() {
        for text in ["GGW", "A", "ABCD", "AB#", "ÄB"] {
            assert_eq!(decode(text), None, "{text:?}");
        }
        assert_eq!(decode("bb8").as_deref(), Some(&b"AB"[..]));
    }
}
