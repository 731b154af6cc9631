//! HTTPS for the inbound side, through rustls (`[server.tls]`): a certificate chain and key from
//! PEM files, HTTP/1.1 and HTTP/2 by ALPN, and optionally client certificates (mTLS) checked
//! against a CA file. Connections are served by [`super::serve`], which puts the SHA-256
//! fingerprint of a client's certificate on each of its requests as a
//! [`super::guard::PeerCertificate`], so that `[[auth.clients]] cert_sha256` can name it.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// `[server.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificate(s) that client certificates must chain to.
    pub client_ca_file: Option<PathBuf>,
    /// `none` (default without a CA), `optional`, or `required` (default with a CA).
    pub client_auth: Option<String>,
}

pub fn server_config(cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .map_err(|e| format!("server.tls.cert_file: cannot read {}: {e}", cfg.cert_file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("server.tls.cert_file: {} is not PEM certificates: {e}", cfg.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("server.tls.cert_file: {} holds no certificate", cfg.cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| format!("server.tls.key_file: {} is not a PEM private key: {e}", cfg.key_file.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("server.tls: {e}"))?;
    let mode = cfg.client_auth.as_deref().unwrap_or(if cfg.client_ca_file.is_some() { "required" } else { "none" });
    let builder = match (mode, &cfg.client_ca_file) {
        ("none", _) => builder.with_no_client_auth(),
        ("optional" | "required", Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| format!("server.tls.client_ca_file: cannot read {}: {e}", ca.display()))?
            {
                let c = c.map_err(|e| format!("server.tls.client_ca_file: {} is not PEM: {e}", ca.display()))?;
                roots.add(c).map_err(|e| format!("server.tls.client_ca_file: {e}"))?;
            }
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if mode == "optional" { v.allow_unauthenticated() } else { v };
            builder.with_client_cert_verifier(v.build().map_err(|e| format!("server.tls.client_ca_file: {e}"))?)
        }
        ("optional" | "required", None) => return Err(format!("server.tls.client_auth = \"{mode}\" needs client_ca_file")),
        (other, _) => return Err(format!("server.tls.client_auth: expected \"none\", \"optional\" or \"required\", not \"{other}\"")),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| format!("server.tls: certificate and key do not match: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` over TLS until `shutdown` completes, with the default connection limits (see
/// [`super::serve::serve`], which `mhg serve` calls with the configured ones).
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    super::serve::serve(listener, Some(config), app, super::serve::ConnLimits::default(), shutdown).await
}
