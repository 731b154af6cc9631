//! A QuestionnaireResponse against the Questionnaire it names, as HL7's validator checks it
//! (QuestionnaireValidator): the questionnaire resolves (contained `#id` or a loaded
//! definition) and is a Questionnaire; every item's linkId is one of the questionnaire's, in
//! its place and order; a required item is there and answered (errors once the response is
//! `completed` or `amended`, warnings before), unless `enableWhen` disables it; an item that
//! does not repeat has one answer (and appears once); an answer's value has the item's type,
//! lies within `minValue`/`maxValue`, keeps `maxDecimalPlaces` and `maxLength`, and is one of
//! the `answerOption`s where the item lists them; display items and groups take no answers,
//! only groups and answers hold items, and a required group has some.
//!
//! Findings are located as Java locates them: an item missing or unknown at its parent, an
//! item's own rules at the item, a value at `answer[i].value.ofType(T)`; items nested in an
//! answer are numbered as children of the item (Java's quirk). Messages name linkIds, types
//! and the questionnaire's own limits, never an answer's value (patient data).

use serde_json::{Map, Value};

use super::{Finding, Severity, Validator};

const EXT: &str = "http://hl7.org/fhir/StructureDefinition/";

fn arr<'a>(m: &'a Map<String, Value>, k: &str) -> &'a [Value] {
    m.get(k).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// The value of an item's extension `name` (`minValue`, `maxDecimalPlaces`...): its `value[x]`.
fn ext_value<'a>(item: &'a Map<String, Value>, name: &str) -> Option<(&'a str, &'a Value)> {
    let url = format!("{EXT}{name}");
    let ext = arr(item, "extension").iter().filter_map(Value::as_object).find(|e| s(e, "url") == Some(url.as_str()))?;
    ext.iter().find(|(k, _)| k.starts_with("value")).map(|(k, v)| (&k[5..], v))
}

/// An answer's `value[x]`: its type (`Coding`, `date`...) and value.
fn answer_value(answer: &Map<String, Value>) -> Option<(String, &Value)> {
    answer.iter().find(|(k, _)| k.len() > 5 && k.starts_with("value") && k.as_bytes()[5].is_ascii_uppercase()).map(|(k, v)| {
        let t = &k[5..];
        // `valueDate` -> date, `valueCoding` -> Coding: primitives are lower-case in FHIR.
        let ty = match t {
            "Boolean" | "Decimal" | "Integer" | "Date" | "DateTime" | "Time" | "String" | "Uri" => {
                let mut c = t.chars();
                c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
            }
            _ => t.to_owned(),
        };
        (ty, v)
    })
}

/// A response item and its index among its siblings.
type Indexed<'a> = (usize, &'a Map<String, Value>);

struct Check<'a> {
    v: &'a Validator,
    q: &'a Map<String, Value>,
    completed: bool,
    /// Every answer of the response by linkId, for `enableWhen`.
    answers: std::collections::HashMap<&'a str, Vec<&'a Map<String, Value>>>,
    /// The answers of the item being checked (an exclusive option must be alone).
    answer_count: usize,
    out: &'a mut Vec<Finding>,
}

/// The checks of a QuestionnaireResponse at `path` (`qr` is its JSON object).
pub(super) fn check(v: &Validator, qr: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let Some(url) = s(qr, "questionnaire") else { return };
    let Some(q) = v.resolve_from(qr, url) else {
        // QUESTIONNAIRE_QR_Q_NOTFOUND: a warning (a hint for example.org), nothing checked.
        if !url.starts_with("http://example.org") && !url.starts_with("https://example.org") {
            out.push(Finding {
                severity: Severity::Warning,
                code: "required",
                text: format!("the questionnaire '{url}' could not be resolved, so the answers cannot be checked against it"),
                expression: format!("{path}.questionnaire"),
            });
        }
        return;
    };
    let Some(qm) = q.as_object() else { return };
    if s(qm, "resourceType") != Some("Questionnaire") {
        out.push(Finding {
            severity: Severity::Error,
            code: "invalid",
            text: format!(
                "Canonical URL '{url}' refers to a resource that has the wrong type. Found {} expecting one of [Questionnaire]",
                s(qm, "resourceType").unwrap_or("?")
            ),
            expression: format!("{path}.questionnaire"),
        });
        return;
    }
    let mut answers = std::collections::HashMap::new();
    collect_answers(qr, &mut answers, 0);
    let completed = matches!(s(qr, "status"), Some("completed" | "amended"));
    let mut c = Check { v, q: qm, completed, answers, answer_count: 0, out };
    c.items(arr(qm, "item"), qr, path, 0);
}

