//! `mhg convert [FILE...] [--out DIR] [--format transaction|ips|html]`: records from files (or
//! `-` / nothing for stdin) to transaction Bundles, IPS documents or printable pages. NDJSON on
//! stdout (a page for one record), or one file per record under `--out`; one OperationOutcome per
//! refused record on stderr (as NDJSON), naming the file and the field. A progress bar on a
//! terminal for large batches. An input that holds no record (empty, blank lines, `[]`) is
//! refused like a bad record: an OperationOutcome on stderr, exit status 1.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Issue, RejectKind, Rejection, SourceRef};
use crate::pipeline::Format;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Input files: one record, a JSON array of records, or NDJSON. `-` (or none) reads stdin.
    pub files: Vec<String>,
    /// Write one `<recordId>.v<version>.json` per record into this directory instead of NDJSON
    /// on stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add a mapping override directory (ConceptMaps that replace shipped groups). Repeatable.
    #[arg(long = "mappings-override")]
    pub overrides: Vec<PathBuf>,
    /// What each record becomes: `transaction` (a transaction Bundle), `ips` (an International
    /// Patient Summary document Bundle) or `html` (a printable page of that document).
    #[arg(long, default_value = "transaction", value_parser = parse_format)]
    pub format: Format,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| "expected transaction, ips or html".to_owned())
}

/// A converted record in the chosen format: bytes, and the file extension under `--out`.
fn render(
    pipeline: &crate::pipeline::Pipeline,
    m: &crate::map::Mapped,
    format: Format,
    pretty: bool,
) -> Result<(Vec<u8>, &'static str), Rejection> {
    let json = |v: &serde_json::Value| {
        let r = if pretty { serde_json::to_vec_pretty(v) } else { serde_json::to_vec(v) };
        r.map_err(|_| Rejection::one(RejectKind::Internal, Issue::new("exception", "the Bundle could not be serialised")))
    };
    match format {
        Format::Transaction => Ok((json(&m.bundle)?, "json")),
        Format::Ips => Ok((json(&pipeline.document(m)?.bundle)?, "json")),
        Format::Html => Ok((pipeline.page(m)?.into_bytes(), "html")),
    }
}

/// Below this many records no progress bar is drawn.
const PROGRESS_MIN: usize = 500;

fn read_input(name: &str) -> std::io::Result<Vec<u8>> {
    if name == "-" {
        let mut b = Vec::new();
        std::io::stdin().lock().read_to_end(&mut b)?;
        Ok(b)
    } else {
        std::fs::read(name)
    }
}

pub fn run(config: &Config, args: Args) -> i32 {
    let mut config = config.clone();
    config.mappings.overrides.extend(args.overrides.iter().cloned());
    let pipeline = match config.pipeline() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mhg: cannot load mappings: {e}");
            return 2;
        }
    };
    if let Some(dir) = &args.out {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("mhg: cannot create output directory {}: {e}", dir.display());
            return 2;
        }
    }
    let files = if args.files.is_empty() { vec!["-".to_owned()] } else { args.files.clone() };
    // One "today" for the whole run (the plausibility checks compare dates with it).
    let today = crate::pipeline::today_utc();

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stderr_tty = std::io::stderr().is_terminal();
    let (mut converted, mut refused) = (0usize, 0usize);
    let mut pages_on_stdout = 0usize;
    let report = |r: &Rejection, bar: Option<&indicatif::ProgressBar>| {
        let line = r.to_operation_outcome().to_string();
        match bar {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    };

    for name in &files {
        let display = if name == "-" { "<stdin>" } else { name.as_str() };
        let bytes = match read_input(name) {
            Ok(b) => b,
            Err(e) => {
                refused += 1;
                let r = Rejection::one(RejectKind::Malformed, Issue::new("not-found", format!("cannot read input: {}", e.kind())))
                    .with_source(SourceRef { file: Some(display.to_owned()), ..Default::default() });
                report(&r, None);
                continue;
            }
        };
        let items = crate::ingest::read_records(&bytes, Some(display), pipeline.max_depth);
        let bar = (stderr_tty && items.len() >= PROGRESS_MIN).then(|| {
            let b = indicatif::ProgressBar::new(items.len() as u64);
            b.set_message(display.to_owned());
            b
        });
        for item in items {
            let outcome = pipeline.convert_item(item, today);
            match outcome.result {
                Ok(m) => {
                    let (bytes, ext) = match render(&pipeline, &m, args.format, args.out.is_some()) {
                        Ok(b) => b,
                        Err(r) => {
                            refused += 1;
                            report(&r.with_source(outcome.source.clone()), bar.as_ref());
                            continue;
                        }
                    };
                    converted += 1;
                    // Possible but unlikely: said on stderr (an OperationOutcome of warnings),
                    // the record still written and the exit status unchanged.
                    if let Some(oo) = crate::error::warnings_outcome(&m.warnings, outcome.source.describe().as_deref()) {
                        let line = oo.to_string();
                        match &bar {
                            Some(b) => b.suspend(|| eprintln!("{line}")),
                            None => eprintln!("{line}"),
                        }
                    }
                    let file = crate::files::record_file_name(&m.meta.source_system, &m.meta.record_id, m.meta.record_version);
                    let file = match file.strip_suffix(".json") {
                        Some(stem) if ext != "json" => format!("{stem}.{ext}"),
                        _ => file,
                    };
                    let res = match &args.out {
                        Some(dir) => crate::files::write_atomic(dir, &file, &bytes),
                        None if args.format == Format::Html => {
                            pages_on_stdout += 1;
                            if pages_on_stdout > 1 {
                                eprintln!("mhg: --format html writes one page per record: give --out DIR for more than one record");
                                return 2;
                            }
                            out.write_all(&bytes)
                        }
                        None => out.write_all(&bytes).and_then(|_| out.write_all(b"\n")),
                    };
                    if let Err(e) = res {
                        eprintln!("mhg: cannot write output: {e}");
                        return 2;
                    }
                }
                Err(r) => {
                    refused += 1;
                    report(&r, bar.as_ref());
                }
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("mhg: cannot write output: {e}");
        return 2;
    }
    if stderr_tty || refused > 0 {
        eprintln!("mhg: {converted} converted, {refused} refused");
    }
    if refused > 0 { 1 } else { 0 }
}
