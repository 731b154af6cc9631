//! The references a document's Composition or a message's MessageHeader holds must resolve
//! inside the Bundle, by HL7's rules for matching references to fullUrls
//! (`BaseValidator.resolveInBundle`, R4: a relative reference is resolved against the first
//! entry's fullUrl, never by type and id alone).
//!
//! Locations are the HL7 validator's, which testers compare with: it numbers the first entry
//! 1 there (`Bundle.entry[1].resource`), counts repeating elements from 1 (`author[1]` is the
//! first author), places a section's authors on the Composition, and gives every message focus
//! as `focus[0]`. Only the path differs from where the reference is: the text names the
//! reference and what was found, never content beyond it.
//!
//! No I/O, no clock. Linear in the entries, plus one map lookup a reference.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use serde_json::{Map, Value};

use super::Walk;
use crate::validate::profile::Severity;
use crate::validate::profile::json::SmallGet;

/// Entries (by index) by fullUrl (and `fullUrl/_history/versionId`), and by `Type/id` (and
/// versioned).
struct Maps<'v> {
    entries: &'v [Value],
    by_url: HashMap<String, Vec<usize>>,
    by_rel: HashMap<String, Vec<usize>>,
}

/// R4's canonical resource types: an absolute reference to one need not be in the Bundle.
const CANONICAL: &[&str] = &[
    "ActivityDefinition",
    "CapabilityStatement",
    "ChargeItemDefinition",
    "CodeSystem",
    "CompartmentDefinition",
    "ConceptMap",
    "EffectEvidenceSynthesis",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "GraphDefinition",
    "ImplementationGuide",
    "Library",
    "Measure",
    "MessageDefinition",
    "NamingSystem",
    "OperationDefinition",
    "PlanDefinition",
    "Questionnaire",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "RiskEvidenceSynthesis",
    "SearchParameter",
    "StructureDefinition",
    "StructureMap",
    "TerminologyCapabilities",
    "TestScript",
    "ValueSet",
];

