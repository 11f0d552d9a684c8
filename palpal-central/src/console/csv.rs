//! CSV as spreadsheets read it (RFC 4180): every cell quoted where it must be, rows ended
//! by CRLF, and a cell that a spreadsheet would take for a formula (starting with `=`, `+`,
//! `-`, `@`, a tab or a carriage return) prefixed with `'` so that it stays text.

/// One cell, quoted and defused.
pub fn cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// One row of cells, with its CRLF.
pub fn row<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = cells.into_iter().map(cell).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        let check = |input: &str, expect: &str| assert_eq!(cell(input), expect, "{input:?}");
        check("plain", "plain");
        check("김영희", "김영희");
        check("", "");
        check("a,b", "\"a,b\"");
        check("say \"hi\"", "\"say \"\"hi\"\"\"");
        check("two\nlines", "\"two\nlines\"");
        check("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\"");
        check("+1", "'+1");
        check("-1", "'-1");
        check("@SUM(A1)", "'@SUM(A1)");
        check("\tx", "'\tx");
        check("{\"a\":\"b\"}", "\"{\"\"a\"\":\"\"b\"\"}\"");
        assert_eq!(row(["a", "b,c", "=1"]), "a,\"b,c\",'=1\r\n");
    }
}
