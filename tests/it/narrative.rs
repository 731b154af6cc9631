//! Narrative XHTML (R4 `txt-1`, as the HL7 validator checks it): only the basic formatting
//! elements and attributes, in the XHTML namespace under a `div`, with HTML's structure.

use serde_json::{Value, json};

use crate::profile::validator;
use mhg::validate::profile::Severity;

fn patient(div: &str) -> Value {
    json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}})
}

fn errors(div: &str) -> Vec<String> {
    validator()
        .validate(&patient(div), &[])
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.expression, f.text))
        .collect()
}

#[test]
fn basic_formatting_passes() {
    let div = r##"<div xmlns="http://www.w3.org/1999/xhtml"><h3>Summary</h3><p>Seen <b>today</b>, see <a href="#r">results</a>.</p>
        <table><caption>Results</caption><tr><th>Test</th><td>1 <sub>2</sub></td></tr></table>
        <dl><dt>a</dt><dd>b</dd></dl><ol><li>x</li></ol><a name="r">end</a></div>"##;
    assert!(errors(div).is_empty(), "{:?}", errors(div));
}

#[test]
fn active_content_and_foreign_markup_are_errors_at_the_div() {
    for (div, want) in [
        (r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>"#, "'script'"),
        (r#"<div xmlns="http://www.w3.org/1999/xhtml"><form><input/></form></div>"#, "'form'"),
        (
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><img src="x.png" onerror="alert(1)"/></div>"#,
            "'onerror' on 'img'",
        ),
        (r#"<div xmlns="http://www.w3.org/1999/xhtml"><iframe src="https://example.org"/></div>"#, "'iframe'"),
        ("<div>no namespace</div>", "Wrong namespace"),
        (r#"<span xmlns="http://www.w3.org/1999/xhtml">x</span>"#, "must start with div"),
        (
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a<ul><li>b</li></ul></p></div>"#,
            "inside a paragraph",
        ),
        (
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><ul><p>b</p></ul></div>"#,
            "cannot have the following children",
        ),
        (r#"<div xmlns="http://www.w3.org/1999/xhtml"><b>a <b>b</b></b></div>"#, "cannot contain nested"),
        (r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>unclosed</div>"#, "not well-formed"),
    ] {
        let e = errors(div);
        assert!(e.iter().any(|m| m.starts_with("Patient.text.div: ") && m.contains(want)), "{div}: {e:?}");
    }
}

#[test]
fn findings_do_not_quote_the_narrative_text() {
    let e = errors(r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>Maryam Haidari 1990</script><p onclick="Haidari">x</p></div>"#);
    assert!(!e.is_empty());
    assert!(e.iter().all(|m| !m.contains("Haidari") && !m.contains("1990")), "{e:?}");
}
