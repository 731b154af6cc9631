//! Extensions: the definition an extension's `url` names (checked like a profile), the
//! contexts it may sit in, a version in the URL, unknown extensions (warnings or errors, as the
//! validator is configured; modifier extensions always errors) and example URLs.
//!
//! No I/O, no clock; findings name the extension's URL, a definition's, never instance values.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Host, Item, Scope, Walk};
use crate::validate::profile::Severity;
use crate::validate::profile::json::SmallGet;
use crate::validate::profile::model::{ElemId, Profile};

impl Walk<'_> {
    pub(super) fn extension<'v>(
        &mut self,
        prof: &Arc<Profile>,
        eid: ElemId,
        value: &'v Value,
        obj: &Map<String, Value>,
        scope: Scope<'v>,
        host: Host<'_>,
    ) {
        let Some(url) = obj.sget("url").and_then(Value::as_str) else {
            return;
        };
        let e = prof.elem(eid);
        // HL7's EXTENSION_EXT_URL_ABSOLUTE: only an extension nested in another may have a
        // relative url (its name within that extension).
        if prof.type_name != "Extension" && !crate::validate::profile::primitive::has_scheme(url) {
            self.report(Severity::Error, "invalid", "Extension.url must be an absolute URL");
            return;
        }
        // Defined here already: an extension definition's root, a slice with a profile, or a
        // nested extension whose url is fixed.
        if eid == 0 || e.types.iter().any(|t| !t.profiles.is_empty()) || !url.contains(':') {
            return;
        }
        if prof.type_name == "Extension" && prof.url == url {
            return;
        }
        if url.contains('|') {
            // Located as the HL7 validator locates it: `extension[1][url='...']`.
            let len = self.path.len();
            self.path.push_str("[url='");
            self.path.push_str(url);
            self.path.push_str("']");
            // EXT_VER_URL_NOT_ALLOWED / _REVERSION (errors) when the extension is known by its
            // unversioned URL; EXT_VER_URL_NO_MATCH (a warning) when it is not.
            let unversioned = url.split('|').next().unwrap_or(url);
            if self.v.profile(unversioned).is_some() {
                self.report(Severity::Error, "structure", "an extension URL must not carry a version");
            } else {
                self.report(
                    Severity::Warning,
                    "structure",
                    "extension URLs carry no version, and no extension is known by this URL with or without it",
                );
            }
            self.path.truncate(len);
        }
        match self.v.profile(url) {
            Some(ext) if ext.type_name == "Extension" => {
                // EXTENSION_EXT_MODIFIER_N / _Y: a modifier extension is only a
                // modifierExtension, and a regular one only an extension; located as HL7's
                // validator locates them, `extension[0][url='...']`.
                let as_modifier = e.path.ends_with("modifierExtension");
                if ext.elem(0).is_modifier != as_modifier {
                    let len = self.path.len();
                    self.path.push_str("[url='");
                    self.path.push_str(url);
                    self.path.push_str("']");
                    let text = if as_modifier {
                        format!("the extension {url} must not be used as a modifierExtension (it is a regular extension)")
                    } else {
                        format!("the extension {url} must not be used as an extension (it is a modifierExtension)")
                    };
                    self.report(Severity::Error, "structure", text);
                    self.path.truncate(len);
                }
                if !context_ok(&ext, host, || self.v.is_canonical_resource(host.ty)) {
                    let here = self.path.clone();
                    if let Some(i) = here.rfind('.') {
                        self.path.truncate(i);
                    }
                    self.report(Severity::Error, "structure", format!("extension {url} is not allowed here (context)"));
                    self.path = here;
                }
                self.item(&Item::root(&ext, value, "Extension", scope, host));
            }
            _ => {
                // HL7's allowUnknownExtension: example domains (while example URLs are
                // allowed), nema.org, the tooling extensions and the configured domains.
                if self.v.allows_unknown_extension(url) {
                    return;
                }
                if e.path.ends_with("modifierExtension") {
                    self.report(Severity::Error, "structure", format!("unknown modifier extension {url}"));
                } else {
                    let sev = if self.v.unknown_extension_errors() { Severity::Error } else { Severity::Warning };
                    self.report(sev, "structure", format!("unknown extension {url}: not checked"));
                }
                // TYPE_SPECIFIC_CHECKS_DT_URL_EXAMPLE on the URL, which resolves to nothing.
                if !self.v.example_urls_allowed() && is_example_url(url) {
                    let len = self.push("url", None);
                    self.report(Severity::Error, "value", format!("example URLs are not allowed in this context ({url})"));
                    self.path.truncate(len);
                }
            }
        }
    }
}

/// Whether an extension may sit on `host`. R5's interface types, which the extensions pack
/// names as contexts (`CanonicalResource`, `MetadataResource`), stand for the R4 resources
/// with a canonical `url` (`canonical`, asked only then).
/// A `fhirpath` context as [`fhirpath_context_path`] reads it; an `extension` context allows.
fn context_ok(ext: &Profile, host: Host<'_>, canonical: impl Fn() -> bool) -> bool {
    if ext.contexts.is_empty() {
        return true;
    }
    ext.contexts.iter().any(|(kind, expr)| {
        let expr = expr.trim();
        let expr = match kind.as_str() {
            "element" => expr,
            // Java's extension contexts take more than the holder's URL (SearchParameter
            // elements under capabilitystatement-expectation pass its IG publisher): allowed.
            "extension" => return true,
            "fhirpath" => match fhirpath_context_path(expr) {
                Ok(p) => p,
                Err(verdict) => return verdict,
            },
            _ => return true,
        };
        (matches!(expr, "CanonicalResource" | "MetadataResource") && host.path == host.ty && canonical())
            || expr == "Element"
            || expr == host.ty
            || expr == host.path
            || expr.replace("[x]", "") == host.path.replace("[x]", "")
            || (matches!(expr, "Resource" | "DomainResource") && host.path == host.ty)
            || (expr == "BackboneElement" && host.ty == "BackboneElement")
            || host.path.starts_with(&format!("{expr}."))
            || expr.starts_with(&format!("{}.", host.ty)) && host.ty == "Extension"
    })
}

