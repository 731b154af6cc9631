//! Golden tests: every fixture record in `tests/golden/records/` converts to exactly the Bundle in
//! `tests/golden/expected/` (compared by meaning). `MHG_BLESS=1` rewrites the expected files.

use crate::common::*;

#[test]
fn golden_bundles() {
    let p = pipeline();
    let bless = std::env::var("MHG_BLESS").is_ok();
    let mut failures = Vec::new();
    let fixtures = fixtures();
    assert!(fixtures.len() >= 25, "at least 25 fixture records");
    for f in fixtures {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let mapped = match p.convert_value(&read_json(&f)) {
            Ok(m) => m,
            Err(r) => {
                failures.push(format!("{name}: refused: {}", r.to_operation_outcome()));
                continue;
            }
        };
        let expected_path = root().join("tests/golden/expected").join(&name);
        if bless {
            let text = serde_json::to_string_pretty(&mapped.bundle).expect("serialises") + "\n";
            std::fs::write(&expected_path, text).expect("writes expected");
            continue;
        }
        if !expected_path.exists() {
            failures.push(format!("{name}: no expected Bundle (run with MHG_BLESS=1 and review)"));
            continue;
        }
        let mut diff = Vec::new();
        json_diff(&mapped.bundle, &read_json(&expected_path), "Bundle", &mut diff);
        if !diff.is_empty() {
            diff.truncate(20);
            failures.push(format!("{name}:\n  {}", diff.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "golden mismatches:\n{}", failures.join("\n"));
}

/// The same record always gives the same Bundle (ids, full URLs, timestamps).
#[test]
fn deterministic() {
    let p = pipeline();
    for f in fixtures() {
        let v = read_json(&f);
        let a = p.convert_value(&v).expect("converts").bundle.to_string();
        let b = p.convert_value(&v).expect("converts").bundle.to_string();
        assert_eq!(a, b, "{}", f.display());
    }
}

/// Decimals keep the precision they were written with (`61.50` stays `61.50`, `185` stays `185`).
#[test]
fn decimals_keep_their_precision() {
    let p = pipeline();
    let mut rec = read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"));
    rec["results"][0]["value"] =
        serde_json::json!({"quantity": serde_json::from_str::<serde_json::Value>("163.50").unwrap(), "unit": "cm"});
    rec["results"][1]["value"] = serde_json::json!({"quantity": serde_json::from_str::<serde_json::Value>("61").unwrap(), "unit": "kg"});
    let text = p.convert_value(&rec).expect("converts").bundle.to_string();
    assert!(text.contains(r#""value":163.50"#), "163.50 kept");
    assert!(text.contains(r#""value":61,"#), "61 kept as written");
}

/// Every entry is a conditional update on a business identifier (or a PUT by deterministic id
/// for Provenance), so re-sending a Bundle is idempotent at the server.
#[test]
fn requests_are_idempotent() {
    let p = pipeline();
    for f in fixtures() {
        let b = p.convert_value(&read_json(&f)).expect("converts").bundle;
        for e in b["entry"].as_array().expect("entries") {
            let rt = e["resource"]["resourceType"].as_str().unwrap();
            let url = e["request"]["url"].as_str().unwrap();
            assert_eq!(e["request"]["method"], "PUT");
            if rt == "Provenance" {
                assert_eq!(url, format!("Provenance/{}", e["resource"]["id"].as_str().unwrap()));
            } else {
                assert!(url.starts_with(&format!("{rt}?identifier=")), "{url}");
                let ident = &e["resource"]["identifier"];
                let first = if ident.is_array() { &ident[0] } else { ident };
                assert!(url.ends_with(&first["value"].as_str().unwrap().replace(' ', "%20")) || url.contains("%"), "{url}");
            }
            assert!(e["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
        }
    }
}

/// Systolic and diastolic taken together become one blood-pressure panel (the R4 `bp` profile);
/// taken at different times they stay two Observations, neither losing anything.
#[test]
fn blood_pressure_pairs_into_a_panel_only_when_taken_together() {
    let p = pipeline();
    let codes = |b: &serde_json::Value| -> Vec<String> {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "Observation")
            .map(|e| e["resource"]["code"]["coding"][0]["code"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut rec = read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"));
    let paired = codes(&p.convert_value(&rec).unwrap().bundle);
    assert!(paired.contains(&"85354-9".to_owned()) && !paired.contains(&"8480-6".to_owned()));
    rec["results"][4]["collected"] = serde_json::json!("2026-10-02T09:15:00+03:00");
    let apart = codes(&p.convert_value(&rec).unwrap().bundle);
    assert!(!apart.contains(&"85354-9".to_owned()));
    assert!(apart.contains(&"8480-6".to_owned()) && apart.contains(&"8462-4".to_owned()));
}
