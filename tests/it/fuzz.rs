//! Every input a fuzzer ever crashed on (`fuzz/regressions/<target>/`, copied there by
//! `scripts/fuzz`) replayed through the same entry point, plus the seed inputs: none may panic.

use crate::common::*;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = root().join("fuzz/regressions").join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        run(&std::fs::read(e.path()).unwrap());
        n += 1;
    }
    n
}

#[test]
fn fuzz_regressions_do_not_panic() {
    replay("record_reader", mhg::fuzzing::record_reader);
    replay("mapping", mhg::fuzzing::mapping);
    replay("package_loader", mhg::fuzzing::package_loader);
    replay("jwt", mhg::fuzzing::jwt);
    replay("validator", mhg::fuzzing::validator);
    replay("fhirpath", mhg::fuzzing::fhirpath);
    // The entry points themselves work on ordinary input.
    let record = std::fs::read(root().join("tests/golden/records/30-shared-adult-refugee-clear.json")).unwrap();
    mhg::fuzzing::record_reader(&record);
    mhg::fuzzing::mapping(&record);
    mhg::fuzzing::package_loader(b"not a tgz");
    mhg::fuzzing::jwt(b"a.b.c");
    mhg::fuzzing::fhirpath(b"value.ofType(Quantity).value > 1");
}
