//! Bundle rules that need the whole Bundle: the form of fullUrls (absolute; a RESTful one ends
//! with the resource's type and id), their presence outside transactions and batches, their
//! uniqueness (bdl-7), `request` in transactions,
//! batches and histories (bdl-3); and the index of entries references resolve against
//! ([`BundleIndex`], built in one linear pass).
//!
//! No I/O, no clock; findings name the entry by index, never its content.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use serde_json::{Map, Value};

use super::Walk;
use crate::validate::profile::Severity;
use crate::validate::profile::json::SmallGet;

/// Entries of the Bundle being validated, for references that resolve inside it.
pub(super) struct BundleIndex<'v> {
    /// Bundle.type: references that do not resolve are errors only where the Bundle must be
    /// self-contained (document, message, transaction, batch).
    pub(super) kind: &'v str,
    by_full_url: HashMap<&'v str, &'v Value>,
    /// fullUrls that more than one entry has (bdl-7 allows it with distinct versionIds).
    repeated: HashSet<&'v str>,
    by_type_id: HashMap<(&'v str, &'v str), &'v Value>,
}

impl<'v> BundleIndex<'v> {
    pub fn resolve(&self, r: &str, base: Option<&str>) -> Option<&'v Value> {
        let r = r.split("/_history/").next().unwrap_or(r);
        if let Some(v) = self.by_full_url.get(r) {
            return Some(v);
        }
        if r.contains(':') {
            // Absolute: `http://x/fhir/Patient/1` also matches an entry `Patient/1` of that server.
            return None;
        }
        if let Some(u) = server_url(r, base) {
            if let Some(v) = self.by_full_url.get(u.as_str()) {
                return Some(v);
            }
        }
        let (t, id) = r.split_once('/')?;
        self.by_type_id.get(&(t, id)).copied()
    }

    /// Whether a reference without a version names a fullUrl that several entries have (HL7's
    /// Bundle_BUNDLE_MultipleMatches): absolute as written, relative against the entry's server.
    pub fn ambiguous(&self, r: &str, base: Option<&str>) -> bool {
        if r.contains("/_history/") || self.repeated.is_empty() {
            return false;
        }
        self.repeated.contains(r) || (!r.contains(':') && server_url(r, base).is_some_and(|u| self.repeated.contains(u.as_str())))
    }
}

/// `r` (`Type/id`) on the server of the RESTful fullUrl `base`.
fn server_url(r: &str, base: Option<&str>) -> Option<String> {
    let b = base.filter(|b| b.starts_with("http"))?;
    let mut parts: Vec<&str> = b.trim_end_matches('/').rsplitn(3, '/').collect();
    (parts.len() == 3).then(|| format!("{}/{r}", parts.pop().unwrap_or_default()))
}

