//! Outbound credentials: static bearer tokens, OAuth2 client credentials, and SMART Backend
//! Services (`private_key_jwt`, RS384 or ES384). Tokens are cached until shortly before they
//! expire, and dropped when the destination answers 401.
//!
//! Secrets are read from files or environment variables at start-up; no secret, token or
//! assertion is ever logged, and `Debug` of these types prints none of them.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::calendar::now_ms;

/// Outbound credentials of a destination (`auth = { type = ... }`).
#[derive(Clone, Deserialize, Default)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthConfig {
    #[default]
    None,
    /// A static token.
    Bearer { token_file: Option<PathBuf>, token_env: Option<String> },
    /// OAuth2 client credentials with a client secret (sent in the form body).
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret_file: Option<PathBuf>,
        client_secret_env: Option<String>,
        scope: Option<String>,
    },
    /// SMART Backend Services: client credentials with a signed JWT assertion.
    Smart {
        token_url: String,
        client_id: String,
        /// PKCS#8 PEM private key (RSA for RS384, P-384 for ES384).
        private_key_file: PathBuf,
        /// `RS384` or `ES384`.
        algorithm: String,
        /// Key id announced in the JWT header (as published in the client's JWKS).
        kid: Option<String>,
        scope: Option<String>,
    },
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthConfig::None => "None",
            AuthConfig::Bearer { .. } => "Bearer(<redacted>)",
            AuthConfig::Oauth2 { .. } => "Oauth2(<redacted>)",
            AuthConfig::Smart { .. } => "Smart(<redacted>)",
        })
    }
}

fn read_secret(
    at: &str,
    file: &Option<PathBuf>,
    var: &Option<String>,
    what: &str,
    env: &crate::environment::Env,
) -> Result<String, String> {
    match (file, var) {
        (Some(f), _) => std::fs::read_to_string(f)
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("{at}.auth.{what}_file: cannot read {}: {e}", f.display())),
        (None, Some(v)) => env.get(v).map(str::to_owned).ok_or_else(|| format!("{at}.auth.{what}_env: variable {v} is not set")),
        (None, None) => Err(format!("{at}.auth: give {what}_file or {what}_env")),
    }
}

enum Signer {
    Rsa(ring::signature::RsaKeyPair),
    Ec(ring::signature::EcdsaKeyPair),
}

enum Kind {
    None,
    Static(String),
    Oauth2 { token_url: String, client_id: String, secret: String, scope: Option<String> },
    Smart { token_url: String, client_id: String, signer: Box<Signer>, alg: &'static str, kid: Option<String>, scope: Option<String> },
}

/// Where a destination's `Authorization` header comes from.
pub struct TokenSource {
    kind: Kind,
    /// (token, unix ms after which it is no longer used)
    cache: Mutex<Option<(String, i64)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSource(<redacted>)")
    }
}

/// Why no token could be had. Carries no secret; `retryable` says whether the token endpoint
/// may answer later.
#[derive(Debug)]
pub struct TokenError {
    pub message: String,
    pub status: Option<u16>,
}

impl TokenSource {
    pub fn new(dest: &str, cfg: &AuthConfig, env: &crate::environment::Env) -> Result<TokenSource, String> {
        Self::named(&format!("destinations[{dest}]"), cfg, env)
    }

    /// As [`TokenSource::new`] for any configured client (`at` names it in errors, e.g.
    /// `terminology.servers[0]`).
    pub fn named(dest: &str, cfg: &AuthConfig, env: &crate::environment::Env) -> Result<TokenSource, String> {
        let kind = match cfg {
            AuthConfig::None => Kind::None,
            AuthConfig::Bearer { token_file, token_env } => Kind::Static(read_secret(dest, token_file, token_env, "token", env)?),
            AuthConfig::Oauth2 { token_url, client_id, client_secret_file, client_secret_env, scope } => Kind::Oauth2 {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                secret: read_secret(dest, client_secret_file, client_secret_env, "client_secret", env)?,
                scope: scope.clone(),
            },
            AuthConfig::Smart { token_url, client_id, private_key_file, algorithm, kid, scope } => {
                use rustls::pki_types::PrivateKeyDer;
                use rustls::pki_types::pem::PemObject;
                let at = format!("{dest}.auth.private_key_file");
                let key = PrivateKeyDer::from_pem_file(private_key_file)
                    .map_err(|e| format!("{at}: cannot read a PEM private key from {}: {e}", private_key_file.display()))?;
                let PrivateKeyDer::Pkcs8(der) = key else {
                    return Err(format!("{at}: the key must be PKCS#8 (BEGIN PRIVATE KEY)"));
                };
                let rng = ring::rand::SystemRandom::new();
                let (signer, alg) = match algorithm.as_str() {
                    "RS384" => (
                        Signer::Rsa(
                            ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
                                .map_err(|e| format!("{at}: not an RSA key: {e}"))?,
                        ),
                        "RS384",
                    ),
                    "ES384" => (
                        Signer::Ec(
                            ring::signature::EcdsaKeyPair::from_pkcs8(
                                &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                                der.secret_pkcs8_der(),
                                &rng,
                            )
                            .map_err(|e| format!("{at}: not a P-384 key: {e}"))?,
                        ),
                        "ES384",
                    ),
                    other => return Err(format!("{dest}.auth.algorithm: '{other}' (expected RS384 or ES384)")),
                };
                Kind::Smart {
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    signer: Box::new(signer),
                    alg,
                    kid: kid.clone(),
                    scope: scope.clone(),
                }
            }
        };
        Ok(TokenSource { kind, cache: Mutex::new(None) })
    }

