//! Lexical checks of FHIR R4 primitive values, by hand (no regex engine on the hot path).
//! Each function answers whether the JSON value is a valid instance; none quotes the value.

use serde_json::Value;

fn digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

fn num(s: &[u8]) -> u32 {
    s.iter().fold(0u32, |a, d| a.saturating_mul(10).saturating_add(u32::from(d - b'0')))
}

/// `YYYY`, `YYYY-MM`, `YYYY-MM-DD`.
/// The resource type a literal reference names (`Patient/1`, `https://x/fhir/Patient/1`,
/// `.../_history/2` after it): the segment before the id, when it starts upper-case.
pub fn reference_type(r: &str) -> Option<&str> {
    let r = r.split("/_history/").next().unwrap_or(r);
    let mut it = r.rsplit('/');
    let _id = it.next()?;
    let t = it.next()?;
    t.as_bytes().first().is_some_and(u8::is_ascii_uppercase).then_some(t)
}

pub fn date(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        4 => digits(b) && num(b) >= 1,
        7 => digits(&b[..4]) && b[4] == b'-' && digits(&b[5..7]) && (1..=12).contains(&num(&b[5..7])),
        10 => {
            digits(&b[..4])
                && b[4] == b'-'
                && digits(&b[5..7])
                && b[7] == b'-'
                && digits(&b[8..10])
                && valid_day(num(&b[..4]), num(&b[5..7]), num(&b[8..10]))
        }
        _ => false,
    }
}

fn valid_day(y: u32, m: u32, d: u32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// `hh:mm:ss(.fff)`.
pub fn time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !(digits(&b[..2]) && b[2] == b':' && digits(&b[3..5]) && b[5] == b':' && digits(&b[6..8])) {
        return false;
    }
    if num(&b[..2]) > 23 || num(&b[3..5]) > 59 || num(&b[6..8]) > 60 {
        return false;
    }
    match &b[8..] {
        [] => true,
        [b'.', rest @ ..] => digits(rest),
        _ => false,
    }
}

fn tz(b: &[u8]) -> bool {
    match b {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let (h, m) = ([*h1, *h2], [*m1, *m2]);
            digits(&h) && digits(&m) && num(&h) <= 14 && num(&m) <= 59
        }
        _ => false,
    }
}

/// A date, or a full date and time (`T`, seconds optional fraction) with a time zone.
pub fn date_time(s: &str) -> bool {
    match s.split_once('T') {
        None => date(s),
        Some((d, rest)) => {
            if d.len() != 10 || !date(d) {
                return false;
            }
            let cut = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
            time(&rest[..cut]) && tz(&rest.as_bytes()[cut..])
        }
    }
}

pub fn instant(s: &str) -> bool {
    s.contains('T') && date_time(s)
}

pub fn id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// `[^\s]+(\s[^\s]+)*`: no leading, trailing or double white space.
pub fn code(s: &str) -> bool {
    !s.is_empty() && !s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace) && !s.contains("  ")
}

pub fn oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() >= 2
        && matches!(parts[0], "0" | "1" | "2")
        && parts.iter().all(|p| digits(p.as_bytes()) && (p.len() == 1 || !p.starts_with('0')))
}

pub fn uuid(s: &str) -> bool {
    s.strip_prefix("urn:uuid:").is_some_and(uuid_text)
}

/// A UUID as R4's `uuid` regex and HL7's validator take it: lower-case hexadecimal, 8-4-4-4-12.
fn uuid_text(rest: &str) -> bool {
    let b = rest.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { matches!(c, b'0'..=b'9' | b'a'..=b'f') })
}

