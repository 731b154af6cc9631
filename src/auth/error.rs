//! Why authentication could not be set up, or the keys file not read or changed. Each names the
//! configuration key or the file at fault, never a key or a token.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A configuration value that cannot be used; `at` names it (`auth.clients[0].key_sha256`,
    /// `keys[2]`, `MHG_ADMIN_KEY`).
    #[error("{at}: {message}")]
    Config { at: String, message: String },
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not a keys file: {source}", path.display())]
    NotKeysFile { path: PathBuf, source: serde_json::Error },
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// A change to the keys file that its rules refuse (names are unique, a key has a scope).
    #[error("{0}")]
    Refused(String),
}

impl AuthError {
    pub(crate) fn config(at: &str, message: impl Into<String>) -> AuthError {
        AuthError::Config { at: at.to_owned(), message: message.into() }
    }
}
