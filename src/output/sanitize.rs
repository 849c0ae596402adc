//! Text that comes from AWS (tag values, names, owners, error messages) is
//! hostile input: anyone who can tag an instance chooses it. Before it
//! reaches a terminal, control characters are shown escaped (an ESC could
//! otherwise recolour, move the cursor or retitle the window; a bidi
//! override could reorder what is shown); before it reaches a spreadsheet, a
//! cell that would start a formula is defused.

use std::borrow::Cow;

// Characters that reorder text: shown escaped, as Trojan-Source defences do.
use crate::text::reorders as bidi;

/// `s` with every control character (C0, DEL, C1) and bidi control written
/// as an escape (`\n`, `\t`, `\x1b`, `\u{202e}`), so one value is one line
/// of inert text.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || bidi(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || bidi(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A CSV cell a spreadsheet would read as a formula (it starts with `=`,
/// `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, as OWASP
/// advises for CSV injection. Plain numbers (`-5`, `+1.5`) are left alone.
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let risky = matches!(s.chars().next(), Some('=' | '+' | '-' | '@' | '\t' | '\r'));
    if risky && s.parse::<f64>().is_err() {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_controls_and_bidi() {
        assert_eq!(terminal("web-1"), "web-1");
        assert_eq!(terminal("a\x1b[31mred"), "a\\x1b[31mred");
        assert_eq!(terminal("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(terminal("x\u{9b}y"), "x\\x9by");
        assert_eq!(terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal("naïve ünïcode"), "naïve ünïcode");
    }

    #[test]
    fn csv_defuses_formulas_not_numbers() {
        for bad in [
            "=1+2",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1:A2)",
            "\tx",
            "\rx",
        ] {
            assert_eq!(csv_cell(bad), format!("'{bad}"), "{bad:?}");
        }
        for ok in ["-5", "+1.5", "-0.25", "owner", "", "a=b"] {
            assert_eq!(csv_cell(ok), ok);
        }
    }
}
