//! Terminology delegation over real HTTP: a gateway (`mhg serve`) whose `[terminology] servers`
//! routes a code system it does not have to a second gateway that has it loaded and serves
//! `CodeSystem/$validate-code`. Valid codes pass, invalid codes and wrong displays are errors,
//! the disk cache answers after the second gateway is gone (also across a restart) and not
//! after its expiry; a server with nothing listening, or one that never answers, makes the code
//! a warning naming the server. Bindings to value sets this gateway cannot expand are checked
//! by the server's `ValueSet/$validate-code` when routed (`value_sets`). `mhg validate --tx URL`
//! does the same from the command line.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;
use crate::support::*;

const COLOURS: &str = "http://example.org/fhir/CodeSystem/colours";

fn code_system() -> Value {
    json!({"resourceType": "CodeSystem", "url": COLOURS, "status": "active", "content": "complete", "name": "Colours",
        "concept": [{"code": "red", "display": "Red"}, {"code": "green", "display": "Green"}]})
}

fn observation(codings: Value) -> Value {
    json!({"resourceType": "Observation", "status": "final", "code": {"coding": codings},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">An observation</div>"}})
}

fn coding(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = json!({"system": system, "code": code});
    if let Some(d) = display {
        c["display"] = json!(d);
    }
    c
}

const WARM: &str = "http://example.org/fhir/ValueSet/warm";
const WARM_OBS: &str = "http://example.org/fhir/StructureDefinition/warm-observation";

/// The value set of warm colours: red only.
fn value_set() -> Value {
    json!({"resourceType": "ValueSet", "url": WARM, "status": "active", "name": "Warm",
        "compose": {"include": [{"system": COLOURS, "concept": [{"code": "red"}]}]}})
}

/// A profile binding Observation.code to the warm colours (required).
fn profile() -> Value {
    json!({"resourceType": "StructureDefinition", "url": WARM_OBS, "name": "WarmObservation", "status": "draft",
        "kind": "resource", "abstract": false, "type": "Observation", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "differential": {"element": [{"id": "Observation.code", "path": "Observation.code",
            "binding": {"strength": "required", "valueSet": WARM}}]}})
}

/// The terminology server: a gateway with the colours CodeSystem and the warm ValueSet loaded.
fn tx_server(dir: &Path, no_auth: bool) -> Serve {
    let cs = dir.join("colours.json");
    std::fs::write(&cs, code_system().to_string()).unwrap();
    let vs = dir.join("warm.json");
    std::fs::write(&vs, value_set().to_string()).unwrap();
    let config = dir.join("tx.toml");
    std::fs::write(
        &config,
        format!("[validation]\nload = [{:?}, {:?}]\n", cs.display().to_string(), vs.display().to_string()),
    )
    .unwrap();
    let s = Serve::new(dir).config(&config);
    if no_auth { s.without_admin_key().arg("--insecure-no-auth") } else { s }
}

/// The gateway under test, delegating to `servers` (TOML of `[[terminology.servers]]`).
fn validator_gateway(dir: &Path, servers: &str, ttl_secs: u64) -> Serve {
    let config = dir.join("mhg.toml");
    std::fs::write(&config, format!("[terminology]\ncache_ttl_secs = {ttl_secs}\n{servers}")).unwrap();
    Serve::new(dir).config(&config)
}

async fn validate(base: &str, resource: &Value) -> Vec<Value> {
    let r = http().post(format!("{base}/fhir/$validate")).header("content-type", "application/fhir+json").body(resource.to_string());
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let oo: Value = resp.json().await.unwrap();
    oo["issue"].as_array().unwrap().iter().filter(|i| i["severity"] != "information").cloned().collect()
}

fn texts(issues: &[Value]) -> Vec<String> {
    issues.iter().map(|i| format!("{} {}: {}", i["severity"].as_str().unwrap(), i["expression"][0], i["details"]["text"])).collect()
}