impl Walk<'_> {
    /// The document or message checks of a Bundle whose `type` is `ty`.
    pub(super) fn document_references(&mut self, ty: &str, bundle: &Map<String, Value>, entries: &[Value]) {
        let Some(first) = entries.first() else { return };
        if !matches!(ty, "document" | "message") {
            return;
        }
        let maps = maps(entries);
        let mut reported = HashSet::new();
        if let Some(head) = first.sget("resource").and_then(Value::as_object) {
            self.head_references(ty, head, first, &maps, &mut reported);
        }
        if ty == "document" || first.sget("resource").is_some() {
            self.interlinked(ty == "message", bundle, &maps, &reported);
        }
    }

    /// The Composition's or MessageHeader's own references (HL7's validateDocument and
    /// validateMessage); `reported` gathers those found wanting.
    fn head_references<'v>(
        &mut self,
        ty: &str,
        head: &'v Map<String, Value>,
        first: &'v Value,
        maps: &Maps<'v>,
        reported: &mut HashSet<*const Value>,
    ) {
        let rt = head.sget("resourceType").and_then(Value::as_str).unwrap_or_default();
        if (ty, rt) != ("document", "Composition") && (ty, rt) != ("message", "MessageHeader") {
            return;
        }
        let ctx = Ctx {
            full_url: first.sget("fullUrl").and_then(Value::as_str),
            ty: rt,
            id: head.sget("id").and_then(Value::as_str).unwrap_or_default(),
            maps,
            reported: std::cell::RefCell::new(std::mem::take(reported)),
        };
        let len = self.path.len();
        self.path.push_str(".entry[1].resource");
        if rt == "MessageHeader" {
            for f in head.sget("focus").and_then(Value::as_array).into_iter().flatten() {
                self.doc_ref(&ctx, f, ".focus[0]", "MessageHeader Data");
            }
        } else {
            let base = self.path.clone();
            self.doc_refs(&ctx, head, &base, false, "subject", "Composition");
            self.doc_refs(&ctx, head, &base, true, "author", "Composition");
            self.doc_refs(&ctx, head, &base, false, "encounter", "Composition");
            self.doc_refs(&ctx, head, &base, false, "custodian", "Composition");
            for (i, a) in items(head, "attester").enumerate() {
                if let Some(a) = a.as_object() {
                    self.doc_refs(&ctx, a, &format!("{base}.attester[{}]", i + 1), false, "party", "Composition.attester");
                }
            }
            for (i, e) in items(head, "event").enumerate() {
                if let Some(e) = e.as_object() {
                    self.doc_refs(&ctx, e, &format!("{base}.event[{}]", i + 1), true, "detail", "Composition.event");
                }
            }
            self.sections(&ctx, head, &base, &base);
        }
        self.path.truncate(len);
        *reported = ctx.reported.into_inner();
    }

    /// HL7's checkAllInterlinked: every entry reachable from the first by references (forward),
    /// or else pointing at one that is (backward: only Provenance should). Unreachable entries
    /// of a document are errors, of a message warnings; HL7's validator numbers them from 1
    /// (`entry[k+1]` for the k-th entry with a resource) and reports backward links at
    /// `entry[n]`, n the number of entries. Copied, as testers compare locations.
    fn interlinked(&mut self, message: bool, bundle: &Map<String, Value>, m: &Maps<'_>, reported: &HashSet<*const Value>) {
        let list: Vec<usize> = (0..m.entries.len()).filter(|n| m.entries[*n].sget("resource").is_some()).collect();
        let mut targets: Vec<Vec<usize>> = vec![Vec::new(); m.entries.len()];
        for &n in &list {
            let e = &m.entries[n];
            let res = e.sget("resource");
            let full_url = e.sget("fullUrl").and_then(Value::as_str);
            let rt = res.and_then(|r| r.sget("resourceType")).and_then(Value::as_str).unwrap_or_default();
            let id = res.and_then(|r| r.sget("id")).and_then(Value::as_str).unwrap_or_default();
            let mut refs: Vec<(&str, *const Value, bool)> = Vec::new();
            let mut seen = HashSet::new();
            find_references(e, "", &mut refs, &mut seen);
            for (r, source, is_reference) in refs {
                if !is_reference {
                    // A uri or url naming an entry by its fullUrl.
                    if let Some(&[t]) = m.by_url.get(r).map(Vec::as_slice) {
                        if t != n {
                            targets[n].push(t);
                        }
                    }
                    continue;
                }
                match self.resolve_in_bundle(m, full_url, rt, id, r, &format!("{rt}.reference")) {
                    Ok(t) if t != n => targets[n].push(t),
                    Err(Miss::Wrong(text)) if !reported.contains(&source) => self.report(Severity::Error, "invalid", text),
                    _ => {}
                }
            }
        }
        let mut visited = vec![false; m.entries.len()];
        fn visit(n: usize, targets: &[Vec<usize>], visited: &mut [bool]) {
            if !visited[n] {
                visited[n] = true;
                for &t in &targets[n] {
                    visit(t, targets, visited);
                }
            }
        }
        if let Some(&n) = list.first() {
            visit(n, &targets, &mut visited);
        }
        // A document's stylesheet named by `Type/id` counts as reached.
        for l in bundle.sget("link").and_then(Value::as_array).into_iter().flatten() {
            let (Some("stylesheet"), Some(url)) = (l.sget("relation").and_then(Value::as_str), l.sget("url").and_then(Value::as_str))
            else {
                continue;
            };
            if let Some(&n) = list.iter().find(|&&n| {
                let r = m.entries[n].sget("resource");
                let t = r.and_then(|r| r.sget("resourceType")).and_then(Value::as_str).unwrap_or_default();
                let id = r.and_then(|r| r.sget("id")).and_then(Value::as_str).unwrap_or_default();
                url == format!("{t}/{id}")
            }) {
                visited[n] = true;
            }
        }
        let quoted = |n: usize| m.entries[n].sget("fullUrl").and_then(Value::as_str).map(|f| format!("'{f}'")).unwrap_or_default();
        loop {
            let mut found = false;
            for &n in &list {
                if !visited[n] && targets[n].iter().any(|t| visited[*t]) {
                    let rt = m.entries[n].sget("resource").and_then(|r| r.sget("resourceType")).and_then(Value::as_str);
                    if !message && rt != Some("Provenance") {
                        let len = self.path.len();
                        self.path.push_str(&format!(".entry[{}]", m.entries.len() + 1));
                        self.report(
                            Severity::Warning,
                            "invalid",
                            format!("Entry {} isn't reachable by traversing forwards from the Composition. Only Provenance is approved to be used this way (R4 section 3.3.1)", quoted(n)),
                        );
                        self.path.truncate(len);
                    }
                    found = true;
                    visit(n, &targets, &mut visited);
                }
            }
            if !found {
                break;
            }
        }
        for (k, &n) in list.iter().enumerate() {
            if visited[n] {
                continue;
            }
            let len = self.path.len();
            self.path.push_str(&format!(".entry[{}]", k + 1));
            if message {
                self.report(Severity::Warning, "informational", format!("Entry {} isn't reachable by traversing links (forward or backward) from the MessageHeader, so its presence should be reviewed (is it needed to process the message?)", quoted(n)));
            } else {
                self.report(
                    Severity::Error,
                    "informational",
                    format!("Entry {} isn't reachable by traversing links (forward or backward) from the Composition", quoted(n)),
                );
            }
            self.path.truncate(len);
        }
    }

    /// Sections, nested: a section's authors and focus at the Composition's path (as HL7's
    /// validator gives them), its entries at the section's.
    fn sections(&mut self, ctx: &Ctx<'_, '_>, holder: &Map<String, Value>, here: &str, composition: &str) {
        for (i, s) in items(holder, "section").enumerate() {
            let Some(s) = s.as_object() else { continue };
            let at = format!("{here}.section[{}]", i + 1);
            self.doc_refs(ctx, s, composition, true, "author", "Section");
            self.doc_refs(ctx, s, composition, false, "focus", "Section");
            for (j, e) in items(s, "entry").enumerate() {
                self.path.clear();
                self.path.push_str(&at);
                self.doc_ref(ctx, e, &format!(".entry[{}]", j + 1), "Section Entry");
            }
            self.sections(ctx, s, &at, composition);
        }
    }

    fn doc_refs(&mut self, ctx: &Ctx<'_, '_>, holder: &Map<String, Value>, at: &str, repeats: bool, prop: &str, title: &str) {
        let name = format!("{title}.{prop}");
        let list: Vec<&Value> = match holder.sget(prop) {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => return,
        };
        self.path.clear();
        self.path.push_str(at);
        if repeats {
            for (i, r) in list.iter().enumerate() {
                self.doc_ref(ctx, r, &format!(".{prop}[{}]", i + 1), &name);
            }
        } else if let Some(r) = list.first() {
            // HL7 pushes a list's first item as `[0]`, a single value without an index.
            let step = if matches!(holder.sget(prop), Some(Value::Array(_))) { format!(".{prop}[0]") } else { format!(".{prop}") };
            self.doc_ref(ctx, r, &step, &name);
        }
    }

    /// One reference, reported at the current path + `step` when it does not resolve.
    fn doc_ref(&mut self, ctx: &Ctx<'_, '_>, r: &Value, step: &str, name: &str) {
        let Some(reference) = r.sget("reference").and_then(Value::as_str).filter(|s| !s.is_empty() && !s.starts_with('#')) else {
            return;
        };
        let Some(text) = self.unresolved(ctx, reference, name) else { return };
        ctx.reported.borrow_mut().insert(r as *const Value);
        let len = self.path.len();
        self.path.push_str(step);
        self.report(Severity::Error, "invalid", text);
        self.path.truncate(len);
    }

    /// Why `reference` does not resolve in the Bundle, or None when it does (or when HL7's
    /// validator would not say).
    fn unresolved(&self, ctx: &Ctx<'_, '_>, reference: &str, name: &str) -> Option<String> {
        match self.resolve_in_bundle(ctx.maps, ctx.full_url, ctx.ty, ctx.id, reference, name) {
            Ok(_) | Err(Miss::Silent) => None,
            Err(Miss::NotFound(t) | Miss::Wrong(t)) => Some(t),
        }
    }

    /// HL7's `resolveInBundle` (R4): the entry `reference` names, seen from the entry whose
    /// fullUrl, type and id are given; else why not.
    fn resolve_in_bundle(
        &self,
        m: &Maps<'_>,
        full_url: Option<&str>,
        ty: &str,
        id: &str,
        reference: &str,
        name: &str,
    ) -> Result<usize, Miss> {
        let r = reference.split('#').next().unwrap_or(reference);
        if absolute(r) {
            return match m.by_url.get(r).map(Vec::as_slice).unwrap_or_default() {
                [] => {
                    let known = self.v.resolve(r).is_some() || super::bundle::restful_url(r).is_some_and(|t| CANONICAL.contains(&t));
                    if known { Err(Miss::Silent) } else { Err(Miss::NotFound(format!("Can't find '{r}' in the bundle ({name})"))) }
                }
                [one] => Ok(*one),
                many => Err(Miss::Wrong(format!("Found {} matches for '{r}' in the bundle ({name})", many.len()))),
            };
        }
        let suffix = format!("{ty}/{id}");
        let u = full_url.filter(|f| self.url_like(f) && f.ends_with(&suffix)).map(|f| format!("{}{r}", &f[..f.len() - suffix.len()]));
        match u.as_ref().and_then(|u| m.by_url.get(u)).map(Vec::as_slice).unwrap_or_default() {
            [] => {}
            [one] => return Ok(*one),
            many => return Err(Miss::Wrong(format!("Found {} matches for '{r}' in the bundle ({name})", many.len()))),
        }
        let mut parts = r.split('/');
        let (Some(t), Some(i)) = (parts.next(), parts.next()) else { return Err(Miss::Silent) };
        if !self.v.is_resource_type(t) {
            return Err(Miss::Silent);
        }
        let Some(found) = m.by_rel.get(&format!("{t}/{i}")) else {
            return Err(Miss::NotFound(format!("Can't find '{r}' in the bundle ({name})")));
        };
        let tl = m.shown(found);
        let n = found.len();
        let source = full_url.unwrap_or_default();
        Err(Miss::Wrong(match (&u, n) {
            (None, 1) => format!(
                "Can't find '{r}' in the bundle ({name}). Note that there is a resource in the bundle with the same type and id, but it does not match because of the fullUrl based rules around matching relative references. Found '{tl}', but it doesn't match because of the source fullUrl '{source}'"
            ),
            (None, _) => format!(
                "Can't find '{r}' in the bundle ({name}). Note that there are {n} resources in the bundle with the same type and id, but they do not match because of the fullUrl based rules around matching relative references. Found '{tl}', but none of them match because of the source fullUrl '{source}'"
            ),
            (Some(u), 1) => format!(
                "Can't find '{r}' in the bundle ({name}). Note that there is a resource in the bundle with the same type and id, but it does not match because of the fullUrl based rules around matching relative references (must be '{u}', but found '{tl}')"
            ),
            (Some(u), _) => format!(
                "Can't find '{r}' in the bundle ({name}). Note that there are {n} resources in the bundle with the same type and id, but they do not match because of the fullUrl based rules around matching relative references (must be '{u}', but found these: {tl})"
            ),
        }))
    }
}