/// What HL7's validator refuses in any URI-typed value (`uri`, `url`, `canonical`, `oid`,
/// `uuid`): the bare `oid:` and `uuid:` schemes, a `urn:uuid:` that is not a lower-case UUID, and
/// a `urn:oid:` that is not an OID (arcs without leading zeros) or whose root is implausibly short
/// (under four characters before the last arc, except `1.3...`).
fn uri_rules(ty: &str, s: &str) -> Option<&'static str> {
    if s.starts_with("oid:") {
        return Some("URI values cannot start with oid: (urn:oid: is the URI form of an OID)");
    }
    if s.starts_with("uuid:") {
        return Some("URI values cannot start with uuid: (urn:uuid: is the URI form of a UUID)");
    }
    if let Some(rest) = s.strip_prefix("urn:uuid:") {
        let rest = rest.split('#').next().unwrap_or_default();
        let rest = if ty == "canonical" { rest.rsplit_once('|').map_or(rest, |(u, _)| u) } else { rest };
        if !uuid_text(rest) {
            return Some("a urn:uuid: must carry a valid UUID in lower case");
        }
    }
    if let Some(rest) = s.strip_prefix("urn:oid:") {
        let rest = if ty == "canonical" { rest.split('|').next().unwrap_or_default() } else { rest };
        let b = rest.as_bytes();
        let valid = b.len() >= 2
            && matches!(b[0], b'0'..=b'2')
            && b[1] == b'.'
            && rest.split('.').all(|p| digits(p.as_bytes()) && (p.len() == 1 || !p.starts_with('0')));
        if !valid || !(rest.rfind('.').is_some_and(|i| i >= 4) || rest.starts_with("1.3")) {
            return Some("a urn:oid: must carry a valid OID (arcs are numbers without leading zeros)");
        }
    }
    None
}

pub fn uri(s: &str) -> bool {
    // Bytes first (`char::is_whitespace` on ASCII is space and TAB..CR); decode only when a
    // non-ASCII byte may start Unicode white space.
    !s.is_empty()
        && match s.bytes().try_fold((), |(), b| {
            if b >= 0x80 {
                Err(true)
            } else if matches!(b, b' ' | b'\t'..=b'\r') {
                Err(false)
            } else {
                Ok(())
            }
        }) {
            Ok(()) => true,
            Err(false) => false,
            Err(true) => !s.contains(char::is_whitespace),
        }
}

/// Whether a URI starts with a scheme (`http:`, `urn:`, `mailto:`...), i.e. is absolute.
pub fn has_scheme(u: &str) -> bool {
    u.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.as_bytes()[0].is_ascii_alphabetic()
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    })
}

pub fn base64(s: &str) -> bool {
    // HL7's Base64Util.isValidBase64: white space skipped, characters outside the alphabet
    // ignored, and the count of alphabet characters a multiple of 4. A value this passes
    // may still not decode (`base64_decode`, which an Attachment's data and hash must pass).
    let n = s.chars().filter(|c| c.is_alphanumeric() || matches!(c, '/' | '=' | '+')).count();
    n % 4 == 0
}

/// Decoded as Java's basic `Base64.getDecoder()` decodes: the standard alphabet only, no white
/// space, padding accepted but not required.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const JAVA_BASIC: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent).with_decode_allow_trailing_bits(true),
    );
    JAVA_BASIC.decode(s)
}

fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn integer_text(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let body = b.strip_prefix(b"-").unwrap_or(b);
    if !digits(body) || (body.len() > 1 && body[0] == b'0') {
        return None;
    }
    t.parse::<i64>().ok()
}

fn decimal_text(t: &str) -> bool {
    let b = t.as_bytes();
    let b = b.strip_prefix(b"-").unwrap_or(b);
    let (mant, exp) = match b.iter().position(|c| *c == b'e' || *c == b'E') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let (int, frac) = match mant.iter().position(|c| *c == b'.') {
        Some(i) => (&mant[..i], Some(&mant[i + 1..])),
        None => (mant, None),
    };
    digits(int)
        && (int.len() == 1 || int[0] != b'0')
        && frac.is_none_or(digits)
        && exp.is_none_or(|e| digits(e.strip_prefix(b"+").or_else(|| e.strip_prefix(b"-")).unwrap_or(e)))
}

