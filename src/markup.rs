//! Escaping text for HTML and XML (the printable page and the IPS narratives, the console, the
//! conformance kit's JUnit and HTML reports): one rule, so no page escapes differently. A leaf:
//! it knows nothing else.

/// Appends `s` escaped for text and for double- or single-quoted attribute values. Controls
/// that XML 1.0 cannot carry become U+FFFD (the record schema refuses them; kept out regardless).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// [`escape_into`] a new string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_controls_stay_text() {
        assert_eq!(super::escape("<a href=\"x\">&'\u{1}\n"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{FFFD}\n");
    }
}
