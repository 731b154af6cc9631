//! The console's HTML: escaping, the page layout, and small pieces every page uses (tables,
//! times, the OperationOutcome table). Plain `format!` with one escaping function: every value
//! that did not come from this file goes through [`esc`] (text and attribute values alike), so
//! nothing a store row or a destination holds can become markup.
//!
//! It does not know the store or the session store: pages pass what to show.

use std::fmt::Write;

use serde_json::Value;

/// Escapes text for HTML text and double- or single-quoted attribute values.
pub fn esc(s: &str) -> String {
    crate::markup::escape(s)
}

/// Percent-encodes a query-string value.
pub fn url(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// What the layout needs to know of the signed-in client.
pub struct Who<'a> {
    pub name: &'a str,
    pub admin: bool,
    pub csrf: &'a str,
}

/// A whole page: head (the embedded stylesheet and script), navigation, `body`.
pub fn page(title: &str, who: Option<&Who<'_>>, current: &str, body: &str) -> String {
    let mut nav = String::new();
    if let Some(w) = who {
        let mut links = vec![("/console", "Overview"), ("/console/submissions", "Submissions")];
        if w.admin {
            links.push(("/console/dead-letters", "Dead letters"));
            links.push(("/console/callers", "Keys and callers"));
        }
        nav.push_str("<nav aria-label=\"Console\"><ul>");
        for (href, label) in links {
            let cur = if href == current { " aria-current=\"page\"" } else { "" };
            let _ = write!(nav, "<li><a href=\"{href}\"{cur}>{label}</a></li>");
        }
        let _ = write!(
            nav,
            "</ul><form method=\"post\" action=\"/console/sign-out\" class=\"signout\">{}<span>Signed in as <strong>{}</strong></span> \
             <button type=\"submit\">Sign out</button></form></nav>",
            csrf_field(w.csrf),
            esc(w.name)
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · mhg console</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head>\
         <body><header><a class=\"brand\" href=\"/console\">mhg</a>{nav}</header><main id=\"main\">\
         <h1>{}</h1>{body}</main><footer>mhg {} · no patient data is shown in this console</footer></body></html>",
        esc(title),
        esc(title),
        env!("CARGO_PKG_VERSION")
    )
}

/// The hidden field carrying the session's anti-forgery token.
pub fn csrf_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(token))
}

/// A table: header cells, then rows of already-escaped cell HTML.
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("<div class=\"scroll\"><table><caption>{}</caption><thead><tr>", esc(caption));
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(out, "<tr><td colspan=\"{}\">None.</td></tr>", head.len().max(1));
    }
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{c}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A time (unix ms) as RFC 3339, in a `<time>` element.
pub fn time(ms: i64) -> String {
    let t = crate::calendar::rfc3339(ms);
    format!("<time datetime=\"{}\">{}</time>", esc(&t), esc(&t.replace('T', " ")))
}

/// A duration in ms, short ("3 h 5 min", "42 s").
pub fn age(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

/// A state as a labelled badge.
pub fn state(s: &str) -> String {
    let class: String = s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    format!("<span class=\"state state-{class}\">{}</span>", esc(s))
}

/// The OperationOutcome inside a stored delivery answer: the answer itself, or its `last`
/// (a dead letter keeps `{"gaveUpAfter", "last"}`).
pub fn find_outcome(v: &Value) -> Option<&Value> {
    if v["resourceType"] == "OperationOutcome" {
        return Some(v);
    }
    v.get("last").and_then(find_outcome)
}

/// The code of an answer's first issue (the cause a dead letter is grouped by), or the HTTP
/// status when the destination answered without an OperationOutcome.
pub fn cause(outcome: Option<&Value>, status: Option<i64>) -> String {
    match outcome.and_then(find_outcome).and_then(|o| o["issue"][0]["code"].as_str()) {
        Some(c) => c.to_owned(),
        None => match status {
            Some(s) => format!("http-{s}"),
            None => match outcome.and_then(|o| o.get("last").unwrap_or(o).get("error")).and_then(Value::as_str) {
                Some(_) => "error".to_owned(),
                None => "unknown".to_owned(),
            },
        },
    }
}

/// An OperationOutcome as a table: severity, code, location, text.
pub fn outcome_table(caption: &str, oo: &Value) -> String {
    let rows: Vec<Vec<String>> = oo["issue"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let list = |k: &str| -> String {
                i[k].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()
            };
            let loc = [list("expression"), list("location")].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
            let text = i["details"]["text"].as_str().or(i["diagnostics"].as_str()).unwrap_or("");
            vec![
                esc(i["severity"].as_str().unwrap_or("")),
                format!("<code>{}</code>", esc(i["code"].as_str().unwrap_or(""))),
                format!("<code>{}</code>", esc(&loc)),
                esc(text),
            ]
        })
        .collect();
    table(caption, &["Severity", "Code", "Location", "Text"], &rows)
}

/// A short message box (`role=status` so screen readers announce it).
pub fn notice(kind: &str, text: &str) -> String {
    format!("<p class=\"notice notice-{}\" role=\"status\">{}</p>", esc(kind), esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(esc("<script>\"a\" & 'b'</script>"), "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;");
        let t = table("c", &["h"], &[vec![esc("<img src=x onerror=alert(1)>")]]);
        assert!(!t.contains("<img"));
    }

    #[test]
    fn a_dead_letters_cause_is_its_outcomes_first_code_or_the_status() {
        let oo =
            json!({"gaveUpAfter": 1, "last": {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}});
        assert_eq!(cause(Some(&oo), Some(422)), "processing");
        assert_eq!(cause(Some(&json!({"status": 500})), Some(500)), "http-500");
        assert_eq!(cause(None, None), "unknown");
    }

    #[test]
    fn an_outcome_table_escapes_every_cell() {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid",
            "expression": ["Bundle.entry[0]"], "diagnostics": "<b>bad</b>"}]});
        let t = outcome_table("x", &oo);
        assert!(t.contains("&lt;b&gt;bad&lt;/b&gt;") && t.contains("Bundle.entry[0]") && !t.contains("<b>"));
    }
}
