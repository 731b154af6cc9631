//! Everything a test starts, in one place: the gateway in process ([`Gateway`]), the real
//! `mhg serve` binary ([`Serve`]), the FHIR server peer ([`Hfs`]), the stores they run on, and
//! the package cache the peers' scripts fill. A test module asks for these and does not spawn
//! processes, wait for ports or look up the cache itself.
//!
//! What this module does not know: what a test sends or checks (records and requests are in the
//! test modules and `common`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mhg::http::{AppState, Guard, RelayState, router};
use mhg::queue::{Store, commit::Committer};
use mhg::relay::deliver::Destination;
use mhg::relay::worker::RelayConfig;
use mhg::relay::{DestinationConfig, DestinationKind, Relay};
use serde_json::Value;

use crate::common::*;

// ---------- the gateway, in process ----------

/// The HTTP router and the relay on a loopback port, stopped by [`Gateway::stop`].
pub struct Gateway {
    pub base: String,
    /// Taken by `stop`, which waits for it to give back its leases.
    relay: Option<Relay>,
    server: tokio::task::JoinHandle<()>,
}

/// What an in-process gateway runs with: a store, destinations, a guard.
pub struct GatewayBuilder {
    store_url: String,
    destinations: Vec<DestinationConfig>,
    /// `None`: [`test_guard`] (authentication on, the test admin key known).
    guard: Option<Arc<Guard>>,
    /// `[summary] retention_days` (0: off, the default).
    summary_days: u32,
}

/// Relay timings short enough for a test to see a retry, a backoff and a lease run out.
fn fast() -> RelayConfig {
    RelayConfig { poll_ms: 50, lease_secs: 10, backoff_base_ms: 200, backoff_max_ms: 2_000, breaker_threshold: 1_000, retention_days: 30 }
}

impl Gateway {
    pub fn builder(store_url: &str) -> GatewayBuilder {
        GatewayBuilder { store_url: store_url.to_owned(), destinations: Vec::new(), guard: None, summary_days: 0 }
    }

    /// The usual case: these destinations, the test guard.
    pub async fn start(store_url: &str, destinations: Vec<DestinationConfig>) -> Gateway {
        Gateway::builder(store_url).destinations(destinations).start().await
    }

    pub async fn stop(mut self) {
        self.server.abort();
        if let Some(r) = self.relay.take() {
            r.shutdown().await;
        }
    }
}

impl GatewayBuilder {
    pub fn destinations(mut self, destinations: Vec<DestinationConfig>) -> Self {
        self.destinations = destinations;
        self
    }

    pub fn guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Keeps records for `Patient/$summary` this many days (`[summary] retention_days`).
    pub fn summary_days(mut self, days: u32) -> Self {
        self.summary_days = days;
        self
    }

    pub async fn start(self) -> Gateway {
        let store = Store::open(&self.store_url).await.expect("store opens").keep_summaries(self.summary_days);
        let dests = self.destinations.iter().map(|d| Arc::new(Destination::new(d.clone()).expect("destination"))).collect();
        let relay = Relay::start(store.clone(), dests, fast());
        let state = AppState {
            pipeline: pipeline(),
            max_body_bytes: 64 * 1024 * 1024,
            max_records: 10_000,
            relay: Some(RelayState {
                store: store.clone(),
                committer: Committer::start(store.clone()),
                destinations: Arc::new(self.destinations),
                wake: relay.wake.clone(),
            }),
            guard: self.guard.unwrap_or_else(test_guard),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router(state)).await;
        });
        Gateway { base, relay: Some(relay), server }
    }
}

pub fn fhir_destination(name: &str, base_url: &str) -> DestinationConfig {
    DestinationConfig { base_url: Some(base_url.into()), ..DestinationConfig::new(name, DestinationKind::Fhir) }
}

pub fn directory_destination(name: &str, path: &Path) -> DestinationConfig {
    DestinationConfig { path: Some(path.to_path_buf()), ..DestinationConfig::new(name, DestinationKind::Directory) }
}

// ---------- the stores ----------

pub async fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("mhg.db").display())
}

/// A fresh schema in the PostgreSQL of the machine (`MHG_TEST_PG`, default the local `test`
/// database): each test has its own queue.
pub async fn postgres_url() -> String {
    let base = std::env::var("MHG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL for the store tests (scripts/test starts one when missing)");
    tokio::spawn(conn);
    let schema = format!("mhg_t_{}", uuid::Uuid::new_v4().simple());
    client.execute(&format!("CREATE SCHEMA {schema}"), &[]).await.expect("schema");
    format!("{base}?options=-csearch_path%3D{schema}")
}

/// Runs `f` once on a fresh SQLite store and once on a fresh PostgreSQL schema (the two store
/// backends run different code).
pub async fn both_stores<F, Fut>(f: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    f(sqlite_url(&dir).await).await;
    f(postgres_url().await).await;
}

// ---------- the real binary: `mhg serve` ----------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How to run `mhg serve`: in `dir` (its working directory, where `data/` lands), on a loopback
/// port chosen once (a restart comes back on the same one), with `MHG_HOME` the repository and
/// the test admin key as `MHG_ADMIN_KEY`; stderr appended to [`Serve::log`], stdout kept for
/// [`Served::stop`]. Start it as often as a test needs.
pub struct Serve {
    dir: PathBuf,
    port: u16,
    config: Option<PathBuf>,
    args: Vec<String>,
    /// `false`: no `MHG_ADMIN_KEY` (a first start makes an admin key and prints it).
    admin_key: bool,
}

