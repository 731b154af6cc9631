//! `mhg convert [FILE...] [--out DIR]`: records from files (or `-` / nothing for stdin) to
//! Bundles. NDJSON on stdout, or one file per record under `--out`; one OperationOutcome per
//! refused record on stderr (as NDJSON), naming the file and the field. A progress bar on a
//! terminal for large batches. An input that holds no record (empty, blank lines, `[]`) is
//! refused like a bad record: an OperationOutcome on stderr, exit status 1.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Issue, RejectKind, Rejection, SourceRef};

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
                    let res = match &args.out {
                        Some(dir) => serde_json::to_vec_pretty(&m.bundle)
                            .map_err(std::io::Error::other)
                            .and_then(|b| crate::files::write_atomic(dir, &file, &b)),
                        None => {
                            serde_json::to_writer(&mut out, &m.bundle).map_err(std::io::Error::other).and_then(|_| out.write_all(b"\n"))
                        }
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
