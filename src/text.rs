//! Characters that change how text reads without being visible: Unicode
//! bidi embeddings, overrides, isolates and marks. Trojan-Source defences
//! show or drop them; every renderer of AWS-provided text (terminal,
//! Markdown, notices) asks here.

/// Whether `c` reorders the text around it.
pub fn reorders(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}
