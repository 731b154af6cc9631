//! A StructureDefinition held to its base definition and to its own kind, as the HL7
//! validator's `StructureDefinitionValidator` does when it validates one as a resource (the
//! rules its own StructureDefinition cannot state). Each rule is named by its key in the HL7
//! validator's message catalogue (`conformance/validator-rules.csv`), and reported where and at
//! the severity that validator reports it.
//!
//! - Against the base (`baseDefinition`, when it is known): a derivation is stated
//!   (SD_MUST_HAVE_DERIVATION); the kind is the base's unless the base is abstract
//!   (SD_CONSTRAINED_KIND_NO_MATCH, and SD_DERIVATION_KIND_MISMATCH for constraints); a
//!   constraint keeps the base's type (SD_CONSTRAINED_TYPE_NO_MATCH), a specialisation names a
//!   new one (SD_SPECIALIZED_TYPE_MATCHES). All at the resource.
//! - An extension built directly on `Extension` fixes `Extension.url` to its own URL
//!   (SD_EXTENSION_URL_MISSING, SD_EXTENSION_URL_MISMATCH), at the resource.
//! - Only extensions have contexts (SD_NO_CONTEXT_WHEN_NOT_EXTENSION, at `context[i]`;
//!   SD_NO_CONTEXT_INV_WHEN_NOT_EXTENSION, at `contextInvariant[0]`, as the HL7 validator
//!   numbers them all).
//! - Each element (differential and snapshot): its path starts with the type
//!   (SD_PATH_TYPE_MISMATCH); slicing only where the type's definition allows more than one
//!   (SD_PATH_NO_SLICING, at `.slicing`); `maxLength`, `minValue`/`maxValue`, `targetProfile`
//!   and the min-length, max-decimal-places and max-size extensions only on types they mean
//!   something for (SD_ILLEGAL_CHARACTERISTICS); a type with a code has a value
//!   (SD_NO_TYPE_CODE_ON_CODE).
//! - Differential elements: `meaningWhenMissing` is not constrained in a profile except on
//!   extensions (SD_ELEMENT_NOT_IN_CONSTRAINT); where the base element is fixed, a fixed value
//!   has its type (SD_ELEMENT_FIXED_WRONG_TYPE) and value (`_DT_Fixed_Wrong`, at the element's
//!   path, e.g. `Extension.url`); where the base has a pattern, a pattern here is refused
//!   (SD_ELEMENT_PATTERN_NO_FIXED: the HL7 validator asks for the base's fixed value, which a
//!   pattern base lacks).
//! - Snapshot elements below the root: types or a content reference
//!   (SD_NO_TYPES_OR_CONTENTREF); `fixed[x]`, `pattern[x]` and `defaultValue[x]` of one of
//!   the element's types (SD_VALUE_TYPE_IILEGAL, at `fixed.ofType(T)`).
//!
//! Like the rest of `validate`, it does no I/O and reads nothing but the definition and the
//! loaded packages.

use serde_json::{Map, Value};

use super::definitions::at as error;
use super::{Finding, Validator};

const CORE_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/Extension";
const EXT_FHIR_TYPE: &str = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
const EXT_MIN_LENGTH: &str = "http://hl7.org/fhir/StructureDefinition/minLength";
const EXT_MAX_DECIMALS: &str = "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces";
const EXT_MAX_SIZE: &str = "http://hl7.org/fhir/StructureDefinition/maxSize";
const EXT_JSON_NAME: [&str; 2] =
    ["http://hl7.org/fhir/tools/StructureDefinition/json-name", "http://hl7.org/fhir/StructureDefinition/elementdefinition-json-name"];

const PRIMITIVES: [&str; 20] = [
    "boolean",
    "integer",
    "string",
    "decimal",
    "uri",
    "url",
    "canonical",
    "base64Binary",
    "instant",
    "date",
    "dateTime",
    "time",
    "code",
    "oid",
    "id",
    "markdown",
    "unsignedInt",
    "positiveInt",
    "uuid",
    "xhtml",
];

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

