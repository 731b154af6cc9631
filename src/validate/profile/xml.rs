//! FHIR's XML form read into its JSON form, by the definitions the validator has loaded:
//! which elements repeat (JSON arrays), which are primitives (a `value` attribute, typed as
//! JSON booleans and numbers where FHIR says so, with `id` and extensions in the `_name`
//! shadow), which hold a resource (`contained`, `entry.resource`), and the narrative's XHTML
//! kept as its source text. A definition or an instance that arrives as XML (HL7's test
//! cases carry many profiles so) is then validated as the JSON it stands for, at the same
//! FHIRPath locations.
//!
//! Invariant: the conversion decides nothing about validity. What it cannot place (an element
//! no definition names, text where FHIR has none) is carried over as it is, so the walk that
//! follows reports it as it would in JSON; only XML that does not parse, or a root outside
//! the FHIR namespace, is refused here.

use roxmltree::{Document, Node, ParsingOptions};
use serde_json::{Map, Value};

use super::Validator;
use super::model::{ElemId, Profile, is_primitive};

const FHIR_NS: &str = "http://hl7.org/fhir";
const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
/// Deeper than any real resource; a hostile document stops here rather than overflowing.
const MAX_DEPTH: usize = 200;

/// Where an element's children are defined: a profile and the element in it.
type Place = (std::sync::Arc<Profile>, ElemId);

impl Validator {
    /// A FHIR resource in XML as its JSON form. Errors name what is wrong with the XML, never
    /// its content.
    pub fn xml_to_json(&self, text: &str) -> Result<Value, String> {
        let opts = ParsingOptions { allow_dtd: false, ..ParsingOptions::default() };
        let doc = Document::parse_with_options(text, opts).map_err(|e| format!("the XML does not parse: {e}"))?;
        let root = doc.root_element();
        if root.tag_name().namespace() != Some(FHIR_NS) {
            return Err(format!("the root element is not in the FHIR namespace ({FHIR_NS})"));
        }
        Ok(Value::Object(self.xml_resource(text, root, 0)))
    }

    fn xml_resource(&self, text: &str, node: Node<'_, '_>, depth: usize) -> Map<String, Value> {
        let ty = node.tag_name().name();
        let mut out = Map::new();
        out.insert("resourceType".into(), Value::String(ty.to_owned()));
        let place = self.type_profile(ty).map(|p| (p, 0));
        self.xml_children(text, node, place.as_ref(), &mut out, depth + 1);
        out
    }

    /// The child elements of `node` into `out`, placed by the definition at `place`.
    fn xml_children(&self, text: &str, node: Node<'_, '_>, place: Option<&Place>, out: &mut Map<String, Value>, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        for child in node.children().filter(Node::is_element) {
            let name = child.tag_name().name();
            let def = place.and_then(|(p, eid)| child_def(p, *eid, name));
            let many = def.as_ref().is_some_and(|(p, c, _)| p.elem(*c).base_many || p.elem(*c).max.is_none_or(|m| m > 1));
            let ty = def.as_ref().map(|(_, _, t)| t.clone()).unwrap_or_default();
            if child.tag_name().namespace() == Some(XHTML_NS) || ty == "xhtml" {
                let src = text.get(child.range()).unwrap_or_default();
                put(out, name, Value::String(src.to_owned()), None, many);
                continue;
            }
            if def.is_none() && child.has_attribute("value") && !child.children().any(|c| c.is_element()) {
                // Unknown to every definition: carried as a string, for the walk to report.
                put(out, name, Value::String(child.attribute("value").unwrap_or_default().to_owned()), None, many);
                continue;
            }
            if is_primitive(&ty) {
                let value = child.attribute("value").map(|v| primitive(&ty, v));
                let mut shadow = Map::new();
                if let Some(id) = child.attribute("id") {
                    shadow.insert("id".into(), Value::String(id.to_owned()));
                }
                let ext = self.type_profile("Element").map(|p| (p, 0));
                self.xml_children(text, child, ext.as_ref(), &mut shadow, depth + 1);
                put(out, name, value.unwrap_or(Value::Null), (!shadow.is_empty()).then_some(Value::Object(shadow)), many);
                continue;
            }
            let holds_resource =
                matches!(ty.as_str(), "Resource" | "DomainResource") || self.type_profile(&ty).is_some_and(|p| p.kind == "resource");
            if holds_resource {
                if let Some(r) = child.children().find(Node::is_element) {
                    put(out, name, Value::Object(self.xml_resource(text, r, depth + 1)), None, many);
                }
                continue;
            }
            let mut obj = Map::new();
            for a in child.attributes() {
                if a.namespace().is_none() {
                    obj.insert(a.name().to_owned(), Value::String(a.value().to_owned()));
                }
            }
            let inner: Option<Place> = def.as_ref().and_then(|(p, c, t)| {
                if p.elem(*c).children.is_empty() || p.elem(*c).content_ref.is_some() {
                    content_ref(p, *c).or_else(|| self.type_profile(t).map(|tp| (tp, 0)))
                } else {
                    Some((p.clone(), *c))
                }
            });
            self.xml_children(text, child, inner.as_ref(), &mut obj, depth + 1);
            put(out, name, Value::Object(obj), None, many);
        }
    }
}

