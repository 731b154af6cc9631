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

/// Every entry is a conditional update on its resource's first business identifier (or a PUT by
/// deterministic id for Provenance), so re-sending a Bundle is idempotent at the server. The URL
/// is `Type?identifier=system%7Cvalue`, encoded exactly as [`query_encoded`] says, and decodes
/// back to the resource's own system and value.
#[test]
fn requests_are_idempotent() {
    let p = pipeline();
    let mut conditional = 0;
    for f in fixtures() {
        let b = p.convert_value(&read_json(&f)).expect("converts").bundle;
        for e in b["entry"].as_array().expect("entries") {
            let rt = e["resource"]["resourceType"].as_str().unwrap();
            let url = e["request"]["url"].as_str().unwrap();
            assert_eq!(e["request"]["method"], "PUT");
            if rt == "Provenance" {
                assert_eq!(url, format!("Provenance/{}", e["resource"]["id"].as_str().unwrap()));
            } else {
                let ident = &e["resource"]["identifier"];
                let first = if ident.is_array() { &ident[0] } else { ident };
                let (system, value) = (first["system"].as_str().expect("a system"), first["value"].as_str().expect("a value"));
                assert!(!system.is_empty() && !value.is_empty(), "{}: {rt} {first}", f.display());
                let expected = format!("{rt}?identifier={}%7C{}", query_encoded(system), query_encoded(value));
                assert_eq!(url, expected, "{}: {rt} {first}", f.display());
                let query = url.strip_prefix(&format!("{rt}?identifier=")).unwrap();
                assert_eq!(percent_decoded(query).as_deref(), Some(format!("{system}|{value}").as_str()), "{url}");
                conditional += 1;
            }
            assert!(e["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
        }
    }
    assert!(conditional > 100, "the fixtures make conditional requests ({conditional})");
}

/// A search parameter value as a conditional URL carries it: RFC 3986 unreserved characters and
/// `:` and `/` as they are, every other byte (UTF-8) as `%XX` in upper-case hex.
fn query_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `%XX` decoded (strictly: two hex digits after every `%`, UTF-8 as a result), or `None`.
fn percent_decoded(s: &str) -> Option<String> {
    let (bytes, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[test]
fn url_encoding_helpers_are_strict() {
    assert_eq!(query_encoded("Laboratório Central|x y&z#1"), "Laborat%C3%B3rio%20Central%7Cx%20y%26z%231");
    assert_eq!(query_encoded("https://w3id.org/a-b_c.d~e"), "https://w3id.org/a-b_c.d~e");
    assert_eq!(percent_decoded("a%7Cb%20c%C3%AD").as_deref(), Some("a|b cí"));
    for bad in ["%", "%7", "%G0", "%+1", "%FF"] {
        assert_eq!(percent_decoded(bad), None, "{bad}");
    }
}

/// Systolic and diastolic taken together become one blood-pressure panel (the R4 `bp` profile);
/// taken at different times they become two panels, each with the other reading absent, neither
/// losing anything (R4 and HL7's validator hold an Observation coded as systolic to `bp`).
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
    let bundle = p.convert_value(&rec).unwrap().bundle;
    let apart = codes(&bundle);
    assert!(!apart.contains(&"8480-6".to_owned()) && !apart.contains(&"8462-4".to_owned()));
    let panels: Vec<&serde_json::Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|o| o["code"]["coding"][0]["code"] == "85354-9")
        .collect();
    assert_eq!(panels.len(), 2);
    // Each panel measures one component and says the other was not performed.
    for (k, panel) in panels.iter().enumerate() {
        let c = panel["component"].as_array().unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[k].get("valueQuantity").is_some() && c[1 - k]["dataAbsentReason"]["coding"][0]["code"] == "not-performed");
        assert_eq!(panel["identifier"].as_array().unwrap().len(), 1);
    }
}