/// The checks on the StructureDefinition `sd` at `path` (`StructureDefinition`,
/// `Bundle.entry[3].resource`).
pub(super) fn check(v: &Validator, sd: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let base_url = str_of(sd, "baseDefinition");
    let base = base_url.and_then(|u| v.resolve(u));
    if let Some(base) = base.as_deref() {
        against_base(sd, base, path, out);
    }
    contexts(sd, path, out);
    extension_url(sd, path, out);
    let ty = str_of(sd, "type");
    // The HL7 validator's `getTypeName()`: a logical model's type may be a URL.
    let type_name = ty.map(|t| t.rsplit('/').next().unwrap_or(t));
    let constraint = str_of(sd, "derivation") == Some("constraint");
    let base_elements = base_url.and_then(|u| v.snapshot_elements(u, 0));
    for list in ["differential", "snapshot"] {
        let Some(elements) = sd.get(list).and_then(|d| d.get("element")).and_then(Value::as_array) else { continue };
        let snapshot = list == "snapshot";
        for (i, e) in elements.iter().enumerate() {
            let Some(e) = e.as_object() else { continue };
            let here = format!("{path}.{list}.element[{i}]");
            let ctx = Element { v, e, here: &here, out: &mut *out };
            ctx.check(type_name, snapshot, constraint, base_elements.as_deref(), base_url);
        }
    }
}

fn against_base(sd: &Map<String, Value>, base: &Value, path: &str, out: &mut Vec<Finding>) {
    let kind = str_of(sd, "kind");
    let ty = str_of(sd, "type");
    let base_kind = base["kind"].as_str();
    let base_type = base["type"].as_str();
    let derivation = str_of(sd, "derivation");
    let at = || path.to_owned();
    match derivation {
        None => out.push(error(
            at(),
            "not-found",
            format!(
                "StructureDefinition {} must have a derivation, since it has a baseDefinition",
                str_of(sd, "url").unwrap_or("")
            ),
        )),
        Some(d) => {
            if base["abstract"] != Value::Bool(true) && (kind.is_none() || kind != base_kind) {
                out.push(error(
                    at(),
                    "not-found",
                    format!(
                        "The kind {} must be the same as the kind {} in the base structure {} (base type = {})",
                        kind.unwrap_or(""),
                        base_kind.unwrap_or(""),
                        base["url"].as_str().unwrap_or(""),
                        base_type.unwrap_or("")
                    ),
                ));
            }
            if d == "constraint" {
                if ty.is_none() || ty != base_type {
                    out.push(error(
                        at(),
                        "not-found",
                        format!(
                            "The type {} must be the same as the type in the base structure {} that is being constrained",
                            ty.unwrap_or(""),
                            base_type.unwrap_or("")
                        ),
                    ));
                }
            } else if ty.is_none() || ty == base_type {
                out.push(error(
                    at(),
                    "not-found",
                    format!(
                        "The type {} must not be the same as the type in the base structure {} that is being specialised",
                        ty.unwrap_or(""),
                        base_type.unwrap_or("")
                    ),
                ));
            }
        }
    }
    if derivation == Some("constraint") && base_kind != kind {
        out.push(error(
            at(),
            "not-found",
            format!(
                "The structure definition constrains a kind of {}, but has a different kind ({})",
                base_kind.unwrap_or(""),
                kind.unwrap_or("")
            ),
        ));
    }
}

fn contexts(sd: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let ty = str_of(sd, "type").unwrap_or("");
    if ty == "Extension" {
        return;
    }
    let first = ["snapshot", "differential"]
        .iter()
        .find_map(|l| sd.get(*l).and_then(|d| d["element"].as_array()).and_then(|a| a.first()).filter(|_| true));
    let json_name = first
        .and_then(|e| e["extension"].as_array())
        .into_iter()
        .flatten()
        .any(|x| x["url"].as_str().is_some_and(|u| EXT_JSON_NAME.contains(&u)));
    if !json_name {
        for i in 0..sd.get("context").and_then(Value::as_array).map_or(0, Vec::len) {
            out.push(error(
                format!("{path}.context[{i}]"),
                "invalid",
                format!("The type is {ty} so an extension context should not be specified"),
            ));
        }
    }
    for _ in sd.get("contextInvariant").and_then(Value::as_array).into_iter().flatten() {
        out.push(error(
            format!("{path}.contextInvariant[0]"),
            "invalid",
            format!("The type is {ty} so an extension context invariants should not be specified"),
        ));
    }
}

