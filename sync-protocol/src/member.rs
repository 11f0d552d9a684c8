//! Member numbers (`PP-00000001`) and terminal labels (`T-000001`): how the server's row ids
//! are spelled on the wire, on cards and in the command line.

/// The member number of member `id`, such as `PP-00000001`.
pub fn member_number(id: i64) -> String {
    format!("PP-{id:08}")
}

/// The number behind a member number such as `PP-00000001`.
pub fn parse_member_number(number: &str) -> Option<i64> {
    parse_label(number, "PP-")
}

/// The label of terminal number `id`, such as `T-000001`.
pub fn terminal_label(id: i64) -> String {
    format!("T-{id:06}")
}

/// The number behind a label such as `T-000001`.
pub fn parse_terminal_label(label: &str) -> Option<i64> {
    parse_label(label, "T-")
}

fn parse_label(text: &str, prefix: &str) -> Option<i64> {
    let digits = text.trim().strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        assert_eq!(terminal_label(1), "T-000001");
        assert_eq!(parse_terminal_label("T-000001"), Some(1));
        assert_eq!(parse_terminal_label(" T-1234567 "), Some(1_234_567));
        assert_eq!(member_number(42), "PP-00000042");
        assert_eq!(parse_member_number("PP-00000042"), Some(42));
        for bad in [
            "",
            "T-",
            "T-12a",
            "X-000001",
            "T--1",
            "T-1234567890123456789",
        ] {
            assert_eq!(parse_terminal_label(bad), None, "{bad:?}");
        }
        for bad in ["", "PP-", "PP-1x", "T-000001", "PP-+1"] {
            assert_eq!(parse_member_number(bad), None, "{bad:?}");
        }
    }
}
