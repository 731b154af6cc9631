//! FHIR packages in the npm package format: a `.tgz` or an unpacked folder holding
//! `package/package.json` and one resource per JSON file.
//!
//! Each package is indexed by canonical URL (and version): from its `package/.index.json` when
//! it ships one, else by reading four fields of every file once (resourceType, id, url, version)
//! and writing the index back as `.index.json` where the folder is writable, so that the next
//! start reads the index instead of the whole package. Resources are parsed on first use and
//! kept.
//!
//! Dependencies are resolved by name: the exact version when loaded, else the nearest loaded
//! version (IPS 2.0.0 names versions that were never published on npm), else reported missing.
//! `hl7.fhir.r4.core` is satisfied by `hl7.fhir.r4.examples` 4.0.1, which holds the same
//! definitions and is the one of the two on npm.
//!
//! No network, no logging of resource content.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::GatewayError;

fn err(path: &Path, message: impl Into<String>) -> GatewayError {
    GatewayError::Config { file: path.display().to_string(), message: message.into() }
}

/// One line of the index (`.index.json` "files").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub filename: String,
    #[serde(rename = "resourceType")]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct IndexFile {
    #[serde(rename = "index-version")]
    index_version: u32,
    files: Vec<IndexEntry>,
}

/// Only what the index needs; the rest of a file is skipped unparsed.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "resourceType")]
    resource_type: Option<String>,
    id: Option<String>,
    url: Option<String>,
    version: Option<String>,
}

/// A package's resource files, by file name, read when the package is loaded (from a `.tgz`
/// under `package/`, or from a folder): the validator reads no file while validating.
enum Source {
    Members(HashMap<String, Vec<u8>>),
}

pub struct Package {
    pub name: String,
    pub version: String,
    pub canonical: Option<String>,
    /// (name, version) as `package.json` declares them.
    pub dependencies: Vec<(String, String)>,
    pub index: Vec<IndexEntry>,
    source: Source,
    origin: PathBuf,
}

/// How one dependency was satisfied.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub package: String,
    pub needs: String,
    /// `name#version` of the loaded package that serves it, when any.
    pub served_by: Option<String>,
    pub exact: bool,
}

#[derive(Default)]
pub struct Packages {
    packages: Vec<Package>,
    /// canonical URL -> (package, index entry), in load order.
    by_url: HashMap<String, Vec<(usize, usize)>>,
    parsed: Mutex<HashMap<(usize, usize), Arc<Value>>>,
}

/// What `package.json` says: name, version, canonical, dependencies.
type PackageJson = (String, String, Option<String>, Vec<(String, String)>);

fn package_json(bytes: &[u8], origin: &Path) -> Result<PackageJson, GatewayError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| err(origin, format!("package/package.json is not JSON: {e}")))?;
    let name = v["name"].as_str().ok_or_else(|| err(origin, "package/package.json: name is missing"))?.to_owned();
    let version = v["version"].as_str().ok_or_else(|| err(origin, "package/package.json: version is missing"))?.to_owned();
    let deps = v["dependencies"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    Ok((name, version, v["canonical"].as_str().map(str::to_owned), deps))
}

fn index_entry(filename: &str, bytes: &[u8]) -> Option<IndexEntry> {
    let h: Head = serde_json::from_slice(bytes).ok()?;
    Some(IndexEntry { filename: filename.to_owned(), resource_type: h.resource_type?, id: h.id, url: h.url, version: h.version })
}

fn is_resource_file(name: &str) -> bool {
    name.ends_with(".json") && name != "package.json" && !name.starts_with('.')
}

impl Packages {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn packages(&self) -> impl Iterator<Item = (&str, &str)> {
        self.packages.iter().map(|p| (p.name.as_str(), p.version.as_str()))
    }

    /// Loads a package from a `.tgz` or an unpacked folder (holding `package/`, or being it).
    pub fn add(&mut self, path: &Path) -> Result<(String, String), GatewayError> {
        let pkg = if path.is_dir() { Self::load_dir(path)? } else { Self::load_tgz(path)? };
        let id = (pkg.name.clone(), pkg.version.clone());
        let n = self.packages.len();
        for (i, e) in pkg.index.iter().enumerate() {
            if let Some(u) = &e.url {
                self.by_url.entry(u.clone()).or_default().push((n, i));
            }
        }
        self.packages.push(pkg);
        Ok(id)
    }

