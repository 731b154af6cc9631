//! Narrative hyperlinks: a link to a fragment (`<a href="#x">`) in a resource's `text.div` must
//! land on something — an `id` or `name` anchor in a narrative, or the `id` of an element or
//! resource — of the document being validated (the HL7 validator's rule; its scope is at most
//! this document, so nothing it accepts is refused here). A pass of its own over the JSON, made
//! only when some narrative links to a fragment.

use std::collections::HashSet;

use serde_json::Value;

use super::{Finding, Severity};
use crate::validate::profile::json::SmallGet;

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
            if super::json::get(m, "resourceType").is_some() {
                if let Some(div) =
                    super::json::get(m, "text").and_then(|t| t.sget("div")).and_then(Value::as_str).filter(|d| links_to_fragment(d))
                {
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
    let rt = root.sget("resourceType").and_then(Value::as_str).unwrap_or("Resource");
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

const NARRATIVE_LINK: &str = "http://hl7.org/fhir/StructureDefinition/narrativeLink";

/// The values of the `narrativeLink` extensions anywhere in `v`.
fn narrative_links<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::Object(m) => {
            if super::json::get(m, "url").and_then(Value::as_str) == Some(NARRATIVE_LINK) {
                if let Some(s) = super::json::get(m, "valueUrl").or_else(|| super::json::get(m, "valueUri")).and_then(Value::as_str) {
                    out.push(s);
                }
            }
            m.values().for_each(|x| narrative_links(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| narrative_links(x, out)),
        _ => {}
    }
}

/// How many narrative anchors (`id` or `name` attributes in any `div`) of `v` are `fragment`.
fn anchor_count(v: &Value, fragment: &str) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| match x {
                Value::String(s) if k == "div" => attr_values(s, "id").chain(attr_values(s, "name")).filter(|a| *a == fragment).count(),
                _ => anchor_count(x, fragment),
            })
            .sum(),
        Value::Array(a) => a.iter().map(|x| anchor_count(x, fragment)).sum(),
        _ => 0,
    }
}

/// A Bundle's `narrativeLink`s (IPS: an entry points at the narrative that shows it, as
/// `<fullUrl>#<anchor>`): the fullUrl must be an entry of the Bundle, and the anchor must
/// name exactly one place in that entry's narrative. Reported at the Bundle, as the HL7
/// validator does, without repeating the link.
pub(super) fn bundle_narrative_links(root: &Value, out: &mut Vec<Finding>) {
    if root.sget("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return;
    }
    let Some(entries) = root.sget("entry").and_then(Value::as_array) else { return };
    let mut links = Vec::new();
    for e in entries {
        if let Some(r) = e.sget("resource") {
            narrative_links(r, &mut links);
        }
    }
    for link in links {
        let Some((base, fragment)) = link.split_once('#') else { continue };
        if base.is_empty() {
            continue; // within its own resource: the narrative link rule above
        }
        let target = entries.iter().find(|e| e.sget("fullUrl").and_then(Value::as_str) == Some(base)).and_then(|e| e.sget("resource"));
        let problem = match target.map(|t| anchor_count(t, fragment)) {
            None => "a narrativeLink names an entry the Bundle does not hold".to_owned(),
            Some(0) => "a narrativeLink names an anchor its entry's narrative does not have".to_owned(),
            Some(1) => continue,
            Some(n) => format!("a narrativeLink names an anchor found {n} times in its entry's narrative: it must be one place"),
        };
        out.push(Finding { severity: Severity::Error, code: "invalid", text: problem, expression: "Bundle".into() });
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

    #[test]
    fn bundle_narrative_link_targets() {
        let link = |v: &str| json!({"url": NARRATIVE_LINK, "valueUrl": v});
        let bundle = json!({"resourceType": "Bundle", "type": "document", "entry": [
            {"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Composition", "section": [
                {"text": {"div": "<div><p id=\"a1\">x</p><p id=\"twice\"/><p id=\"twice\"/></div>"}}]}},
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "AllergyIntolerance", "extension": [link("urn:uuid:c#a1")]}},
            {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "AllergyIntolerance", "extension": [link("urn:uuid:c#none")]}},
            {"fullUrl": "urn:uuid:3", "resource": {"resourceType": "AllergyIntolerance", "extension": [link("urn:uuid:c#twice")]}},
            {"fullUrl": "urn:uuid:4", "resource": {"resourceType": "AllergyIntolerance", "extension": [link("urn:uuid:x#a1")]}}
        ]});
        let mut out = Vec::new();
        bundle_narrative_links(&bundle, &mut out);
        let texts: Vec<&str> = out.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(out.len(), 3, "{texts:?}");
        assert!(
            texts[0].contains("does not have") && texts[1].contains("2 times") && texts[2].contains("does not hold"),
            "{texts:?}"
        );
        assert!(out.iter().all(|f| f.expression == "Bundle"));
    }
}
