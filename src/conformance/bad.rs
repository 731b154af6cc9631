//! Bad vectors: records (and bodies) the gateway must refuse, each with the refusal the pipeline
//! gives (status, rejection code, input locations). Made from the first valid vector: every enum
//! given a value it does not allow and every required property removed (both found by walking
//! the schema), plus the rules beyond the schema, one each.

use serde_json::{Value, json};

use super::fields::{self, Fields};
use super::vectors::{Bad, Expect, Valid, VectorError};
use crate::pipeline::Pipeline;

/// A value no enum of the schema allows.
const NOT_A_CODE: &str = "not-a-code";

fn refusal(pipeline: &Pipeline, name: &str, body: Vec<u8>) -> Result<Bad, VectorError> {
    let out = pipeline.convert_bytes(&body, None);
    let r = match out.into_iter().next().map(|o| o.result) {
        Some(Err(r)) => r,
        Some(Ok(_)) => return Err(VectorError::NotBad(name.to_owned())),
        None => return Err(VectorError::NotBad(name.to_owned())),
    };
    Ok(Bad { name: name.to_owned(), body, expect: Expect::of(&r) })
}

fn bytes(v: &Value) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}

/// The bad vectors, from the valid ones (the first holding each field is changed).
pub fn bad_vectors(pipeline: &Pipeline, valid: &[Valid], f: &Fields) -> Result<Vec<Bad>, VectorError> {
    let mut out = Vec::new();
    let host = |pattern: &str| {
        valid.iter().find_map(|v| fields::instances(&v.record, pattern).first().map(|(p, _)| (v.record.clone(), p.clone())))
    };
    for pattern in f.enums.keys() {
        let Some((mut r, ptr)) = host(pattern) else { continue };
        if let Some(x) = r.pointer_mut(&ptr) {
            *x = json!(NOT_A_CODE);
        }
        out.push(refusal(pipeline, &format!("bad-enum-{}", fields::slug(pattern)), bytes(&r))?);
    }
    for (parent, prop) in &f.required {
        let Some((mut r, ptr)) = host(&format!("{parent}/{prop}")) else { continue };
        let Some((obj, _)) = ptr.rsplit_once('/') else { continue };
        if let Some(o) = r.pointer_mut(obj).and_then(Value::as_object_mut) {
            o.shift_remove(prop.as_str());
        }
        let name = format!("bad-missing-{}", fields::slug(&format!("{parent}/{prop}")));
        if out.iter().any(|b: &Bad| b.name == name) {
            continue;
        }
        out.push(refusal(pipeline, &name, bytes(&r))?);
    }
    let Some(base) = valid.first().map(|v| v.record.clone()) else { return Ok(out) };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut r = base.clone();
        f(&mut r);
        bytes(&r)
    };
    let text = String::from_utf8(bytes(&base)).unwrap_or_default();
    let deep = format!("{{\"recordId\": {}1{}}}", "[".repeat(100), "]".repeat(100));
    let specials: Vec<(&str, Vec<u8>)> = vec![
        ("bad-malformed-json", text.as_bytes()[..text.len() / 2].to_vec()),
        ("bad-duplicate-key", text.replacen('{', "{\n  \"recordId\": \"DUPLICATE\",", 1).into_bytes()),
        ("bad-too-deep", deep.into_bytes()),
        ("bad-not-an-object", b"\"a record\"\n".to_vec()),
        ("bad-unknown-property", with(&|r| r["unexpectedProperty"] = json!(true))),
        ("bad-wrong-type-record-version", with(&|r| r["recordVersion"] = json!("one"))),
        ("bad-calendar-date", with(&|r| r["person"]["birthDate"] = json!("1990-02-30"))),
        ("bad-future-birth-date", with(&|r| r["person"]["birthDate"] = json!("2999-01-01"))),
        ("bad-exam-before-birth", with(&|r| r["assessment"]["examDate"] = json!("1800-01-01"))),
        ("bad-unknown-country", with(&|r| r["person"]["nationalities"] = json!(["QQQ"]))),
    ];
    for (name, body) in specials {
        out.push(refusal(pipeline, name, body)?);
    }
    Ok(out)
}
