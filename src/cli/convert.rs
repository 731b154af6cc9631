//! `mhg convert [FILE...] [--out DIR] [--format transaction|ips|html] [--jobs N]`: records from
//! files (or `-` / nothing for stdin) to transaction Bundles, IPS documents or printable pages.
//! NDJSON on stdout (a page for one record), or one file per record under `--out`; one OperationOutcome per
//! refused record on stderr (as NDJSON), naming the file and the field. A progress bar on a
//! terminal for large batches. An input that holds no record (empty, blank lines, `[]`) is
//! refused like a bad record: an OperationOutcome on stderr, exit status 1.
//!
//! `--jobs N` (default: every core) converts on N threads. Input is streamed: NDJSON is read a
//! line at a time ([`crate::ingest::stream`]), in chunks of a few hundred records converted in
//! parallel and written in input order, so memory does not grow with the number of records and
//! the output is byte for byte the output of `--jobs 1`. A refused record is reported on stderr,
//! in order, with its line, while the others are written.

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
    /// Convert on this many threads (default: every core). The output is the same for any N.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
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

/// Records converted together: read, converted on the threads, then written in order. Bounds
/// the memory held (a few hundred records and their Bundles), whatever the input's length.
const CHUNK_PER_JOB: usize = 64;

/// Input at least this long (bytes) gets a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 1 << 20;

/// What one record gives, ready to write: made on a worker thread, written in input order.
enum Done {
    /// Its Bundle (the NDJSON line, or written to its file already), and a warnings line.
    Converted { line: Option<Vec<u8>>, warnings: Option<String> },
    /// Its refusal, as the OperationOutcome line for stderr.
    Refused(String),
    /// The output could not be written (`--out`).
    WriteFailed(std::io::Error),
}

/// The input and its length when known (a file).
fn open_input(name: &str) -> std::io::Result<(Box<dyn Read>, Option<u64>)> {
    if name == "-" {
        Ok((Box::new(std::io::stdin()), None))
    } else {
        let f = std::fs::File::open(name)?;
        let len = f.metadata().ok().map(|m| m.len());
        Ok((Box::new(f), len))
    }
}

/// Counts the bytes read, for the progress bar.
struct Counted<R> {
    inner: R,
    bar: Option<indicatif::ProgressBar>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &self.bar {
            b.inc(n as u64);
        }
        Ok(n)
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
    let jobs = args.jobs.map(usize::from).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let files = if args.files.is_empty() { vec!["-".to_owned()] } else { args.files.clone() };
    // One "today" for the whole run (the plausibility checks compare dates with it).
    let today = crate::pipeline::today_utc();

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let stderr_tty = std::io::stderr().is_terminal();
    let (mut converted, mut refused) = (0usize, 0usize);
    let pages_on_stdout = args.format == Format::Html && args.out.is_none();
    let say = |line: &str, bar: Option<&indicatif::ProgressBar>| match bar {
        Some(b) => b.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    };