impl Walk<'_> {
    /// Bundle rules that need the whole Bundle: fullUrl form and uniqueness, `request` for
    /// transactions and batches. Builds the index references resolve against (linear).
    pub(super) fn bundle_rules<'v>(&mut self, obj: &'v Map<String, Value>) -> BundleIndex<'v> {
        let ty = obj.sget("type").and_then(Value::as_str).unwrap_or_default();
        let mut idx = BundleIndex { kind: ty, by_full_url: HashMap::new(), repeated: HashSet::new(), by_type_id: HashMap::new() };
        self.bundle_links(obj, ty);
        if ty == "searchset" {
            self.search_set(obj);
        }
        let Some(entries) = obj.sget("entry").and_then(Value::as_array) else {
            return idx;
        };
        if ty == "message" {
            let first = entries.first().and_then(|e| e.sget("resource"));
            if let Some(rt) = first.and_then(|r| r.sget("resourceType")).and_then(Value::as_str).filter(|rt| *rt != "MessageHeader") {
                // HL7's Validation_BUNDLE_Message, beside the invariant bdl-12, at the path HL7's
                // validator gives it: it numbers the first entry 1 there.
                let len = self.path.len();
                self.path.push_str(".entry[1].resource");
                self.report(
                    Severity::Error,
                    "invalid",
                    format!("the first entry in a message must be a MessageHeader, not a {rt}"),
                );
                self.path.truncate(len);
            }
        }
        idx.by_full_url.reserve(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let res = e.sget("resource");
            let full = e.sget("fullUrl").and_then(Value::as_str);
            let len = self.push("entry", Some(i));
            if let Some(f) = full {
                // The form of a fullUrl is reported at the first entry, as the HL7 validator
                // does; the text names the entry.
                if !f.contains(':') {
                    self.at_first_entry(len, format!("entry {i}: the fullUrl must be an absolute URL"));
                } else if let Some(r) = res {
                    let rt = r.sget("resourceType").and_then(Value::as_str);
                    if rt.is_some() && restful_url(f).is_some_and(|t| self.v.is_resource_type(t)) {
                        match r.sget("id").and_then(Value::as_str) {
                            None => self.at_first_entry(
                                len,
                                format!("entry {i}: the fullUrl looks like a RESTful server URL, so the resource must have an id"),
                            ),
                            Some(id) => {
                                let tail = f
                                    .strip_suffix(id)
                                    .and_then(|x| x.strip_suffix('/'))
                                    .and_then(|x| x.strip_suffix(rt.unwrap_or_default()));
                                if !tail.is_some_and(|x| x.ends_with('/')) {
                                    self.at_first_entry(
                                        len,
                                        format!("entry {i}: the fullUrl looks like a RESTful server URL, so it must end with the resource's type and id"),
                                    );
                                }
                            }
                        }
                    }
                }
                if let Some(r) = res {
                    let dup = idx.by_full_url.insert(f, r);
                    if let Some(prev) = dup {
                        idx.repeated.insert(f);
                        let same_version =
                            prev.sget("meta").and_then(|m| m.sget("versionId")) == r.sget("meta").and_then(|m| m.sget("versionId"));
                        if same_version && !matches!(ty, "history" | "searchset") {
                            self.report(Severity::Error, "invariant", "constraint bdl-7 failed: FullUrl must be unique in a bundle, or else entries with the same fullUrl must have different meta.versionId");
                        }
                    }
                }
            } else if !matches!(ty, "transaction" | "transaction-response" | "batch" | "batch-response") {
                // Java: "Except for transactions and batches, each entry in a Bundle must have a
                // fullUrl which is the identity of the resource in the entry".
                self.report(
                    Severity::Error,
                    "required",
                    "entry.fullUrl is required: except in transactions and batches, it is the identity of the entry's resource",
                );
            }
            if let Some(r) = res {
                if let (Some(t), Some(id)) = (r.sget("resourceType").and_then(Value::as_str), r.sget("id").and_then(Value::as_str)) {
                    idx.by_type_id.entry((t, id)).or_insert(r);
                }
            }
            if matches!(ty, "transaction" | "batch" | "history") && e.sget("request").is_none() {
                self.report(
                    Severity::Error,
                    "invariant",
                    "constraint bdl-3 failed: entry.request mandatory for batch/transaction/history, otherwise prohibited",
                );
            }
            self.path.truncate(len);
        }
        self.document_references(ty, obj, entries);
        idx
    }

    /// A finding at `<Bundle>.entry[0]`, the path being at some `entry[i]` that starts at `len`.
    fn at_first_entry(&mut self, len: usize, text: String) {
        let here = self.path.split_off(len);
        self.path.push_str(".entry[0]");
        self.report(Severity::Error, "invalid", text);
        self.path.truncate(len);
        self.path.push_str(&here);
    }
}