#[tokio::test]
async fn codes_are_checked_by_the_server_and_cached_until_expiry() {
    let tx_dir = tempfile::tempdir().unwrap();
    let tx = tx_server(tx_dir.path(), false);
    let tx_run = tx.start().await;
    let tx_base = format!("{}/fhir", tx.base());
    let dir = tempfile::tempdir().unwrap();
    // The server requires a key: given as destinations give theirs.
    let key = dir.path().join("tx-key");
    std::fs::write(&key, TEST_ADMIN_KEY).unwrap();
    let servers = format!(
        "[[terminology.servers]]\nurl = \"{tx_base}\"\ncode_systems = [\"{COLOURS}\"]\ntimeout_ms = 10000\nauth = {{ type = \"bearer\", token_file = {:?} }}\n",
        key.display().to_string()
    );
    let gw = validator_gateway(dir.path(), &servers, 3600);
    let run = gw.start().await;
    let base = gw.base();

    let valid = observation(json!([coding(COLOURS, "red", Some("Red"))]));
    let invalid = observation(json!([coding(COLOURS, "blue", None)]));
    let wrong_display = observation(json!([coding(COLOURS, "green", Some("Vert"))]));
    assert_eq!(texts(&validate(&base, &valid).await), Vec::<String>::new());
    let bad = validate(&base, &invalid).await;
    assert_eq!(bad.len(), 1, "{:?}", texts(&bad));
    assert_eq!(bad[0]["severity"], "error");
    assert_eq!(bad[0]["code"], "code-invalid");
    assert_eq!(bad[0]["expression"][0], "Observation.code.coding[0].code");
    let text = bad[0]["details"]["text"].as_str().unwrap();
    assert!(text.contains(COLOURS) && text.contains(&tx_base), "{text}");
    let disp = validate(&base, &wrong_display).await;
    assert_eq!(
        texts(&disp),
        [format!(
            "error \"Observation.code.coding[0].display\": \"wrong display for the code in the code system {COLOURS}: the valid display is 'Green' (terminology server {tx_base})\""
        )]
    );

    // The terminology server goes away: the verdicts come from the cache, also after a restart.
    tx_run.kill();
    assert!(validate(&base, &valid).await.is_empty());
    run.stop();
    let run = gw.start().await;
    assert!(validate(&base, &valid).await.is_empty(), "from the disk cache");
    assert_eq!(validate(&base, &invalid).await.len(), 1, "invalid verdicts are cached too");
    run.stop();

    // Past its expiry (1 s, and more than that has passed) the cache is not used: unavailable.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let gw = validator_gateway(dir.path(), &servers, 1);
    let _run = gw.start().await;
    let issues = validate(&gw.base(), &valid).await;
    assert_eq!(issues.len(), 1, "{:?}", texts(&issues));
    assert_eq!(issues[0]["severity"], "warning");
    let text = issues[0]["details"]["text"].as_str().unwrap();
    assert!(text.contains("not checked, terminology server unavailable") && text.contains(&tx_base), "{text}");
    assert!(!text.contains("Red"), "no display quoted: {text}");
}

#[tokio::test]
async fn bindings_to_value_sets_not_expandable_here_are_checked_by_the_server() {
    let tx_dir = tempfile::tempdir().unwrap();
    let tx = tx_server(tx_dir.path(), true);
    let tx_run = tx.start().await;
    let tx_base = format!("{}/fhir", tx.base());
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("warm-observation.json");
    std::fs::write(&sd, profile().to_string()).unwrap();
    let config = dir.path().join("mhg.toml");
    std::fs::write(
        &config,
        format!(
            "[validation]\nload = [{:?}]\n[[terminology.servers]]\nurl = \"{tx_base}\"\ncode_systems = [\"{COLOURS}\"]\nvalue_sets = [\"{WARM}\"]\n",
            sd.display().to_string()
        ),
    )
    .unwrap();
    let gw = Serve::new(dir.path()).config(&config);
    let _run = gw.start().await;
    let warm = |code: &str| {
        let mut o = observation(json!([coding(COLOURS, code, None)]));
        o["meta"] = json!({"profile": [WARM_OBS]});
        o
    };
    assert_eq!(texts(&validate(&gw.base(), &warm("red")).await), Vec::<String>::new());
    assert_eq!(
        texts(&validate(&gw.base(), &warm("green")).await),
        [format!(
            "error \"Observation.code\": \"none of the codings is in the value set {WARM} (required binding), says the terminology server {tx_base}\""
        )]
    );
    // The server gone: what was asked is answered by the cache; a code never asked is not
    // checked, neither in its code system nor in the value set.
    tx_run.kill();
    assert!(validate(&gw.base(), &warm("red")).await.is_empty(), "cached");
    let mut other = warm("red");
    other["code"]["coding"][0]["code"] = json!("orange");
    let t = texts(&validate(&gw.base(), &other).await);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        t.iter().all(|x| x.starts_with("warning") && x.contains(&format!("terminology server unavailable: {tx_base}"))),
        "{t:?}"
    );
    assert!(
        t.iter().any(|x| x.contains(&format!("the binding to the value set {WARM} was not checked"))),
        "{t:?}"
    );
}

