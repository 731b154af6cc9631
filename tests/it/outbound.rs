//! Outbound security on real TLS: a destination behind mutual TLS with a private CA
//! (certificates made by the test), OAuth2 client credentials, and SMART Backend Services with
//! RS384 and ES384 assertions verified by a fake authorisation server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use crate::common::*;
use crate::relay::{post_records, record, wait_state};
use crate::support::{Gateway, fhir_destination, sqlite_url};
use mhg::relay::{AuthConfig, TlsConfig};

fn tx_response() -> String {
    json!({"resourceType": "Bundle", "type": "transaction-response",
           "entry": [{"response": {"status": "201 Created", "location": "Patient/1/_history/1"}}]})
    .to_string()
}

fn form(body: &str) -> std::collections::HashMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() + 1 {
                    out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
                    i += 3;
                } else {
                    out.push(if b[i] == b'+' { b' ' } else { b[i] });
                    i += 1;
                }
            }
            (k.to_owned(), String::from_utf8(out).unwrap())
        })
        .collect()
}

/// How the fake authorisation server checks a token request.
#[derive(Clone)]
enum Check {
    Secret { client_id: String, secret: String },
    Jwt { client_id: String, alg: &'static dyn ring::signature::VerificationAlgorithm, key: Vec<u8> },
}

/// A fake FHIR server behind a fake authorisation server: `/token` issues tokens after checking
/// the client's secret or signed assertion; `/fhir` takes only issued tokens.
async fn auth_fake(check: Check) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let token_calls = Arc::new(AtomicUsize::new(0));
    let issued: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token_url = format!("{base}/token");
    let (tc, is1, is2) = (token_calls.clone(), issued.clone(), issued.clone());
    let app = axum::Router::new()
        .route(
            "/token",
            axum::routing::post(move |body: String| {
                let (tc, issued, check, token_url) = (tc.clone(), is1.clone(), check.clone(), token_url.clone());
                async move {
                    tc.fetch_add(1, Ordering::SeqCst);
                    let f = form(&body);
                    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
                        return (StatusCode::BAD_REQUEST, "grant_type".to_owned()).into_response();
                    }
                    let ok = match &check {
                        Check::Secret { client_id, secret } => {
                            f.get("client_id") == Some(client_id) && f.get("client_secret") == Some(secret)
                        }
                        Check::Jwt { client_id, alg, key } => {
                            let jwt = f.get("client_assertion").cloned().unwrap_or_default();
                            let parts: Vec<&str> = jwt.split('.').collect();
                            let type_ok = f.get("client_assertion_type").map(String::as_str)
                                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
                            parts.len() == 3 && type_ok && {
                                let claims: Value =
                                    serde_json::from_slice(&B64.decode(parts[1]).unwrap_or_default()).unwrap_or(Value::Null);
                                let sig = B64.decode(parts[2]).unwrap_or_default();
                                let signed = format!("{}.{}", parts[0], parts[1]);
                                ring::signature::UnparsedPublicKey::new(*alg, key).verify(signed.as_bytes(), &sig).is_ok()
                                    && claims["iss"] == client_id.as_str()
                                    && claims["sub"] == client_id.as_str()
                                    && claims["aud"] == token_url.as_str()
                                    && claims["jti"].is_string()
                                    && claims["exp"].as_i64().is_some_and(|e| e > mhg::queue::now_ms() / 1000)
                            }
                        }
                    };
                    if !ok {
                        return (StatusCode::UNAUTHORIZED, "{\"error\":\"invalid_client\"}".to_owned()).into_response();
                    }
                    let t = format!("tok-{}", uuid::Uuid::new_v4().simple());
                    issued.lock().unwrap().push(t.clone());
                    (StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": 300}).to_string()).into_response()
                }
            }),
        )
        .route(
            "/fhir",
            axum::routing::post(move |headers: HeaderMap| {
                let issued = is2.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                    let ok = auth.strip_prefix("Bearer ").is_some_and(|t| issued.lock().unwrap().iter().any(|i| i == t));
                    if ok {
                        (StatusCode::OK, tx_response()).into_response()
                    } else {
                        (StatusCode::UNAUTHORIZED, "{}".to_owned()).into_response()
                    }
                }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, token_calls, issued)
}

async fn deliver_three(gw: &Gateway, prefix: &str) {
    let client = http();
    for i in 0..3 {
        let (s, r) = post_records(&client, &gw.base, record(&format!("{prefix}-{i}"), &format!("{prefix}P-{i}"), 1).to_string()).await;
        assert_eq!(s, 202, "{r}");
        wait_state(&client, &gw.base, r["id"].as_str().unwrap(), "delivered", 20).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_client_credentials() {
    let (base, calls, _) = auth_fake(Check::Secret { client_id: "mhg-test".into(), secret: "s3cret-value".into() }).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret-value\n").unwrap();
    let mut d = fhir_destination("moh", &format!("{base}/fhir"));
    d.auth = AuthConfig::Oauth2 {
        token_url: format!("{base}/token"),
        client_id: "mhg-test".into(),
        client_secret_file: Some(secret),
        client_secret_env: None,
        scope: Some("system/*.write".into()),
    };
    let gw = Gateway::start(&sqlite_url(&dir).await, vec![d]).await;
    deliver_three(&gw, "OA").await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the token is cached until it expires");
    gw.stop().await;
}

async fn smart(alg: &str, key_pem: String, verify: &'static dyn ring::signature::VerificationAlgorithm, public: Vec<u8>) {
    let (base, calls, _) = auth_fake(Check::Jwt { client_id: "mhg-smart".into(), alg: verify, key: public }).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, key_pem).unwrap();
    let mut d = fhir_destination("moh", &format!("{base}/fhir"));
    d.auth = AuthConfig::Smart {
        token_url: format!("{base}/token"),
        client_id: "mhg-smart".into(),
        private_key_file: key,
        algorithm: alg.into(),
        kid: Some("k1".into()),
        scope: Some("system/*.write".into()),
    };
    let gw = Gateway::start(&sqlite_url(&dir).await, vec![d]).await;
    deliver_three(&gw, &format!("SM{alg}")).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the token is cached until it expires");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_backend_services_es384() {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    smart("ES384", kp.serialize_pem(), &ring::signature::ECDSA_P384_SHA384_FIXED, kp.public_key_raw().to_vec()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_backend_services_rs384() {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let path = root().join("tests/fixtures/smart-rs384-test-key.pem");
    let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_file(&path).unwrap() else { panic!("pkcs8") };
    let kp = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    let public = ring::signature::KeyPair::public_key(&kp).as_ref().to_vec();
    smart(
        "RS384",
        std::fs::read_to_string(&path).unwrap(),
        &ring::signature::RSA_PKCS1_2048_8192_SHA384,
        public,
    )
    .await;
}

/// A TLS destination that demands a client certificate from a private CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    mhg::relay::install_tls();

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "mhg test ministry CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap().signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(rcgen::DnType::CommonName, "mhg gateway");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = cp.signed_by(&client_key, &issuer).unwrap();

    // The destination: TLS, client certificate required and checked against the CA.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_cert.der().to_vec())).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
    let server_config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicUsize::new(0));
    let r2 = received.clone();
    let app = axum::Router::new().route(
        "/fhir",
        axum::routing::post(move || {
            let r = r2.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                (StatusCode::OK, tx_response())
            }
        }),
    );
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let svc = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                }
            });
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca_file = write("ca.pem", ca_cert.pem());
    let tls = TlsConfig {
        ca_file: Some(ca_file.clone()),
        client_cert_file: Some(write("client.pem", client_cert.pem())),
        client_key_file: Some(write("client-key.pem", client_key.serialize_pem())),
    };
    let mut with_cert = fhir_destination("moh-mtls", &format!("https://127.0.0.1:{port}/fhir"));
    with_cert.tls = tls;
    with_cert.countries = vec!["QAT".into()];
    // The same server without a client certificate: the handshake fails, delivery is retried.
    let mut without = fhir_destination("moh-no-cert", &format!("https://127.0.0.1:{port}/fhir"));
    without.tls = TlsConfig { ca_file: Some(ca_file), client_cert_file: None, client_key_file: None };
    without.countries = vec!["QAT".into()];

    let gw = Gateway::start(&sqlite_url(&dir).await, vec![with_cert, without]).await;
    let client = http();
    let (s, r) = post_records(&client, &gw.base, record("TLS-1", "TLSP-1", 1).to_string()).await;
    assert_eq!(s, 202, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let st = crate::relay::status(&client, &gw.base, &id).await;
        let by = |n: &str| st["deliveries"].as_array().unwrap().iter().find(|d| d["destination"] == n).cloned().unwrap();
        if by("moh-mtls")["state"] == "delivered" && by("moh-no-cert")["attempts"].as_i64().unwrap_or(0) >= 1 {
            // Retried: waiting for its next attempt, or in one (a lease) when the backoff is short.
            let state = by("moh-no-cert")["state"].as_str().unwrap_or_default().to_owned();
            assert!(
                matches!(state.as_str(), "pending" | "leased"),
                "no client certificate: not delivered, retried: {state}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(received.load(Ordering::SeqCst), 1, "only the client with a certificate got through");
    gw.stop().await;
}
