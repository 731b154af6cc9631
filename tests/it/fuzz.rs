//! Every input a fuzzer ever crashed on (`fuzz/regressions/<target>/`, copied there by
//! `scripts/fuzz`) replayed through the same entry point, plus the seed inputs `scripts/fuzz`
//! starts each target from (golden records, golden Bundles, the smallest shipped package, its
//! FHIRPath expressions and JWT): none may panic, and none may be left out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;

/// A fuzz target (`fuzz/fuzz_targets/<name>.rs`) and the entry point it calls.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("record_reader", mhg::fuzzing::record_reader),
    ("mapping", mhg::fuzzing::mapping),
    ("package_loader", mhg::fuzzing::package_loader),
    ("jwt", mhg::fuzzing::jwt),
    ("validator", mhg::fuzzing::validator),
    ("fhirpath", mhg::fuzzing::fhirpath),
];

fn entry_point(target: &str) -> fn(&[u8]) {
    TARGETS.iter().find(|(t, _)| *t == target).unwrap_or_else(|| panic!("no fuzz target {target}")).1
}

/// The files of a folder (sorted; `.keep` placeholders left out), and of its subfolders.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.file_name().is_some_and(|n| n != ".keep") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn names_in(dir: &Path, strip: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(strip).to_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// Replays every file in `fuzz/regressions/<target>/`; returns how many.
fn replay(target: &str) -> usize {
    let run = entry_point(target);
    let mut n = 0;
    for f in files_under(&root().join("fuzz/regressions").join(target)) {
        run(&std::fs::read(f).unwrap());
        n += 1;
    }
    n
}

#[test]
fn fuzz_regressions_do_not_panic() {
    let targets: BTreeSet<String> = TARGETS.iter().map(|(t, _)| (*t).to_owned()).collect();
    assert_eq!(names_in(&root().join("fuzz/fuzz_targets"), ".rs"), targets, "every fuzz target is replayed here");
    let regressions = root().join("fuzz/regressions");
    assert_eq!(names_in(&regressions, ""), targets, "fuzz/regressions/ holds a folder per target and nothing else");
    let mut replayed = std::collections::BTreeMap::new();
    for t in &targets {
        let n = replay(t);
        let kept = std::fs::read_dir(regressions.join(t)).unwrap().filter(|e| e.as_ref().unwrap().file_name() != ".keep").count();
        assert_eq!(n, kept, "{t}: {kept} kept inputs, {n} replayed");
        replayed.insert(t.as_str(), n);
    }
    assert_eq!(replayed.values().sum::<usize>(), files_under(&regressions).len(), "every kept input is replayed");
    // The two FHIRPath inputs that overflowed the engine's arithmetic (committed).
    assert!(replayed["fhirpath"] >= 2, "the FHIRPath crashes are kept: {replayed:?}");
}

/// The FHIRPath expressions and the JWT `scripts/fuzz` seeds its targets with, as the script
/// writes them (checked against its text below, so the two cannot drift apart).
const FHIRPATH_SEEDS: &[&str] = &[
    "name.given.first() | name.family",
    "hasValue() or (children().count() > id.count())",
    "value.ofType(Quantity).where(value > 1 'mg').exists() and (1.5 | 2).all($this > 1)",
    "today() + 1 year > @2026-01-01T10:00:00Z and 'abc'.matches('^a.c$')",
];
const JWT_SEED: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJodHRwczovL2hzLmV4YW1wbGUiLCJhdWQiOiJtaGciLCJleHAiOjk5OTk5OTk5OTksInNjb3BlIjoibWV0cmljcyJ9.c2lnbmF0dXJl";

fn json_files(dir: &str) -> Vec<PathBuf> {
    files_under(&root().join(dir)).into_iter().filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
}

/// The seed corpus of each target, as `scripts/fuzz`'s `seed` makes it: (target, seed inputs).
fn seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let read = |ps: Vec<PathBuf>| ps.iter().map(|p| std::fs::read(p).unwrap()).collect::<Vec<_>>();
    let mut packages: Vec<PathBuf> =
        files_under(&root().join("conformance/packages")).into_iter().filter(|p| p.extension().is_some_and(|x| x == "tgz")).collect();
    packages.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    vec![
        ("record_reader", read(json_files("tests/golden/records"))),
        ("mapping", read(json_files("tests/golden/records"))),
        ("package_loader", read(packages.into_iter().take(1).collect())),
        ("validator", read(json_files("tests/golden/expected"))),
        ("fhirpath", FHIRPATH_SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect()),
        ("jwt", vec![JWT_SEED.as_bytes().to_vec()]),
    ]
}

#[test]
fn fuzz_seeds_do_not_panic() {
    let script = std::fs::read_to_string(root().join("scripts/fuzz")).unwrap();
    for s in FHIRPATH_SEEDS.iter().chain([&JWT_SEED]) {
        // The script writes `$` as `\$` inside double quotes.
        assert!(script.contains(&s.replace('$', "\\$")), "scripts/fuzz no longer seeds {s:?}");
    }
    for dir in ["tests/golden/records", "tests/golden/expected", "conformance/packages"] {
        assert!(script.contains(dir), "scripts/fuzz no longer seeds from {dir}");
    }
    let seeds = seeds();
    let covered: BTreeSet<&str> = seeds.iter().map(|(t, _)| *t).collect();
    assert_eq!(covered, TARGETS.iter().map(|(t, _)| *t).collect(), "every target has its seeds replayed");
    for (target, inputs) in seeds {
        assert!(!inputs.is_empty(), "{target}: no seed inputs");
        let run = entry_point(target);
        for input in &inputs {
            run(input);
        }
    }
    // And input that is nothing like them.
    mhg::fuzzing::package_loader(b"not a tgz");
    mhg::fuzzing::jwt(b"a.b.c");
}