    fn load_dir(path: &Path) -> Result<Package, GatewayError> {
        let dir = if path.join("package").is_dir() { path.join("package") } else { path.to_path_buf() };
        let pj = std::fs::read(dir.join("package.json")).map_err(|e| err(path, format!("no package/package.json: {e}")))?;
        let (name, version, canonical, dependencies) = package_json(&pj, path)?;
        let index_path = dir.join(".index.json");
        let index = match std::fs::read(&index_path).ok().and_then(|b| serde_json::from_slice::<IndexFile>(&b).ok()) {
            Some(i) => i.files,
            None => {
                let mut files: Vec<String> = std::fs::read_dir(&dir)
                    .map_err(|e| err(path, format!("cannot list: {e}")))?
                    .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
                    .filter(|n| is_resource_file(n))
                    .collect();
                files.sort();
                let index: Vec<IndexEntry> =
                    files.iter().filter_map(|f| std::fs::read(dir.join(f)).ok().and_then(|b| index_entry(f, &b))).collect();
                // Best effort: a read-only package is indexed again next time.
                if let Ok(text) = serde_json::to_vec(&IndexFile { index_version: 1, files: index.clone() }) {
                    let tmp = dir.join(".index.json.tmp");
                    if std::fs::write(&tmp, text).is_ok() {
                        let _ = std::fs::rename(&tmp, &index_path);
                    }
                }
                index
            }
        };
        // Every resource is read now, as from an archive: validating reads no file.
        let mut members = HashMap::new();
        for e in &index {
            // A file an older index names but the folder lacks is left out, as it was before.
            if let Ok(bytes) = std::fs::read(dir.join(&e.filename)) {
                members.insert(e.filename.clone(), bytes);
            }
        }
        Ok(Package { name, version, canonical, dependencies, index, source: Source::Members(members), origin: path.to_path_buf() })
    }

    fn load_tgz(path: &Path) -> Result<Package, GatewayError> {
        let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut members = HashMap::new();
        for entry in archive.entries().map_err(|e| err(path, format!("not a .tgz: {e}")))? {
            let mut entry = entry.map_err(|e| err(path, format!("not a .tgz: {e}")))?;
            let name = entry.path().ok().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let Some(rest) = name.strip_prefix("package/") else { continue };
            if rest.contains('/') || !rest.ends_with(".json") {
                continue;
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(|e| err(path, format!("cannot read {name}: {e}")))?;
            members.insert(rest.to_owned(), bytes);
        }
        let pj = members.get("package.json").ok_or_else(|| err(path, "no package/package.json in the archive"))?;
        let (name, version, canonical, dependencies) = package_json(pj, path)?;
        let index = match members.get(".index.json").and_then(|b| serde_json::from_slice::<IndexFile>(b).ok()) {
            Some(i) => i.files,
            None => {
                let mut names: Vec<&String> = members.keys().filter(|n| is_resource_file(n)).collect();
                names.sort();
                names.into_iter().filter_map(|n| index_entry(n, &members[n])).collect()
            }
        };
        Ok(Package { name, version, canonical, dependencies, index, source: Source::Members(members), origin: path.to_path_buf() })
    }

    fn parse(&self, pkg: usize, entry: usize) -> Option<Arc<Value>> {
        self.parse_keeping(pkg, entry, true)
    }

    /// Parses an entry (once: `keep` caches it for later calls).
    fn parse_keeping(&self, pkg: usize, entry: usize, keep: bool) -> Option<Arc<Value>> {
        if let Some(v) = self.parsed.lock().ok()?.get(&(pkg, entry)) {
            return Some(v.clone());
        }
        let p = &self.packages[pkg];
        let file = &p.index[entry].filename;
        let v = match &p.source {
            Source::Members(m) => serde_json::from_slice::<Value>(m.get(file)?).ok()?,
        };
        let v = Arc::new(v);
        if keep {
            self.parsed.lock().ok()?.insert((pkg, entry), v.clone());
        }
        Some(v)
    }

    /// [`Self::resolve`] without keeping the parsed resource: for a pass over many definitions
    /// (the FHIRPath type model reads every core StructureDefinition once, about 60 MB parsed).
    pub fn read_once(&self, canonical: &str) -> Option<Arc<Value>> {
        let (p, e) = self.locate(canonical)?;
        self.parse_keeping(p, e, false)
    }

    /// The resource with canonical `url` (`url|version` picks a version). When several packages
    /// define it: one whose `canonical` the URL sits under, else any but R4 core, else the
    /// first loaded.
    pub fn resolve(&self, canonical: &str) -> Option<Arc<Value>> {
        let (p, e) = self.locate(canonical)?;
        self.parse(p, e)
    }

    /// Whether `url` resolves to R4 core's copy of another publisher's definition (DICOM's
    /// codes, as of 2019): a snapshot, not the authority, so what it lacks may exist.
    pub fn is_external_copy(&self, url: &str) -> bool {
        self.locate(url).is_some_and(|(p, _)| {
            self.is_core(p) && !["http://hl7.org/fhir", "http://terminology.hl7.org"].into_iter().any(|c| under(url, c))
        })
    }

    /// R4 core: `hl7.fhir.r4.core`, or `hl7.fhir.r4.examples` standing for it.
    fn is_core(&self, p: usize) -> bool {
        matches!(self.packages[p].name.as_str(), "hl7.fhir.r4.core" | "hl7.fhir.r4.examples")
    }

    /// The package and index entry [`Self::resolve`] reads.
    fn locate(&self, canonical: &str) -> Option<(usize, usize)> {
        let (url, version) = match canonical.split_once('|') {
            Some((u, v)) => (u, Some(v)),
            None => (canonical, None),
        };
        let hits = self.by_url.get(url)?;
        let fits = |&&(p, e): &&(usize, usize)| version.is_none_or(|v| self.packages[p].index[e].version.as_deref() == Some(v));
        // R4 core (2019) holds copies of definitions HL7 has maintained since in other packages:
        // THO's `http://terminology.hl7.org/CodeSystem/...`, the extensions pack's
        // `http://hl7.org/fhir/StructureDefinition/<extension>`. A later package wins over core,
        // and among the others, the one whose canonical base holds the URL.
        let core = |p: usize| self.is_core(p);
        let owner = |&&(p, _): &&(usize, usize)| !core(p) && self.packages[p].canonical.as_deref().is_some_and(|c| under(url, c));
        hits.iter()
            .filter(fits)
            .find(owner)
            .or_else(|| hits.iter().filter(fits).find(|&&(p, _)| !core(p)))
            .or_else(|| hits.iter().find(fits))
            .copied()
    }

    /// Every index entry of a resource type across the packages (e.g. all `StructureDefinition`s).
    pub fn urls_of_type<'a>(&'a self, resource_type: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.packages.iter().flat_map(|p| p.index.iter()).filter(move |e| e.resource_type == resource_type).filter_map(|e| e.url.as_deref())
    }

