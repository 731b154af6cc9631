//! An OperationDefinition's `inputProfile` and `outputProfile` against its own `parameter`
//! list, as the HL7 Java validator cross-checks them (`OperationDefinitionValidator`): the
//! profile must be a known profile on `Parameters`; each of its `parameter` slices (named by a
//! fixed or pattern `name`) must match a parameter of that use with the same `min`, `max`,
//! types and target profiles; a parameter of that use the profile lacks, or a slice the
//! operation lacks, is a warning.
//!
//! Findings are located as Java locates them: at `OperationDefinition.inputProfile` for the
//! profile as a whole, and at `OperationDefinition.inputProfile.parameter[i]` (the parameter's
//! index in the operation's list) for one parameter. No finding quotes instance content beyond
//! the definitions' own names, types and canonical URLs.

use serde_json::{Map, Value};

use super::model::{Elem, Profile};
use super::{Finding, Severity, Validator};

fn finding(severity: Severity, expression: String, text: String) -> Finding {
    Finding { severity, code: if severity == Severity::Error { "invalid" } else { "unknown" }, text, expression }
}

/// The cross-checks of an OperationDefinition at `path`.
pub(super) fn check(v: &Validator, od: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    // The chain of `base` definitions must not lead back to this one.
    if let (Some(url), Some(mut base)) = (od.get("url").and_then(Value::as_str), od.get("base").and_then(Value::as_str).map(str::to_owned))
    {
        let mut last = url.to_owned();
        for _ in 0..32 {
            let Some(def) = v.resolve(&base).filter(|d| d["resourceType"] == "OperationDefinition") else { break };
            if def["url"].as_str() == Some(url) {
                out.push(finding(
                    Severity::Error,
                    path.to_owned(),
                    format!("The definition of the Operation is circular - it depends on itself (url = '{url}', from '{last}')"),
                ));
                break;
            }
            let Some(next) = def["base"].as_str() else { break };
            last = std::mem::replace(&mut base, next.to_owned());
        }
    }
    for (key, usage) in [("inputProfile", "in"), ("outputProfile", "out")] {
        if let Some(url) = od.get(key).and_then(Value::as_str) {
            profile(v, od, url, usage, &format!("{path}.{key}"), out);
        }
    }
}

fn profile(v: &Validator, od: &Map<String, Value>, url: &str, usage: &str, at: &str, out: &mut Vec<Finding>) {
    let Some(sd) = v.profile(url) else {
        out.push(finding(
            Severity::Error,
            at.to_owned(),
            format!("The '{usage}' profile '{url}' can not be resolved"),
        ));
        return;
    };
    if sd.type_name != "Parameters" {
        out.push(finding(
            Severity::Error,
            at.to_owned(),
            format!("The '{usage}' profile '{url}' is not a profile on the 'Parameters' resource"),
        ));
        return;
    }
    let versioned = match v.resolve(url).and_then(|d| d["version"].as_str().map(str::to_owned)) {
        Some(ver) => format!("{}|{ver}", sd.url),
        None => sd.url.clone(),
    };
    let params: Vec<&Map<String, Value>> =
        od.get("parameter").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object).collect();
    let s = |p: &Map<String, Value>, k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut matched = vec![false; params.len()];
    if let Some(parameter) = sd.elements.first().and_then(|root| child(&sd, root, "parameter")) {
        for &slice_id in &parameter.slices {
            let slice = &sd.elements[slice_id];
            let slice_name = slice.slice_name.clone().unwrap_or_default();
            let Some(name) = child(&sd, slice, "name").and_then(|n| n.fixed.as_ref().or(n.pattern.as_ref())).and_then(Value::as_str) else {
                out.push(finding(
                    Severity::Error,
                    at.to_owned(),
                    format!("The slice '{slice_name}' in the {usage} profile does not fix the parameter name"),
                ));
                continue;
            };
            let found = params.iter().position(|p| s(p, "name").as_deref() == Some(name) && s(p, "use").as_deref() == Some(usage));
            let Some(i) = found else {
                out.push(finding(
                    Severity::Warning,
                    at.to_owned(),
                    format!(
                        "The '{usage}' profile {versioned} defines a parameter '{name}' but this is not in the parameters list in the operation definition"
                    ),
                ));
                continue;
            };
            matched[i] = true;

            compare(
                &sd,
                slice,
                params[i],
                &Ctx { usage, name, versioned: &versioned, at: format!("{at}.parameter[{i}]") },
                out,
            );
        }
    }
    for (i, p) in params.iter().enumerate() {
        if !matched[i] && s(p, "use").as_deref() == Some(usage) {
            let name = s(p, "name").unwrap_or_default();
            out.push(finding(
                Severity::Warning,
                format!("{at}.parameter[{i}]"),
                format!(
                    "The '{usage}' profile does not have a parameter '{name}' but it is in the parameters list in the operation definition"
                ),
            ));
        }
    }
}

