//! `mhg conformance vectors | gateway | destination`: the integration tester's kit on the
//! command line. Exit statuses: 0 every check passed (or the vectors were written), 1 some check
//! failed, 2 a usage error or a target that cannot be reached.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::Value;

use crate::config::Config;
use crate::conformance::{testscript, vectors};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Subcommand, Debug)]
pub enum Sub {
    /// (Re)generate the test vectors from seed records, with a FHIR TestScript per vector.
    Vectors(VectorsArgs),
    /// Test a running gateway: every vector through $convert and POST /records.
    Gateway(GatewayArgs),
    /// Test a receiving FHIR server with the relay's own delivery code and outbound auth.
    Destination(DestinationArgs),
}

#[derive(clap::Args, Debug)]
pub struct DestinationArgs {
    /// The server's FHIR base URL.
    #[arg(long = "base-url")]
    pub base_url: String,
    /// Outbound authentication, as a destination's `auth` in TOML, e.g.
    /// '{ type = "oauth2", token_url = "https://idp/token", client_id = "mhg", client_secret_env = "SECRET" }'.
    #[arg(long)]
    pub auth: Option<String>,
    /// TLS towards the server, as a destination's `tls` in TOML, e.g. '{ ca_file = "ca.pem" }'.
    #[arg(long)]
    pub tls: Option<String>,
    /// Send each entry as its own conditional request instead of a transaction.
    #[arg(long = "no-transactions")]
    pub no_transactions: bool,
    /// A profile every returned resource of its type must meet (repeatable).
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    #[command(flatten)]
    pub reports: ReportArgs,
}

/// Where a run's reports go.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// JUnit XML, one testcase per check.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// The HTML report (self-contained).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The FHIR TestReport of the run (default: beside --report, as <stem>.testreport.json).
    #[arg(long = "test-report")]
    pub test_report: Option<PathBuf>,
    /// The vectors to run (default: conformance/vectors of the home folder).
    #[arg(long)]
    pub vectors: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct GatewayArgs {
    /// The gateway's base URL (its routes are /fhir/$convert, /records, /submissions/{id}).
    #[arg(long = "base-url")]
    pub base_url: String,
    /// An API key with the records:write and submissions:read scopes.
    #[arg(long = "api-key")]
    pub api_key: String,
    /// Seconds every submission may take to reach `delivered`.
    #[arg(long = "deliver-timeout", default_value_t = 120)]
    pub deliver_timeout: u64,
    #[command(flatten)]
    pub reports: ReportArgs,
}

#[derive(clap::Args, Debug)]
pub struct VectorsArgs {
    /// Where to write manifest.json, valid/, bad/ and testscripts/.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed records (one JSON record per file); default: the golden records of the home folder.
    #[arg(long)]
    pub seeds: Option<PathBuf>,
}

pub fn run(config: &Config, args: Args) -> i32 {
    match args.command {
        Sub::Vectors(a) => run_vectors(config, a),
        Sub::Gateway(a) => run_gateway(config, a),
        Sub::Destination(a) => run_destination(config, a),
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().ok()
}

fn load_vectors(config: &Config, r: &ReportArgs) -> Result<vectors::VectorSet, i32> {
    let dir = r.vectors.clone().unwrap_or_else(|| config.home().join("conformance/vectors"));
    vectors::load(&dir).map_err(|e| {
        eprintln!("mhg: vectors: {e}");
        2
    })
}

/// Runs one check against a server on a runtime of its own, with a progress bar of its
/// `steps` on a terminal (stderr; none otherwise), cleared before the result is printed. None
/// (after saying so) when no runtime starts.
fn run_check<T>(steps: u64, check: impl AsyncFnOnce(crate::conformance::Progress<'_>) -> T) -> Option<T> {
    let Some(rt) = runtime() else {
        eprintln!("mhg: cannot start the runtime");
        return None;
    };
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| indicatif::ProgressBar::new(steps));
    let tick = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let result = rt.block_on(check(&tick));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Some(result)
}

/// Writes the reports asked for, prints the one-line summary, and gives the exit status.
fn finish(run: &crate::conformance::check::Run, r: &ReportArgs) -> i32 {
    use crate::conformance::report;
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    if let Some(p) = &r.junit {
        writes.push((p.clone(), report::junit(run)));
    }
    if let Some(p) = &r.report {
        writes.push((p.clone(), report::html(run)));
    }
    let tr = r.test_report.clone().or_else(|| r.report.as_ref().map(|p| p.with_extension("testreport.json")));
    if let Some(p) = tr {
        writes.push((p, serde_json::to_string_pretty(&report::test_report(run)).unwrap_or_default()));
    }
    for (p, text) in writes {
        if let Err(e) = std::fs::write(&p, text) {
            eprintln!("mhg: cannot write {}: {e}", p.display());
            return 2;
        }
    }
    for c in run.checks.iter().filter(|c| c.verdict == crate::conformance::check::Verdict::Fail).take(20) {
        eprintln!("FAIL {}", c.message);
    }
    println!("{}", run.summary());
    run.status()
}

fn run_gateway(config: &Config, a: GatewayArgs) -> i32 {
    let set = match load_vectors(config, &a.reports) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut dc = crate::relay::DestinationConfig::new("conformance-gateway", crate::relay::DestinationKind::Fhir);
    dc.base_url = Some(a.base_url.clone());
    let dest = match crate::relay::deliver::Destination::new(dc) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mhg: --base-url: {e}");
            return 2;
        }
    };
    let opts =
        crate::conformance::gateway::Options { deliver_timeout: std::time::Duration::from_secs(a.deliver_timeout), ..Default::default() };
    let steps = crate::conformance::gateway::steps(&set);
    let Some(result) = run_check(steps, async |tick| crate::conformance::gateway::run(&dest, &a.api_key, &set, opts, tick).await) else {
        return 2;
    };
    match result {
        Ok(run) => finish(&run, &a.reports),
        Err(e) => {
            eprintln!("mhg: {}: {e}", a.base_url);
            2
        }
    }
}

