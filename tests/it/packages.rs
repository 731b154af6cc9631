//! FHIR packages: loaded from a folder and from a .tgz, indexed when they ship no index (IPS
//! 2.0.0 does not), resolved by canonical URL, dependencies served by the nearest version.

use mhg::validate::packages::Packages;

use crate::support::peer_packages;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

const IPS_PATIENT: &str = "http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips";

#[test]
fn folder_and_tgz_are_indexed_and_resolved() {
    let ips = peer_packages().join("hl7.fhir.uv.ips#2.0.0");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ips");
    copy_dir(&ips, &copy);
    let _ = std::fs::remove_file(copy.join("package/.index.json"));

    let mut p = Packages::new();
    assert_eq!(p.add(&copy).unwrap(), ("hl7.fhir.uv.ips".to_owned(), "2.0.0".to_owned()));
    assert!(copy.join("package/.index.json").is_file(), "the built index is written back");
    let sd = p.resolve(IPS_PATIENT).expect("resolves");
    assert_eq!(sd["resourceType"], "StructureDefinition");
    assert_eq!(sd["url"], IPS_PATIENT);
    assert!(p.resolve(&format!("{IPS_PATIENT}|2.0.0")).is_some());
    assert!(p.resolve(&format!("{IPS_PATIENT}|9.9.9")).is_none());
    assert!(p.urls_of_type("StructureDefinition").count() > 20);

    // The same package as the npm registry ships it.
    let tgz = dir.path().join("ips.tgz");
    let st =
        std::process::Command::new("tar").args(["czf", tgz.to_str().unwrap(), "-C", copy.to_str().unwrap(), "package"]).status().unwrap();
    assert!(st.success());
    let mut q = Packages::new();
    q.add(&tgz).unwrap();
    assert_eq!(q.resolve(IPS_PATIENT).unwrap()["url"], IPS_PATIENT);

    // Not a package: a clear error naming the path.
    let e = Packages::new().add(dir.path()).err().unwrap().to_string();
    assert!(e.contains(&dir.path().display().to_string()) && e.contains("package.json"), "{e}");
}

#[test]
fn dependencies_are_served_by_the_nearest_version() {
    let c = peer_packages();
    let mut p = Packages::new();
    for name in
        ["hl7.fhir.uv.ips#2.0.0", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1", "hl7.fhir.r4.examples#4.0.1"]
    {
        p.add(&c.join(name)).unwrap();
    }
    let deps = p.dependencies();
    let of = |needs: &str| deps.iter().find(|d| d.package == "hl7.fhir.uv.ips#2.0.0" && d.needs.starts_with(needs)).cloned().unwrap();
    let core = of("hl7.fhir.r4.core");
    assert_eq!(core.served_by.as_deref(), Some("hl7.fhir.r4.examples#4.0.1"));
    let tx = of("hl7.terminology.r4");
    assert_eq!(tx.served_by.as_deref(), Some("hl7.terminology.r4#7.0.1"));
    assert!(!tx.exact, "6.5.0 is not on npm; 7.0.1 serves");
    assert_eq!(of("hl7.fhir.uv.ipa").served_by, None, "reported missing, not invented");
    // Core definitions resolve through the examples package.
    assert_eq!(p.resolve("http://hl7.org/fhir/StructureDefinition/Patient").unwrap()["kind"], "resource");
    assert!(p.resolve("http://hl7.org/fhir/ValueSet/administrative-gender").is_some());
}