/// The child of `eid` that an XML element `name` stands for: its definition and its type
/// (a choice's type from the name: `valueQuantity` is `value[x]` as Quantity).
fn child_def(p: &std::sync::Arc<Profile>, eid: ElemId, name: &str) -> Option<(std::sync::Arc<Profile>, ElemId, String)> {
    let (p, eid) = content_ref(p, eid).unwrap_or((p.clone(), eid));
    let e = p.elem(eid);
    for &c in &e.children {
        let ce = p.elem(c);
        if ce.slice_name.is_some() {
            continue;
        }
        if ce.choice {
            if let Some((_, _, ti)) = ce.choice_keys.iter().find(|(k, _, _)| k == name) {
                let ty = ce.types.get(*ti).map(|t| t.code.clone()).unwrap_or_default();
                return Some((p.clone(), c, ty));
            }
        } else if ce.name == name {
            let ty = ce.types.first().map(|t| t.code.clone()).unwrap_or_else(|| "BackboneElement".into());
            return Some((p.clone(), c, ty));
        }
    }
    None
}

/// The element a `contentReference` (`#Questionnaire.item`) points at, in the same profile.
fn content_ref(p: &std::sync::Arc<Profile>, eid: ElemId) -> Option<Place> {
    let r = p.elem(eid).content_ref.as_deref()?;
    let path = r.rsplit_once('#').map_or(r, |(_, x)| x);
    p.by_path(path).map(|id| (p.clone(), id))
}

/// A primitive's `value` attribute as FHIR's JSON has it: booleans and numbers unquoted
/// (decimals with their exact text), everything else a string. A value that does not read as
/// its type stays a string, for the walk to report as it would in JSON.
fn primitive(ty: &str, v: &str) -> Value {
    match ty {
        "boolean" => match v {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(v.to_owned()),
        },
        "integer" | "positiveInt" | "unsignedInt" | "decimal" => {
            serde_json::from_str::<serde_json::Number>(v).map(Value::Number).unwrap_or_else(|_| Value::String(v.to_owned()))
        }
        _ => Value::String(v.to_owned()),
    }
}

/// Puts a value (and its `_name` shadow) under `name`, as an array entry where the element
/// repeats, keeping the value and shadow arrays aligned with nulls.
fn put(out: &mut Map<String, Value>, name: &str, value: Value, shadow: Option<Value>, many: bool) {
    let shadow_key = format!("_{name}");
    if !many {
        if !value.is_null() {
            out.insert(name.to_owned(), value);
        }
        if let Some(s) = shadow {
            out.insert(shadow_key, s);
        }
        return;
    }
    let len = |out: &Map<String, Value>, k: &str| out.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let at = len(out, name).max(len(out, &shadow_key));
    let mut push = |key: &str, v: Value| {
        if let Value::Array(a) = out.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new())) {
            a.resize(at, Value::Null);
            a.push(v);
        }
    };
    match (value.is_null(), shadow) {
        (false, None) => push(name, value),
        (false, Some(s)) => {
            push(name, value);
            push(&shadow_key, s);
        }
        (true, Some(s)) => push(&shadow_key, s),
        (true, None) => push(name, Value::Null),
    }
    // Both arrays as long as the longer.
    for key in [name, shadow_key.as_str()] {
        if let Some(Value::Array(a)) = out.get_mut(key) {
            a.resize(at + 1, Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn v() -> &'static super::Validator {
        super::super::walk::testing::shipped()
    }

    #[test]
    fn a_patient_reads_as_its_json() {
        let xml = r#"<Patient xmlns="http://hl7.org/fhir">
  <id value="p1"/>
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">a <b>b</b></div></text>
  <extension url="http://example.org/x"><valueBoolean value="true"/></extension>
  <active value="true"/>
  <name><family value="Doe"/><given value="A"/><given id="g2"><extension url="http://example.org/y"><valueString value="z"/></extension></given></name>
  <multipleBirthInteger value="2"/>
  <contained><Organization><name value="O"/></Organization></contained>
</Patient>"#;
        let j = v().xml_to_json(xml).unwrap();
        assert_eq!(j["resourceType"], "Patient");
        assert_eq!(j["id"], "p1");
        assert_eq!(j["active"], true);
        assert_eq!(j["multipleBirthInteger"], 2);
        assert_eq!(j["name"][0]["family"], "Doe");
        assert_eq!(j["name"][0]["given"], json!(["A", null]));
        assert_eq!(j["name"][0]["_given"][1]["id"], "g2");
        assert_eq!(j["name"][0]["_given"][0], json!(null));
        assert_eq!(j["extension"][0]["url"], "http://example.org/x");
        assert_eq!(j["extension"][0]["valueBoolean"], true);
        assert_eq!(j["contained"][0]["resourceType"], "Organization");
        assert_eq!(j["contained"][0]["name"], "O");
        assert!(j["text"]["div"].as_str().unwrap().starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">a <b>b</b>"));
    }

    #[test]
    fn decimals_keep_their_text_and_bad_xml_is_refused() {
        let xml = r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><valueQuantity><value value="1.50"/></valueQuantity></Observation>"#;
        let j = v().xml_to_json(xml).unwrap();
        assert_eq!(j["valueQuantity"]["value"].to_string(), "1.50");
        assert!(v().xml_to_json("<Patient>").is_err());
        assert!(v().xml_to_json("<Patient xmlns=\"urn:x\"/>").is_err());
    }
}
