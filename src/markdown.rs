//! Markdown text primitives, with no knowledge of imdsguard's data: inert
//! text and GFM tables. The reports (`output::markdown`) and the owner
//! notices (`notify`) are built from them.
//!
//! Every string from AWS is hostile (anyone who can tag an instance picks
//! the owner tag): [`text`] makes it inert, so a tag cannot open a link, an
//! image, raw HTML, a heading or a new table cell where it is pasted.

use std::fmt::Write as _;

/// `s` as inert Markdown text on one line: every ASCII punctuation
/// character that Markdown or HTML could give meaning to anywhere in a
/// line is backslash-escaped (links, images, code, emphasis, HTML,
/// entities, table cells), and those that matter only at the start of a
/// line (lists, headings' `=` underline) when they start it; line breaks and
/// other control characters become spaces (a newline would end a table row).
pub fn text(s: &str) -> String {
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
        let t = text("[click](https://evil) ![x](y) <img src=x> | a\nb `c` # h");
        assert!(!t.contains("](") && !t.contains('\n'));
        assert!(t.contains("\\<img") && t.contains("\\!\\["), "{t}");
        assert_eq!(text("a|b"), "a\\|b", "a pipe would split the cell");
        assert_eq!(
            text("team-a"),
            "team-a",
            "a dash inside a line is plain text"
        );
        assert_eq!(text("- x"), "\\- x", "at the start it would open a list");
    }

    #[test]
    fn tables_have_a_rule_with_alignment() {
        let mut m = String::new();
        table(&mut m, &["a", "n"], &[false, true], &[vec!["x", "1"]]);
        assert_eq!(m, "| a | n |\n| --- | --: |\n| x | 1 |\n\n");
    }
}