/// Seed records of `dir`, by file stem, in name order.
pub fn read_seeds(dir: &Path) -> Result<Vec<(String, Value)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", p.display()))?;
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        out.push((stem, v));
    }
    Ok(out)
}

fn run_vectors(config: &Config, a: VectorsArgs) -> i32 {
    let pipeline = match config.pipeline() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mhg: cannot load mappings: {e}");
            return 2;
        }
    };
    let seeds_dir = a.seeds.unwrap_or_else(|| config.home().join("tests/golden/records"));
    let seeds = match read_seeds(&seeds_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mhg: seeds: {e}");
            return 2;
        }
    };
    let set = match vectors::generate(&pipeline, &seeds, crate::pipeline::today_utc()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mhg: {e}");
            return 1;
        }
    };
    if let Err(e) = vectors::write(&set, &a.out).and_then(|_| testscript::write(&set, &a.out)) {
        eprintln!("mhg: {e}");
        return 2;
    }
    let gaps = vectors::coverage_gaps(&set, &pipeline.terminology.record_schema);
    for g in &gaps {
        eprintln!("mhg: coverage gap: {g}");
    }
    println!(
        "{} valid and {} bad vectors written to {} ({} coverage gaps)",
        set.valid.len(),
        set.bad.len(),
        a.out.display(),
        gaps.len()
    );
    i32::from(!gaps.is_empty())
}

/// The destination as `[[destinations]]` would configure it, from the flags.
fn destination_config(config: &Config, a: &DestinationArgs) -> Result<crate::relay::DestinationConfig, String> {
    let mut table = toml::Table::new();
    table.insert("name".into(), "conformance".into());
    table.insert("kind".into(), "fhir".into());
    table.insert("base_url".into(), a.base_url.clone().into());
    table.insert("transactions".into(), (!a.no_transactions).into());
    for (key, text) in [("auth", &a.auth), ("tls", &a.tls)] {
        if let Some(t) = text {
            let v: toml::Table = toml::from_str(&format!("v = {t}")).map_err(|e| format!("--{key}: not a TOML inline table: {e}"))?;
            if let Some(v) = v.get("v") {
                table.insert(key.into(), v.clone());
            }
        }
    }
    let mut dc: crate::relay::DestinationConfig =
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| format!("--auth/--tls: {e}"))?;
    dc.env = config.env.clone();
    Ok(dc)
}

fn run_destination(config: &Config, a: DestinationArgs) -> i32 {
    let set = match load_vectors(config, &a.reports) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let dest = match destination_config(config, &a).and_then(crate::relay::deliver::Destination::new) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mhg: {e}");
            return 2;
        }
    };
    let pipeline = match config.pipeline() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mhg: cannot load the validator: {e}");
            return 2;
        }
    };
    if let Some(p) = a.profiles.iter().find(|p| pipeline.validator.profile(p).is_none()) {
        eprintln!("mhg: --profile {p}: not a loaded profile");
        return 2;
    }
    let steps = crate::conformance::destination::steps(&set);
    let Some(result) = run_check(steps, async |tick| {
        crate::conformance::destination::run(&dest, &pipeline.validator, &a.profiles, &set, tick).await
    }) else {
        return 2;
    };
    match result {
        Ok(run) => finish(&run, &a.reports),
        Err(e) => {
            eprintln!("mhg: {}: {e}", a.base_url);
            2
        }
    }
}
