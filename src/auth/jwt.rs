//! JWT bearer tokens (RFC 7519) from configured issuers, verified with `ring` (already in the
//! tree through rustls): RS256/384/512, PS256/384/512, ES256/384, EdDSA against a JWKS file, and
//! HS256/384/512 against a shared secret. `alg: none` is never accepted, and an issuer accepts
//! only the algorithms it lists.
//!
//! Checked: signature, `iss` (selects the issuer), `aud` (string or array), `exp` (required),
//! `nbf`, with a leeway. Scopes from `scope` (space-separated) or `scp` (string or array); the
//! client's name from `client_claim` (default `client_id`, then `azp`, then `sub`).

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature;
use serde::Deserialize;
use serde_json::Value;

use super::{Caller, Refusal, Scope};

/// `[[auth.jwt]]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` the tokens carry.
    pub issuer: String,
    /// The `aud` the tokens must carry (this gateway).
    pub audience: String,
    /// A JWKS file (`{"keys": [...]}`) with the issuer's public keys.
    pub jwks_file: Option<PathBuf>,
    /// A file holding the shared secret for HS256/384/512.
    pub secret_file: Option<PathBuf>,
    /// Or: the environment variable holding that secret.
    pub secret_env: Option<String>,
    /// Accepted `alg` values (default: RS256, RS384, ES256, ES384).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The claim naming the client (default `client_id`, falling back to `azp` and `sub`).
    #[serde(default = "default_client_claim")]
    pub client_claim: String,
    /// Destinations and programmes every token of this issuer is limited to.
    pub destinations: Option<Vec<String>>,
    pub programmes: Option<Vec<String>>,
}

impl std::fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerConfig").field("issuer", &self.issuer).field("audience", &self.audience).finish_non_exhaustive()
    }
}

fn default_algorithms() -> Vec<String> {
    ["RS256", "RS384", "ES256", "ES384"].iter().map(|s| (*s).to_owned()).collect()
}
fn default_leeway() -> u64 {
    60
}
fn default_client_claim() -> String {
    "client_id".into()
}

enum KeyMaterial {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { p384: bool, point: Vec<u8> },
    Ed(Vec<u8>),
}

struct Jwk {
    kid: Option<String>,
    key: KeyMaterial,
}

pub struct Issuer {
    cfg: IssuerConfig,
    keys: Vec<Jwk>,
    secret: Option<Vec<u8>>,
}

const KNOWN_ALGS: [&str; 12] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"];

fn b64(field: &str, v: &Value) -> Result<Vec<u8>, String> {
    let s = v.get(field).and_then(Value::as_str).ok_or_else(|| format!("a JWK has no '{field}'"))?;
    B64.decode(s.trim_end_matches('=')).map_err(|_| format!("a JWK's '{field}' is not base64url"))
}

fn parse_jwks(v: &Value) -> Result<Vec<Jwk>, String> {
    let keys = v.get("keys").and_then(Value::as_array).ok_or("not a JWKS: no \"keys\" array")?;
    let mut out = Vec::new();
    for k in keys {
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_owned);
        let key = match k.get("kty").and_then(Value::as_str) {
            Some("RSA") => KeyMaterial::Rsa { n: b64("n", k)?, e: b64("e", k)? },
            Some("EC") => {
                let p384 = match k.get("crv").and_then(Value::as_str) {
                    Some("P-256") => false,
                    Some("P-384") => true,
                    _ => return Err("an EC JWK must be on P-256 or P-384".into()),
                };
                let mut point = vec![4u8];
                point.extend(b64("x", k)?);
                point.extend(b64("y", k)?);
                KeyMaterial::Ec { p384, point }
            }
            Some("OKP") if k.get("crv").and_then(Value::as_str) == Some("Ed25519") => KeyMaterial::Ed(b64("x", k)?),
            // Keys of other kinds (encryption keys, unsupported curves) are not for us.
            _ => continue,
        };
        out.push(Jwk { kid, key });
    }
    Ok(out)
}

