//! Bundle rules that are not invariants, as the HL7 validator states them: `link` relations
//! by Bundle type (paging relations only in search sets and histories; `self` and the paging
//! relations once), and search-set entries (a resource with an id on each match and include,
//! an OperationOutcome on each outcome, a self link, search modes).
//!
//! No I/O, no clock; findings name the link or entry by index, never its content.

use serde_json::{Map, Value};

use super::Walk;
use crate::validate::profile::Severity;
use crate::validate::profile::json::SmallGet;

const PAGING: [&str; 4] = ["first", "previous", "next", "last"];

impl Walk<'_> {
    /// `Bundle.link`: the relations a Bundle of this type may carry.
    pub(super) fn bundle_links(&mut self, obj: &Map<String, Value>, ty: &str) {
        let Some(links) = obj.sget("link").and_then(Value::as_array) else { return };
        let rel = |l: &Value| l.sget("relation").and_then(Value::as_str).map(str::to_owned);
        let rels: Vec<Option<String>> = links.iter().map(rel).collect();
        for (i, r) in rels.iter().enumerate() {
            let Some(r) = r.as_deref() else { continue };
            // Reported once, at the second and later links with the relation.
            let repeated = rels[..i].iter().any(|p| p.as_deref() == Some(r));
            let len = self.push("link", Some(i));
            match ty {
                "searchset" | "history" if (PAGING.contains(&r) || r == "self") && repeated => {
                    self.report(Severity::Error, "invalid", format!("the link relation {r} can only occur once"));
                }
                "searchset" | "history" => {}
                "document"
                | "message"
                | "collection"
                | "subscription-notification"
                | "transaction"
                | "transaction-response"
                | "batch"
                | "batch-response" => {
                    let l2 = self.push("relation", None);
                    if PAGING.contains(&r) {
                        self.report(
                            Severity::Error,
                            "invalid",
                            format!("the link relation {r} is for search sets and histories, not a Bundle of type {ty}"),
                        );
                    } else if r == "self" && repeated {
                        self.report(Severity::Error, "invalid", "the link relation self can only occur once");
                    }
                    self.path.truncate(l2);
                    if ty == "document" && r == "stylesheet" {
                        if let Some(url) = links[i].sget("url").and_then(Value::as_str) {
                            self.stylesheet(url, obj);
                        }
                    }
                }
                _ => {}
            }
            self.path.truncate(len);
        }
    }

    /// A document's stylesheet link (at `link[i]`), as HL7's validator checks it: an absolute
    /// URL other than FHIR's own stylesheet is a warning (and one for `http:`, and one when it is
    /// not a web link); a relative one must name an entry's `Type/id` (an error).
    fn stylesheet(&mut self, url: &str, obj: &Map<String, Value>) {
        let len = self.push("url", None);
        let absolute = url.split_once(':').is_some_and(|(scheme, rest)| {
            let token = !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'+'));
            token && scheme == scheme.to_ascii_lowercase() && !rest.is_empty() && !rest.contains(' ')
        });
        if absolute {
            if url != "https://hl7.org/fhir/fhir.css" {
                self.report(
                    Severity::Warning,
                    "business-rule",
                    "external stylesheets other than https://hl7.org/fhir/fhir.css should not be used",
                );
                if url.starts_with("http://") {
                    self.report(Severity::Warning, "business-rule", "the stylesheet reference is not secure");
                }
                let linkable = url
                    .split_once(':')
                    .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https" | "ftp") && !rest.is_empty() && !rest.contains(' '));
                if !linkable {
                    self.report(Severity::Warning, "business-rule", "the stylesheet reference is not a resolvable link");
                }
            }
        } else {
            let entries = obj.sget("entry").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let found = entries.iter().filter_map(|e| e.sget("resource")).any(|r| {
                let (t, id) = (r.sget("resourceType").and_then(Value::as_str), r.sget("id").and_then(Value::as_str));
                url.split_once('/').is_some_and(|(ut, uid)| Some(ut) == t && Some(uid) == id)
            });
            if !found {
                self.report(Severity::Error, "not-found", "the stylesheet reference could not be resolved in this bundle");
            }
        }
        self.path.truncate(len);
    }

    /// A search set: a self link; each entry has a resource; matches and includes have ids,
    /// outcomes are OperationOutcomes; search modes given (warnings where Java warns).
    pub(super) fn search_set(&mut self, obj: &Map<String, Value>) {
        let links = obj.sget("link").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let self_url = links.iter().find(|l| l.sget("relation").and_then(Value::as_str) == Some("self"));
        if self_url.is_none() {
            self.report(Severity::Warning, "invalid", "a search set should have a self link that says what the search was");
        }
        // The types searched for, as HL7's validator reads them from the self link.
        let searched = search_types(self, self_url.and_then(|l| l.sget("url")).and_then(Value::as_str));
        let Some(entries) = obj.sget("entry").and_then(Value::as_array) else { return };
        let mode = |e: &Value| e.sget("search").and_then(|s| s.sget("mode")).and_then(Value::as_str).map(str::to_owned);
        let any_mode = entries.iter().any(|e| mode(e).is_some());
        let mut types: Vec<String> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let len = self.push("entry", Some(i));
            let m = mode(e);
            if any_mode && m.is_none() {
                self.report(Severity::Warning, "invalid", "search set entries should have a search mode");
            }
            match e.sget("resource") {
                None => self.report(Severity::Error, "invalid", "search set entries must have a resource"),
                Some(res) => {
                    let rt = res.sget("resourceType").and_then(Value::as_str).unwrap_or_default();
                    let has_id = res.sget("id").and_then(Value::as_str).is_some();
                    let l2 = self.push("resource", None);
                    if m.as_deref() == Some("match") && !searched.is_empty() && !searched.iter().any(|t| t == rt) {
                        // HL7's BUNDLE_SEARCH_ENTRY_WRONG_RESOURCE_TYPE_MODE.
                        self.report(
                            Severity::Error,
                            "invalid",
                            format!("a {rt} is not a matching resource type for the search of the self link"),
                        );
                    }
                    match m.as_deref() {
                        Some("match" | "include") if !has_id => self.report(Severity::Error, "invalid", "search results must have ids"),
                        Some("outcome") if rt != "OperationOutcome" => self.report(
                            Severity::Error,
                            "invalid",
                            format!("an entry of search mode outcome must be an OperationOutcome, not {rt}"),
                        ),
                        None if !has_id && rt != "OperationOutcome" => {
                            self.report(Severity::Warning, "invalid", "search results should have ids")
                        }
                        _ => {}
                    }
                    self.path.truncate(l2);
                    if !any_mode && !searched.is_empty() && !searched.iter().any(|t| t == rt) {
                        // HL7's BUNDLE_SEARCH_ENTRY_WRONG_RESOURCE_TYPE_NO_MODE (a warning).
                        self.report(
                            Severity::Warning,
                            "invalid",
                            format!("a {rt} is not a matching resource type for the search of the self link (is a search mode needed?)"),
                        );
                    }
                    if !any_mode && rt != "OperationOutcome" && !types.iter().any(|t| t == rt) {
                        types.push(rt.to_owned());
                    }
                }
            }
            self.path.truncate(len);
        }
        if !any_mode && types.len() > 1 {
            self.report(Severity::Warning, "invalid", "search set entries of several types should say their search modes");
        }
    }
}