/// Why a reference has no target in the Bundle.
enum Miss {
    /// Nothing to say (not a reference HL7's validator resolves in a Bundle).
    Silent,
    /// Nothing in the Bundle has that URL or type and id (BUNDLE_BUNDLE_ENTRY_NOTFOUND): an
    /// error for a document's or message's own references, a hint elsewhere.
    NotFound(String),
    /// Several entries match, or one with the same type and id that the fullUrl rules do not
    /// match: always an error.
    Wrong(String),
}

impl Walk<'_> {
    /// HL7's `urlRegex` for fullUrls: `[http(s)://server/]Type/id[/_history/version]`, the
    /// server part optional.
    fn url_like(&self, f: &str) -> bool {
        let ok_id = |x: &str| (1..=64).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        let (rest, server) = match f.strip_prefix("http://").or_else(|| f.strip_prefix("https://")) {
            Some(r) => (r, true),
            None => (f, false),
        };
        let rest = match rest.rsplit_once("/_history/") {
            Some((r, v)) if ok_id(v) => r,
            _ => rest,
        };
        let Some((rest, id)) = rest.rsplit_once('/') else { return false };
        let (head, ty) = match rest.rsplit_once('/') {
            Some((h, t)) => (Some(h), t),
            None => (None, rest),
        };
        let head_ok = match head {
            None => true,
            Some(h) => server && h.bytes().all(|b| b.is_ascii_alphanumeric() || b"\\.:%$/".contains(&b)),
        };
        ok_id(id) && head_ok && self.v.is_resource_type(ty)
    }
}

