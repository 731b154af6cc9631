//! Codes: a Coding's system (absolute, a code system rather than a value set or a supplement),
//! its code and display against a complete CodeSystem loaded here, and bindings of codes,
//! Codings and CodeableConcepts to value sets expanded locally.
//!
//! No I/O (expansions come from the [`Validator`](crate::validate::profile::Validator)'s
//! memo), no clock; findings name the system or value set, never the code given.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Walk;
use crate::terminology::delegate::{Answer, VsQuery};
use crate::validate::profile::json::SmallGet;
use crate::validate::profile::json::get;
use crate::validate::profile::model::{ElemId, Profile, Strength};
use crate::validate::profile::{Severity, SystemKind, codes, terminology, ucum};

/// At most `n` characters of `s` (a server's message).
fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl Walk<'_> {
    /// Coding.system is an absolute URI naming a code system (not a value set); a code of a
    /// complete CodeSystem loaded here must exist, and its display (when given) must be the
    /// CodeSystem's display (compared ignoring case and spacing).
    pub(super) fn known_code(&mut self, obj: &Map<String, Value>) {
        let (Some(system), Some(code)) = (get(obj, "system").and_then(Value::as_str), get(obj, "code").and_then(Value::as_str)) else {
            return;
        };
        if !system.contains(':') {
            let len = self.push("system", None);
            self.report(Severity::Error, "invalid", "Coding.system must be an absolute reference, not a local reference");
            self.path.truncate(len);
            return;
        }
        let kind = self.v.system_kind(system);
        if kind == SystemKind::Supplement {
            let len = self.push("system", None);
            self.report(Severity::Error, "invalid", "the Coding.system is a supplement: use the code system it supplements");
            self.path.truncate(len);
            return;
        }
        // Only a CodeSystem can be a complete one loaded here.
        let cs = if kind == SystemKind::CodeSystem { self.v.code_system(system) } else { None };
        let Some(cs) = cs else {
            // LOINC and SNOMED CT are not loaded, but a code without their form is in neither.
            if codes::well_formed(system, code) == Some(false) {
                let len = self.push("code", None);
                self.report(
                    Severity::Error,
                    "code-invalid",
                    format!("the code does not have the form of a code of {system}, so it is unknown there"),
                );
                self.path.truncate(len);
                return;
            }
            if kind == SystemKind::ValueSet {
                let len = self.push("system", None);
                self.report(Severity::Error, "invalid", "the Coding.system is a value set, not a code system");
                self.path.truncate(len);
            } else if let Some(msg) = self.wrong_system(system, kind) {
                self.report(Severity::Error, "code-invalid", msg);
            } else {
                let given = get(obj, "display").and_then(Value::as_str);
                if let Some(a) = self.tx.answers.and_then(|t| t.get(system, code, given)) {
                    self.delegated(system, given, a);
                }
            }
            return;
        };
        match cs.get(code) {
            None => {
                let len = self.push("code", None);
                if self.v.is_external_copy(system) {
                    self.report(
                        Severity::Warning,
                        "code-invalid",
                        format!("the code is not in R4's 2019 copy of the code system {system}: check it against the current one"),
                    );
                } else {
                    self.report(Severity::Error, "code-invalid", format!("the code is not defined in the code system {system}"));
                }
                self.path.truncate(len);
            }
            Some(Some(display)) => {
                if let Some(given) = get(obj, "display").and_then(Value::as_str) {
                    if !terminology::same_display(given, display) {
                        let len = self.push("display", None);
                        self.report(
                            Severity::Error,
                            "invalid",
                            format!("wrong display for the code in the code system {system}: the valid display is '{display}'"),
                        );
                        self.path.truncate(len);
                    }
                }
            }
            Some(None) => {}
        }
    }

    /// What HL7's validator says of a Coding.system that no loaded content answers for, when the
    /// URL itself is wrong: a page of the FHIR build or of the specification rather than a code
    /// system's URL, a known
    /// terminology's URL with something appended (`http://loinc.org/`), or `https:` where the
    /// code system's URL is `http:`.
    /// `kind` is what [`Validator::system_kind`](crate::validate::profile::Validator) says of `system`.
    fn wrong_system(&self, system: &str, kind: SystemKind) -> Option<String> {
        const TERMINOLOGIES: [&str; 4] =
            ["http://snomed.info/sct", "http://loinc.org", "http://unitsofmeasure.org", "http://www.nlm.nih.gov/research/umls/rxnorm"];
        let is_code_system = |k: SystemKind| matches!(k, SystemKind::CodeSystem | SystemKind::Supplement);
        if is_code_system(kind) {
            return None;
        }
        if system.starts_with("http://build.fhir.org") || system.starts_with("https://build.fhir.org") {
            return Some("the code system reference is a page of the FHIR build (build.fhir.org), not a code system's URL".to_owned());
        }
        let hl7 = ["http://hl7.org/fhir", "https://hl7.org/fhir", "http://www.hl7.org/fhir", "https://www.hl7.org/fhir"];
        // An unknown code system under http://hl7.org/fhir is left to the terminology server
        // (HL7's server answers for older URLs such as http://hl7.org/fhir/v2/0203).
        if hl7.iter().any(|p| system.starts_with(p)) && system.ends_with(".html") {
            return Some("the code system reference is a page of the FHIR specification, not a code system's URL".to_owned());
        }
        if TERMINOLOGIES.iter().any(|t| system != *t && system.starts_with(t)) {
            return Some(format!(
                "invalid system URI {system}: the code system's URL is exactly one of {}",
                TERMINOLOGIES.join(", ")
            ));
        }
        if let Some(rest) = system.strip_prefix("https:") {
            let http = format!("http:{rest}");
            if TERMINOLOGIES.contains(&http.as_str()) || is_code_system(self.v.system_kind(&http)) {
                return Some(format!("the system URL {system} wrongly starts with https: not http:"));
            }
        }
        None
    }

    /// A terminology server's verdict on a Coding (or why there is none): an invalid code or a
    /// wrong display is an error as when the code system is loaded here, the server's message
    /// added; no verdict is a warning naming the server, never an invalid code.
    fn delegated(&mut self, system: &str, given: Option<&str>, a: &Answer) {
        match a {
            Answer::Checked { verdict, server } if !verdict.result => {
                let msg = verdict.message.as_deref().map(|m| format!(" ({})", truncate(m, 300))).unwrap_or_default();
                // A wrong display: the code is known (the server names its display) and the
                // display given is another.
                let wrong_display = |d: &str| given.is_some_and(|g| !terminology::same_display(g, d));
                if let Some(d) = verdict.display.as_deref().filter(|d| wrong_display(d)) {
                    let len = self.push("display", None);
                    self.report(
                        Severity::Error,
                        "invalid",
                        format!("wrong display for the code in the code system {system}: the valid display is '{d}' (terminology server {server})"),
                    );
                    self.path.truncate(len);
                } else {
                    let len = self.push("code", None);
                    self.report(
                        Severity::Error,
                        "code-invalid",
                        format!("the code is not valid in the code system {system}, says the terminology server {server}{msg}"),
                    );
                    self.path.truncate(len);
                }
            }
            Answer::Checked { .. } => {}
            Answer::Unavailable { server, reason } => {
                let len = self.push("code", None);
                self.report(
                    Severity::Warning,
                    "transient",
                    format!("the code in the code system {system} was not checked, terminology server unavailable: {server} ({reason})"),
                );
                self.path.truncate(len);
            }
        }
    }

    /// A binding to a value set that cannot be expanded here, given `codes` (any one in the set
    /// will do): the collecting walk notes what to ask; the validating walk reports the
    /// servers' verdicts (`text` when none is in the set, at `severity`), or a warning naming
    /// the server when none could answer. Nothing when no server is routed for the value set.
    fn delegated_binding(&mut self, vs: &str, severity: Severity, text: impl FnOnce() -> String, codes: &[(Option<&str>, &str)]) {
        if let Some(w) = self.tx.wanted {
            w.borrow_mut().extend(codes.iter().map(|(s, c)| VsQuery {
                value_set: vs.to_owned(),
                system: s.map(str::to_owned),
                code: (*c).to_owned(),
            }));
            return;
        }
        let Some(tx) = self.tx.answers else { return };
        let answers: Vec<&Answer> = codes.iter().filter_map(|(s, c)| tx.get_vs(vs, *s, c)).collect();
        if answers.iter().any(|a| matches!(a, Answer::Checked { verdict, .. } if verdict.result)) {
            return;
        }
        if let Some(Answer::Unavailable { server, reason }) = answers.iter().find(|a| matches!(a, Answer::Unavailable { .. })) {
            self.report(
                Severity::Warning,
                "transient",
                format!("the binding to the value set {vs} was not checked, terminology server unavailable: {server} ({reason})"),
            );
        } else if let Some(Answer::Checked { server, .. }) = answers.first() {
            self.report(severity, "code-invalid", format!("{}, says the terminology server {server}", text()));
        }
    }

    /// A code of UCUM (a Quantity's unit, or a Coding) is a valid UCUM expression, checked
    /// offline by the grammar ([`ucum`](crate::validate::profile::ucum)).
    pub(super) fn ucum(&mut self, obj: &Map<String, Value>) {
        if obj.sget("system").and_then(Value::as_str) != Some(ucum::SYSTEM) {
            return;
        }
        let Some(code) = obj.sget("code").and_then(Value::as_str) else { return };
        if let Err(e) = ucum::check(code) {
            self.report(Severity::Error, "code-invalid", format!("the code is not a valid UCUM expression ({e})"));
        }
    }

    pub(super) fn codeable_concept(&mut self, prof: &Arc<Profile>, eid: ElemId, obj: &Map<String, Value>) {
        let Some(b) = &prof.elem(eid).binding else {
            return;
        };
        let codings = obj.sget("coding").and_then(Value::as_array);
        let Some(codings) = codings.filter(|c| !c.is_empty()) else {
            // HL7's TERMINOLOGY_TX_CODE_VALUESET: text alone does not meet a required binding.
            if b.strength == Strength::Required && self.v.resolve(b.value_set.split('|').next().unwrap_or_default()).is_some() {
                self.report(
                    Severity::Error,
                    "code-invalid",
                    format!("no code provided, and a code is required from the value set {}", b.value_set),
                );
            }
            return;
        };
        let pairs: Vec<(Option<&str>, &str)> = codings
            .iter()
            .filter_map(|c| Some((c.sget("system").and_then(Value::as_str), c.sget("code").and_then(Value::as_str)?)))
            .collect();
        let in_set = |exp: &crate::validate::profile::terminology::Expansion| pairs.iter().any(|(s, c)| exp.has(*s, c));
        if b.strength != Strength::Other {
            let (sev, word) =
                if b.strength == Strength::Required { (Severity::Error, "required") } else { (Severity::Warning, "extensible") };
            match self.v.expansion(&b.value_set) {
                Some(exp) if !in_set(&exp) => {
                    self.report(
                        sev,
                        "code-invalid",
                        format!("none of the codings is in the value set {} ({word} binding)", b.value_set),
                    );
                }
                Some(_) => {}
                // Not expandable here (all of SNOMED CT, say), but drawing on none of the
                // codings' systems: none is in it.
                None if !pairs.is_empty() && pairs.iter().all(|(s, c)| self.v.surely_not_in(&b.value_set, *s, c)) => {
                    self.report(
                        sev,
                        "code-invalid",
                        format!("none of the codings is in the value set {} ({word} binding)", b.value_set),
                    );
                }
                None => self.delegated_binding(
                    &b.value_set,
                    sev,
                    || format!("none of the codings is in the value set {} ({word} binding)", b.value_set),
                    &pairs,
                ),
            }
        }
        for vs in &b.also_required {
            if self.v.expansion(vs).is_none() {
                let text = || {
                    format!(
                        "none of the codings is in the value set {vs}, specified in an additional binding, and a coding from it is required"
                    )
                };
                self.delegated_binding(vs, Severity::Error, text, &pairs);
            }
            if self.v.expansion(vs).is_some_and(|exp| !in_set(&exp)) {
                self.report(
                    Severity::Error,
                    "code-invalid",
                    format!(
                        "none of the codings is in the value set {vs}, specified in an additional binding, and a coding from it is required"
                    ),
                );
            }
        }
    }

    pub(super) fn binding(&mut self, prof: &Arc<Profile>, eid: ElemId, system: Option<&str>, code: &str, _cc: bool) {
        let Some(b) = &prof.elem(eid).binding else {
            return;
        };
        if b.strength != Strength::Other {
            let (sev, word) =
                if b.strength == Strength::Required { (Severity::Error, "required") } else { (Severity::Warning, "extensible") };
            match self.v.expansion(&b.value_set) {
                Some(exp) if !exp.has(system, code) => {
                    self.report(sev, "code-invalid", format!("the code is not in the value set {} ({word} binding)", b.value_set));
                }
                Some(_) => {}
                None if self.v.surely_not_in(&b.value_set, system, code) => {
                    self.report(sev, "code-invalid", format!("the code is not in the value set {} ({word} binding)", b.value_set));
                }
                None => self.delegated_binding(
                    &b.value_set,
                    sev,
                    || format!("the code is not in the value set {} ({word} binding)", b.value_set),
                    &[(system, code)],
                ),
            }
        }
        for vs in &b.also_required {
            if self.v.expansion(vs).is_none() {
                let text =
                    || format!("the code is not in the value set {vs}, specified in an additional binding, and a code from it is required");
                self.delegated_binding(vs, Severity::Error, text, &[(system, code)]);
            }
            if self.v.expansion(vs).is_some_and(|exp| !exp.has(system, code)) {
                self.report(
                    Severity::Error,
                    "code-invalid",
                    format!("the code is not in the value set {vs}, specified in an additional binding, and a code from it is required"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::findings;

    #[test]
    fn a_ucum_unit_is_a_valid_ucum_expression() {
        let obs = |code: &str| {
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueQuantity": {"value": 1, "unit": "u", "system": "http://unitsofmeasure.org", "code": code}})
        };
        let ucum = |code: &str| findings(obs(code)).into_iter().filter(|f| f.contains("not a valid UCUM expression")).collect::<Vec<_>>();
        assert!(ucum("mg/dL").is_empty());
        assert_eq!(
            ucum("mg/decilitre"),
            ["error Observation.value.ofType(Quantity): the code is not a valid UCUM expression (an unknown unit at character 4)"]
        );
        // Another system's codes are not UCUM's.
        let mut other = obs("mg/decilitre");
        other["valueQuantity"]["system"] = json!("http://example.org/units");
        assert!(!findings(other).iter().any(|f| f.contains("UCUM")));
    }
}
