//! A QuestionnaireResponse against the Questionnaire it names (HL7's QuestionnaireValidator):
//! linkIds, required items by status and enableWhen, answer types, limits and options, on a
//! questionnaire written here, loaded as the gateway loads definitions (the XML form too).

use std::sync::OnceLock;

use serde_json::{Value, json};

use mhg::validate::profile::load::load;
use mhg::validate::profile::{Finding, Severity, Validator};

const Q: &str = "http://example.net/fhir/Questionnaire/screening";

fn questionnaire() -> Value {
    json!({"resourceType": "Questionnaire", "url": Q, "status": "active", "item": [
        {"linkId": "cough", "text": "Cough for more than two weeks?", "type": "boolean", "required": true},
        {"linkId": "weeks", "type": "decimal", "enableWhen": [{"question": "cough", "operator": "=", "answerBoolean": true}],
         "required": true,
         "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueDecimal": 52},
                       {"url": "http://hl7.org/fhir/StructureDefinition/maxDecimalPlaces", "valueInteger": 1}]},
        {"linkId": "result", "type": "choice", "answerOption": [
            {"valueCoding": {"system": "http://snomed.info/sct", "code": "260385009"}},
            {"valueCoding": {"system": "http://snomed.info/sct", "code": "10828004"}}]},
        {"linkId": "notes", "type": "group", "item": [{"linkId": "note", "type": "string", "maxLength": 10}]}
    ]})
}

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.json");
        std::fs::write(&file, questionnaire().to_string()).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        load(&root.join("conformance/packages"), &[], &[file]).unwrap()
    })
}

fn qr(status: &str, items: Value) -> Value {
    json!({"resourceType": "QuestionnaireResponse", "questionnaire": Q, "status": status, "item": items})
}

fn at(f: &[Finding], severity: Severity) -> Vec<String> {
    let mut v: Vec<String> = f.iter().filter(|x| x.severity == severity).map(|x| x.expression.clone()).collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn a_complete_response_passes() {
    let r = qr(
        "completed",
        json!([
            {"linkId": "cough", "answer": [{"valueBoolean": true}]},
            {"linkId": "weeks", "answer": [{"valueDecimal": 3.5}]},
            {"linkId": "result", "answer": [{"valueCoding": {"system": "http://snomed.info/sct", "code": "260385009"}}]},
            {"linkId": "notes", "item": [{"linkId": "note", "answer": [{"valueString": "none"}]}]}
        ]),
    );
    assert_eq!(at(&validator().validate(&r, &[]), Severity::Error), Vec::<String>::new());
}

#[test]
fn required_items_are_errors_once_completed_and_follow_enable_when() {
    let r = qr("completed", json!([{"linkId": "cough", "answer": [{"valueBoolean": true}]}]));
    assert_eq!(at(&validator().validate(&r, &[]), Severity::Error), vec!["QuestionnaireResponse"]);
    // Not completed: a warning. Disabled (no cough): not required at all.
    let r = qr("in-progress", json!([{"linkId": "cough", "answer": [{"valueBoolean": true}]}]));
    assert!(at(&validator().validate(&r, &[]), Severity::Error).is_empty());
    let r = qr("completed", json!([{"linkId": "cough", "answer": [{"valueBoolean": false}]}]));
    assert!(at(&validator().validate(&r, &[]), Severity::Error).is_empty());
}

#[test]
fn answers_are_checked_against_the_item() {
    let r = qr(
        "completed",
        json!([
            {"linkId": "cough", "answer": [{"valueCoding": {"code": "yes"}}]},
            {"linkId": "weeks", "answer": [{"valueDecimal": 60.25}]},
            {"linkId": "result", "answer": [{"valueCoding": {"system": "http://snomed.info/sct", "code": "1"}}]},
            {"linkId": "unknown", "answer": [{"valueString": "x"}]}
        ]),
    );
    let errors = at(&validator().validate(&r, &[]), Severity::Error);
    assert_eq!(
        errors,
        vec![
            "QuestionnaireResponse",
            "QuestionnaireResponse.item[0].answer[0].value.ofType(Coding)",
            // `weeks` is disabled (cough is not answered true) yet answered.
            "QuestionnaireResponse.item[1]",
            "QuestionnaireResponse.item[1].answer[0].value.ofType(decimal)",
            "QuestionnaireResponse.item[2].answer[0]",
            // `1` is no SCTID (no Verhoeff check digit): unknown in SNOMED CT.
            "QuestionnaireResponse.item[2].answer[0].value.ofType(Coding).code",
        ],
        "{errors:?}"
    );
    // No finding quotes an answer.
    for f in validator().validate(&r, &[]) {
        assert!(!f.text.contains("60.25") && !f.text.contains("yes"), "{}", f.text);
    }
}

#[test]
fn a_questionnaire_that_is_not_one_is_an_error() {
    let r = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
                   "questionnaire": "http://hl7.org/fhir/ValueSet/administrative-gender"});
    assert_eq!(at(&validator().validate(&r, &[]), Severity::Error), vec!["QuestionnaireResponse.questionnaire"]);
}
