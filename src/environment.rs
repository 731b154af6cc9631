//! The process environment as data. `cli` reads it once at start-up (the one read of
//! `std::env` in the gateway) and hands it to the configuration, which passes it to whatever
//! names a variable: `MHG_*` settings, `*_env` secrets of issuers and destinations,
//! `MHG_ADMIN_KEY`. Tests and embedders build one from a map, so nothing depends on the
//! environment of the process that runs them.

use std::collections::HashMap;
use std::sync::Arc;

/// Variables by name. `Debug` lists how many, never names or values (values can be secrets).
#[derive(Clone, Default)]
pub struct Env(Arc<HashMap<String, String>>);

impl Env {
    pub fn new(vars: HashMap<String, String>) -> Env {
        Env(Arc::new(vars))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Env({} variables)", self.0.len())
    }
}
