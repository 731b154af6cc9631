//! A workaround for octofhir 0.4.57's member navigation: a member absent from an object is
//! looked for as a choice type's variant (any key that extends its name with a capital), whether
//! or not the model says the member is a choice; so `response` read `responseCode` and
//! `code` read `codeFilter`. The engine's tree gets an empty array under every plain element
//! name ([`TypeModel::shadowed_prefixes`]) that a key of an object extends while the object
//! lacks it: navigation then finds the (empty) member, `children()` sees nothing, and JSON
//! Pointers into the tree are unchanged.

use std::sync::Arc;

use octofhir_fhirpath::core::node::FhirNode;

use super::TypeModel;

/// `node` with an empty array under every plain element name that a key of an object extends
/// (`"response": []` beside `responseCode`), or None when nothing needs it. Subtrees without
/// such keys are shared, not copied; JSON Pointers into the tree are unchanged.
pub(super) fn shadow(model: &TypeModel, node: &FhirNode, depth: usize) -> Option<FhirNode> {
    if depth > 128 {
        return None;
    }
    match node {
        FhirNode::Object(entries) => {
            let children: Vec<Option<FhirNode>> = entries.iter().map(|(_, v)| shadow(model, v, depth + 1)).collect();
            let mut extra: Vec<&str> = Vec::new();
            for (k, _) in entries.iter() {
                if k.starts_with('_') || &**k == "resourceType" {
                    continue;
                }
                for p in model.shadowed_prefixes(k) {
                    if !entries.iter().any(|(o, _)| &**o == p) && !extra.contains(&p) {
                        extra.push(p);
                    }
                }
            }
            if extra.is_empty() && children.iter().all(Option::is_none) {
                return None;
            }
            let mut out: Vec<(Arc<str>, FhirNode)> =
                entries.iter().zip(children).map(|((k, v), c)| (k.clone(), c.unwrap_or_else(|| v.clone()))).collect();
            out.extend(extra.into_iter().map(|p| (Arc::<str>::from(p), FhirNode::Array(Arc::from(Vec::new())))));
            Some(FhirNode::Object(out.into()))
        }
        FhirNode::Array(items) => {
            let children: Vec<Option<FhirNode>> = items.iter().map(|v| shadow(model, v, depth + 1)).collect();
            if children.iter().all(Option::is_none) {
                return None;
            }
            let out: Vec<FhirNode> = items.iter().zip(children).map(|(v, c)| c.unwrap_or_else(|| v.clone())).collect();
            Some(FhirNode::Array(out.into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn engine() -> &'static crate::validate::fhirpath::FhirPath {
        static E: std::sync::OnceLock<crate::validate::fhirpath::FhirPath> = std::sync::OnceLock::new();
        E.get_or_init(|| {
            let home = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut packages = crate::validate::packages::Packages::new();
            packages.add(&home.join("conformance/packages/hl7.fhir.r4.examples-4.0.1.tgz")).unwrap();
            let model = std::sync::Arc::new(crate::validate::fhirpath::model::TypeModel::from_packages(&packages));
            crate::validate::fhirpath::FhirPath::new(model).unwrap()
        })
    }

    #[test]
    fn a_member_name_matches_itself_not_longer_names() {
        let script = |assert: serde_json::Value| {
            json!({"resourceType": "TestScript", "url": "http://x", "name": "x", "status": "draft",
                "setup": {"action": [{"assert": assert}]}})
        };
        let count = |s: &serde_json::Value, expr: &str| match engine().evaluate(expr, s).unwrap().as_slice() {
            [crate::validate::fhirpath::FpValue::Integer(n)] => *n,
            other => panic!("{other:?}"),
        };
        // Only responseCode: `response` is absent, not responseCode's value.
        let code_only = script(json!({"responseCode": "200", "warningOnly": false}));
        assert_eq!(count(&code_only, "setup.action.assert.response.count()"), 0);
        assert_eq!(count(&code_only, "setup.action.assert.responseCode.count()"), 1);
        assert_eq!(count(&code_only, "setup.action.assert.children().count()"), 2, "the shadow is no child");
        // tst-5 (one assertion per assert): holds with responseCode alone.
        let tst5 = "extension.exists() or (contentType.count() + expression.count() + headerField.count() + minimumId.count() + navigationLinks.count() + path.count() + requestMethod.count() + resource.count() + responseCode.count() + response.count() + validateProfileId.count() <=1)";
        let assert = &code_only["setup"]["action"][0]["assert"];
        assert!(engine().invariant(tst5, assert, "TestScript.setup.action.assert", &code_only, &code_only).unwrap());
        let both = script(json!({"response": "okay", "responseCode": "200"}));
        assert_eq!(count(&both, "setup.action.assert.response.count()"), 1);
        // Choice elements still read their typed keys.
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": 1}});
        assert_eq!(count(&obs, "value.count()"), 1);
    }
}