impl Serve {
    pub fn new(dir: &Path) -> Serve {
        Serve { dir: dir.to_path_buf(), port: free_port(), config: None, args: Vec::new(), admin_key: true }
    }

    /// `--config FILE`. The listen address comes from the command line (`--listen`), so the file
    /// needs no `[server] listen`.
    pub fn config(mut self, file: &Path) -> Self {
        self.config = Some(file.to_path_buf());
        self
    }

    /// More arguments after `serve --listen ADDR`.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    pub fn without_admin_key(mut self) -> Self {
        self.admin_key = false;
        self
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The gateway's stderr (its log), over every start.
    pub fn log(&self) -> PathBuf {
        self.dir.join("gateway.log")
    }

    /// Spawns the binary and waits until it answers `/health`.
    pub async fn start(&self) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mhg"));
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)]).args(&self.args).env("MHG_HOME", root());
        if self.admin_key {
            cmd.env("MHG_ADMIN_KEY", TEST_ADMIN_KEY);
        } else {
            cmd.env_remove("MHG_ADMIN_KEY");
        }
        let stdout = self.dir.join("gateway.out");
        let child = cmd
            .current_dir(&self.dir)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap())
            .spawn()
            .expect("gateway starts");
        let mut served = Served { child, stdout };
        wait_up(&self.base(), &mut served, &self.log()).await;
        served
    }
}

/// Until `base` answers `/health` (at most 60 s: a debug build loading its pipeline on a loaded
/// 2-core machine can take over 10 s); a gateway that exits instead fails the test with its log.
async fn wait_up(base: &str, served: &mut Served, log: &Path) {
    let client = anonymous_http();
    for _ in 0..1200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return;
        }
        if let Some(status) = served.child.try_wait().unwrap() {
            panic!(
                "the gateway exited ({status}) before it answered:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not answer on {base} in 60 s");
}

/// A running `mhg serve`, killed (-9) when dropped.
pub struct Served {
    child: Child,
    /// Its standard output, for this start only.
    stdout: PathBuf,
}

impl Served {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM: a graceful stop, which [`Served::wait`] sees end.
    pub fn terminate(&self) {
        let term = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(term.success(), "kill -TERM");
    }

    /// Blocks until it exits.
    pub fn wait(mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }

    /// SIGKILL, now, and reaped.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM, waits for the exit, and gives back what it printed on standard output.
    pub fn stop(self) -> String {
        self.terminate();
        let stdout = self.stdout.clone();
        self.wait();
        std::fs::read_to_string(stdout).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------- the peers ----------

/// The test cache (`MHG_CACHE`, default `~/.cache/mhg`): the FHIR server binary, the npm
/// harness and FHIR packages the scripts in `tests/peers/` fetch.
pub fn cache() -> PathBuf {
    std::env::var("MHG_CACHE").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/mhg"))
}

/// The peers' FHIR packages (`<cache>/packages/<name>#<version>`), installed by
/// `tests/peers/setup.sh` (once per run of the test binary).
pub fn peer_packages() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let setup = Command::new("bash").arg(root().join("tests/peers/setup.sh")).status().expect("bash runs");
            assert!(setup.success(), "tests/peers/setup.sh failed: node and npm are needed for this test");
            cache().join("packages")
        })
        .clone()
}

/// The FHIR server (Helios FHIR Server, `tests/peers/hfs.sh`) on a loopback port, killed when
/// dropped.
pub struct Hfs {
    child: Option<Child>,
    pub base: String,
    bin: String,
    port: u16,
    mode: String,
    dir: tempfile::TempDir,
}

impl Hfs {
    /// Starts a fresh server (its own database) in `mode` (`enforce` or `off`).
    pub async fn start(mode: &str) -> Hfs {
        let script = root().join("tests/peers/hfs.sh");
        let out = Command::new("bash").arg(&script).arg("install").output().expect("bash runs");
        assert!(out.status.success(), "hfs.sh install failed: {}", String::from_utf8_lossy(&out.stderr));
        let bin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let dir = tempfile::tempdir().unwrap();
        for f in std::fs::read_dir(root().join("tests/peers/hfs-data")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        let port = free_port();
        let mut hfs = Hfs { child: None, base: format!("http://127.0.0.1:{port}"), bin, port, mode: mode.to_owned(), dir };
        hfs.restart().await;
        hfs
    }

    /// Stops the server (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same data, and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let dir = self.dir.path();
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--database-url", dir.join("hfs.db").to_str().unwrap()])
            .args(["--data-dir", dir.to_str().unwrap(), "--base-url", &self.base])
            .args(["--seed-conformance", "--enable-versioning"])
            .env("HFS_VALIDATION_MODE", &self.mode)
            .env("HFS_NL_SEARCH_ENABLED", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("hfs starts");
        self.child = Some(child);
        let client = http();
        for _ in 0..240 {
            if let Ok(r) = client.get(format!("{}/metadata", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("HFS did not become ready in 120 s");
    }
}

impl Drop for Hfs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How many resources (not `_include`d ones) a search at the server finds.
pub async fn search_count(client: &reqwest::Client, base: &str, query: &str) -> usize {
    let r = client.get(format!("{base}/{query}")).send().await.expect("searched");
    assert!(r.status().is_success(), "search {query}: {}", r.status());
    let b: Value = r.json().await.expect("bundle");
    b["entry"].as_array().map(|e| e.iter().filter(|x| x["search"]["mode"] != "include").count()).unwrap_or(0)
}