struct Ctx<'a> {
    usage: &'a str,
    name: &'a str,
    versioned: &'a str,
    at: String,
}

fn child<'p>(sd: &'p Profile, parent: &Elem, name: &str) -> Option<&'p Elem> {
    parent.children.iter().map(|&c| &sd.elements[c]).find(|e| e.name == name)
}

fn listed(list: &[String]) -> String {
    if list.is_empty() {
        return "(none)".to_owned();
    }
    let mut l = list.to_vec();
    l.sort();
    match l.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(",")),
        _ => l.join(","),
    }
}

fn compare(sd: &Profile, slice: &Elem, param: &Map<String, Value>, c: &Ctx, out: &mut Vec<Finding>) {
    let Ctx { usage, name, versioned, .. } = *c;
    let mut err = |text: String| out.push(finding(Severity::Error, c.at.clone(), text));
    let mismatch = |what: &str, ours: &str, theirs: &str| {
        format!(
            "The parameter '{name}' has a value for '{what}' of '{theirs}' in the '{usage}' profile {versioned} that is different to '{ours}' which is the value in the parameter definition in the operation definition"
        )
    };
    if let Some(min) = param.get("min").and_then(Value::as_i64) {
        if min != i64::from(slice.min) {
            err(mismatch("min", &min.to_string(), &slice.min.to_string()));
        }
    }
    // `*` is unbounded on both sides; a max that is neither `*` nor a number is not compared.
    let parse_max = |m: &str| if m == "*" { Some(u32::MAX) } else { m.parse::<u32>().ok() };
    if let Some(max) = param.get("max").and_then(Value::as_str) {
        let theirs = slice.max.unwrap_or(u32::MAX);
        if parse_max(max).is_some_and(|m| m != theirs) {
            let shown = slice.max.map_or_else(|| "*".to_owned(), |m| m.to_string());
            err(mismatch("max", max, &shown));
        }
    }
    let mut allowed: Vec<String> = param
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/operationdefinition-allowed-type")
        .filter_map(|x| x.as_object()?.iter().find(|(k, _)| k.starts_with("value")).and_then(|(_, v)| v.as_str()).map(str::to_owned))
        .collect();
    if allowed.is_empty() {
        allowed.extend(param.get("type").and_then(Value::as_str).map(str::to_owned));
    }
    let targets: Vec<String> =
        param.get("targetProfile").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
    let (value, resource, part) = (child(sd, slice, "value"), child(sd, slice, "resource"), child(sd, slice, "part"));
    let used = |focus: Option<&Elem>, a: Option<&Elem>, b: Option<&Elem>| {
        focus.is_some_and(|f| f.max != Some(0)) && a.is_none_or(|a| a.min == 0) && b.is_none_or(|b| b.min == 0)
    };
    let mut profile_types = Vec::new();
    let mut profile_targets = Vec::new();
    for defn in
        [(value, resource, part), (resource, value, part)].into_iter().filter(|(f, a, b)| used(*f, *a, *b)).filter_map(|(f, _, _)| f)
    {
        for t in &defn.types {
            profile_types.push(t.code.clone());
            profile_targets.extend(t.targets.iter().cloned());
            if !allowed.contains(&t.code) {
                err(format!(
                    "The type '{}' is allowed for the parameter '{name}' in the '{usage}' profile {versioned} but is not in the list of allowed types for the parameter in the operation definition: {}",
                    t.code,
                    listed(&allowed)
                ));
            }
        }
    }
    for t in allowed.iter().filter(|t| !profile_types.contains(t)) {
        err(format!(
            "The type '{t}' is not allowed for the parameter '{name}' in the '{usage}' profile {versioned} but is in the list of allowed types for the parameter in the operation definition (allowed types = {})",
            listed(&profile_types)
        ));
    }
    for t in targets.iter().filter(|t| !profile_targets.contains(t)) {
        err(format!(
            "The target profile '{t}' is not allowed for the parameter '{name}' in the '{usage}' profile but is in the list of target profiles for the parameter in the operation definition (profile target profiles = {})",
            listed(&profile_targets)
        ));
    }
    // A parameter of type Element may be a Reference or a canonical: its targets cannot be
    // compared (opd-3 keeps it from declaring any).
    if param.get("type").and_then(Value::as_str).is_some_and(|t| t != "Element") {
        for t in profile_targets.iter().filter(|t| !targets.contains(t)) {
            err(format!(
                "The target profile '{t}' is allowed for the parameter '{name}' in the '{usage}' profile {versioned} but is not in the list of target profiles for the parameter in the operation definition: {}",
                listed(&targets)
            ));
        }
    }
}