/// The resource types a search URL asks for: its last path segment when that is a resource
/// type (`.../Patient?name=x`), else the `_type` parameter's list.
fn search_types(w: &Walk<'_>, url: Option<&str>) -> Vec<String> {
    let Some(url) = url else { return Vec::new() };
    let (head, tail) = url.split_once('?').map_or((url, None), |(h, t)| (h, Some(t)));
    let last = head.rsplit('/').next().unwrap_or_default();
    if w.v.is_resource_type(last) {
        return vec![last.to_owned()];
    }
    tail.into_iter()
        .flat_map(|t| t.split('&'))
        .filter_map(|p| p.strip_prefix("_type="))
        .flat_map(|t| t.split(','))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::findings;

    fn patient(id: &str) -> serde_json::Value {
        json!({"resourceType": "Patient", "id": id})
    }

    #[test]
    fn paging_links_belong_to_search_sets_and_relations_occur_once() {
        let doc = json!({"resourceType": "Bundle", "type": "collection",
            "link": [{"relation": "self", "url": "http://x/a"}, {"relation": "next", "url": "http://x/b"}, {"relation": "self", "url": "http://x/c"}],
            "entry": [{"fullUrl": "http://x/fhir/Patient/1", "resource": patient("1")}]});
        let f = findings(doc);
        let errors: Vec<&String> = f.iter().filter(|f| f.starts_with("error Bundle.link")).collect();
        assert_eq!(errors.len(), 2, "{f:#?}");
        assert!(
            errors[0].starts_with("error Bundle.link[1].relation: the link relation next is for search sets"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("error Bundle.link[2].relation: the link relation self can only occur once"),
            "{errors:?}"
        );
        let search = json!({"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "self", "url": "http://x/Patient"}, {"relation": "next", "url": "http://x/b"}, {"relation": "next", "url": "http://x/c"}],
            "entry": [{"fullUrl": "http://x/fhir/Patient/1", "resource": patient("1"), "search": {"mode": "match"}}]});
        let f = findings(search);
        let errors: Vec<&String> = f.iter().filter(|f| f.starts_with("error")).collect();
        assert_eq!(errors, ["error Bundle.link[2]: the link relation next can only occur once"], "{f:#?}");
    }

    #[test]
    fn search_set_entries_have_resources_with_ids_and_outcomes_are_operation_outcomes() {
        let search = json!({"resourceType": "Bundle", "type": "searchset",
        "entry": [
            {"fullUrl": "urn:uuid:9d5b3d0f-9c3e-4e5a-9d3a-1b2c3d4e5f60", "resource": {"resourceType": "Patient"}, "search": {"mode": "match"}},
            {"fullUrl": "http://x/fhir/Patient/2", "resource": patient("2"), "search": {"mode": "outcome"}},
            {"fullUrl": "http://x/fhir/Patient/3", "search": {"mode": "include"}},
            {"fullUrl": "http://x/fhir/Patient/4", "resource": patient("4")}
        ]});
        let f = findings(search);
        let at = |p: &str, sev: &str| f.iter().any(|x| x.starts_with(&format!("{sev} {p}:")));
        assert!(at("Bundle", "warning"), "no self link: {f:#?}");
        assert!(at("Bundle.entry[0].resource", "error"), "a match without an id: {f:#?}");
        assert!(at("Bundle.entry[1].resource", "error"), "an outcome that is a Patient: {f:#?}");
        assert!(at("Bundle.entry[2]", "error"), "no resource: {f:#?}");
        assert!(at("Bundle.entry[3]", "warning"), "no search mode: {f:#?}");
    }

    #[test]
    fn entries_need_a_full_url_except_in_transactions_and_batches() {
        let b = |ty: &str| json!({"resourceType": "Bundle", "type": ty, "entry": [{"resource": patient("1"), "request": {"method": "POST", "url": "Patient"}}]});
        let missing = |ty: &str| findings(b(ty)).iter().any(|f| f.starts_with("error Bundle.entry[0]: entry.fullUrl is required"));
        assert!(!missing("transaction") && !missing("batch"));
        let c = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient("1")}]});
        assert!(findings(c).iter().any(|f| f.starts_with("error Bundle.entry[0]: entry.fullUrl is required")));
    }
}