fn extension_url(sd: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let (Some("Extension"), Some(CORE_EXTENSION), Some(url)) = (str_of(sd, "type"), str_of(sd, "baseDefinition"), str_of(sd, "url")) else {
        return;
    };
    let fixed = sd
        .get("differential")
        .and_then(|d| d["element"].as_array())
        .into_iter()
        .flatten()
        .find(|e| e["path"] == "Extension.url")
        .and_then(Value::as_object)
        .and_then(|e| e.iter().find(|(k, _)| choice_of(k, "fixed").is_some()).and_then(|(_, x)| x.as_str()));
    match fixed {
        None => out.push(error(
            path.to_owned(),
            "invalid",
            format!("The value of Extension.url is not fixed to the extension URL {url}"),
        )),
        Some(f) if f != url => out.push(error(
            path.to_owned(),
            "invalid",
            format!("The fixed value for the extension URL is {f} which doesn't match the canonical URL {url}"),
        )),
        Some(_) => {}
    }
}

/// The type suffix of a choice key (`Uri` of `fixedUri` for `fixed`).
fn choice_of<'a>(key: &'a str, stem: &str) -> Option<&'a str> {
    key.strip_prefix(stem).filter(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// The FHIR type a choice suffix stands for (`Uri` -> `uri`, `Coding` -> `Coding`).
fn type_of_suffix(suffix: &str) -> String {
    let mut c = suffix.chars();
    let lower = c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default();
    if PRIMITIVES.contains(&lower.as_str()) { lower } else { suffix.to_owned() }
}

/// What a type lets an element definition say (the HL7 validator's `addCharacteristics`).
fn characteristics(ty: &str) -> &'static [&'static str] {
    match ty {
        "integer" | "integer64" | "date" | "positiveInt" | "unsignedInt" => &["has-range", "has-length"],
        "decimal" | "instant" | "dateTime" | "time" => &["has-range", "is-continuous", "has-length"],
        "base64Binary" => &["has-size"],
        "string" => &["has-length", "do-translations", "can-bind"],
        "uri" | "code" | "oid" | "url" | "uuid" => &["has-length", "can-bind"],
        "canonical" => &["has-target", "has-length"],
        "id" => &["has-length"],
        "markdown" => &["do-translations", "has-length"],
        "Address" => &["do-translations"],
        "Age" | "Distance" | "Duration" | "Quantity" | "MoneyQuantity" | "SimpleQuantity" => {
            &["has-range", "is-continuous", "can-bind", "has-units"]
        }
        "Attachment" => &["has-size", "do-translations"],
        "CodeableConcept" | "Coding" => &["can-bind", "do-translations"],
        "CodeableReference" => &["has-target", "can-bind", "do-translations"],
        "Count" => &["has-range"],
        "Money" => &["has-range", "is-continuous"],
        "Range" => &["has-units", "can-bind"],
        "Ratio" | "RatioRange" => &["has-units"],
        "Reference" => &["has-target"],
        "Extension" => &["can-bind"],
        _ => &[],
    }
}

struct Element<'a> {
    v: &'a Validator,
    e: &'a Map<String, Value>,
    here: &'a str,
    out: &'a mut Vec<Finding>,
}

