//! Narrative hyperlinks: a link to a fragment (`<a href="#x">`) in a resource's `text.div` must
//! land on something — an `id` or `name` anchor in a narrative, or the `id` of an element or
//! resource — of the document being validated (the HL7 validator's rule; its scope is at most
//! this document, so nothing it accepts is refused here). A pass of its own over the JSON, made
//! only when some narrative links to a fragment.

use std::collections::HashSet;

use serde_json::Value;

use super::{Finding, Severity};

/// Where a narrative is: the path segments down to its resource.
enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

fn links_to_fragment(div: &str) -> bool {
    div.contains("href=\"#") || div.contains("href='#")
}

/// Values of attribute `name` (`name="v"` or `name='v'`) in markup.
fn attr_values<'v>(markup: &'v str, name: &'static str) -> impl Iterator<Item = &'v str> + 'v {
    let mut rest = markup;
    std::iter::from_fn(move || {
        loop {
            let i = rest.find(name)?;
            let before = rest[..i].chars().next_back();
            let after = &rest[i + name.len()..];
            rest = after;
            if !before.is_some_and(char::is_whitespace) {
                continue;
            }
            let after = after.trim_start();
            let Some(after) = after.strip_prefix('=') else { continue };
            let after = after.trim_start();
            let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else { continue };
            let body = &after[1..];
            let end = body.find(q)?;
            rest = &body[end..];
            return Some(&body[..end]);
        }
    })
}

/// Narratives linking to fragments, with where they are.
fn find<'v>(v: &'v Value, at: &mut Vec<Seg<'v>>, out: &mut Vec<(String, &'v str)>, root: &str) {
    match v {
        Value::Object(m) => {
            if m.contains_key("resourceType") {
                if let Some(div) = m.get("text").and_then(|t| t.get("div")).and_then(Value::as_str).filter(|d| links_to_fragment(d)) {
                    let mut p = String::from(root);
                    for s in at.iter() {
                        match s {
                            Seg::Key(k) => {
                                p.push('.');
                                p.push_str(k);
                            }
                            Seg::Index(i) => {
                                use std::fmt::Write;
                                let _ = write!(p, "[{i}]");
                            }
                        }
                    }
                    p.push_str(".text.div");
                    out.push((p, div));
                }
            }
            for (k, x) in m {
                if k.starts_with('_') || !(x.is_object() || x.is_array()) {
                    continue;
                }
                at.push(Seg::Key(k));
                find(x, at, out, root);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(Seg::Index(i));
                find(x, at, out, root);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Every `id` and every narrative anchor of the document.
fn anchors<'v>(v: &'v Value, out: &mut HashSet<&'v str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "id" => {
                        out.insert(s);
                    }
                    Value::String(s) if k == "div" => {
                        out.extend(attr_values(s, "id"));
                        out.extend(attr_values(s, "name"));
                    }
                    _ => anchors(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| anchors(x, out)),
        _ => {}
    }
}

/// Reports each narrative with a fragment link that lands nowhere (once per narrative).
pub(super) fn links(root: &Value, out: &mut Vec<Finding>) {
    let rt = root.get("resourceType").and_then(Value::as_str).unwrap_or("Resource");
    let mut divs = Vec::new();
    find(root, &mut Vec::new(), &mut divs, rt);
    if divs.is_empty() {
        return;
    }
    let mut known = HashSet::new();
    anchors(root, &mut known);
    for (path, div) in divs {
        let broken = attr_values(div, "href").filter_map(|h| h.strip_prefix('#')).any(|f| !f.is_empty() && !known.contains(f));
        if broken {
            out.push(Finding {
                severity: Severity::Error,
                code: "invalid",
                text: "a hyperlink of the narrative to a fragment (#...) does not resolve to an anchor or id of this document".into(),
                expression: path,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fragment_links() {
        let ok = json!({"resourceType": "List", "text": {"div": "<div><a name=\"a1\"> </a><a href=\"#a1\">x</a><a href='#c1'>y</a></div>"},
            "contained": [{"resourceType": "Device", "id": "c1"}]});
        let mut out = Vec::new();
        links(&ok, &mut out);
        assert!(out.is_empty());
        let bad = json!({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "List", "text": {"div": "<div><a href=\"#nowhere\">x</a></div>"}}}]});
        links(&bad, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].expression, "Bundle.entry[0].resource.text.div");
        assert_eq!(attr_values("<a  id = 'x' data-id=\"y\" id=\"z\">", "id").collect::<Vec<_>>(), ["x", "z"]);
    }
}
