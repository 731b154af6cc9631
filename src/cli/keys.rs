//! `mhg keys`: API keys for callers of the gateway, kept as hashes in `auth.keys_file`. A new key
//! is printed once, when made; a running gateway picks up changes within a second.

use crate::auth::keys::{KeysFile, generate};
use crate::config::Config;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a key for a client and print it (once).
    Add {
        /// The client's name (a system, e.g. `moh-ke-uploader`): the submitter in the audit trail.
        name: String,
        /// Scopes: convert, records:write, submissions:read, validate, metrics, admin, summary:read.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Limit the client to these destinations (repeat).
        #[arg(long = "destination")]
        destinations: Vec<String>,
        /// Limit the client to these programmes (repeat).
        #[arg(long = "programme")]
        programmes: Vec<String>,
    },
    /// List clients (names, scopes, restrictions; never keys).
    List,
    /// Remove a client's key.
    Revoke { name: String },
    /// Print the SHA-256 of a key read from standard input (for `[[auth.clients]] key_sha256`).
    Hash,
}

pub fn run(config: &Config, args: Args) -> i32 {
    let path = &config.auth.keys_file;
    let mut file = match KeysFile::read(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mhg: {e}");
            return 2;
        }
    };
    let opt = |v: Vec<String>| (!v.is_empty()).then_some(v);
    match args.command {
        KeysCommand::Add { name, scopes, destinations, programmes } => {
            let key = generate();
            if let Err(e) = file.add(&name, &key, &scopes, opt(destinations), opt(programmes)) {
                eprintln!("mhg: {e}");
                return 2;
            }
            if let Err(e) = file.write(path) {
                eprintln!("mhg: {e}");
                return 2;
            }
            println!("{key}");
            eprintln!("mhg: key for '{name}' stored (hash only) in {}; it is shown this once", path.display());
            0
        }
        KeysCommand::List => {
            for k in &file.keys {
                let mut line = format!("{}\t{}", k.name, k.scopes.join(","));
                if let Some(d) = &k.destinations {
                    line.push_str(&format!("\tdestinations={}", d.join(",")));
                }
                if let Some(p) = &k.programmes {
                    line.push_str(&format!("\tprogrammes={}", p.join(",")));
                }
                println!("{line}\tcreated={}", k.created);
            }
            0
        }
        KeysCommand::Revoke { name } => {
            if !file.revoke(&name) {
                eprintln!("mhg: no key named '{name}'");
                return 1;
            }
            if let Err(e) = file.write(path) {
                eprintln!("mhg: {e}");
                return 2;
            }
            eprintln!("mhg: key '{name}' revoked");
            0
        }
        KeysCommand::Hash => {
            let mut key = String::new();
            if std::io::stdin().read_line(&mut key).is_err() || key.trim().is_empty() {
                eprintln!("mhg: give the key on standard input");
                return 2;
            }
            println!("{}", crate::auth::sha256_hex(key.trim().as_bytes()));
            0
        }
    }
}