struct Ctx<'m, 'v> {
    /// The reference objects already reported (HL7's validator reports each once).
    reported: std::cell::RefCell<HashSet<*const Value>>,
    full_url: Option<&'v str>,
    ty: &'v str,
    id: &'v str,
    maps: &'m Maps<'v>,
}

fn items<'v>(holder: &'v Map<String, Value>, key: &str) -> impl Iterator<Item = &'v Value> {
    holder.sget(key).and_then(Value::as_array).into_iter().flatten()
}

/// HL7's findReferences over an entry: each `Reference.reference` (not `#local`), and each
/// other string that may be a uri (not a system, profile, fullUrl or narrative), once a text;
/// a nested Bundle is not entered. `(text, the object or value holding it, is a Reference)`.
fn find_references<'v>(v: &'v Value, key: &str, out: &mut Vec<(&'v str, *const Value, bool)>, seen: &mut HashSet<&'v str>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.sget("reference").and_then(Value::as_str) {
                if !r.starts_with('#') && seen.insert(r) {
                    out.push((r, v as *const Value, true));
                }
            }
            for (k, c) in o {
                if k == "resource" && c.sget("resourceType").and_then(Value::as_str) == Some("Bundle") {
                    continue;
                }
                if k != "reference" {
                    find_references(c, k, out, seen);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| find_references(c, key, out, seen)),
        Value::String(s)
            if !matches!(key, "system" | "profile" | "fullUrl" | "div" | "reference") && !s.starts_with('#') && seen.insert(s) =>
        {
            out.push((s, v as *const Value, false))
        }
        _ => {}
    }
}

