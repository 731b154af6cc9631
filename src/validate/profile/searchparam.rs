//! SearchParameters and the search parameters a CapabilityStatement declares, as HL7's
//! validator checks them (SearchParameterValidator, the CapabilityStatement's searchParam):
//!
//! - a `composite` SearchParameter defines two or more components
//!   (SEARCHPARAMETER_MISSING_COMPONENTS);
//! - one `derivedFrom` another keeps its type (SEARCHPARAMETER_TYPE_WRONG) and its bases
//!   among the other's (SEARCHPARAMETER_BASE_WRONG); one whose parent cannot be found is a
//!   warning (SEARCHPARAMETER_NOTFOUND);
//! - each path of the expression that starts with a type name starts with one of the bases
//!   (what Java's FHIRPath type check reports as "The name 'X' is not valid for any of the
//!   possible types");
//! - a CapabilityStatement's `rest.resource.searchParam` whose `definition` resolves has that
//!   definition's type (CapabalityStatement_CS_SP_WrongType).
//!
//! R4 core's SearchParameters ship in the R4 package (trimmed to code, base, type, expression
//! and components). Findings name definitions' URLs and types, never instance data.

use serde_json::{Map, Value};

use super::{Finding, Severity, Validator};

fn arr<'a>(m: &'a Map<String, Value>, k: &str) -> &'a [Value] {
    m.get(k).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn push(out: &mut Vec<Finding>, severity: Severity, code: &'static str, expression: String, text: String) {
    out.push(Finding { severity, code, text, expression });
}

/// The checks of a SearchParameter at `path`.
pub(super) fn search_parameter(v: &Validator, sp: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let ty = sp.get("type").and_then(Value::as_str);
    if ty == Some("composite") && arr(sp, "component").len() < 2 {
        push(
            out,
            Severity::Error,
            "invalid",
            path.to_owned(),
            "When the SearchParameter has a type of 'composite', then the SearchParameter must define two or more components".into(),
        );
    }
    let bases: Vec<&str> = arr(sp, "base").iter().filter_map(Value::as_str).collect();
    if let Some(parent_url) = sp.get("derivedFrom").and_then(Value::as_str) {
        match v.resolve(parent_url).filter(|p| p["resourceType"] == "SearchParameter") {
            None => push(
                out,
                Severity::Warning,
                "not-found",
                path.to_owned(),
                format!(
                    "Unable to find the base Search Parameter {parent_url} so can't check that this SearchParameter is a proper derivation from it"
                ),
            ),
            Some(parent) => {
                if let (Some(t), Some(pt)) = (ty, parent["type"].as_str()) {
                    if t != pt {
                        push(
                            out,
                            Severity::Error,
                            "invalid",
                            path.to_owned(),
                            format!("The type {t} is different to the type {pt} in the derivedFrom SearchParameter {parent_url}"),
                        );
                    }
                }
                let parent_bases: Vec<&str> = parent["base"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                for b in &bases {
                    if !parent_bases.contains(b) {
                        push(
                            out,
                            Severity::Error,
                            "invalid",
                            path.to_owned(),
                            format!(
                                "The resource type {b} is not listed as a base in the SearchParameter this is derived from ({parent_url})"
                            ),
                        );
                    }
                }
            }
        }
    }
    if let Some(expr) = sp.get("expression").and_then(Value::as_str) {
        if let Some(name) = foreign_type(v, expr, &bases) {
            push(
                out,
                Severity::Error,
                "invalid",
                format!("{path}.expression"),
                format!(
                    "Error in search expression: the name '{name}' is not valid for any of the possible types (the bases {})",
                    bases.join(", ")
                ),
            );
        }
    }
}

/// The first type name an expression's paths start with that is neither a base nor a type
/// the bases specialise (`Resource`, `DomainResource`): `Organization.name` on a Patient.
/// Only union members that are plain paths (`A.b.c`, `(A.b as T)`, `A.b.where(...)`) are read.
fn foreign_type<'e>(v: &Validator, expr: &'e str, bases: &[&str]) -> Option<&'e str> {
    if bases.is_empty() || bases.iter().any(|b| matches!(*b, "Resource" | "DomainResource")) {
        return None;
    }
    split_union(expr).into_iter().find_map(|part| {
        let part = part.trim().trim_start_matches('(').trim_start();
        let head: &str = part.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default();
        let follows = part[head.len()..].starts_with('.');
        let known = head.as_bytes().first().is_some_and(u8::is_ascii_uppercase) && v.is_resource_type(head);
        (follows && known && !bases.contains(&head) && !matches!(head, "Resource" | "DomainResource")).then_some(head)
    })
}

/// The members of a top-level union (`a | b`), outside parentheses and strings.
fn split_union(expr: &str) -> Vec<&str> {
    let (mut depth, mut quote, mut start, mut parts) = (0i32, false, 0, Vec::new());
    for (i, c) in expr.char_indices() {
        match c {
            '\'' => quote = !quote,
            '(' if !quote => depth += 1,
            ')' if !quote => depth -= 1,
            '|' if !quote && depth == 0 => {
                parts.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&expr[start..]);
    parts
}

/// The searchParams of a CapabilityStatement at `path`: each whose definition resolves has
/// its type.
pub(super) fn capability_statement(v: &Validator, cs: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    for (r, rest) in arr(cs, "rest").iter().enumerate() {
        for (i, res) in rest["resource"].as_array().into_iter().flatten().enumerate() {
            for (j, p) in res["searchParam"].as_array().into_iter().flatten().enumerate() {
                let (Some(def), Some(ty)) = (p["definition"].as_str(), p["type"].as_str()) else { continue };
                let Some(sp) = v.resolve(def).filter(|s| s["resourceType"] == "SearchParameter") else { continue };
                if let Some(st) = sp["type"].as_str().filter(|st| *st != ty) {
                    push(
                        out,
                        Severity::Error,
                        "invalid",
                        format!("{path}.rest[{r}].resource[{i}].searchParam[{j}]"),
                        format!("Type mismatch - SearchParameter '{def}' type is {st}, but type here is {ty}"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_union;

    #[test]
    fn a_union_splits_at_its_top_level_bars_only() {
        assert_eq!(split_union("A.b | A.c"), ["A.b ", " A.c"]);
        assert_eq!(
            split_union("A.b.where(x = 'a|b') | (A.c as Reference)"),
            ["A.b.where(x = 'a|b') ", " (A.c as Reference)"]
        );
        assert_eq!(split_union("A.b.select(c | d)"), ["A.b.select(c | d)"]);
    }
}
