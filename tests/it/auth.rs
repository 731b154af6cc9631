//! Who may call: every scope on every route, API keys (hashed, bootstrapped, managed with
//! `mhg keys`), JWT bearer tokens (RS256, ES256, HS256; expiry, audience, issuer, signature,
//! `alg: none`), client certificates over HTTPS, destination and programme restrictions, and
//! each limit's own answer (429 rate, 429 concurrency, 408 timeout).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::*;
use crate::support::Serve;
use mhg::auth::{Auth, AuthConfig, ClientConfig};
use mhg::http::{AppState, Guard, RelayState, router};

const KEYS: &[(&str, &str)] = &[
    ("convert", "mhg_key-convert-000000000000000000000000"),
    ("records:write", "mhg_key-records-000000000000000000000000"),
    ("submissions:read", "mhg_key-subread-000000000000000000000000"),
    ("validate", "mhg_key-validate-00000000000000000000000"),
    ("metrics", "mhg_key-metrics-000000000000000000000000"),
    ("admin", "mhg_key-admin-00000000000000000000000000"),
    ("summary:read", "mhg_key-summary-000000000000000000000000"),
];

fn key_of(scope: &str) -> &'static str {
    KEYS.iter().find(|(s, _)| *s == scope).map(|(_, k)| *k).unwrap()
}

struct App {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

async fn app_with(auth: AuthConfig, guard: impl Fn(Arc<Auth>) -> Guard) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = mhg::queue::Store::open(&format!("sqlite://{}", dir.path().join("mhg.db").display())).await.unwrap();
    let outbox = mhg::relay::DestinationConfig {
        path: Some(dir.path().join("outbox")),
        ..mhg::relay::DestinationConfig::new("outbox", mhg::relay::DestinationKind::Directory)
    };
    let auth = Arc::new(Auth::from_config(&auth).expect("auth"));
    let state = AppState {
        pipeline: pipeline(),
        max_body_bytes: 1024 * 1024,
        max_records: 100,
        relay: Some(RelayState {
            committer: mhg::queue::commit::Committer::start(store.clone()),
            store,
            destinations: Arc::new(vec![outbox]),
            wake: Arc::new(tokio::sync::Notify::new()),
        }),
        guard: Arc::new(guard(auth)),
    };
    App { router: router(state), _dir: dir }
}

fn clients() -> AuthConfig {
    AuthConfig {
        keys_file: "/nonexistent/keys.json".into(),
        clients: KEYS.iter().map(|(s, k)| test_client(&format!("client-{s}"), k, &[s])).collect(),
        ..Default::default()
    }
}

fn unlimited(a: Arc<Auth>) -> Guard {
    Guard::new(a, 0, 0, 0, Duration::ZERO)
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.expect("answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn record_body() -> String {
    std::fs::read_to_string(root().join("tests/golden/records/32-shared-labour-minimal.json")).unwrap()
}

/// (method, path, body, the scope it needs)
fn routes() -> Vec<(&'static str, String, Option<String>, &'static str)> {
    vec![
        ("POST", "/fhir/$convert".into(), Some(record_body()), "convert"),
        ("POST", "/records".into(), Some(record_body()), "records:write"),
        ("GET", "/submissions/00000000-0000-0000-0000-000000000000".into(), None, "submissions:read"),
        ("GET", "/submissions/00000000-0000-0000-0000-000000000000/audit".into(), None, "submissions:read"),
        ("GET", "/submissions?state=delivered".into(), None, "submissions:read"),
        ("GET", "/submissions?state=dead-letter".into(), None, "admin"),
        ("POST", "/submissions/00000000-0000-0000-0000-000000000000/$replay".into(), None, "admin"),
        ("GET", "/metrics".into(), None, "metrics"),
        ("POST", "/fhir/$validate".into(), Some(json!({"resourceType": "Patient"}).to_string()), "validate"),
        (
            "POST",
            "/fhir/Patient/$validate".into(),
            Some(json!({"resourceType": "Patient"}).to_string()),
            "validate",
        ),
        ("GET", "/fhir/Patient/$summary?identifier=https://x.example/id%7CP-1".into(), None, "summary:read"),
        (
            "POST",
            "/fhir/Patient/$summary".into(),
            Some(json!({"resourceType": "Parameters", "parameter": [{"name": "identifier", "valueString": "s|P-1"}]}).to_string()),
            "summary:read",
        ),
    ]
}

fn request(method: &str, path: &str, body: &Option<String>, key: Option<&str>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path).header("content-type", "application/fhir+json");
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    r.body(body.clone().map(Body::from).unwrap_or_else(Body::empty)).unwrap()
}