/// The element path a FHIRPath context selects, as HL7's validator uses it (the extension's
/// holder must be among the expression's results), where this reading can tell: a plain
/// path is compared as an element context is; `Err(false)`: an expression that ends in a
/// value, never an element (`Patient.name.exists()`); `Err(true)`: any other (filters,
/// `ofType`), allowed, since the walk compares definitions' paths, not the instance's.
fn fhirpath_context_path(expr: &str) -> Result<&str, bool> {
    let Some(open) = expr.rfind('(') else { return plain_path(expr).ok_or(true) };
    let func = expr[..open].rsplit(['.', ' ']).next().unwrap_or_default();
    let last = expr[open..].rsplit_once(')').map_or("", |(_, rest)| rest).trim();
    match func {
        "exists" | "empty" | "count" | "all" | "any" | "not" | "hasValue" | "matches" | "contains" | "startsWith" if last.is_empty() => {
            Err(false)
        }
        _ => Err(true),
    }
}

fn plain_path(p: &str) -> Option<&str> {
    let ok = p.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
        && p.split('.').all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'[' || b == b']'));
    ok.then_some(p)
}

/// A URL HL7's validator takes for an example (BaseValidator.isExampleUrl): on a domain
/// reserved for examples (RFC 2606) or acme's, or under the example OID arcs.
pub(super) fn is_example_url(url: &str) -> bool {
    const HOSTS: [&str; 5] = ["example.org", "acme.com", "acme.org", "example.com", "example.net"];
    HOSTS.iter().any(|h| url.contains(&format!("{h}/")) || url.ends_with(h))
        || url.starts_with("urn:oid:1.3.6.1.4.1.32473.")
        || url.starts_with("urn:oid:2.999.")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An extension definition with these contexts (nothing else of it matters here).
    fn ext(contexts: Value) -> Profile {
        let sd = json!({"url": "https://example.org/ext", "type": "Extension", "kind": "complex-type", "context": contexts});
        Profile::compile(&sd, &[json!({"path": "Extension"})]).unwrap()
    }

    fn on<'a>(path: &'a str, ty: &'a str) -> Host<'a> {
        Host { path, ty }
    }

    #[test]
    fn an_extension_sits_only_in_its_contexts() {
        // The gateway's date-estimated: on any date or dateTime, nowhere else.
        let e = ext(json!([{"type": "element", "expression": "date"}, {"type": "element", "expression": "dateTime"}]));
        assert!(context_ok(&e, on("Patient.birthDate", "date"), || false));
        assert!(context_ok(&e, on("Observation.effective[x]", "dateTime"), || false));
        assert!(!context_ok(&e, on("Patient", "Patient"), || false));
        assert!(!context_ok(&e, on("Patient.name", "HumanName"), || false));
        // An element path covers the element and what is below it, not its siblings.
        let e = ext(json!([{"type": "element", "expression": "Patient.contact"}]));
        assert!(context_ok(&e, on("Patient.contact", "BackboneElement"), || false));
        assert!(context_ok(&e, on("Patient.contact.name", "HumanName"), || false));
        assert!(!context_ok(&e, on("Patient.name", "HumanName"), || false));
        // A FHIRPath context selects elements: a plain path is compared, one with functions
        // allowed (the instance path is not at hand), a boolean selects none; no context at
        // all allows anywhere.
        let home = ext(json!([{"type": "fhirpath", "expression": "Patient.address"}]));
        assert!(context_ok(&home, on("Patient.address", "Address"), || false));
        assert!(!context_ok(&home, on("Patient", "Patient"), || false));
        let filtered = ext(json!([{"type": "fhirpath", "expression": "MedicationStatement.medication.ofType(CodeableConcept).coding"}]));
        assert!(context_ok(&filtered, on("CodeableConcept.coding", "Coding"), || false));
        let boolean = ext(json!([{"type": "fhirpath", "expression": "Patient.name.exists()"}]));
        assert!(!context_ok(&boolean, on("Patient", "Patient"), || false));
        assert!(context_ok(&ext(json!(null)), on("Patient", "Patient"), || false));
    }

    #[test]
    fn r5_interface_contexts_stand_for_canonical_resources_at_their_root() {
        for interface in ["CanonicalResource", "MetadataResource"] {
            let e = ext(json!([{"type": "element", "expression": interface}]));
            assert!(context_ok(&e, on("ValueSet", "ValueSet"), || true));
            assert!(!context_ok(&e, on("Patient", "Patient"), || false));
            assert!(!context_ok(&e, on("ValueSet.compose", "BackboneElement"), || true));
        }
    }

    #[test]
    fn example_urls_are_those_hl7_s_validator_takes_for_examples() {
        assert!(is_example_url("http://example.org/fhir/StructureDefinition/x"));
        assert!(is_example_url("https://fhir.example.com/x"));
        assert!(is_example_url("http://example.net"));
        assert!(is_example_url("http://acme.com/fhir/x"));
        assert!(is_example_url("urn:oid:2.999.1"));
        // By substring, as Java matches them.
        assert!(is_example_url("http://notexample.org/x"));
        assert!(!is_example_url("http://example.org.evil.com/x"));
        assert!(!is_example_url("http://hl7.org/fhir/StructureDefinition/x"));
    }
}