#[tokio::test]
async fn an_unreachable_or_silent_server_is_a_warning_naming_it() {
    // Nothing listens on `down`; `slow` accepts connections and never answers.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/fhir", l.local_addr().unwrap().port())
    };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = format!("http://127.0.0.1:{}/fhir", silent.local_addr().unwrap().port());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming() {
            held.push(c);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let servers = format!(
        "[[terminology.servers]]\nurl = \"{down}\"\ncode_systems = [\"http://example.org/down\"]\ntimeout_ms = 2000\n\
         [[terminology.servers]]\nurl = \"{slow}\"\ncode_systems = [\"http://example.org/slow\"]\ntimeout_ms = 700\n"
    );
    let gw = validator_gateway(dir.path(), &servers, 3600);
    let _run = gw.start().await;
    let obs = observation(json!([coding("http://example.org/down", "a", None), coding("http://example.org/slow", "b", None)]));
    let issues = validate(&gw.base(), &obs).await;
    let t = texts(&issues);
    assert_eq!(issues.len(), 2, "{t:?}");
    assert!(issues.iter().all(|i| i["severity"] == "warning" && i["code"] == "transient"), "{t:?}");
    assert!(t[0].contains(&format!("terminology server unavailable: {down} (unreachable)")), "{t:?}");
    assert!(t[1].contains(&format!("terminology server unavailable: {slow} (no answer within 700 ms)")), "{t:?}");
    assert!(issues[0]["expression"][0] == "Observation.code.coding[0].code", "{t:?}");
}

#[tokio::test]
async fn mhg_validate_tx_asks_the_server_for_unloaded_systems() {
    let tx_dir = tempfile::tempdir().unwrap();
    let tx = tx_server(tx_dir.path(), true);
    let _tx_run = tx.start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(&good, observation(json!([coding(COLOURS, "red", None)])).to_string()).unwrap();
    std::fs::write(&bad, observation(json!([coding(COLOURS, "blue", None)])).to_string()).unwrap();
    let run = |file: &Path, tx: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_mhg"))
            .current_dir(dir.path())
            .env("MHG_HOME", root())
            .args(["validate", "--tx", tx])
            .arg(file)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let tx_base = format!("{}/fhir", tx.base());
    let (code, out) = run(&good, &tx_base);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&bad, &tx_base);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("code-invalid") && out.contains(&tx_base), "{out}");
    // Without --tx the code is not checked (no content here), so no error.
    let out =
        Command::new(env!("CARGO_BIN_EXE_mhg")).current_dir(dir.path()).env("MHG_HOME", root()).arg("validate").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    // A --tx nobody answers: a warning, exit 0.
    let nobody = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/fhir", l.local_addr().unwrap().port())
    };
    let other = dir.path().join("other.json");
    std::fs::write(&other, observation(json!([coding("http://example.org/elsewhere", "x", None)])).to_string()).unwrap();
    let (code, out) = run(&other, &nobody);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("terminology server unavailable: {nobody}")), "{out}");
    let (code, out) = run(&good, "ftp://x");
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = run(&bad, "n/a");
    assert_eq!(code, Some(0), "no server: {out}");
}