/// HL7's `Utilities.isAbsoluteUrl`, near enough: a scheme, then `:`.
fn absolute(r: &str) -> bool {
    r.split_once(':').is_some_and(|(s, _)| {
        s.len() > 1
            && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    })
}

fn maps(entries: &[Value]) -> Maps<'_> {
    let mut m = Maps { entries, by_url: HashMap::with_capacity(entries.len()), by_rel: HashMap::with_capacity(entries.len()) };
    for (n, e) in entries.iter().enumerate() {
        let fu = e.sget("fullUrl").and_then(Value::as_str);
        if let Some(f) = fu {
            m.by_url.entry(f.to_owned()).or_default().push(n);
        }
        let Some(r) = e.sget("resource") else { continue };
        let t = r.sget("resourceType").and_then(Value::as_str).unwrap_or_default();
        let id = r.sget("id").and_then(Value::as_str);
        let version = r.sget("meta").and_then(|m| m.sget("versionId")).and_then(Value::as_str).filter(|v| !v.is_empty());
        if let Some(id) = id {
            m.by_rel.entry(format!("{t}/{id}")).or_default().push(n);
        }
        if let Some(v) = version {
            if let Some(f) = fu {
                m.by_url.entry(format!("{f}/_history/{v}")).or_default().push(n);
            }
            if let Some(id) = id {
                m.by_rel.entry(format!("{t}/{id}/_history/{v}")).or_default().push(n);
            }
        }
    }
    m
}

impl Maps<'_> {
    fn shown(&self, found: &[usize]) -> String {
        let mut tl: Vec<&str> =
            found.iter().map(|n| self.entries[*n].sget("fullUrl").and_then(Value::as_str).unwrap_or("<missing>")).collect();
        tl.sort_unstable();
        tl.dedup();
        tl.join(",")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::findings;

    fn doc(fu: &str, subject: &str) -> serde_json::Value {
        json!({"resourceType": "Bundle", "type": "document", "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
            "timestamp": "2024-01-01T00:00:00Z",
            "entry": [
            {"fullUrl": fu, "resource": {"resourceType": "Composition", "id": "c", "status": "final", "type": {"text": "x"}, "date": "2024-01-01",
                "title": "t", "author": [{"reference": subject}], "subject": {"reference": subject}}},
            {"fullUrl": "http://a.org/fhir/Patient/p", "resource": {"resourceType": "Patient", "id": "p"}}]})
    }

    #[test]
    fn a_document_reference_resolves_against_the_first_entry_s_full_url() {
        let at = |b: &serde_json::Value| {
            findings(b.clone())
                .into_iter()
                .filter(|f| f.contains(": Can't find"))
                .map(|f| f.split(": ").next().unwrap_or_default().trim_start_matches("error ").to_owned())
                .collect::<Vec<_>>()
        };
        assert!(at(&doc("http://a.org/fhir/Composition/c", "Patient/p")).is_empty());
        // Another server: the same type and id do not match; reported where HL7's validator
        // reports it (first entry numbered 1, the first author author[1]).
        assert_eq!(
            at(&doc("http://b.org/fhir/Composition/c", "Patient/p")),
            ["Bundle.entry[1].resource.subject", "Bundle.entry[1].resource.author[1]"]
        );
        assert_eq!(at(&doc("http://a.org/fhir/Composition/c", "Patient/q")).len(), 2);
        // A relative fullUrl `Composition/c` is a server base of its own (empty): `Patient/p`
        // would resolve to the entry whose fullUrl is `Patient/p`, not `http://a.org/...`.
        assert_eq!(at(&doc("Composition/c", "Patient/p")).len(), 2);
    }
}
