//! Codes: a Coding's system (absolute, a code system rather than a value set or a supplement),
//! its code and display against a complete CodeSystem loaded here, and bindings of codes,
//! Codings and CodeableConcepts to value sets expanded locally.
//!
//! No I/O (expansions come from the [`Validator`](crate::validate::profile::Validator)'s
//! memo), no clock; findings name the system or value set, never the code given.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::Walk;
use crate::validate::profile::Severity;
use crate::validate::profile::json::get;
use crate::validate::profile::model::{ElemId, Profile, Strength};

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
        if self.v.is_supplement(system) {
            let len = self.push("system", None);
            self.report(Severity::Error, "invalid", "the Coding.system is a supplement: use the code system it supplements");
            self.path.truncate(len);
            return;
        }
        let Some(cs) = self.v.code_system(system) else {
            if self.v.is_value_set(system) {
                let len = self.push("system", None);
                self.report(Severity::Error, "invalid", "the Coding.system is a value set, not a code system");
                self.path.truncate(len);
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
                    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
                    // Equal text is an equal display, without normalising (the common case).
                    if given != display && norm(given) != norm(display) {
                        let len = self.push("display", None);
                        self.report(Severity::Error, "invalid", format!("wrong display for the code in the code system {system}"));
                        self.path.truncate(len);
                    }
                }
            }
            Some(None) => {}
        }
    }

    pub(super) fn codeable_concept(&mut self, prof: &Arc<Profile>, eid: ElemId, obj: &Map<String, Value>) {
        let Some(b) = &prof.elem(eid).binding else {
            return;
        };
        if b.strength == Strength::Other {
            return;
        }
        let Some(exp) = self.v.expansion(&b.value_set) else {
            return;
        };
        let codings = obj.get("coding").and_then(Value::as_array);
        let Some(codings) = codings.filter(|c| !c.is_empty()) else {
            return;
        };
        let any = codings
            .iter()
            .any(|c| c.get("code").and_then(Value::as_str).is_some_and(|code| exp.has(c.get("system").and_then(Value::as_str), code)));
        if !any {
            let (sev, word) =
                if b.strength == Strength::Required { (Severity::Error, "required") } else { (Severity::Warning, "extensible") };
            self.report(
                sev,
                "code-invalid",
                format!("none of the codings is in the value set {} ({word} binding)", b.value_set),
            );
        }
    }

    pub(super) fn binding(&mut self, prof: &Arc<Profile>, eid: ElemId, system: Option<&str>, code: &str, _cc: bool) {
        let Some(b) = &prof.elem(eid).binding else {
            return;
        };
        if b.strength == Strength::Other {
            return;
        }
        let Some(exp) = self.v.expansion(&b.value_set) else {
            return;
        };
        if !exp.has(system, code) {
            let (sev, word) =
                if b.strength == Strength::Required { (Severity::Error, "required") } else { (Severity::Warning, "extensible") };
            self.report(sev, "code-invalid", format!("the code is not in the value set {} ({word} binding)", b.value_set));
        }
    }
}
