//! The command line: `mhg convert`, `mhg serve`, `mhg replay`, `mhg validate`. Parses arguments, loads configuration, and
//! hands off to the pipeline or the HTTP server. Exit statuses are part of the contract:
//! 0 success, 1 some input refused, 2 usage or configuration error.

pub mod conformance;
pub mod convert;
pub mod keys;
pub mod serve;
pub mod validate;

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(name = "mhg", version, about = "Migration health gateway: migration health records in, FHIR R4 out")]
pub struct Cli {
    /// Configuration file (TOML). Without it, the embedded defaults apply; `MHG_*` environment
    /// variables override both.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert records to FHIR R4 transaction Bundles (NDJSON on stdout, or files with --out).
    Convert(convert::Args),
    /// Run the HTTP server and the relay.
    Serve(serve::Args),
    /// Replay the dead-lettered deliveries of a submission (after fixing the cause).
    Replay(ReplayArgs),
    /// Manage the API keys of the gateway's callers.
    Keys(keys::Args),
    /// Validate FHIR resources against base R4, their meta.profile and --profile.
    Validate(validate::Args),
    /// The integration tester's kit: test vectors, and runs against a gateway or a FHIR server.
    Conformance(conformance::Args),
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Submission ids (from `POST /records` or `GET /submissions?state=dead-letter`).
    #[arg(required = true)]
    pub ids: Vec<String>,
}

fn replay(config: &Config, args: ReplayArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mhg: cannot start the runtime: {e}");
            return 2;
        }
    };
    rt.block_on(async {
        let store = match crate::queue::Store::open(&config.store.url).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mhg: cannot open the store: {e}");
                return 2;
            }
        };
        let mut status = 0;
        for id in &args.ids {
            match store.get(id).await {
                Ok(Some(_)) => match store.replay(id, crate::calendar::now_ms()).await {
                    Ok(n) => println!("{id}: {n} dead delivery(ies) replayed"),
                    Err(e) => {
                        eprintln!("mhg: {id}: {e}");
                        status = 1;
                    }
                },
                Ok(None) => {
                    eprintln!("mhg: {id}: no such submission");
                    status = 1;
                }
                Err(e) => {
                    eprintln!("mhg: {e}");
                    return 2;
                }
            }
        }
        status
    })
}

pub fn load_config(path: Option<&std::path::Path>) -> Result<Config, crate::error::GatewayError> {
    // The one read of the process environment: from here on it is data (`crate::environment`).
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut config = Config::load_from(path, &env)?;
    if config.home.is_none() {
        config.home = find_home();
    }
    Ok(config)
}

/// Where `mappings/` and `conformance/` are when the configuration does not say: the current
/// directory if it holds them, else the folder above the executable's `target/` (a source
/// checkout) or its `share/mhg` (an installed tree). None: the source tree it was built from.
fn find_home() -> Option<std::path::PathBuf> {
    let has = |p: &std::path::Path| p.join("mappings").join("mappings.json").is_file();
    if let Ok(cwd) = std::env::current_dir() {
        if has(&cwd) {
            return Some(cwd);
        }
    }
    let exe = std::env::current_exe().ok()?;
    for anc in exe.ancestors().skip(1) {
        if has(anc) {
            return Some(anc.to_path_buf());
        }
        let share = anc.join("share").join("mhg");
        if has(&share) {
            return Some(share);
        }
    }
    None
}

/// Runs the command line; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mhg: configuration error: {e}");
            return 2;
        }
    };
    match cli.command {
        Command::Convert(args) => convert::run(&config, args),
        Command::Serve(args) => serve::run(config, args),
        Command::Replay(args) => replay(&config, args),
        Command::Keys(args) => keys::run(&config, args),
        Command::Validate(args) => validate::run(&config, args),
        Command::Conformance(args) => conformance::run(&config, args),
    }
}