/// Bytes decoded from base64 text (white space ignored); None when it is not base64.
pub fn base64_len(s: &str) -> Option<u64> {
    let (mut n, mut pad) = (0u64, 0u64);
    for c in s.bytes() {
        match c {
            b'=' => pad += 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            c if pad == 0 && (c.is_ascii_alphanumeric() || c == b'+' || c == b'/') => n += 1,
            _ => return None,
        }
    }
    let total = n + pad;
    (total % 4 == 0 && pad <= 2).then(|| total / 4 * 3 - pad)
}

/// Every `&` of XHTML starts an XML entity: `&lt;` `&gt;` `&amp;` `&quot;` `&apos;`, `&#NNN;` or
/// `&#xHHH;` (HTML's named entities, `&nbsp;` `&reg;`..., are not XML).
fn xhtml_entities(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'&') {
        let start = i + off + 1;
        let Some(len) = b[start..].iter().take(12).position(|&c| c == b';') else { return false };
        let name = &b[start..start + len];
        let ok = match name {
            b"lt" | b"gt" | b"amp" | b"quot" | b"apos" => true,
            [b'#', b'x' | b'X', hex @ ..] => !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit),
            [b'#', dec @ ..] => !dec.is_empty() && dec.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if !ok {
            return false;
        }
        i = start + len + 1;
    }
    true
}

/// What is wrong with `v` as a `ty`, or None when it is valid. Messages name the type only.
pub fn check(ty: &str, v: &Value) -> Option<String> {
    let want_string = |ok: fn(&str) -> bool| -> Option<String> {
        match v.as_str() {
            None => Some(format!("wrong JSON type for a {ty}: expected a string")),
            Some("") => Some(format!("empty string for a {ty}: a value must have content")),
            Some(s) if !ok(s) => Some(format!("not a valid {ty}")),
            Some(_) => None,
        }
    };
    match ty {
        "boolean" => (!v.is_boolean()).then(|| "wrong JSON type for a boolean: expected true or false".to_owned()),
        "integer" | "positiveInt" | "unsignedInt" | "integer64" => {
            let Some(t) = number_text(v) else {
                return Some(format!("wrong JSON type for an {ty}: expected a number"));
            };
            let Some(n) = integer_text(&t) else {
                return Some(format!("not a valid {ty}: expected a whole number"));
            };
            let ok = match ty {
                "positiveInt" => (1..=i64::from(i32::MAX)).contains(&n),
                "unsignedInt" => (0..=i64::from(i32::MAX)).contains(&n),
                "integer" => (i64::from(i32::MIN)..=i64::from(i32::MAX)).contains(&n),
                _ => true,
            };
            (!ok).then(|| format!("value out of range for a {ty}"))
        }
        "decimal" => match number_text(v) {
            None => Some("wrong JSON type for a decimal: expected a number".to_owned()),
            Some(t) if !decimal_text(&t) => Some("not a valid decimal".to_owned()),
            Some(_) => None,
        },
        "date" => want_string(date),
        "dateTime" => want_string(date_time),
        "instant" => want_string(instant),
        "time" => want_string(time),
        "id" => want_string(id),
        "code" => want_string(code),
        "oid" => want_string(oid).or_else(|| uri_rules(ty, v.as_str()?).map(str::to_owned)),
        "uuid" => want_string(uuid),
        "uri" | "url" | "canonical" => want_string(uri).or_else(|| uri_rules(ty, v.as_str()?).map(str::to_owned)),
        "base64Binary" => want_string(base64),
        "xhtml" => match want_string(|_| true) {
            None if !v.as_str().is_some_and(xhtml_entities) => {
                Some("invalid entity in the XHTML: only &lt; &gt; &amp; &quot; &apos; and character references (&#...;) are XML".to_owned())
            }
            other => other,
        },
        // `[ \r\n\t\S]+`: any non-empty text, white space included.
        "string" | "markdown" => want_string(|_| true),
        _ => want_string(|_| true),
    }
}