    for name in &files {
        let display = if name == "-" { "<stdin>" } else { name.as_str() };
        let (input, len) = match open_input(name) {
            Ok(i) => i,
            Err(e) => {
                refused += 1;
                let r = Rejection::one(RejectKind::Malformed, Issue::new("not-found", format!("cannot read input: {}", e.kind())))
                    .with_source(SourceRef { file: Some(display.to_owned()), ..Default::default() });
                say(&r.to_operation_outcome().to_string(), None);
                continue;
            }
        };
        let bar = (stderr_tty && len.is_some_and(|l| l >= PROGRESS_MIN_BYTES)).then(|| {
            let b = indicatif::ProgressBar::new(len.unwrap_or_default());
            b.set_message(display.to_owned());
            b
        });
        let input = std::io::BufReader::with_capacity(1 << 16, Counted { inner: input, bar: bar.clone() });
        let mut units = crate::ingest::stream::Stream::new(input, Some(display), pipeline.max_depth);
        let mut read_failed = false;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK_PER_JOB * jobs);
            while chunk.len() < CHUNK_PER_JOB * jobs {
                match units.next() {
                    Some(Ok(u)) => chunk.push(u),
                    Some(Err(e)) => {
                        read_failed = true;
                        refused += 1;
                        let r = Rejection::one(RejectKind::Malformed, Issue::new("not-found", format!("cannot read input: {}", e.kind())))
                            .with_source(SourceRef { file: Some(display.to_owned()), ..Default::default() });
                        say(&r.to_operation_outcome().to_string(), bar.as_ref());
                        break;
                    }
                    None => break,
                }
            }
            if chunk.is_empty() {
                break;
            }
            let convert = |unit: crate::ingest::stream::Unit| {
                let outcome = pipeline.convert_item(unit.item(Some(display), pipeline.max_depth), today);
                finish(&pipeline, outcome, args.format, args.out.as_deref())
            };
            for done in parallel_map(chunk, jobs, convert) {
                match done {
                    Done::Converted { line, warnings } => {
                        converted += 1;
                        if pages_on_stdout && converted > 1 {
                            eprintln!("mhg: --format html writes one page per record: give --out DIR for more than one record");
                            return 2;
                        }
                        // Possible but unlikely: said on stderr (an OperationOutcome of warnings),
                        // the record still written and the exit status unchanged.
                        if let Some(w) = warnings {
                            say(&w, bar.as_ref());
                        }
                        if let Some(line) = line {
                            if let Err(e) = out.write_all(&line) {
                                eprintln!("mhg: cannot write output: {e}");
                                return 2;
                            }
                        }
                    }
                    Done::Refused(line) => {
                        refused += 1;
                        say(&line, bar.as_ref());
                    }
                    Done::WriteFailed(e) => {
                        eprintln!("mhg: cannot write output: {e}");
                        return 2;
                    }
                }
            }
            if read_failed {
                break;
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

/// A record's outcome made ready to write (on the worker thread): its NDJSON line (a page, for
/// `html`), or its file under `out`, or its refusal's line.
fn finish(pipeline: &crate::pipeline::Pipeline, outcome: crate::pipeline::Outcome, format: Format, out: Option<&std::path::Path>) -> Done {
    let m = match outcome.result {
        Ok(m) => m,
        Err(r) => return Done::Refused(r.to_operation_outcome().to_string()),
    };
    let (mut bytes, ext) = match render(pipeline, &m, format, out.is_some()) {
        Ok(b) => b,
        Err(r) => return Done::Refused(r.with_source(outcome.source.clone()).to_operation_outcome().to_string()),
    };
    let warnings = crate::error::warnings_outcome(&m.warnings, outcome.source.describe().as_deref()).map(|oo| oo.to_string());
    let line = match out {
        Some(dir) => {
            let file = crate::files::record_file_name(&m.meta.source_system, &m.meta.record_id, m.meta.record_version);
            let file = match file.strip_suffix(".json") {
                Some(stem) if ext != "json" => format!("{stem}.{ext}"),
                _ => file,
            };
            if let Err(e) = crate::files::write_atomic(dir, &file, &bytes) {
                return Done::WriteFailed(e);
            }
            None
        }
        None => {
            if format != Format::Html {
                bytes.push(b'\n');
            }
            Some(bytes)
        }
    };
    Done::Converted { line, warnings }
}

/// `f` over `items` on up to `jobs` threads (each taking the next item as it finishes one),
/// results in the order of `items`.
fn parallel_map<T: Send, U: Send>(items: Vec<T>, jobs: usize, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let n = items.len();
    if jobs <= 1 || n <= 1 {
        return items.into_iter().map(f).collect();
    }
    let work: Vec<std::sync::Mutex<Option<T>>> = items.into_iter().map(|t| std::sync::Mutex::new(Some(t))).collect();
    let results: Vec<std::sync::Mutex<Option<U>>> = (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(n) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let item = work[i].lock().ok().and_then(|mut w| w.take());
                    if let Some(item) = item {
                        let r = f(item);
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(r);
                        }
                    }
                }
            });
        }
    });
    results.into_iter().filter_map(|m| m.into_inner().ok().flatten()).collect()
}