impl Element<'_> {
    fn push(&mut self, expression: String, code: &'static str, text: String) {
        self.out.push(error(expression, code, text));
    }

    fn has_choice(&self, stem: &str) -> Option<(&String, &Value)> {
        self.e.iter().find(|(k, _)| choice_of(k, stem).is_some())
    }

    fn has_extension(&self, url: &str) -> bool {
        self.e.get("extension").and_then(Value::as_array).into_iter().flatten().any(|x| x["url"] == url)
    }

    fn check(mut self, type_name: Option<&str>, snapshot: bool, constraint: bool, base: Option<&[Value]>, base_url: Option<&str>) {
        let here = self.here.to_owned();
        let path = str_of(self.e, "path").unwrap_or_default().to_owned();
        if let Some(tn) = type_name {
            if !path.is_empty() && path != tn && !path.starts_with(&format!("{tn}.")) {
                self.push(here.clone(), "not-found", format!("The path {path} must start with the type of the structure {tn}"));
            }
        }
        if !snapshot && constraint && self.e.contains_key("meaningWhenMissing") && !(path == "Extension" || path.ends_with(".extension")) {
            self.push(
                here.clone(),
                "not-found",
                format!("The element definition for {path} has a property meaningWhenMissing which is not allowed in a profile"),
            );
        }
        if self.e.contains_key("slicing") {
            let root_type = path.split('.').next().unwrap_or_default();
            if let Some(tp) = self.v.type_profile(root_type) {
                if let Some(ted) = tp.elements.iter().find(|x| x.path == path && x.slice_name.is_none()) {
                    if ted.max == Some(1) && !path.contains("[x]") {
                        self.push(format!("{here}.slicing"), "not-found", format!("Slicing is not allowed at '{path}'"));
                    }
                }
            }
        }
        if !snapshot {
            if let (Some(base), Some(base_url)) = (base, base_url) {
                self.against_base_element(&path, base, base_url);
            }
        }
        // The element's types and what they let it say; the root is its own type.
        let mut codes: Vec<String> = Vec::new();
        let mut chars: Vec<&str> = Vec::new();
        let mut known = false;
        if !path.is_empty() && !path.contains('.') {
            codes.push(path.clone());
            chars.extend(characteristics(&path));
            known = true;
        }
        for t in self.e.get("type").and_then(Value::as_array).into_iter().flatten() {
            // The type a FHIRPath system type stands for (`Extension.url`'s `uri`).
            let fhir_type = t["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["url"] == EXT_FHIR_TYPE)
                .and_then(|x| x.as_object()?.iter().find(|(k, _)| k.starts_with("value")).and_then(|(_, v)| v.as_str()));
            let code = fhir_type.or(t["code"].as_str()).unwrap_or_default();
            if code.is_empty() && t.get("code").is_some() {
                self.push(
                    here.clone(),
                    "invalid",
                    format!("Snapshot for {} element {path} has type.code without a value", type_name.unwrap_or("")),
                );
            }
            if code.is_empty() {
                continue;
            }
            codes.push(code.to_owned());
            if self.v.type_profile(code).is_some() {
                known = true;
                let tc = characteristics(code);
                chars.extend(tc);
                if t.get("targetProfile").is_some() && !tc.contains(&"has-target") {
                    self.push(
                        here.clone(),
                        "business-rule",
                        format!("This element has a targetProfile but the types {code} do not make this kind of constraint relevant"),
                    );
                }
            }
        }
        if !codes.is_empty() && known {
            let list = format!("[{}]", codes.join(", "));
            let wants = [
                ("MaxLength", self.e.contains_key("maxLength"), "has-length"),
                ("MinLength Extension", self.has_extension(EXT_MIN_LENGTH), "has-length"),
                ("MinValue", self.has_choice("minValue").is_some(), "has-range"),
                ("MaxValue", self.has_choice("maxValue").is_some(), "has-range"),
                ("Max Decimal Places Extension", self.has_extension(EXT_MAX_DECIMALS), "is-continuous"),
                ("Max Size", self.has_extension(EXT_MAX_SIZE), "has-size"),
            ];
            for (what, present, needs) in wants {
                if present && !chars.contains(&needs) {
                    self.push(
                        here.clone(),
                        "business-rule",
                        format!("This element has a {what} but the types {list} do not make this kind of constraint relevant"),
                    );
                }
            }
        }
        let id = str_of(self.e, "id").unwrap_or_default();
        if snapshot && id.contains('.') {
            if codes.is_empty() && !self.e.contains_key("contentReference") {
                self.push(
                    here.clone(),
                    "exception",
                    format!("The element {id} has no assigned types, and no content reference"),
                );
                return;
            }
            for stem in ["defaultValue", "fixed", "pattern"] {
                let Some((k, _)) = self.has_choice(stem) else { continue };
                let ty = type_of_suffix(choice_of(k, stem).unwrap_or_default());
                if !codes.contains(&ty) {
                    self.push(
                        format!("{here}.{stem}.ofType({ty})"),
                        "exception",
                        format!(
                            "The element {id} has a {stem} of type {ty}, which is not in the list of allowed types ({})",
                            codes.join(", ")
                        ),
                    );
                }
            }
        }
    }

    /// Where the base element is fixed or has a pattern: what a differential may say of it.
    fn against_base_element(&mut self, path: &str, base: &[Value], base_url: &str) {
        let own_fixed = self.has_choice("fixed").map(|(k, x)| (k.clone(), x.clone()));
        let own_pattern = self.has_choice("pattern").map(|(k, x)| (k.clone(), x.clone()));
        if own_fixed.is_none() && own_pattern.is_none() {
            return;
        }
        let id = str_of(self.e, "id");
        let ed = id
            .and_then(|id| base.iter().find(|b| b["id"].as_str() == Some(id)))
            .or_else(|| base.iter().find(|b| b["path"].as_str() == Some(path)))
            .and_then(Value::as_object);
        let Some(ed) = ed else { return };
        let base_fixed = ed.iter().find(|(k, _)| choice_of(k, "fixed").is_some());
        let base_pattern = ed.iter().find(|(k, _)| choice_of(k, "pattern").is_some());
        let here = self.here.to_owned();
        if let Some((bk, bv)) = base_fixed {
            let Some((k, x)) = own_fixed else { return };
            let (mine, theirs) = (
                type_of_suffix(choice_of(&k, "fixed").unwrap_or_default()),
                type_of_suffix(choice_of(bk, "fixed").unwrap_or_default()),
            );
            if mine != theirs {
                self.push(
                    format!("{here}.{k}[0]"),
                    "invalid",
                    format!("The base element has a fixed type of '{theirs}', so this element must have a fixed value of the same type, not '{mine}'"),
                );
                return;
            }
            let why = format!(", because the value must match the fixed value define in '{base_url}'");
            fixed_value(path, &x, bv, base_url, &why, self.out);
        } else if base_pattern.is_some() {
            let Some((k, _)) = own_pattern else { return };
            let ty = type_of_suffix(choice_of(&k, "pattern").unwrap_or_default());
            self.push(
                format!("{here}.{k}[0]"),
                "invalid",
                format!("The base element has a pattern type of '{ty}', so this element must have a fixed value but it doesn't"),
            );
        }
    }
}