/// Whether a decimal's text is beyond what HL7's validator calls commonly supported (its
/// `checkDecimal` bounds): more than 18 digits, or more than 4 in the exponent.
pub fn decimal_beyond_range(t: &str) -> bool {
    let (mant, exp) = t.split_once(['e', 'E']).unwrap_or((t, ""));
    let digits = |s: &str| s.bytes().filter(u8::is_ascii_digit).count();
    digits(mant) > 18 || digits(exp) > 4
}

/// Whether markdown holds what HL7's validator takes for an HTML tag (its markdown
/// pre-processing): `<` or `</` not escaped by `\`, then a letter, letters, digits or `-`, then
/// white space or `>`; or `<!`, `<?`.
pub fn markdown_has_html(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).filter(|&i| b[i] == b'<').any(|i| {
        if matches!(b.get(i + 1), Some(b'!' | b'?')) {
            return true;
        }
        if i > 0 && b[i - 1] == b'\\' {
            return false;
        }
        let mut j = i + 1;
        if b.get(j) == Some(&b'/') {
            j += 1;
        }
        if !b.get(j).is_some_and(u8::is_ascii_alphabetic) {
            return false;
        }
        while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-') {
            j += 1;
        }
        b.get(j).is_some_and(|c| c.is_ascii_whitespace() || *c == b'>')
    })
}

