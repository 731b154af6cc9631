//! Published invariants whose FHIRPath is wrong as written, and the expression the HL7 Java
//! validator evaluates instead (its `FHIRPathExpressionFixer`, R4 branch). Applied once, when a
//! constraint is compiled, so that every profile that copies a core constraint gets the same
//! correction and the validator agrees with Java on instances those expressions misjudge.
//!
//! Left out on purpose: `ref-1` and `bdl-8`, whose corrected meaning the native evaluator
//! already implements (`native::by_key` recognises them by their published expression), and
//! `txt-2`, answered by the narrative checks.

/// The expression to evaluate for constraint `key` published as `expr`.
pub fn fix<'a>(key: &str, expr: &'a str) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow::{Borrowed, Owned};
    if let Some(to) = by_key(key) {
        return Owned(to.to_owned());
    }
    match BY_EXPRESSION.iter().find(|(from, _)| *from == expr) {
        Some((_, to)) => Owned((*to).to_owned()),
        None => Borrowed(expr),
    }
}

fn by_key(key: &str) -> Option<&'static str> {
    Some(match key {
        // A parameter of a resource type may name target profiles (R4's text says so; its
        // expression forgot it).
        "opd-3" => {
            "targetProfile.exists() implies (type = 'Reference' or type = 'canonical' or type.memberOf('http://hl7.org/fhir/ValueSet/resource-types'))"
        }
        "que-7" => "operator = 'exists' implies (answer is boolean)",
        "eld-19" => {
            "path.matches('^[^\\\\s\\\\.,:;\\\\\\'\"\\\\/|?!@#$%&*()\\\\[\\\\]{}]{1,64}(\\\\.[^\\\\s\\\\.,:;\\\\\\'\"\\\\/|?!@#$%&*()\\\\[\\\\]{}]{1,64}(\\\\[x\\\\])?(\\\\:[^\\\\s\\\\.]+)?)*$')"
        }
        "eld-20" => "path.matches('^[A-Za-z][A-Za-z0-9]*(\\\\.[a-z][A-Za-z0-9]*(\\\\[x])?)*$')",
        _ => return None,
    })
}

/// Published expression → the one evaluated, matched exactly (whatever the key).
const BY_EXPRESSION: &[(&str, &str)] = &[
    (
        "probability is decimal implies (probability as decimal) <= 100",
        "(probability.exists() and (probability is decimal)) implies ((probability as decimal) <= 100)",
    ),
    (
        "enableWhen.count() > 2 implies enableBehavior.exists()",
        "enableWhen.count() >= 2 implies enableBehavior.exists()",
    ),
    ("generated='generated' implies source.empty()", "generation='generated' implies source.empty()"),
    (
        "name.matches('[A-Z]([A-Za-z0-9_]){0,254}')",
        "name.exists() implies name.matches('^[A-Z]([A-Za-z0-9_]){0,254}$')",
    ),
    (
        "clinicalStatus.exists() or verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and code = 'entered-in-error').exists() or category.select($this='problem-list-item').empty()",
        "(verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and code = 'entered-in-error').exists() and category.coding.exists(system='http://terminology.hl7.org/CodeSystem/condition-category' and code ='problem-list-item').empty()) implies (clinicalStatus.exists())",
    ),
    (
        "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))",
        "offset.empty() or (when.exists() and when.select($this in ('C' | 'CM' | 'CD' | 'CV')).allFalse())",
    ),
    (
        "((kind in 'resource' | 'complex-type') and (specialization = 'derivation')) implies differential.element.where((min != 0 and min != 1) or (max != '1' and max != '*')).empty()",
        "((kind in 'resource' | 'complex-type') and (derivation = 'specialization')) implies differential.element.where((min.exists() and min != 0 and min != 1) or (max.exists() and max != '1' and max != '*')).empty()",
    ),
    (
        "(component.empty() and hasMember.empty()) implies (dataAbsentReason or value)",
        "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())",
    ),
    (
        "isModifier implies isModifierReason.exists()",
        "(isModifier.exists() and isModifier) implies isModifierReason.exists()",
    ),
    (
        "(%resource.kind = 'logical' or element.first().path.startsWith(%resource.type)) and (element.tail().not() or  element.tail().all(path.startsWith(%resource.differential.element.first().path.replaceMatches('\\\\..*','')&'.')))",
        "(%resource.kind = 'logical' or element.first().path.startsWith(%resource.type)) and (element.tail().empty() or  element.tail().all(path.startsWith(%resource.differential.element.first().path.replaceMatches('\\\\..*','')&'.')))",
    ),
    (
        "differential.element.all(id) and differential.element.id.trace('ids').isDistinct()",
        "differential.element.all(id.exists()) and differential.element.id.trace('ids').isDistinct()",
    ),
    (
        "snapshot.element.all(id) and snapshot.element.id.trace('ids').isDistinct()",
        "snapshot.element.all(id.exists()) and snapshot.element.id.trace('ids').isDistinct()",
    ),
    (
        "element.all(definition and min and max)",
        "element.all(definition.exists() and min.exists() and max.exists())",
    ),
    ("telecom or endpoint", "telecom.exists() or endpoint.exists()"),
    ("searchType implies type = 'string'", "searchType.exists() implies type = 'string'"),
    (
        "abatement.empty() or (abatement as boolean).not()  or clinicalStatus='resolved' or clinicalStatus='remission' or clinicalStatus='inactive'",
        "abatement.empty() or (abatement is boolean).not() or (abatement as boolean).not() or (clinicalStatus = 'resolved') or (clinicalStatus = 'remission') or (clinicalStatus = 'inactive')",
    ),
    (
        "(component.empty() and related.empty()) implies (dataAbsentReason or value)",
        "(component.empty() and related.empty()) implies (dataAbsentReason.exists() or value.exists())",
    ),
];

#[cfg(test)]
mod tests {
    use super::fix;

    #[test]
    fn corrects_by_key_and_by_expression_and_keeps_the_rest() {
        assert!(fix("opd-3", "targetProfile.exists() implies (type = 'Reference' or type = 'canonical')").contains("resource-types"));
        assert_eq!(
            fix("tim-9", "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))"),
            "offset.empty() or (when.exists() and when.select($this in ('C' | 'CM' | 'CD' | 'CV')).allFalse())"
        );
        assert_eq!(
            fix("ele-1", "hasValue() or (children().count() > id.count())"),
            "hasValue() or (children().count() > id.count())"
        );
        // ref-1 stays as published: the native evaluator recognises it by that text.
        let r = "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))";
        assert_eq!(fix("ref-1", r), r);
    }
}