/// A value against the fixed value of the base (the HL7 validator's `checkFixedValue`):
/// primitives by value at `path`, complex values member by member at `path.member`.
fn fixed_value(path: &str, focus: &Value, fixed: &Value, source: &str, why: &str, out: &mut Vec<Finding>) {
    match (focus, fixed) {
        (Value::Object(f), Value::Object(x)) => {
            for (k, xv) in x {
                match f.get(k) {
                    None => out.push(error(
                        format!("{path}.{k}"),
                        "value",
                        format!("Missing element '{k}' - required by fixed value assigned in profile {source}"),
                    )),
                    Some(fv) => fixed_value(&format!("{path}.{k}"), fv, xv, source, why, out),
                }
            }
            for k in f.keys().filter(|k| !x.contains_key(*k)) {
                out.push(error(
                    format!("{path}.{k}"),
                    "value",
                    format!(
                        "The element {k} is present in the instance but not allowed in the applicable fixed value specified in profile"
                    ),
                ));
            }
        }
        (f, x) if f == x => {}
        (Value::Array(_), _) | (_, Value::Array(_)) | (Value::Object(_), _) | (_, Value::Object(_)) => out.push(error(
            path.to_owned(),
            "value",
            format!("The value does not match the fixed value in the profile {source}{why}"),
        )),
        (f, x) => {
            let show = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
            out.push(error(
                path.to_owned(),
                "value",
                format!("Value is '{}' but is fixed to '{}' in the profile {source}{why}", show(f), show(x)),
            ));
        }
    }
}