    /// How each declared dependency of each loaded package is served.
    pub fn dependencies(&self) -> Vec<Dependency> {
        let alias = |n: &str| if n == "hl7.fhir.r4.core" { "hl7.fhir.r4.examples" } else { n }.to_owned();
        let mut out = Vec::new();
        for p in &self.packages {
            for (dep, ver) in &p.dependencies {
                let name = alias(dep);
                let candidates: Vec<&Package> = self.packages.iter().filter(|q| q.name == name).collect();
                let exact = candidates.iter().find(|q| &q.version == ver);
                let chosen = exact.or_else(|| candidates.iter().max_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version))));
                out.push(Dependency {
                    package: format!("{}#{}", p.name, p.version),
                    needs: format!("{dep}#{ver}"),
                    served_by: chosen.map(|q| format!("{}#{}", q.name, q.version)),
                    exact: exact.is_some(),
                });
            }
        }
        out
    }

    /// Declared dependencies no loaded package serves: definitions a profile may need and the
    /// validator will report unknown.
    pub fn missing_dependencies(&self) -> Vec<Dependency> {
        self.dependencies().into_iter().filter(|d| d.served_by.is_none()).collect()
    }

    pub fn origin_of(&self, name: &str) -> Option<&Path> {
        self.packages.iter().find(|p| p.name == name).map(|p| p.origin.as_path())
    }

    pub fn canonical_of(&self, name: &str) -> Option<&str> {
        self.packages.iter().find(|p| p.name == name).and_then(|p| p.canonical.as_deref())
    }
}

/// Whether canonical `url` sits under the base `base` (`http://terminology.hl7.org/CodeSystem/x`
/// under `http://terminology.hl7.org`).
fn under(url: &str, base: &str) -> bool {
    url.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

/// Orders `1.2.10` after `1.2.9`; non-numeric parts (`-ballot`) sort after plain releases'
/// numbers, which is close enough to pick "the nearest available".
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-']).map(|p| (p.parse::<u64>().unwrap_or(u64::MAX), p.to_owned())).collect()
}