fn implied(have: &str, need: &str) -> bool {
    have == need || have == "admin" || (have == "records:write" && need == "convert")
}

#[tokio::test]
async fn every_scope_on_every_route() {
    let app = app_with(clients(), unlimited).await;
    // Public routes answer without credentials.
    for path in ["/health", "/ready", "/fhir/metadata"] {
        let (s, _, _) = send(&app.router, request("GET", path, &None, None)).await;
        assert_eq!(s, StatusCode::OK, "{path} is public");
    }
    for (method, path, body, need) in routes() {
        // No credentials: 401, an OperationOutcome, and a challenge.
        let (s, h, oo) = send(&app.router, request(method, &path, &body, None)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} without credentials");
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["code"], "login");
        assert!(h.get("www-authenticate").is_some());
        // A key nobody issued: 401.
        let (s, _, oo) = send(&app.router, request(method, &path, &body, Some("mhg_not-a-key-00000000000000000000000000"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path} with an unknown key");
        assert_eq!(oo["issue"][0]["code"], "security");
        // Each scope: allowed where it (or a scope implying it) is needed, else 403 naming the scope.
        for (have, key) in KEYS {
            let (s, _, oo) = send(&app.router, request(method, &path, &body, Some(key))).await;
            if implied(have, need) {
                assert!(s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN, "{have} may {method} {path}: {s} {oo}");
            } else {
                assert_eq!(s, StatusCode::FORBIDDEN, "{have} may not {method} {path}");
                assert_eq!(oo["issue"][0]["code"], "forbidden");
                assert!(oo["issue"][0]["details"]["text"].as_str().unwrap().contains(need), "{oo}");
            }
        }
    }
    // An unknown route is not revealed to anonymous callers.
    let (s, _, _) = send(&app.router, request("GET", "/secret", &None, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(&app.router, request("GET", "/secret", &None, Some(key_of("admin")))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn submitter_and_restrictions_come_from_the_caller() {
    let mut cfg = clients();
    let mut narrow = test_client("moh-only", "mhg_key-narrow-0000000000000000000000000", &["records:write"]);
    narrow.destinations = Some(vec!["moh".into()]);
    let mut labour_only = test_client("labour-only", "mhg_key-labour-0000000000000000000000000", &["records:write"]);
    labour_only.programmes = Some(vec!["us-refugee".into()]);
    cfg.clients.push(narrow);
    cfg.clients.push(labour_only);
    let app = app_with(cfg, unlimited).await;
    let body = Some(record_body());
    // The record routes to `outbox`, which this client may not submit for.
    let (s, _, oo) = send(&app.router, request("POST", "/records", &body, Some("mhg_key-narrow-0000000000000000000000000"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{oo}");
    assert!(oo["issue"][0]["details"]["text"].as_str().unwrap().contains("outbox"));
    // The record is of the `labour` programme.
    let (s, _, oo) = send(&app.router, request("POST", "/records", &body, Some("mhg_key-labour-0000000000000000000000000"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{oo}");
    assert_eq!(oo["issue"][0]["location"][0], "/assessment/programme");
    // An unrestricted writer is accepted, and is the submitter of record.
    let (s, _, a) = send(&app.router, request("POST", "/records", &body, Some(key_of("records:write")))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{a}");
    let id = a["id"].as_str().unwrap();
    let (s, _, v) = send(&app.router, request("GET", &format!("/submissions/{id}"), &None, Some(key_of("submissions:read")))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["submitter"], "client-records:write");
}

// ---------- JWT ----------

fn token(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let h = B64.encode(header.to_string());
    let c = B64.encode(claims.to_string());
    let msg = format!("{h}.{c}");
    let sig = sign(msg.as_bytes());
    format!("{msg}.{}", B64.encode(sig))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn jwt_bearer_tokens_are_checked() {
    use ring::signature::{self, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    // RS256 with the test RSA key; ES256 with a fresh P-256 key; HS256 with a shared secret.
    let pem = std::fs::read(root().join("tests/fixtures/smart-rs384-test-key.pem")).unwrap();
    let der = {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        match PrivateKeyDer::from_pem_slice(&pem).unwrap() {
            PrivateKeyDer::Pkcs8(d) => d.secret_pkcs8_der().to_vec(),
            _ => panic!("PKCS#8 expected"),
        }
    };
    let rsa = signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let ec_doc = signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, ec_doc.as_ref(), &rng).unwrap();
    let point = ec.public_key().as_ref();
    let components: ring::rsa::PublicKeyComponents<Vec<u8>> = rsa.public().into();
    let (n, e) = (&components.n, &components.e);
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa1", "n": B64.encode(n), "e": B64.encode(e)},
        {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])}
    ]});
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let secret = "a-shared-secret-of-at-least-32-bytes-long";
    std::fs::write(dir.path().join("secret"), secret).unwrap();
    let issuers: Vec<mhg::auth::jwt::IssuerConfig> = vec![
        toml::from_str(&format!(
            "issuer = \"https://idp.example\"\naudience = \"mhg\"\njwks_file = \"{}\"\nalgorithms = [\"RS256\", \"ES256\"]\ndestinations = [\"outbox\"]\n",
            dir.path().join("jwks.json").display()
        ))
        .unwrap(),
        toml::from_str(&format!(
            "issuer = \"https://hs.example\"\naudience = \"mhg\"\nsecret_file = \"{}\"\nalgorithms = [\"HS256\"]\n",
            dir.path().join("secret").display()
        ))
        .unwrap(),
    ];
    let cfg = AuthConfig { keys_file: "/nonexistent/keys.json".into(), jwt: issuers, ..Default::default() };
    let app = app_with(cfg, unlimited).await;

    let rs = |m: &[u8]| {
        let mut sig = vec![0; rsa.public().modulus_len()];
        rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut sig).unwrap();
        sig
    };
    let es = |m: &[u8]| ec.sign(&rng, m).unwrap().as_ref().to_vec();
    let hs = |m: &[u8]| ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()), m).as_ref().to_vec();
    let claims = |scope: &str, exp: i64| json!({"iss": "https://idp.example", "aud": ["mhg", "other"], "exp": exp, "client_id": "ke-moh-uploader", "scope": scope});
    let call = |tok: String| {
        let router = app.router.clone();
        async move {
            let req = Request::get("/metrics").header("authorization", format!("Bearer {tok}")).body(Body::empty()).unwrap();
            let (s, _, oo) = send(&router, req).await;
            (s, oo["issue"][0]["code"].as_str().unwrap_or("").to_owned())
        }
    };
    let good = token(json!({"alg": "RS256", "kid": "rsa1"}), claims("metrics submissions:read", now() + 300), rs);
    assert_eq!(call(good).await.0, StatusCode::OK);
    let good_ec = token(json!({"alg": "ES256", "kid": "ec1"}), claims("system/metrics", now() + 300), es);
    assert_eq!(call(good_ec).await.0, StatusCode::OK, "ES256, SMART-style scope");
    let hs_claims = json!({"iss": "https://hs.example", "aud": "mhg", "exp": now() + 300, "sub": "clinic-7", "scp": ["metrics"]});
    assert_eq!(call(token(json!({"alg": "HS256"}), hs_claims.clone(), hs)).await.0, StatusCode::OK);
    // Wrong scope: 403. Expired: 401 `expired`. Wrong audience, unknown issuer, tampered, alg none,
    // an algorithm the issuer does not accept: 401.
    assert_eq!(
        call(token(json!({"alg": "RS256"}), claims("validate", now() + 300), rs)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(token(json!({"alg": "RS256"}), claims("metrics", now() - 3600), rs)).await,
        (StatusCode::UNAUTHORIZED, "expired".into())
    );
    let mut wrong_aud = claims("metrics", now() + 300);
    wrong_aud["aud"] = json!("someone-else");
    assert_eq!(call(token(json!({"alg": "RS256"}), wrong_aud, rs)).await.0, StatusCode::UNAUTHORIZED);
    let mut other_iss = claims("metrics", now() + 300);
    other_iss["iss"] = json!("https://evil.example");
    assert_eq!(call(token(json!({"alg": "RS256"}), other_iss, rs)).await.0, StatusCode::UNAUTHORIZED);
    let good = token(json!({"alg": "RS256"}), claims("metrics", now() + 300), rs);
    let mut parts: Vec<&str> = good.split('.').collect();
    let admin_claims = B64.encode(claims("admin", now() + 300).to_string());
    parts[1] = &admin_claims;
    assert_eq!(call(parts.join(".")).await.0, StatusCode::UNAUTHORIZED, "claims changed after signing");
    assert_eq!(
        call(token(json!({"alg": "none"}), claims("metrics", now() + 300), |_| Vec::new())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(token(json!({"alg": "HS256"}), claims("metrics", now() + 300), hs)).await.0,
        StatusCode::UNAUTHORIZED,
        "HS256 not accepted from the RS issuer"
    );
    let mut no_exp = claims("metrics", now());
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(call(token(json!({"alg": "RS256"}), no_exp, rs)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call("not.a.jwt".into()).await.0, StatusCode::UNAUTHORIZED);
}

// ---------- limits ----------

#[tokio::test]
async fn rate_limit_per_client_answers_429_with_retry_after() {
    let app = app_with(clients(), |a| Guard::new(a, 1, 2, 0, Duration::ZERO)).await;
    let get = |k: &'static str| request("GET", "/metrics", &None, Some(k));
    assert_eq!(send(&app.router, get(key_of("metrics"))).await.0, StatusCode::OK);
    assert_eq!(send(&app.router, get(key_of("metrics"))).await.0, StatusCode::OK);
    let (s, h, oo) = send(&app.router, get(key_of("metrics"))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.get("retry-after").is_some());
    assert_eq!(oo["issue"][0]["details"]["coding"][0]["code"], "rate-limited");
    // Another client is not held back by the first.
    assert_eq!(send(&app.router, get(key_of("admin"))).await.0, StatusCode::OK);
    // Public routes are never limited.
    assert_eq!(send(&app.router, request("GET", "/health", &None, None)).await.0, StatusCode::OK);
}

/// A body that never finishes: the request stays in progress.
fn endless() -> (Body, tokio::sync::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    (Body::from_stream(stream), tx)
}

#[tokio::test]
async fn concurrency_limit_and_timeout_have_their_own_answers() {
    let app = app_with(clients(), |a| Guard::new(a, 0, 0, 1, Duration::from_millis(300))).await;
    let (body, tx) = endless();
    let slow = Request::post("/fhir/$convert").header("x-api-key", key_of("convert")).body(body).unwrap();
    let router = app.router.clone();
    let first = tokio::spawn(async move { send(&router, slow).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, h, oo) = send(&app.router, request("GET", "/metrics", &None, Some(key_of("metrics")))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{oo}");
    assert!(h.get("retry-after").is_some());
    assert_eq!(oo["issue"][0]["details"]["coding"][0]["code"], "overloaded");
    let (s, _, oo) = first.await.unwrap();
    drop(tx);
    assert_eq!(s, StatusCode::REQUEST_TIMEOUT, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "timeout");
    // The slot is free again.
    assert_eq!(
        send(&app.router, request("GET", "/metrics", &None, Some(key_of("metrics")))).await.0,
        StatusCode::OK
    );
}

// ---------- the real binary: first-start admin key, `mhg keys`, --insecure-no-auth ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_makes_an_admin_key_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::new(dir.path()).without_admin_key();
    let base = serve.base();
    let gw = serve.start().await;
    let anon = anonymous_http();
    assert_eq!(anon.get(format!("{base}/metrics")).send().await.unwrap().status(), 401);
    let out = gw.stop();
    let key = out.split_whitespace().find(|w| w.starts_with("mhg_")).expect("the admin key is printed").to_owned();
    // Only its hash is stored.
    let keys = std::fs::read_to_string(dir.path().join("data/keys.json")).unwrap();
    assert!(!keys.contains(&key));
    assert!(keys.contains(&mhg::auth::sha256_hex(key.as_bytes())));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.path().join("data/keys.json")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // A second start prints nothing, and the key works.
    let gw = serve.start().await;
    let r = anon.get(format!("{base}/metrics")).header("x-api-key", &key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // `mhg keys add` makes a narrower key that the running gateway takes within a second or two.
    let add = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"))
        .args(["keys", "add", "clinic-uploader", "--scope", "convert"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let clinic = String::from_utf8(add.stdout).unwrap().trim().to_owned();
    assert!(clinic.starts_with("mhg_"));
    let mut status = 0;
    for _ in 0..40 {
        status = anon
            .post(format!("{base}/fhir/$convert"))
            .header("x-api-key", &clinic)
            .header("content-type", "application/json")
            .body(record_body())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(anon.get(format!("{base}/metrics")).header("x-api-key", &clinic).send().await.unwrap().status(), 403);
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_mhg")).args(["keys", "list"]).current_dir(dir.path()).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains("clinic-uploader\tconvert") && !list.contains(&clinic));
    let revoke = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"))
        .args(["keys", "revoke", "clinic-uploader"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(revoke.success());
    let mut status = 0;
    for _ in 0..40 {
        status =
            anon.get(format!("{base}/submissions?state=delivered")).header("x-api-key", &clinic).send().await.unwrap().status().as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "a revoked key stops working");
    let out = gw.stop();
    assert!(!out.contains("mhg_"), "the admin key is printed only on the first start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_no_auth_is_loud() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::new(dir.path()).without_admin_key().arg("--insecure-no-auth");
    let gw = serve.start().await;
    assert_eq!(anonymous_http().get(format!("{}/metrics", serve.base())).send().await.unwrap().status(), 200);
    gw.stop();
    let log = std::fs::read_to_string(serve.log()).unwrap();
    assert!(log.contains("AUTHENTICATION IS OFF"), "{log}");
    assert!(!dir.path().join("data/keys.json").exists(), "no key is made when authentication is off");
}

// ---------- HTTPS and client certificates ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_client_certificates() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(rcgen::DnType::CommonName, "moh-uploader");
    cp.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = cp.signed_by(&client_key, &issuer).unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), ca.pem()).unwrap();
    std::fs::write(p("server.pem"), server.pem()).unwrap();
    std::fs::write(p("server.key"), server_key.serialize_pem()).unwrap();
    let tls_cfg = mhg::http::tls::TlsConfig {
        cert_file: p("server.pem"),
        key_file: p("server.key"),
        client_ca_file: Some(p("ca.pem")),
        client_auth: Some("optional".into()),
    };
    let tls = mhg::http::tls::server_config(&tls_cfg).unwrap();
    let cfg = AuthConfig {
        keys_file: "/nonexistent/keys.json".into(),
        clients: vec![
            ClientConfig {
                cert_sha256: Some(mhg::auth::sha256_hex(client.der())),
                key_sha256: None,
                ..test_client("moh-uploader", "x", &["metrics"])
            },
            test_client("key-holder", key_of("metrics"), &["metrics"]),
        ],
        ..Default::default()
    };
    let app = app_with(cfg, unlimited).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = app.router.clone();
    let server_task = tokio::spawn(mhg::http::tls::serve(listener, tls, router, std::future::pending()));
    let base = format!("https://localhost:{port}");
    mhg::relay::install_tls();
    let ca_cert = reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap();
    let resolve = |b: reqwest::ClientBuilder| b.resolve("localhost", ([127, 0, 0, 1], port).into()).tls_certs_only([ca_cert.clone()]);
    // With the client certificate: known by its fingerprint, no key needed.
    let identity = reqwest::Identity::from_pem(format!("{}\n{}", client.pem(), client_key.serialize_pem()).as_bytes()).unwrap();
    let with_cert = resolve(reqwest::Client::builder()).identity(identity).build().unwrap();
    assert_eq!(with_cert.get(format!("{base}/metrics")).send().await.unwrap().status(), 200);
    // Without one: an API key still works over HTTPS; nothing at all is 401.
    let plain = resolve(reqwest::Client::builder()).build().unwrap();
    assert_eq!(plain.get(format!("{base}/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(
        plain.get(format!("{base}/metrics")).header("x-api-key", key_of("metrics")).send().await.unwrap().status(),
        200
    );
    assert_eq!(plain.get(format!("{base}/health")).send().await.unwrap().status(), 200);
    server_task.abort();

    // client_auth = "required": no certificate, no connection.
    let required = mhg::http::tls::server_config(&mhg::http::tls::TlsConfig { client_auth: Some("required".into()), ..tls_cfg }).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port2 = listener.local_addr().unwrap().port();
    let task = tokio::spawn(mhg::http::tls::serve(listener, required, app.router.clone(), std::future::pending()));
    let plain = reqwest::Client::builder().resolve("localhost", ([127, 0, 0, 1], port2).into()).tls_certs_only([ca_cert]).build().unwrap();
    assert!(plain.get(format!("https://localhost:{port2}/health")).send().await.is_err());
    task.abort();
}