fn collect_answers<'a>(
    node: &'a Map<String, Value>,
    into: &mut std::collections::HashMap<&'a str, Vec<&'a Map<String, Value>>>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    for item in arr(node, "item").iter().filter_map(Value::as_object) {
        if let Some(id) = s(item, "linkId") {
            into.entry(id).or_default().extend(arr(item, "answer").iter().filter_map(Value::as_object));
        }
        collect_answers(item, into, depth + 1);
        for a in arr(item, "answer").iter().filter_map(Value::as_object) {
            collect_answers(a, into, depth + 1);
        }
    }
}

fn find_item<'a>(items: &'a [Value], link: &str, depth: usize) -> Option<&'a Map<String, Value>> {
    if depth > 64 {
        return None;
    }
    items
        .iter()
        .filter_map(Value::as_object)
        .find_map(|i| if s(i, "linkId") == Some(link) { Some(i) } else { find_item(arr(i, "item"), link, depth + 1) })
}

impl Check<'_> {
    fn push(&mut self, severity: Severity, code: &'static str, expression: String, text: String) {
        self.out.push(Finding { severity, code, text, expression });
    }

    /// The response items under `node` (at `path`) against the questionnaire items `q_items`.
    fn items(&mut self, q_items: &[Value], node: &Map<String, Value>, path: &str, depth: usize) {
        if depth > 64 {
            return;
        }
        // Response items by the index of their questionnaire item, with their own index.
        let mut groups: Vec<(usize, Vec<Indexed<'_>>)> = Vec::new();
        let mut last = 0usize;
        for (k, item) in arr(node, "item").iter().enumerate() {
            let Some(item) = item.as_object() else { continue };
            let here = format!("{path}.item[{k}]");
            let Some(link) = s(item, "linkId").filter(|l| !l.is_empty()) else {
                self.push(Severity::Error, "required", path.to_owned(), "an item has no linkId".into());
                continue;
            };
            match q_items.iter().position(|q| q["linkId"] == link) {
                Some(i) => {
                    if i < last {
                        self.push(Severity::Error, "structure", path.to_owned(), "Structural Error: items are out of order".into());
                    }
                    last = i;
                    match groups.iter_mut().find(|(g, _)| *g == i) {
                        Some((_, list)) => list.push((k, item)),
                        None => groups.push((i, vec![(k, item)])),
                    }
                }
                None => match find_item(arr(self.q, "item"), link, 0) {
                    Some(qi) => {
                        self.push(
                            Severity::Error,
                            "structure",
                            path.to_owned(),
                            format!("Structural Error: item with linkid {link} is in the wrong place"),
                        );
                        self.item(qi, item, &here, depth + 1);
                    }
                    None => self.push(Severity::Error, "not-found", path.to_owned(), format!("LinkId '{link}' not found in questionnaire")),
                },
            }
        }
        for (i, q) in q_items.iter().enumerate() {
            let Some(q) = q.as_object() else { continue };
            let link = s(q, "linkId").unwrap_or_default();
            let enabled = self.enabled(q);
            match groups.iter().find(|(g, _)| *g == i) {
                Some((_, list)) => {
                    if list.len() > 1 && q.get("repeats") != Some(&Value::Bool(true)) {
                        self.push(
                            Severity::Error,
                            "invalid",
                            path.to_owned(),
                            format!("Only one response item with linkId '{link}' is allowed"),
                        );
                    }
                    for (k, item) in list {
                        let here = format!("{path}.item[{k}]");
                        if !enabled && (item.contains_key("answer") || item.contains_key("item")) {
                            self.push(
                                Severity::Error,
                                "invalid",
                                here.clone(),
                                format!("Item has answer, even though it is not enabled (item id = '{link}')"),
                            );
                        }
                        self.item(q, item, &here, depth + 1);
                    }
                }
                None if enabled && q.get("required") == Some(&Value::Bool(true)) => {
                    let sev = if self.completed { Severity::Error } else { Severity::Warning };
                    self.push(sev, "required", path.to_owned(), format!("No response answer found for required item '{link}'"));
                }
                None => {}
            }
        }
    }

    /// One response item at `path` against its questionnaire item.
    fn item(&mut self, q: &Map<String, Value>, item: &Map<String, Value>, path: &str, depth: usize) {
        let link = s(q, "linkId").unwrap_or_default();
        let ty = s(q, "type").unwrap_or_default();
        if let Some(text) = s(item, "text").filter(|t| !t.is_empty()) {
            if s(q, "text") != Some(text) {
                self.push(
                    Severity::Error,
                    "invalid",
                    path.to_owned(),
                    format!("If text exists, it must match the questionnaire definition for linkId '{link}'"),
                );
            }
        }
        let answers: Vec<&Map<String, Value>> = arr(item, "answer").iter().filter_map(Value::as_object).collect();
        let required = q.get("required") == Some(&Value::Bool(true));
        if required && answers.is_empty() && ty != "group" && self.enabled(q) {
            let sev = if self.completed { Severity::Error } else { Severity::Warning };
            self.push(sev, "required", path.to_owned(), format!("No response answer found for required item '{link}'"));
        }
        if answers.len() > 1 && q.get("repeats") != Some(&Value::Bool(true)) {
            self.push(
                Severity::Error,
                "invalid",
                path.to_owned(),
                "Only one response answer item with this linkId allowed".into(),
            );
        }
        // questionnaire-maxOccurs / -minOccurs, compared as HL7's validator compares them
        // (strictly: `answers < maxOccurs`, `answers > minOccurs`).
        if let Some(mo) = ext_value(q, "questionnaire-maxOccurs").and_then(|(_, v)| v.as_u64()) {
            if answers.len() as u64 >= mo {
                self.push(
                    Severity::Error,
                    "invalid",
                    path.to_owned(),
                    format!("The number of answers must not reach the maximum of {mo}"),
                );
            }
        }
        if let Some(mo) = ext_value(q, "questionnaire-minOccurs").and_then(|(_, v)| v.as_u64()) {
            if answers.len() as u64 <= mo {
                self.push(
                    Severity::Error,
                    "invalid",
                    path.to_owned(),
                    format!("The number of answers must be above the minimum of {mo}"),
                );
            }
        }
        for (i, a) in answers.iter().enumerate() {
            let apath = format!("{path}.answer[{i}]");
            match ty {
                "group" | "question" => {
                    self.push(
                        Severity::Error,
                        "structure",
                        path.to_owned(),
                        "Items of type question should not have answers".into(),
                    );
                }
                "display" => self.push(Severity::Error, "structure", path.to_owned(), "Items of type 'display' cannot have answers".into()),
                _ => {
                    self.answer_count = answers.len();
                    self.answer(q, ty, a, &apath);
                }
            }
            if ty != "group" {
                self.items(arr(q, "item"), a, path, depth + 1);
            }
        }
        let has_items = !arr(item, "item").is_empty();
        match ty {
            "display" if has_items => self.push(
                Severity::Error,
                "structure",
                path.to_owned(),
                format!("Items of type display should not have items - linkId {link}"),
            ),
            "group" => {
                if required && !has_items {
                    self.push(Severity::Error, "invariant", path.to_owned(), "No sub-items found for required group".into());
                }
                self.items(arr(q, "item"), item, path, depth + 1);
            }
            "display" => {}
            _ if has_items => self.push(
                Severity::Error,
                "structure",
                path.to_owned(),
                format!("Items not of type group should not have items outside answers (use answer.item not .item) - linkId {link}"),
            ),
            _ => {}
        }
    }

    /// One answer at `path` of an item of type `ty`.
    fn answer(&mut self, q: &Map<String, Value>, ty: &str, a: &Map<String, Value>, path: &str) {
        let Some((vt, value)) = answer_value(a) else { return };
        // A value[x] QuestionnaireResponse does not define (`valueCode`) is the structure's
        // finding (an unknown property), not a second one here.
        const ANSWER_TYPES: [&str; 12] =
            ["boolean", "decimal", "integer", "date", "dateTime", "time", "string", "uri", "Attachment", "Coding", "Quantity", "Reference"];
        if !ANSWER_TYPES.contains(&vt.as_str()) {
            return;
        }
        let allowed: &[&str] = match ty {
            "boolean" => &["boolean"],
            "decimal" => &["decimal"],
            "integer" => &["integer"],
            "date" => &["date"],
            "dateTime" => &["dateTime"],
            "time" => &["time"],
            "string" | "text" => &["string"],
            "url" => &["uri"],
            "attachment" => &["Attachment"],
            "reference" => &["Reference"],
            "quantity" => &["Quantity"],
            "choice" | "open-choice" => &["Coding", "date", "time", "integer", "string"],
            _ => return,
        };
        let vpath = format!("{path}.value.ofType({vt})");
        if !allowed.contains(&vt.as_str()) {
            let want = allowed.join(", ");
            let text = if allowed.len() == 1 {
                format!("Answer value must be of the type {want} not {vt}")
            } else {
                format!("Answer value must be one of the types {want} not {vt}")
            };
            self.push(Severity::Error, "invariant", vpath, text);
            return;
        }
        match vt.as_str() {
            "decimal" | "integer" => {
                let x = value.as_f64();
                for (name, below) in [("minValue", true), ("maxValue", false)] {
                    if let (Some(x), Some(limit)) = (x, ext_value(q, name).and_then(|(_, l)| l.as_f64())) {
                        if (below && x < limit) || (!below && x > limit) {
                            let word = if below { "less than the allowed minimum" } else { "greater than the allowed maximum" };
                            self.push(
                                Severity::Error,
                                "invariant",
                                vpath.clone(),
                                format!("The value is {word} of {}", ext_value(q, name).map_or(String::new(), |(_, l)| l.to_string())),
                            );
                        }
                    }
                }
                if vt == "decimal" {
                    self.decimals(q, &value.to_string(), &vpath);
                }
            }
            "date" | "dateTime" => {
                if let Some(x) = value.as_str() {
                    for (name, below) in [("minValue", true), ("maxValue", false)] {
                        if let Some(limit) = ext_value(q, name).and_then(|(_, l)| l.as_str()) {
                            if let Some(o) = date_order(x, limit) {
                                if (below && o == std::cmp::Ordering::Less) || (!below && o == std::cmp::Ordering::Greater) {
                                    let word = if below { "less than the allowed minimum" } else { "greater than the allowed maximum" };
                                    self.push(Severity::Error, "invariant", vpath.clone(), format!("The value is {word} of {limit}"));
                                }
                            }
                        }
                    }
                }
            }
            "Reference" => self.reference(q, value, &vpath),
            "string" => {
                self.regex(q, value, &vpath);
                if let (Some(x), Some(max)) = (value.as_str(), q.get("maxLength").and_then(Value::as_u64)) {
                    if x.chars().count() as u64 > max {
                        self.push(
                            Severity::Error,
                            "invariant",
                            vpath.clone(),
                            format!("The answer is longer than the allowed maximum length of {max}"),
                        );
                    }
                }
            }
            "Quantity" => self.quantity(q, value, &vpath),
            "Attachment" => self.attachment(q, value, path),
            "Coding" => {
                // questionnaire-optionExclusive: that option alone.
                let exclusive = arr(q, "answerOption").iter().filter_map(Value::as_object).any(|o| {
                    ext_value(o, "questionnaire-optionExclusive").is_some_and(|(_, b)| b == &Value::Bool(true))
                        && o.get("valueCoding")
                            .is_some_and(|c| c.get("system") == value.get("system") && c.get("code") == value.get("code"))
                });
                self.coding_in_value_set(q, value, path);
                if exclusive && self.answer_count != 1 {
                    self.push(
                        Severity::Error,
                        "invariant",
                        path.to_owned(),
                        "Selected answer is an exclusive option - can't select anything else at the same time".into(),
                    );
                }
            }
            _ => {}
        }
        // answerOption: the value must be one of them (Coding by system and code).
        let options: Vec<&Map<String, Value>> = arr(q, "answerOption").iter().filter_map(Value::as_object).collect();
        if options.is_empty() || matches!(vt.as_str(), "decimal" | "boolean") {
            return;
        }
        let key = format!("value{}", {
            let mut c = vt.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        });
        let of_type: Vec<&Value> = options.iter().filter_map(|o| o.get(&key)).collect();
        if of_type.is_empty() {
            if vt == "string" && ty == "open-choice" {
                return;
            }
            self.push(Severity::Error, "invariant", vpath, format!("Option list has no option values of type {vt}"));
            return;
        }
        let found = of_type.iter().any(|o| {
            if vt == "Coding" { o.get("system") == value.get("system") && o.get("code") == value.get("code") } else { *o == value }
        });
        if !(found || vt == "string" && ty == "open-choice") {
            let at = if vt == "Coding" { path.to_owned() } else { vpath };
            self.push(Severity::Error, "invariant", at, "The answer is not in the set of permitted values".into());
        }
    }

    /// A Quantity answer: SDC's minQuantity and maxQuantity (UCUM units converted, other
    /// systems' compared only when the units are the same), maxDecimalPlaces,
    /// questionnaire-unitOption and questionnaire-unitValueSet.
    fn quantity(&mut self, q: &Map<String, Value>, value: &Value, vpath: &str) {
        if let Some(v) = value.get("value") {
            self.decimals(q, &v.to_string(), vpath);
        }
        fn unit(x: &Value) -> (Option<&str>, Option<&str>) {
            (x.get("system").and_then(Value::as_str), x.get("code").and_then(Value::as_str))
        }
        for (name, below) in [("sdc-questionnaire-minQuantity", true), ("sdc-questionnaire-maxQuantity", false)] {
            let url = format!("http://hl7.org/fhir/uv/sdc/StructureDefinition/{name}");
            let Some(limit) = arr(q, "extension").iter().find(|e| e["url"] == url.as_str()).map(|e| &e["valueQuantity"]) else { continue };
            let (lu, vu) = (unit(limit), unit(value));
            let word = if below { "minimum" } else { "maximum" };
            if lu.0.is_none() || lu.1.is_none() || vu.0.is_none() || vu.1.is_none() {
                self.push(
                    Severity::Error,
                    "invariant",
                    vpath.to_owned(),
                    format!("The quantity cannot be compared to the allowed {word} because no formal units are specified"),
                );
            } else if lu == vu {
                if let (Some(x), Some(l)) = (value["value"].as_f64(), limit["value"].as_f64()) {
                    if (below && x < l) || (!below && x > l) {
                        let rel = if below { "less than" } else { "greater than" };
                        self.push(Severity::Error, "invariant", vpath.to_owned(), format!("The quantity is {rel} the allowed {word}"));
                    }
                }
            } else {
                // Both UCUM: compared in base units (metres against kilometres); units of
                // different kinds, or of another system, cannot be compared.
                let ucum = lu.0 == Some(super::ucum::SYSTEM) && vu.0 == Some(super::ucum::SYSTEM);
                let order = match (ucum, value["value"].as_f64(), limit["value"].as_f64(), vu.1, lu.1) {
                    (true, Some(x), Some(l), Some(xu), Some(lu)) => super::ucum::compare((x, xu), (l, lu)),
                    _ => Some(None),
                };
                match order {
                    Some(Some(o)) if (below && o == std::cmp::Ordering::Less) || (!below && o == std::cmp::Ordering::Greater) => {
                        let rel = if below { "less than" } else { "greater than" };
                        self.push(Severity::Error, "invariant", vpath.to_owned(), format!("The quantity is {rel} the allowed {word}"));
                    }
                    Some(Some(_)) => {}
                    Some(None) => self.push(
                        Severity::Error,
                        "invariant",
                        vpath.to_owned(),
                        format!("The quantity cannot be compared to the allowed {word}"),
                    ),
                    // A unit this reading cannot evaluate: not judged.
                    None => {}
                }
            }
        }
        // questionnaire-unitValueSet: the units (a unit with no code is not in it).
        if let Some((_, Value::String(vs))) = ext_value(q, "questionnaire-unitValueSet") {
            let (system, code) = unit(value);
            if code.is_none_or(|c| self.v.surely_not_in(vs, system, c)) {
                self.push(
                    Severity::Error,
                    "invariant",
                    vpath.to_owned(),
                    format!("The quantity has a unit that is not in the unit value set '{vs}'"),
                );
            }
        }
        let options: Vec<&Value> = arr(q, "extension")
            .iter()
            .filter(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/questionnaire-unitOption")
            .map(|e| &e["valueCoding"])
            .collect();
        if !options.is_empty() && !options.iter().any(|o| unit(o) == unit(value)) {
            self.push(
                Severity::Error,
                "invariant",
                vpath.to_owned(),
                "The quantity's units are not among the units the questionnaire allows".into(),
            );
        }
    }

    /// A Coding answer of an item with `answerValueSet`: the code is in it (at the answer,
    /// where Java reports it), and, for a code of a code system loaded here, with its display
    /// (Java's check of the option fails on a wrong display too). Unknown when the value set
    /// cannot be expanded here and draws on the Coding's system: no finding.
    fn coding_in_value_set(&mut self, q: &Map<String, Value>, value: &Value, apath: &str) {
        let (Some(vs), Some(code)) = (s(q, "answerValueSet"), value.get("code").and_then(Value::as_str)) else { return };
        let system = value.get("system").and_then(Value::as_str);
        let wrong_display = || {
            let (Some(sys), Some(given)) = (system, value.get("display").and_then(Value::as_str)) else { return false };
            self.v.code_system(sys).is_some_and(|cs| matches!(cs.get(code), Some(Some(d)) if !super::terminology::same_display(given, d)))
        };
        if self.v.surely_not_in(vs, system, code) || wrong_display() {
            self.push(
                Severity::Error,
                "code-invalid",
                apath.to_owned(),
                format!("The code is not in the options value set '{vs}' specified by the questionnaire"),
            );
        }
    }

    /// A Reference answer: the resource type its `reference` names is an R4 resource type,
    /// and one of the item's `questionnaire-referenceResource` types where it lists them.
    fn reference(&mut self, q: &Map<String, Value>, value: &Value, vpath: &str) {
        let Some(r) = value.get("reference").and_then(Value::as_str) else { return };
        if r.starts_with('#') || r.starts_with("urn:") {
            return;
        }
        let Some(ty) = super::primitive::reference_type(r) else { return };
        if !self.v.is_resource_type(ty) {
            self.push(
                Severity::Error,
                "structure",
                vpath.to_owned(),
                format!("The resource type {ty} in the reference is not valid"),
            );
            return;
        }
        let allowed: Vec<&str> = arr(q, "extension")
            .iter()
            .filter(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/questionnaire-referenceResource")
            .filter_map(|e| e["valueCode"].as_str())
            .collect();
        if !allowed.is_empty() && !allowed.contains(&ty) {
            self.push(
                Severity::Error,
                "structure",
                vpath.to_owned(),
                format!("The resource type '{ty}' in the reference is not allowed (allowed = {})", allowed.join(",")),
            );
        }
    }

    /// A string answer against the item's `regex` extension (the whole value must match, as
    /// Java's `String.matches`). A pattern that does not compile is not applied.
    fn regex(&mut self, q: &Map<String, Value>, value: &Value, vpath: &str) {
        let (Some(x), Some((_, Value::String(pattern)))) = (value.as_str(), ext_value(q, "regex")) else { return };
        let Ok(re) = regex::Regex::new(&format!("^(?:{pattern})$")) else { return };
        if !re.is_match(x) {
            self.push(
                Severity::Error,
                "invariant",
                vpath.to_owned(),
                format!("The answer does not conform to the expected format (regex '{pattern}')"),
            );
        }
    }

    /// An Attachment answer (at the answer): the item's mimeType list (a prefix match, as
    /// Java's) and maxSize against the decoded data.
    fn attachment(&mut self, q: &Map<String, Value>, value: &Value, apath: &str) {
        let types: Vec<&str> = arr(q, "extension")
            .iter()
            .filter(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/mimeType")
            .filter_map(|e| e["valueCode"].as_str())
            .collect();
        if !types.is_empty() {
            match value.get("contentType").and_then(Value::as_str) {
                None => self.push(Severity::Error, "required", apath.to_owned(), "The attachment has no content type".into()),
                Some(ct) if !types.iter().any(|t| ct.starts_with(t)) => self.push(
                    Severity::Error,
                    "required",
                    apath.to_owned(),
                    format!("The mime type is not valid for this answer (allowed = {})", types.join(", ")),
                ),
                Some(_) => {}
            }
        }
        if let (Some(max), Some(data)) = (ext_value(q, "maxSize").and_then(|(_, v)| v.as_u64()), value.get("data").and_then(Value::as_str))
        {
            let len = super::primitive::base64_decode(&data.replace(['\r', '\n'], "")).map_or(0, |b| b.len()) as u64;
            if max > 0 && len >= max {
                self.push(
                    Severity::Error,
                    "required",
                    apath.to_owned(),
                    format!("The attachment is too large (allowed = {max})"),
                );
            }
        }
    }

    /// maxDecimalPlaces on a decimal's exact text.
    fn decimals(&mut self, q: &Map<String, Value>, text: &str, vpath: &str) {
        if let Some(max) = ext_value(q, "maxDecimalPlaces").and_then(|(_, l)| l.as_u64()) {
            let places = text.split_once('.').map_or(0, |(_, f)| f.bytes().take_while(u8::is_ascii_digit).count()) as u64;
            if places > max {
                self.push(
                    Severity::Error,
                    "invariant",
                    vpath.to_owned(),
                    format!("The value has too many decimal places (limit = {max})"),
                );
            }
        }
    }

    /// Whether an item is enabled by its `enableWhen` (all or any, as `enableBehavior` says),
    /// compared with the answers of the item each names. An operator or a value this reading
    /// cannot compare counts as met: an item is never wrongly taken as disabled.
    fn enabled(&self, q: &Map<String, Value>) -> bool {
        let conds: Vec<&Map<String, Value>> = arr(q, "enableWhen").iter().filter_map(Value::as_object).collect();
        if conds.is_empty() {
            return true;
        }
        let met = |c: &&Map<String, Value>| -> bool {
            let answers = s(c, "question").and_then(|l| self.answers.get(l)).map_or(&[][..], Vec::as_slice);
            let op = s(c, "operator").unwrap_or_default();
            let Some((_, want)) = c.iter().find(|(k, _)| k.starts_with("answer")) else { return true };
            if op == "exists" {
                return want.as_bool() == Some(!answers.is_empty());
            }
            let values: Vec<&Value> = answers.iter().filter_map(|a| answer_value(a).map(|(_, v)| v)).collect();
            let eq = |v: &Value| {
                if want.is_object() { want.get("code") == v.get("code") && want.get("system") == v.get("system") } else { v == want }
            };
            match op {
                "=" => values.iter().any(|v| eq(v)),
                "!=" => values.is_empty() || values.iter().any(|v| !eq(v)),
                ">" | "<" | ">=" | "<=" => values.iter().any(|v| {
                    let o = match (v.as_f64(), want.as_f64()) {
                        (Some(a), Some(b)) => a.partial_cmp(&b),
                        _ => v.as_str().zip(want.as_str()).map(|(a, b)| a.cmp(b)),
                    };
                    o.is_none_or(|o| match op {
                        ">" => o.is_gt(),
                        "<" => o.is_lt(),
                        ">=" => o.is_ge(),
                        _ => o.is_le(),
                    })
                }),
                _ => true,
            }
        };
        if s(q, "enableBehavior") == Some("any") { conds.iter().any(met) } else { conds.iter().all(met) }
    }
}

/// Order of two dates or dateTimes by the components both have (`2022-06-30` is after
/// `2022-06`, as HL7's DateTimeType compares them for limits); `None` when unreadable.
fn date_order(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let (da, db) = (&a[..a.len().min(10)], &b[..b.len().min(10)]);
    if !da.is_ascii() || !db.is_ascii() {
        return None;
    }
    let n = da.len().min(db.len());
    Some(match da[..n].cmp(&db[..n]) {
        std::cmp::Ordering::Equal if da.len() > db.len() => std::cmp::Ordering::Greater,
        std::cmp::Ordering::Equal if da.len() < db.len() => std::cmp::Ordering::Less,
        o => o,
    })
}