/// Whether bi-directional control characters are left open, as HL7's validator reads them
/// (its `checkUnicodeWellFormed`): overrides (LRO, RLO), isolates (LRI, RLI, FSI) and marks
/// (LRM, RLM, ALM) open; PDF closes the last open override, embedding or mark; PDI closes
/// the last isolate and what was opened after it; a new line closes everything.
pub fn bidi_unterminated(s: &str) -> bool {
    const EMBEDS: [char; 7] = ['\u{202a}', '\u{202b}', '\u{202d}', '\u{202e}', '\u{200e}', '\u{200f}', '\u{061c}'];
    const ISOLATES: [char; 3] = ['\u{2066}', '\u{2067}', '\u{2068}'];
    // Every control above is U+061C (UTF-8 lead byte 0xD8) or U+200E..U+2069 (lead byte 0xE2):
    // a string with neither byte, nearly every string, has none. This runs on every string.
    if !s.as_bytes().contains(&0xe2) && !s.as_bytes().contains(&0xd8) {
        return false;
    }
    let mut open: Vec<char> = Vec::new();
    for c in s.chars() {
        match c {
            '\n' => open.clear(),
            '\u{202d}' | '\u{202e}' | '\u{2066}' | '\u{2067}' | '\u{2068}' | '\u{200e}' | '\u{200f}' | '\u{061c}' => open.push(c),
            '\u{202c}' if open.last().is_some_and(|l| EMBEDS.contains(l)) => {
                open.pop();
            }
            '\u{2069}' if open.iter().any(|o| ISOLATES.contains(o)) => {
                while let Some(l) = open.pop() {
                    if ISOLATES.contains(&l) {
                        break;
                    }
                    if !EMBEDS.contains(&l) {
                        open.push(l);
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    !open.is_empty()
}

/// JSON kind a primitive takes (`true` = number, for range checks).
pub fn is_numeric(ty: &str) -> bool {
    matches!(ty, "integer" | "positiveInt" | "unsignedInt" | "decimal" | "integer64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uri_forms_hl7_refuses() {
        for bad in [
            "oid:1.2.3",
            "uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11",
            "urn:uuid:xyz",
            "urn:uuid:0B6F5FD7-4C1D-4E4E-9D56-0D2B9A1B7C11",
            "urn:oid:1.2",
            "urn:oid:2.16.840.1.113883.4.330.050",
        ] {
            assert!(check("uri", &json!(bad)).is_some(), "{bad}");
        }
        for ok in [
            "urn:oid:2.16.840.1.113883.4.330.50",
            "urn:oid:1.3.6",
            "urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11#x",
            "http://x/y",
            "urn:ietf:rfc:3986",
        ] {
            assert!(check("uri", &json!(ok)).is_none(), "{ok}");
        }
        assert!(check("canonical", &json!("urn:uuid:0b6f5fd7-4c1d-4e4e-9d56-0d2b9a1b7c11|1.0")).is_none());
        assert!(check("canonical", &json!("urn:oid:1.2.3.4.5|2")).is_none());
        for (u, ok) in [("http://x/é", true), ("a\u{0b}b", false), ("a\u{a0}b", false), ("a\u{3000}", false), ("a\rb", false)] {
            assert_eq!(uri(u), ok, "{u:?}");
        }
    }

    #[test]
    fn formats() {
        assert!(date("2024") && date("2024-02-29") && !date("2023-02-29") && !date("2024-13") && !date("24-01-01"));
        assert!(date_time("2024-01-02T10:11:12Z") && date_time("2024-01-02T10:11:12.5+01:00") && date_time("2024-01"));
        assert!(!date_time("2024-01-02T10:11Z") && !date_time("2024-01-02T10:11:12"));
        assert!(instant("2024-01-02T10:11:12Z") && !instant("2024-01-02"));
        assert!(id("a-b.C1") && !id("a_b") && !id(&"a".repeat(65)));
        assert!(code("a b") && !code(" a") && !code("a  b"));
        assert!(oid("urn:oid:1.2.3") && !oid("urn:oid:3.1"));
        assert!(uuid("urn:uuid:0b4e6a4e-1111-4b8e-9c1d-2e5c1f0a0b0c") && !uuid("urn:uuid:xyz"));
        assert!(base64("aGVsbG8=") && !base64("aGVsbG8"));
        // As HL7's validator: characters outside the alphabet are left to the decoder.
        assert!(base64("...") && base64_decode("...").is_err() && base64_decode("aGVsbG8").is_ok());
        assert!(check("positiveInt", &json!(0)).is_some() && check("unsignedInt", &json!(0)).is_none());
        assert!(check("integer", &json!(1.5)).is_some() && check("decimal", &json!(1.50)).is_none());
        assert!(check("string", &json!("")).is_some() && check("boolean", &json!("true")).is_some());
        assert!(xhtml_entities("<div>a &lt; b &amp;&#160;&#xA0;</div>") && !xhtml_entities("<div>&reg;</div>"));
        assert_eq!((base64_len("aGVscCBpJ20gYSBidWc="), base64_len("aGk="), base64_len("a")), (Some(14), Some(2), None));
        assert!(!xhtml_entities("a & b") && !xhtml_entities("&#;") && !xhtml_entities("&#x;"));
    }

    #[test]
    fn html_in_markdown() {
        assert!(markdown_has_html("a <b>bold</b>") && markdown_has_html("x </p>") && markdown_has_html("<!-- c -->"));
        assert!(!markdown_has_html("a < b") && !markdown_has_html("a \\<b> escaped") && !markdown_has_html("<b"));
    }

    #[test]
    fn decimals_beyond_the_common_range() {
        assert!(decimal_beyond_range("1234567890.123456789") && decimal_beyond_range("1e12345"));
        assert!(!decimal_beyond_range("123456789.123456789") && !decimal_beyond_range("-1.5E-300"));
    }

    #[test]
    fn bidi_controls_are_closed_as_hl7_reads_them() {
        assert!(bidi_unterminated("a\u{202e}b") && bidi_unterminated("\u{2066}x\u{202e}"));
        assert!(!bidi_unterminated("a\u{202e}b\u{202c}") && !bidi_unterminated("\u{2067}x\u{202d}y\u{2069}"));
        assert!(!bidi_unterminated("a\u{202e}b\nc") && !bidi_unterminated("plain text"));
        assert!(bidi_unterminated("\u{061c}x") && bidi_unterminated("\u{200f}") && !bidi_unterminated("é\u{00a0}"));
    }
}