/// The resource type of a RESTful URL (`http(s)://server/path/Type/id`, optionally
/// `/_history/version`; the HL7 validator's pattern: path segments of letters, digits and
/// `.:%$\`, ids and versions of letters, digits, `-` and `.`, at most 64).
pub(super) fn restful_url(u: &str) -> Option<&str> {
    let ok_id = |x: &str| (1..=64).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let rest = u.strip_prefix("http://").or_else(|| u.strip_prefix("https://"))?;
    let rest = match rest.rsplit_once("/_history/") {
        Some((r, v)) if ok_id(v) => r,
        _ => rest,
    };
    let (rest, id) = rest.rsplit_once('/')?;
    let (server, ty) = match rest.rsplit_once('/') {
        Some((s, t)) => (s, t),
        None => ("", rest),
    };
    let server_ok = server.bytes().all(|b| b.is_ascii_alphanumeric() || b"\\.:%$/".contains(&b));
    (ok_id(id) && server_ok && ty.bytes().next().is_some_and(|b| b.is_ascii_uppercase())).then_some(ty)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::findings;
    use super::*;

    #[test]
    fn a_restful_url_names_its_type() {
        assert_eq!(restful_url("http://server/fhir/Patient/1"), Some("Patient"));
        assert_eq!(restful_url("https://server/Patient/1/_history/2"), Some("Patient"));
        assert_eq!(restful_url("http://server/fhir/patient/1"), None);
        assert_eq!(restful_url(&format!("http://server/Patient/{}", "1".repeat(65))), None);
        assert_eq!(restful_url("urn:uuid:9d5b3d0f-9c3e-4e5a-9d3a-1b2c3d4e5f60"), None);
        assert_eq!(restful_url("http://server/fhir/Patient/a b"), None);
    }

    /// Every fullUrl finding is reported at the first entry, naming the entry it is about.
    #[test]
    fn full_url_findings_are_at_the_first_entry() {
        let patient = |id: &str| json!({"resourceType": "Patient", "id": id});
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "urn:uuid:9d5b3d0f-9c3e-4e5a-9d3a-1b2c3d4e5f60", "resource": patient("a")},
            {"fullUrl": "Patient/b", "resource": patient("b")},
            {"fullUrl": "http://server/fhir/Patient/c", "resource": patient("d")},
            {"fullUrl": "http://server/fhir/Patient/e", "resource": {"resourceType": "Patient"}},
            {"fullUrl": "http://server/fhir/Patient/f", "resource": patient("f")}
        ]});
        let f = findings(bundle);
        let at_first: Vec<&String> = f.iter().filter(|f| f.starts_with("error Bundle.entry[0]: entry ")).collect();
        assert_eq!(
            at_first,
            [
                "error Bundle.entry[0]: entry 1: the fullUrl must be an absolute URL",
                "error Bundle.entry[0]: entry 2: the fullUrl looks like a RESTful server URL, so it must end with the resource's type and id",
                "error Bundle.entry[0]: entry 3: the fullUrl looks like a RESTful server URL, so the resource must have an id",
            ],
            "{f:#?}"
        );
    }

    #[test]
    fn entries_resolve_by_full_url_and_by_type_and_id_on_the_same_server() {
        let (a, b) = (json!({"resourceType": "Patient", "id": "1"}), json!({"resourceType": "Patient", "id": "2"}));
        let mut idx = BundleIndex { kind: "collection", by_full_url: HashMap::new(), repeated: HashSet::new(), by_type_id: HashMap::new() };
        idx.by_full_url.insert("http://server/fhir/Patient/1", &a);
        idx.by_type_id.insert(("Patient", "2"), &b);
        assert!(idx.resolve("http://server/fhir/Patient/1/_history/4", None).is_some_and(|r| std::ptr::eq(r, &a)));
        // Relative to the entry's fullUrl: its server's base.
        assert!(idx.resolve("Patient/1", Some("http://server/fhir/Observation/9")).is_some_and(|r| std::ptr::eq(r, &a)));
        assert!(idx.resolve("Patient/1", Some("http://other/fhir/Observation/9")).is_none());
        assert!(idx.resolve("Patient/2", None).is_some_and(|r| std::ptr::eq(r, &b)));
        assert!(idx.resolve("http://other/fhir/Patient/2", None).is_none());
    }
}