    /// Forgets a cached token (the destination said 401).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// The bearer token to send, if any; fetches a new one when the cached one is near expiry.
    pub async fn token(&self, http: &reqwest::Client) -> Result<Option<String>, TokenError> {
        match &self.kind {
            Kind::None => return Ok(None),
            Kind::Static(t) => return Ok(Some(t.clone())),
            _ => {}
        }
        let mut cache = self.cache.lock().await;
        if let Some((t, until)) = cache.as_ref() {
            if now_ms() < *until {
                return Ok(Some(t.clone()));
            }
        }
        let (token_url, form) = match &self.kind {
            Kind::Oauth2 { token_url, client_id, secret, scope } => {
                let mut f = vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_id", client_id.clone()),
                    ("client_secret", secret.clone()),
                ];
                if let Some(s) = scope {
                    f.push(("scope", s.clone()));
                }
                (token_url, f)
            }
            Kind::Smart { token_url, client_id, signer, alg, kid, scope } => {
                let assertion = sign_assertion(signer, alg, kid.as_deref(), client_id, token_url)?;
                let mut f = vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
                    ("client_assertion", assertion),
                ];
                if let Some(s) = scope {
                    f.push(("scope", s.clone()));
                }
                (token_url, f)
            }
            Kind::None | Kind::Static(_) => return Ok(None),
        };
        let body: String = form.iter().map(|(k, v)| format!("{k}={}", crate::map::util::query_escape(v))).collect::<Vec<_>>().join("&");
        let resp = http
            .post(token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| TokenError {
                message: format!("token endpoint unreachable ({})", if e.is_timeout() { "timeout" } else { "transport" }),
                status: None,
            })?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        let Some(token) = v["access_token"].as_str().filter(|_| (200..300).contains(&status)) else {
            return Err(TokenError { message: format!("token endpoint answered {status} without an access_token"), status: Some(status) });
        };
        // Renew 30 s before expiry (or after 5 minutes when the server does not say).
        let life = v["expires_in"].as_i64().unwrap_or(300).max(0);
        *cache = Some((token.to_owned(), now_ms() + (life - 30).max(0) * 1000));
        Ok(Some(token.to_owned()))
    }
}

/// The SMART client assertion: iss = sub = client id, aud = token URL, 5 minutes, unique jti.
fn sign_assertion(signer: &Signer, alg: &str, kid: Option<&str>, client_id: &str, aud: &str) -> Result<String, TokenError> {
    let mut header = json!({"alg": alg, "typ": "JWT"});
    if let Some(k) = kid {
        header["kid"] = json!(k);
    }
    let now = now_ms() / 1000;
    let claims =
        json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 300, "iat": now, "jti": uuid::Uuid::new_v4().to_string()});
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let rng = ring::rand::SystemRandom::new();
    let fail = |_| TokenError { message: "could not sign the client assertion".into(), status: None };
    let sig = match signer {
        Signer::Rsa(k) => {
            let mut sig = vec![0u8; k.public().modulus_len()];
            k.sign(&ring::signature::RSA_PKCS1_SHA384, &rng, input.as_bytes(), &mut sig).map_err(fail)?;
            sig
        }
        Signer::Ec(k) => k.sign(&rng, input.as_bytes()).map_err(fail)?.as_ref().to_vec(),
    };
    Ok(format!("{input}.{}", B64.encode(sig)))
}
