//! Markdown text primitives, with no knowledge of imdsguard's data: inert
//! text and GFM tables. The reports (`output::markdown`) and the owner
//! notices (`notify`) are built from them.
//!
//! Every string from AWS is hostile (anyone who can tag an instance picks
//! the owner tag): [`text`] makes it inert, so a tag cannot open a link, an
//! image, raw HTML, a heading or a new table cell where it is pasted.

use std::fmt::Write as _;

/// `s` as inert Markdown text on one line.
///
/// Text that GFM could turn into a link by itself (a `scheme:`, an
/// address with `@`, a `www.` name) becomes a code span, which is never
/// linked; everything else has each ASCII punctuation character that
/// Markdown or HTML could give meaning to backslash-escaped (links,
/// images, code, emphasis, HTML, entities, table cells), and those that
/// matter only at the start of a line (lists, `=` underlines) when they
/// start it. Line breaks and other control characters become spaces (a
/// newline would end a table row); bidi controls are dropped.
pub fn text(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| !crate::text::reorders(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.contains(':') || s.contains('@') || s.to_ascii_lowercase().contains("www.") {
        return code(&s);
    }
    escape(&s)
}

/// Backslash-escapes what Markdown or HTML would read (see [`text`]).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '!'
            | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '-' | '+' | '=' | '.' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Our own sentences (a verdict's reason): escaped like [`text`], but
/// never a code span. Only for text imdsguard wrote: a `scheme:` in it
/// would be linked.
pub fn words(s: &str) -> String {
    escape(s)
}

/// `s` as a code span: fenced by more backticks than it holds in a row,
/// padded so a backtick at either end stays content, with `|` escaped
/// (GFM splits table cells on it even inside code spans, and reads `\|`
/// there as `|`).
fn code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    format!("{fence} {} {fence}", s.replace('|', "\\|"))
}

/// A GFM table. Cells are written as given: callers pass them through
/// [`text`] (or build them from our own words and numbers).
pub fn table<S: AsRef<str>>(out: &mut String, header: &[&str], right: &[bool], rows: &[Vec<S>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let rule: Vec<&str> = (0..header.len())
        .map(|i| {
            if right.get(i) == Some(&true) {
                "--:"
            } else {
                "---"
            }
        })
        .collect();
    let _ = writeln!(out, "| {} |", rule.join(" | "));
    for row in rows {
        let cells: Vec<&str> = row.iter().map(AsRef::as_ref).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_stays_text() {
        let t = text("[click](/evil) ![x](y) <img src=x> | a\nb `c` # h");
        assert!(!t.contains("](") && !t.contains('\n'));
        assert!(t.contains("\\<img") && t.contains("\\!\\["), "{t}");
        assert_eq!(text("a|b"), "a\\|b", "a pipe would split the cell");
        assert_eq!(
            text("team-a"),
            "team-a",
            "a dash inside a line is plain text"
        );
        assert_eq!(text("- x"), "\\- x", "at the start it would open a list");
        // What GFM would autolink is a code span, never a link.
        assert_eq!(text("https://evil.example/x"), "` https://evil.example/x `");
        assert_eq!(text("www.evil.example"), "` www.evil.example `");
        assert_eq!(text("a@b.io"), "` a@b.io `");
        assert_eq!(text("a`b:c|d"), "`` a`b:c\\|d ``");
        assert_eq!(text("ab\u{202e}cd"), "abcd", "bidi controls are dropped");
    }

    #[test]
    fn tables_have_a_rule_with_alignment() {
        let mut m = String::new();
        table(&mut m, &["a", "n"], &[false, true], &[vec!["x", "1"]]);
        assert_eq!(m, "| a | n |\n| --- | --: |\n| x | 1 |\n\n");
    }
}
