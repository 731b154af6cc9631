//! `mhg serve`: the HTTP server and the relay, on the embedded defaults (no file needed: a
//! SQLite store under `data/`, Bundles delivered to `data/outbox/`), a TOML file (`--config`) and
//! `MHG_*` environment variables. Stops cleanly on Ctrl-C or SIGTERM: stops accepting, lets
//! in-flight requests and deliveries finish, gives back unstarted leases, exits.

use std::sync::Arc;

use crate::config::Config;
use crate::http::serve::ConnLimits;
use crate::http::{AppState, router};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Listen address, overriding `server.listen`.
    #[arg(long)]
    pub listen: Option<String>,
    /// Turn inbound authentication off: anyone who can reach the port may read and write. For
    /// local trials only; the log says so at start.
    #[arg(long)]
    pub insecure_no_auth: bool,
}

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.log.format == "json" { builder.json().try_init() } else { builder.try_init() };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!(stage = "serve", "shutdown requested: draining");
}

/// The authenticator; on the very first start with nobody able to call, an admin key is made,
/// its hash stored, and the key printed once on standard output (never into the log).
fn prepare_auth(config: &Config) -> Result<Arc<crate::auth::Auth>, crate::auth::AuthError> {
    if !config.auth.enabled {
        for _ in 0..3 {
            tracing::warn!(
                stage = "startup",
                "AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach this port can submit and read records. For local trials only."
            );
        }
        return Ok(Arc::new(crate::auth::Auth::disabled()));
    }
    let given = config.env.get("MHG_ADMIN_KEY").map(str::to_owned);
    if let Some(key) = crate::auth::bootstrap_admin(&config.auth, given.as_deref())? {
        if given.is_none() {
            println!(
                "mhg: first start: an admin API key was made. It is shown this once; only its hash is kept in {}.\n\n    {key}\n\nSend it as 'X-API-Key: <key>'. Make narrower keys with 'mhg keys add'.",
                config.auth.keys_file.display()
            );
        }
        tracing::warn!(stage = "startup", keys_file = %config.auth.keys_file.display(), "first start: admin API key created (printed on standard output once)");
    }
    crate::auth::Auth::from_config(&config.auth).map(Arc::new)
}

pub fn run(mut config: Config, args: Args) -> i32 {
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if args.insecure_no_auth {
        config.auth.enabled = false;
    }
    init_logging(&config);
    let started = std::time::Instant::now();
    let auth = match prepare_auth(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mhg: configuration error: auth: {e}");
            return 2;
        }
    };
    let pipeline = match config.pipeline() {
        Ok(p) => Arc::new(p),
        Err(e) => {
            tracing::error!(stage = "startup", error = %e, "cannot load mappings");
            eprintln!("mhg: cannot load mappings: {e}");
            return 2;
        }
    };
    for (n, d) in config.destinations().iter().enumerate() {
        if let Some(p) = d.profiles.iter().find(|p| !pipeline.validator.knows_profile(p)) {
            eprintln!(
                "mhg: configuration error: destinations[{n}] ('{}').profiles: {p} is not a loaded profile (add its package under [validation] packages)",
                d.name
            );
            return 2;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mhg: cannot start the runtime: {e}");
            return 2;
        }
    };
    runtime.block_on(async move {
        let store = match crate::queue::Store::open(&config.store.url).await {
            Ok(s) => s.keep_summaries(config.summary.retention_days),
            Err(e) => {
                tracing::error!(stage = "startup", error = %e, "cannot open the store");
                eprintln!("mhg: cannot open the store: {e}");
                return 2;
            }
        };
        let dest_configs = config.destinations();
        let mut destinations = Vec::new();
        for d in &dest_configs {
            match crate::relay::deliver::Destination::new(d.clone()) {
                Ok(d) => destinations.push(Arc::new(d)),
                Err(e) => {
                    eprintln!("mhg: configuration error: {e}");
                    return 2;
                }
            }
        }
        let listener = match tokio::net::TcpListener::bind(&config.server.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("mhg: cannot listen on {}: {e}", config.server.listen);
                return 2;
            }
        };
        let tls = match &config.server.tls {
            Some(t) => match crate::http::tls::server_config(t) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("mhg: configuration error: {e}");
                    return 2;
                }
            },
            None => None,
        };
        let l = &config.limits;
        let connections = ConnLimits::new(l.header_read_timeout_secs, l.idle_timeout_secs, l.max_connections);
        if l.max_connections != 0 && connections.max_connections < l.max_connections {
            tracing::warn!(
                stage = "startup",
                max_connections = connections.max_connections,
                open_files = crate::http::serve::open_file_limit(),
                "limits.max_connections lowered to leave file descriptors free (raise `ulimit -n` for more)"
            );
        }
        let relay = crate::relay::Relay::start(store.clone(), destinations, config.relay.clone());
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(
            stage = "startup",
            listen = %addr,
            tls = tls.is_some(),
            auth = auth.enabled(),
            store = store.kind(),
            summary_retention_days = store.summary_days(),
            destinations = dest_configs.len(),
            max_connections = connections.max_connections,
            mapping_version = %pipeline.terminology.mapping_version,
            startup_ms = started.elapsed().as_millis() as u64,
            "mhg listening"
        );
        let state = AppState {
            pipeline,
            max_body_bytes: config.limits.max_body_bytes,
            max_records: config.limits.max_records,
            relay: Some(crate::http::RelayState {
                committer: crate::queue::commit::Committer::start(store.clone()),
                store,
                destinations: Arc::new(dest_configs),
                wake: relay.wake.clone(),
            }),
            guard: Arc::new(crate::http::Guard::new(
                auth,
                config.limits.rate_per_second,
                config.limits.rate_burst,
                config.limits.max_concurrent_requests,
                std::time::Duration::from_secs(config.limits.request_timeout_secs),
            )),
        };
        let served = crate::http::serve::serve(listener, tls, router(state), connections, shutdown_signal()).await;
        // No more requests: let in-flight deliveries finish, give back what is not started.
        relay.shutdown().await;
        tracing::info!(stage = "serve", "stopped");
        match served {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(stage = "serve", error = %e, "server failed");
                1
            }
        }
    })
}