impl Issuer {
    pub fn new(cfg: &IssuerConfig, env: &crate::environment::Env) -> Result<Issuer, String> {
        for a in &cfg.algorithms {
            if !KNOWN_ALGS.contains(&a.as_str()) {
                return Err(format!("algorithms: '{a}' is not supported (one of {})", KNOWN_ALGS.join(", ")));
            }
        }
        let keys = match &cfg.jwks_file {
            Some(p) => {
                let text = std::fs::read(p).map_err(|e| format!("jwks_file: cannot read {}: {e}", p.display()))?;
                let v: Value = serde_json::from_slice(&text).map_err(|e| format!("jwks_file {}: not JSON: {e}", p.display()))?;
                parse_jwks(&v).map_err(|e| format!("jwks_file {}: {e}", p.display()))?
            }
            None => Vec::new(),
        };
        let secret = match (&cfg.secret_file, &cfg.secret_env) {
            (Some(p), _) => {
                Some(std::fs::read(p).map_err(|e| format!("secret_file: cannot read {}: {e}", p.display()))?.trim_ascii().to_vec())
            }
            (None, Some(var)) => Some(env.get(var).ok_or_else(|| format!("secret_env: {var} is not set"))?.as_bytes().to_vec()),
            (None, None) => None,
        };
        if secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err("the shared secret must have at least 32 bytes".into());
        }
        let wants_hmac = cfg.algorithms.iter().any(|a| a.starts_with("HS"));
        let wants_keys = cfg.algorithms.iter().any(|a| !a.starts_with("HS"));
        if wants_hmac && secret.is_none() {
            return Err("HS* algorithms need secret_file or secret_env".into());
        }
        if wants_keys && keys.is_empty() && !wants_hmac {
            return Err("give jwks_file (public keys) or, for HS256, secret_file / secret_env".into());
        }
        Ok(Issuer { cfg: cfg.clone(), keys, secret })
    }

    fn verify_signature(&self, alg: &str, kid: Option<&str>, msg: &[u8], sig: &[u8]) -> bool {
        if alg.starts_with("HS") {
            let Some(secret) = &self.secret else { return false };
            let a = match alg {
                "HS256" => ring::hmac::HMAC_SHA256,
                "HS384" => ring::hmac::HMAC_SHA384,
                _ => ring::hmac::HMAC_SHA512,
            };
            return ring::hmac::verify(&ring::hmac::Key::new(a, secret), msg, sig).is_ok();
        }
        self.keys.iter().filter(|k| kid.is_none() || k.kid.as_deref() == kid).any(|k| match (&k.key, alg) {
            (KeyMaterial::Rsa { n, e }, _) if alg.starts_with("RS") || alg.starts_with("PS") => {
                let params: &signature::RsaParameters = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    _ => &signature::RSA_PSS_2048_8192_SHA512,
                };
                signature::RsaPublicKeyComponents { n, e }.verify(params, msg, sig).is_ok()
            }
            (KeyMaterial::Ec { p384: false, point }, "ES256") => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(msg, sig).is_ok()
            }
            (KeyMaterial::Ec { p384: true, point }, "ES384") => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point).verify(msg, sig).is_ok()
            }
            (KeyMaterial::Ed(x), "EdDSA") => signature::UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig).is_ok(),
            _ => false,
        })
    }
}

/// Three base64url parts: a JWT (an API key never has dots).
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

fn part(s: &str) -> Result<Value, Refusal> {
    let bytes = B64.decode(s).map_err(|_| Refusal::Invalid("the token is not a well-formed JWT"))?;
    serde_json::from_slice(&bytes).map_err(|_| Refusal::Invalid("the token is not a well-formed JWT"))
}

fn now_secs() -> i64 {
    crate::calendar::now_ms().div_euclid(1000)
}

fn as_secs(v: Option<&Value>) -> Option<i64> {
    v.and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// Verifies a JWT against the issuer it names.
pub fn verify(issuers: &[Issuer], token: &str) -> Result<Caller, Refusal> {
    let bad = Refusal::Invalid("the token is not valid");
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Refusal::Invalid("the token is not a well-formed JWT"));
    };
    let header = part(h)?;
    let claims = part(p)?;
    let sig = B64.decode(s).map_err(|_| Refusal::Invalid("the token is not a well-formed JWT"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none");
    let kid = header.get("kid").and_then(Value::as_str);
    let iss = claims.get("iss").and_then(Value::as_str).ok_or(Refusal::Invalid("the token names no issuer"))?;
    let issuer = issuers.iter().find(|i| i.cfg.issuer == iss).ok_or(Refusal::Invalid("the token's issuer is not trusted"))?;
    if alg == "none" || !issuer.cfg.algorithms.iter().any(|a| a == alg) {
        return Err(Refusal::Invalid("the token's algorithm is not accepted"));
    }
    let msg_len = h.len() + 1 + p.len();
    if !issuer.verify_signature(alg, kid, &token.as_bytes()[..msg_len], &sig) {
        return Err(bad);
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == issuer.cfg.audience,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(issuer.cfg.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(Refusal::Invalid("the token is not meant for this gateway (audience)"));
    }
    let now = now_secs();
    let leeway = issuer.cfg.leeway_secs as i64;
    match as_secs(claims.get("exp")) {
        Some(exp) if exp + leeway >= now => {}
        Some(_) => return Err(Refusal::Expired),
        None => return Err(Refusal::Invalid("the token has no expiry")),
    }
    if as_secs(claims.get("nbf")).is_some_and(|nbf| nbf - leeway > now) {
        return Err(Refusal::Invalid("the token is not valid yet"));
    }
    let mut scopes: Vec<Scope> = Vec::new();
    let mut add = |s: &str| {
        // SMART-style `system/records:write` is read as `records:write`.
        let s = s.rsplit('/').next().unwrap_or(s);
        if let Some(sc) = Scope::parse(s) {
            scopes.push(sc);
        }
    };
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().for_each(&mut add),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).for_each(&mut add),
        _ => {}
    }
    let name = [issuer.cfg.client_claim.as_str(), "client_id", "azp", "sub"]
        .iter()
        .find_map(|c| claims.get(*c).and_then(Value::as_str))
        .unwrap_or("unnamed-client");
    // The name goes into the audit trail: keep it an identifier, bounded.
    let name: String = name.chars().filter(|c| !c.is_control()).take(100).collect();
    let mut caller = Caller::new(&name, &scopes);
    caller.destinations = issuer.cfg.destinations.clone().map(Into::into);
    caller.programmes = issuer.cfg.programmes.clone().map(Into::into);
    Ok(caller)
}
