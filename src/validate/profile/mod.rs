//! The gateway's own FHIR R4 **profile validator**, on StructureDefinition snapshots.
//!
//! A [`Validator`] is built once from [`Packages`] plus loose definition files and then shared
//! (`Send + Sync`): profiles are compiled into element trees ([`model`]) on first use and
//! memoised, ValueSets are expanded locally ([`terminology`]) and memoised. It checks a
//! resource against base R4 (the definition of its `resourceType`), its `meta.profile`s and the
//! profiles the caller names: the JSON layer, primitive formats ([`primitive`]), cardinality,
//! choice types, reference targets, `fixed[x]`/`pattern[x]`, slicing,
//! extensions, bindings, Bundle rules and invariants (natively for the hot ones, otherwise
//! through an [`InvariantEngine`] when one is plugged in). Profiles that ship only a
//! differential get a snapshot generated ([`snapshot`]).
//!
//! Invariants (as absences): no I/O after the definitions are loaded (packages read files
//! lazily on first use of a definition), no logging, no clock of its own (the clock is given at
//! construction, [`Validator::with_clock`], and read once per validation for "today"), and no
//! finding quotes an instance value: findings name element paths (FHIRPath) and codes of
//! definitions only.
//!
//! Layout: `walk/` is the instance walk (one concern a file, slicing included); `json.rs` the
//! leaf of JSON comparisons the walk, [`native`] and `definitions.rs` share; nothing below
//! imports the walk.

pub mod codes;
mod definitions;
mod errata;
mod json;
mod keys;
pub mod load;
pub(crate) mod measure;
pub mod model;
mod narrative;
pub mod native;
mod opdef;
pub mod primitive;
pub(crate) mod questionnaire;
pub(crate) mod searchparam;
pub mod snapshot;
mod structure;
pub mod terminology;
pub mod ucum;
mod walk;
pub mod xhtml;
mod xml;
pub mod xver;

use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};

use crate::terminology::delegate::{TxAnswers, VsQuery};
use crate::validate::packages::Packages;
use json::SmallGet;
use model::Profile;
use terminology::Expansion;

/// Evaluates FHIRPath invariants (`ElementDefinition.constraint.expression`). Implemented by
/// the FHIRPath engine; the validator works without one (it then checks only the invariants it
/// implements natively).
///
/// Two ways in: [`Self::invariant`] takes the JSON nodes and converts them per call (what a
/// simple engine offers); [`Self::prepare`] + [`Self::invariants_at`] convert the root once per
/// validation and name nodes by JSON Pointer, so a Bundle of n entries costs O(n) conversions
/// rather than one per invariant. The walk uses the second when the engine offers it.
pub trait InvariantEngine: Send + Sync {
    /// Ok(true) = satisfied (an empty result counts as satisfied); Err = engine could not evaluate.
    fn invariant(&self, expr: &str, focus: &Value, focus_type: &str, resource: &Value, root: &Value) -> Result<bool, InvariantError>;

    /// The root (a resource or a Bundle), converted once for [`Self::invariants_at`]; `None`
    /// when the engine has no such mode.
    fn prepare(&self, _root: &Value) -> Option<Box<dyn std::any::Any>> {
        None
    }

    /// Several invariants on one focus, named by JSON Pointers into a prepared root: `focus`
    /// (`/entry/2/resource/name/0`), `resource` (`/entry/2/resource`, `""` for the root) and
    /// `root`, the node `%rootResource` names (`""`, or a resource of a Parameters).
    /// One verdict per expression; `Err` when the pointers or the prepared root are unusable.
    fn invariants_at(
        &self,
        _prepared: &dyn std::any::Any,
        _exprs: &[&str],
        _focus: &str,
        _focus_type: &str,
        _resource: &str,
        _root: &str,
    ) -> Result<Vec<Result<bool, InvariantError>>, InvariantError> {
        Err(InvariantError::Unsupported)
    }

    /// Whether `expr` is a FHIRPath expression the engine can read; None when the engine
    /// cannot tell (the syntax is then not judged).
    fn parses(&self, _expr: &str) -> Option<bool> {
        None
    }
}

/// Why an [`InvariantEngine`] gave no verdict; the walk reports "could not be evaluated".
#[derive(Debug, thiserror::Error)]
pub enum InvariantError {
    /// The engine has no such mode (by pointer), or not this expression.
    #[error("not supported by the engine")]
    Unsupported,
    /// `invariants_at` was handed a root another engine prepared.
    #[error("not a prepared root of this engine")]
    NotPrepared,
    /// The engine's own error (parse, evaluation, a panic caught), kept as its source.
    #[error(transparent)]
    Engine(Box<dyn std::error::Error + Send + Sync>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    Information,
}

/// What a failed best-practice invariant is reported as (HL7's `-best-practice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BestPractice {
    Ignore,
    Hint,
    Warning,
    Error,
}

impl BestPractice {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ignore" => Self::Ignore,
            "hint" => Self::Hint,
            "warning" => Self::Warning,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One finding: an `OperationOutcome.issue`. `text` never holds instance data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    pub severity: Severity,
    /// FHIR IssueType: structure, required, value, invariant, code-invalid, not-found, ...
    pub code: &'static str,
    pub text: String,
    /// FHIRPath of the element, e.g. `Bundle.entry[2].resource.code.coding[0].system`.
    pub expression: String,
}

impl Finding {
    pub fn to_issue(&self) -> Value {
        json!({"severity": self.severity.as_str(), "code": self.code, "details": {"text": self.text}, "expression": [self.expression]})
    }
}

/// An OperationOutcome for a list of findings (one information issue when there are none).
pub fn outcome(findings: &[Finding]) -> Value {
    let issues: Vec<Value> = if findings.is_empty() {
        vec![json!({"severity": "information", "code": "informational", "details": {"text": "no issues"}})]
    } else {
        findings.iter().map(Finding::to_issue).collect()
    };
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

pub const CORE: &str = "http://hl7.org/fhir/StructureDefinition/";

type Memo<T> = RwLock<HashMap<String, Option<Arc<T>>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SystemKind {
    ValueSet,
    Supplement,
    /// A CodeSystem that is not a supplement (complete or not).
    CodeSystem,
    Other,
}

pub struct Validator {
    packages: Arc<Packages>,
    /// Loose definitions (StructureDefinition, ValueSet, CodeSystem) by canonical URL; they win
    /// over packages.
    loose: HashMap<String, Arc<Value>>,
    /// `ImplementationGuide.global`: (resource type, profile) pairs of the guides loaded, loose
    /// or in packages. Every resource of the type is checked against the profile, as HL7's
    /// validator does with the guides it loads.
    globals: Vec<(String, String)>,
    profiles: Memo<Profile>,
    /// Base definitions by type name (`Patient`, `HumanName`): the hot lookup, without building
    /// the canonical URL each time. Only types that exist are kept, so the names are the
    /// definitions' (never an instance's), hashed with FxHash rather than SipHash (issue 17).
    types: RwLock<std::collections::HashMap<String, Arc<Profile>, std::hash::BuildHasherDefault<keys::Fx>>>,
    expansions: Memo<Expansion>,
    /// Complete CodeSystems by URL: code -> display.
    code_systems: Memo<HashMap<String, Option<String>>>,
    /// What a URL used as a code system names: a ValueSet or a supplement is a mistake worth
    /// an error.
    value_set_systems: RwLock<HashMap<String, SystemKind>>,
    /// The code systems a ValueSet draws on (its includes and what they import), for value
    /// sets that cannot be expanded here; None when that cannot be told.
    drawn_systems: Memo<Vec<String>>,
    engine: Option<Arc<dyn InvariantEngine>>,
    /// Extensions whose definition is not loaded: errors (the HL7 validator's default) or
    /// warnings (the gateway's default: FHIR lets a receiver ignore them).
    unknown_extension_errors: bool,
    skip_contained: bool,
    check_references: bool,
    /// What a failed best-practice invariant is (HL7's `-best-practice`; default warning).
    best_practice: BestPractice,
    /// Invariant failures quote the expression (HL7's `-want-invariants-in-messages`).
    invariants_in_messages: bool,
    /// A canonical resource marked experimental is an error (HL7's `-no-experimental-content`).
    no_experimental_content: bool,
    /// Example URLs (example.org, acme.com...) are accepted unresolved (HL7's
    /// `-allow-example-urls`; on, as HL7's test harness runs it).
    allow_example_urls: bool,
    /// Extensions from these URL prefixes may be unknown (HL7's `-extension`; `any`: all).
    extension_domains: Vec<String>,
    /// A string that looks like it embeds HTML tags is an error (HL7's `-security-checks`).
    security_checks: bool,
    /// HTML tags in markdown are an error, not a warning (HL7's `noHtmlInMarkdown` setting).
    no_html_in_markdown: bool,
    /// The wall clock (milliseconds since 1970, UTC), given at construction: read once per
    /// validation for "today" (`minValueDuration`, `maxValueDuration`), so the walk has no
    /// clock of its own and a test can fix the date.
    clock: fn() -> i64,
    /// Elements walked clean, not walked again when met again (`walk/clean.rs`; issue 17).
    clean: walk::CleanMemo,
    clean_on: bool,
}

/// The R4 core vital-signs profiles an Observation's code calls for (R4
/// `observation-vitalsigns.html`: an Observation using one of these codes SHALL conform to the
/// profile), as the HL7 validator's table has them (`BasePolicyAdvisorForFullValidation`): the
/// profiles' own LOINC codes, the LOINC codes of the same measurement by other methods, and
/// SNOMED CT's. Groups are tried in this order, LOINC first; the first group any coding
/// matches decides.
const VITAL_SIGNS: &[(&str, &str, &[&str])] = &[
    (LOINC, "vitalspanel", &["85353-1"]),
    (
        LOINC,
        "resprate",
        &["9279-1", "76170-0", "76172-6", "76171-8", "19840-8", "33438-3", "76270-8", "11291-2"],
    ),
    (
        LOINC,
        "heartrate",
        &[
            "60978-4", "73795-7", "73799-9", "76476-1", "76477-9", "8867-4", "8889-8", "8890-6", "8891-4", "8892-2", "8893-0", "40443-4",
            "55425-3", "68999-2", "11328-2", "69000-8", "8886-4",
        ],
    ),
    (
        LOINC,
        "oxygensat",
        &["2708-6", "19224-5", "20564-1", "2709-4", "2710-2", "2713-6", "51733-4", "59408-5", "59417-6", "89276-0", "97549-0"],
    ),
    (
        LOINC,
        "bodytemp",
        &[
            "8310-5", "60834-9", "60835-6", "60836-4", "60838-0", "60955-2", "61009-7", "75539-7", "75987-8", "76010-8", "76011-6",
            "76278-1", "8309-7", "8328-7", "8329-5", "8330-3", "8331-1", "8332-9", "8333-7", "8334-5", "91371-5", "98657-0", "98663-8",
        ],
    ),
    (LOINC, "bodyheight", &["8302-2", "3137-7", "3138-5", "8306-3", "8308-9"]),
    (LOINC, "headcircum", &["9843-4", "8287-5"]),
    (LOINC, "bodyweight", &["29463-7", "3141-9", "3142-7", "75292-3", "79348-9", "8350-1", "8351-9"]),
    (LOINC, "bmi", &["39156-5", "89270-3"]),
    (LOINC, "bp", &["85354-9", "35094-2", "8459-0", "76534-7", "55284-4", "8480-6"]),
    (SCT, "vitalspanel", &["46680005"]),
    (SCT, "resprate", &["86290005", "271625008", "271306003"]),
    (
        SCT,
        "heartrate",
        &["271306003", "249043002", "444981005", "399017001", "251670001", "429525003", "429614003"],
    ),
    (SCT, "oxygensat", &["442476006", "431314004"]),
    (
        SCT,
        "bodytemp",
        &[
            "386725007",
            "276885007",
            "300076005",
            "1222808002",
            "364246006",
            "307047009",
            "708499008",
            "431598003",
            "698831002",
            "698832009",
            "415882003",
            "415974002",
            "415929009",
            "415945006",
        ],
    ),
    (
        SCT,
        "bodyheight",
        &["1153637007", "1162419008", "50373000", "1162418000", "1230278008", "1162392001", "1162417005"],
    ),
    (SCT, "headcircum", &["363812007", "169876006", "1269262007", "363811000"]),
    (SCT, "bodyweight", &["735395000", "425024002", "424927000", "784399000", "1162416001", "1162415002"]),
    (SCT, "bmi", &["60621009"]),
    (
        SCT,
        "bp",
        &[
            "251076008",
            "163033001",
            "163035008",
            "386534000",
            "386536003",
            "271649006",
            "271650006",
            "407556006",
            "407554009",
            "716579001",
            "399304008",
        ],
    ),
];
const LOINC: &str = "http://loinc.org";
const SCT: &str = "http://snomed.info/sct";

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator").field("loose", &self.loose.len()).field("engine", &self.engine.is_some()).finish()
    }
}

impl Validator {
    pub fn new(packages: Arc<Packages>) -> Self {
        let globals = packages
            .urls_of_type("ImplementationGuide")
            .filter_map(|u| packages.resolve(u))
            .flat_map(|ig| implementation_guide_globals(&ig))
            .collect();
        Validator {
            packages,
            loose: HashMap::new(),
            globals,
            profiles: RwLock::default(),
            types: RwLock::default(),
            expansions: RwLock::default(),
            code_systems: RwLock::default(),
            value_set_systems: RwLock::default(),
            drawn_systems: RwLock::default(),
            engine: None,
            unknown_extension_errors: false,
            skip_contained: false,
            check_references: false,
            best_practice: BestPractice::Warning,
            invariants_in_messages: false,
            no_experimental_content: false,
            allow_example_urls: true,
            extension_domains: Vec::new(),
            security_checks: false,
            no_html_in_markdown: false,
            clock: crate::calendar::now_ms,
            clean: walk::CleanMemo::default(),
            clean_on: true,
        }
    }

    /// Whether elements walked clean once are skipped when met again (on by default; the
    /// findings are the same either way: the switch is for measuring and for tests).
    pub fn with_clean_memo(mut self, on: bool) -> Self {
        self.clean_on = on;
        self
    }

    /// Replaces the wall clock (milliseconds since 1970, UTC; [`crate::calendar::now_ms`] by
    /// default) that dates relative to now (`minValueDuration`, `maxValueDuration`) count from.
    pub fn with_clock(mut self, clock: fn() -> i64) -> Self {
        self.clock = clock;
        self
    }

    /// Adds loose definitions (resources with a `url`); a Bundle contributes its entries.
    pub fn with_loose(mut self, resources: impl IntoIterator<Item = Value>) -> Self {
        for r in resources {
            if r["resourceType"] == "Bundle" {
                let entries: Vec<Value> =
                    r["entry"].as_array().map(|a| a.iter().map(|e| e["resource"].clone()).collect()).unwrap_or_default();
                self = self.with_loose(entries);
                continue;
            }
            if r["resourceType"] == "ImplementationGuide" {
                self.globals.extend(implementation_guide_globals(&r));
            }
            if let Some(url) = r["url"].as_str() {
                self.loose.insert(url.to_owned(), Arc::new(r));
            }
        }
        self
    }

    /// The profiles the loaded ImplementationGuides make global for resources of type `rt`.
    pub fn global_profiles<'a>(&'a self, rt: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.globals.iter().filter(move |(t, _)| t == rt).map(|(_, p)| p.as_str())
    }

    pub fn with_engine(mut self, engine: Arc<dyn InvariantEngine>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Reports extensions whose definition is not loaded as errors rather than warnings.
    pub fn with_unknown_extension_errors(mut self, on: bool) -> Self {
        self.unknown_extension_errors = on;
        self
    }

    /// Leaves the content of contained resources unchecked (the HL7 validator's
    /// `validateContains: IGNORE`), and whether each is referred to (dom-3, as Java does then).
    pub fn with_contained_skipped(mut self, on: bool) -> Self {
        self.skip_contained = on;
        self
    }

    /// Relative references (`Patient/1`) must resolve inside the content validated: a Bundle's
    /// entries, a Parameters' resources, or the root itself (the HL7 validator's
    /// `validateReference: CHECK_EXISTS_AND_TYPE`, without fetching absolute URLs). For
    /// self-contained submissions; off by default, as a reference to a resource the receiver
    /// already holds is normal.
    pub fn with_references_checked(mut self, on: bool) -> Self {
        self.check_references = on;
        self
    }

    /// What a failed best-practice invariant (one carrying R4's `elementdefinition-bestpractice`
    /// extension, `dom-6` among them) is reported as; HL7's validator's `-best-practice`.
    pub fn with_best_practice(mut self, level: BestPractice) -> Self {
        self.best_practice = level;
        self
    }

    /// Invariant failures quote the FHIRPath expression evaluated (HL7's
    /// `-want-invariants-in-messages`). The expression is the definition's, never instance data.
    pub fn with_invariants_in_messages(mut self, on: bool) -> Self {
        self.invariants_in_messages = on;
        self
    }

    /// A canonical resource with `experimental` true is an error (HL7's
    /// `-no-experimental-content`), for production content.
    pub fn with_no_experimental_content(mut self, on: bool) -> Self {
        self.no_experimental_content = on;
        self
    }

    /// Example URLs (HL7's isExampleUrl: example.org, example.com, example.net, acme.com,
    /// acme.org, and the example OIDs) are accepted without resolving (on, the default), or
    /// are errors where a URL must resolve (TYPE_SPECIFIC_CHECKS_DT_URL_EXAMPLE); HL7's
    /// `-allow-example-urls`. On, an unknown extension on example.org or acme.com is accepted.
    pub fn with_example_urls(mut self, allowed: bool) -> Self {
        self.allow_example_urls = allowed;
        self
    }

    /// URL prefixes whose extensions may be unknown without an error (HL7's `-extension`,
    /// repeatable; `any` allows every unknown extension).
    pub fn with_extension_domains(mut self, domains: Vec<String>) -> Self {
        self.extension_domains = domains;
        self
    }

    /// Every primitive but xhtml that looks like it embeds an HTML tag is an error (HL7's
    /// `-security-checks`, SECURITY_STRING_CONTENT_ERROR).
    pub fn with_security_checks(mut self, on: bool) -> Self {
        self.security_checks = on;
        self
    }

    /// What looks like an HTML tag in a markdown value is an error rather than a warning
    /// (HL7's `noHtmlInMarkdown`, TYPE_SPECIFIC_CHECKS_DT_MARKDOWN_HTML).
    pub fn with_no_html_in_markdown(mut self, on: bool) -> Self {
        self.no_html_in_markdown = on;
        self
    }

    pub fn no_html_in_markdown(&self) -> bool {
        self.no_html_in_markdown
    }

    pub fn example_urls_allowed(&self) -> bool {
        self.allow_example_urls
    }

    pub fn security_checks(&self) -> bool {
        self.security_checks
    }

    /// Whether an extension whose definition is not loaded is still allowed (HL7's
    /// allowUnknownExtension): example domains while example URLs are allowed, DICOM's
    /// nema.org, HL7's tooling extensions, and the configured extension domains.
    pub fn allows_unknown_extension(&self, url: &str) -> bool {
        (self.allow_example_urls && (url.contains("example.org") || url.contains("acme.com")))
            || url.contains("nema.org")
            || url.starts_with("http://hl7.org/fhir/tools/StructureDefinition/")
            || url == "http://hl7.org/fhir/StructureDefinition/structuredefinition-expression"
            || self.extension_domains.iter().any(|d| d == "any" || url.starts_with(d.as_str()))
    }

    pub fn best_practice(&self) -> BestPractice {
        self.best_practice
    }

    pub fn invariants_in_messages(&self) -> bool {
        self.invariants_in_messages
    }

    pub fn no_experimental_content(&self) -> bool {
        self.no_experimental_content
    }

    /// The core vital-signs profile an Observation's `code` calls for ([`VITAL_SIGNS`]), with
    /// the code that called for it (`LOINC 8310-5`).
    pub(super) fn vital_sign_profile(&self, obs: &serde_json::Map<String, Value>) -> Option<(String, Arc<Profile>)> {
        // Code -> the first group of VITAL_SIGNS holding it, per system: the groups are tried
        // in order and the first any coding matches decides, so the group is the least of the
        // codings' groups, and its code the first coding with that group (issue 17: the table
        // scanned per Observation cost 12,000 instructions).
        static GROUPS: std::sync::OnceLock<[HashMap<&'static str, usize>; 2]> = std::sync::OnceLock::new();
        let groups = GROUPS.get_or_init(|| {
            let mut by = [HashMap::new(), HashMap::new()];
            for (g, (system, _, codes)) in VITAL_SIGNS.iter().enumerate() {
                for c in *codes {
                    by[usize::from(*system != LOINC)].entry(*c).or_insert(g);
                }
            }
            by
        });
        let codings = obs.sget("code")?.sget("coding")?.as_array()?;
        fn group_of<'c>(groups: &[HashMap<&'static str, usize>; 2], c: &'c Value) -> Option<(usize, &'c str)> {
            let system = c.sget("system").and_then(Value::as_str)?;
            let at = match system {
                LOINC => 0,
                SCT => 1,
                _ => return None,
            };
            let code = c.sget("code").and_then(Value::as_str)?;
            groups[at].get(code).map(|&g| (g, code))
        }
        // `min_by_key` keeps the first of equal minima: the first coding of the least group.
        let (g, code) = codings.iter().filter_map(|c| group_of(groups, c)).min_by_key(|(g, _)| *g)?;
        let (system, name, _) = VITAL_SIGNS[g];
        let label = if system == LOINC { "LOINC" } else { "SNOMED CT" };
        Some((format!("{label} {code}"), self.profile(&format!("http://hl7.org/fhir/StructureDefinition/{name}"))?))
    }

    /// Whether `ty` names a resource type (or the abstract `Resource`, `DomainResource`): the
    /// base definition of that name is a resource.
    pub(crate) fn is_resource_type(&self, ty: &str) -> bool {
        matches!(ty, "Resource" | "DomainResource") || self.type_profile(ty).is_some_and(|p| p.kind == "resource")
    }

    /// A resource type with a canonical `url` (StructureDefinition, ValueSet, Questionnaire...).
    pub(super) fn is_canonical_resource(&self, ty: &str) -> bool {
        self.type_profile(ty).is_some_and(|p| {
            p.kind == "resource" && p.elements.first().is_some_and(|r| r.children.iter().any(|&c| p.elements[c].name == "url"))
        })
    }

    pub fn references_checked(&self) -> bool {
        self.check_references
    }

    pub fn contained_skipped(&self) -> bool {
        self.skip_contained
    }

    pub fn unknown_extension_errors(&self) -> bool {
        self.unknown_extension_errors
    }

    pub fn packages(&self) -> &Packages {
        &self.packages
    }

    /// A definition by canonical URL (`url|version` accepted).
    pub fn resolve(&self, canonical: &str) -> Option<Arc<Value>> {
        let url = canonical.split('|').next().unwrap_or(canonical);
        if let Some(v) = self.loose.get(url) {
            return Some(v.clone());
        }
        self.packages.resolve(canonical).or_else(|| self.packages.resolve(url)).or_else(|| {
            // A cross-version extension: its definition built from the R5 element it names.
            xver::is_xver(url).then(|| xver::definition(url, |t| self.type_profile(t).is_some())).flatten().map(Arc::new)
        })
    }

    /// What a canonical reference of `holder` names: one of its contained resources for
    /// `#id`, else a loaded definition.
    pub(crate) fn resolve_from(&self, holder: &serde_json::Map<String, Value>, canonical: &str) -> Option<Arc<Value>> {
        match canonical.strip_prefix('#') {
            Some(id) => holder.get("contained")?.as_array()?.iter().find(|c| c["id"] == id).map(|c| Arc::new(c.clone())),
            None => self.resolve(canonical),
        }
    }

    /// Whether the definition at `url` is R4 core's 2019 copy of an external terminology
    /// (DICOM): a code it lacks may be a newer one, so that is a warning, not an error.
    pub fn is_external_copy(&self, url: &str) -> bool {
        !self.loose.contains_key(url) && self.packages.is_external_copy(url)
    }

    /// Whether `url` names a StructureDefinition the validator can use.
    pub fn knows_profile(&self, url: &str) -> bool {
        self.profile(url).is_some()
    }

    /// The compiled profile (memoised); None when unknown or unusable.
    pub fn profile(&self, url: &str) -> Option<Arc<Profile>> {
        self.profile_at(url, 0)
    }

    /// The base definition of a FHIR type (`http://hl7.org/fhir/StructureDefinition/<ty>`).
    pub fn type_profile(&self, ty: &str) -> Option<Arc<Profile>> {
        if let Some(p) = self.types.read().ok()?.get(ty) {
            return Some(p.clone());
        }
        // An unknown type is memoised by `profile` (its URL), not here.
        let p = self.profile(&format!("{CORE}{ty}"))?;
        self.types.write().ok()?.insert(ty.to_owned(), p.clone());
        Some(p)
    }

    fn profile_at(&self, url: &str, depth: usize) -> Option<Arc<Profile>> {
        if let Some(p) = self.profiles.read().ok()?.get(url) {
            return p.clone();
        }
        let compiled = (depth < 12).then(|| self.compile(url, depth)).flatten().map(Arc::new);
        self.profiles.write().ok()?.insert(url.to_owned(), compiled.clone());
        compiled
    }

    fn compile(&self, url: &str, depth: usize) -> Option<Profile> {
        let sd = self.resolve(url)?;
        if sd["resourceType"] != "StructureDefinition" {
            return None;
        }
        if let Some(snap) = sd["snapshot"]["element"].as_array().filter(|a| !a.is_empty()) {
            return Profile::compile(&sd, snap).ok();
        }
        let snap = snapshot::generate(self, &sd, depth)?;
        Profile::compile(&sd, &snap).ok()
    }

    /// The snapshot elements of a definition (generated when it has only a differential).
    pub(crate) fn snapshot_elements(&self, url: &str, depth: usize) -> Option<Vec<Value>> {
        let sd = self.resolve(url)?;
        if let Some(snap) = sd["snapshot"]["element"].as_array().filter(|a| !a.is_empty()) {
            return Some(snap.clone());
        }
        (depth < 12).then(|| snapshot::generate(self, &sd, depth + 1)).flatten()
    }

    /// Whether `system|code` is known not to be in the ValueSet at `url`: by its expansion, or,
    /// where the value set cannot be expanded here (it includes all of SNOMED CT or ISO 3166),
    /// because none of the code systems it draws on is `system`. False when this cannot tell.
    pub fn surely_not_in(&self, url: &str, system: Option<&str>, code: &str) -> bool {
        if let Some(e) = self.expansion(url) {
            return !e.has(system, code);
        }
        system.is_some_and(|s| self.drawn_systems(url, 0).is_some_and(|drawn| !drawn.iter().any(|d| d == s)))
    }

    /// The code systems the ValueSet at `url` draws on (memoised for the value sets asked
    /// about, not those reached through imports, so the depth bound gives one answer per
    /// URL): every include names a system or imports value sets whose systems are known.
    /// None when an include names neither, or an import does not resolve.
    fn drawn_systems(&self, url: &str, depth: usize) -> Option<Arc<Vec<String>>> {
        if let Some(d) = self.drawn_systems.read().ok()?.get(url).filter(|_| depth == 0) {
            return d.clone();
        }
        let vs = self.resolve(url).filter(|vs| vs["resourceType"] == "ValueSet" && depth < 8);
        let drawn = vs.and_then(|vs| {
            let includes = vs["compose"]["include"].as_array().filter(|i| !i.is_empty())?;
            let mut out = Vec::new();
            for inc in includes {
                if inc.get("system").is_none() && inc.get("valueSet").is_none() {
                    return None;
                }
                out.extend(inc["system"].as_str().map(str::to_owned));
                for u in inc["valueSet"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    out.extend(self.drawn_systems(u, depth + 1)?.iter().cloned());
                }
            }
            Some(Arc::new(out))
        });
        if depth == 0 {
            self.drawn_systems.write().ok()?.insert(url.to_owned(), drawn.clone());
        }
        drawn
    }

    /// The expansion of a ValueSet (memoised); None when it cannot be expanded locally.
    pub fn expansion(&self, url: &str) -> Option<Arc<Expansion>> {
        self.expansion_at(url, 0)
    }

    fn expansion_at(&self, url: &str, depth: usize) -> Option<Arc<Expansion>> {
        if let Some(e) = self.expansions.read().ok()?.get(url) {
            return e.clone();
        }
        let vs = self.resolve(url);
        let e = vs
            .filter(|v| v["resourceType"] == "ValueSet")
            .and_then(|vs| terminology::expand(self, &vs, depth, &|u, d| self.expansion_at(u, d)))
            .map(Arc::new);
        self.expansions.write().ok()?.insert(url.to_owned(), e.clone());
        e
    }

    /// The codes (and displays) of a complete CodeSystem (memoised); None when the system is
    /// not loaded or not complete here.
    pub fn code_system(&self, url: &str) -> Option<Arc<HashMap<String, Option<String>>>> {
        if let Some(e) = self.code_systems.read().ok()?.get(url) {
            return e.clone();
        }
        let cs = self.resolve(url).filter(|c| c["resourceType"] == "CodeSystem" && c["content"] == "complete");
        let index = cs.and_then(|cs| {
            let mut out = HashMap::new();
            fn walk(list: &Value, out: &mut HashMap<String, Option<String>>) {
                for c in list.as_array().into_iter().flatten() {
                    if let Some(code) = c["code"].as_str() {
                        out.insert(code.to_owned(), c["display"].as_str().map(str::to_owned));
                    }
                    walk(&c["concept"], out);
                }
            }
            walk(&cs["concept"], &mut out);
            (!out.is_empty()).then(|| Arc::new(out))
        });
        self.code_systems.write().ok()?.insert(url.to_owned(), index.clone());
        index
    }

    /// Whether `url` names a ValueSet and no CodeSystem (memoised).
    pub fn is_value_set(&self, url: &str) -> bool {
        self.system_kind(url) == SystemKind::ValueSet
    }

    /// A CodeSystem that supplements another (`supplements`, or content `supplement`): it adds
    /// designations or properties, and is not a system codes can be drawn from.
    pub fn is_supplement(&self, url: &str) -> bool {
        self.system_kind(url) == SystemKind::Supplement
    }

    /// What a URL used as a Coding's system names, memoised (one lookup answers the walk's
    /// questions about a Coding's system; issue 17).
    fn system_kind(&self, url: &str) -> SystemKind {
        if let Some(k) = self.value_set_systems.read().ok().and_then(|m| m.get(url).copied()) {
            return k;
        }
        let k = match self.resolve(url) {
            Some(r) if r["resourceType"] == "ValueSet" => SystemKind::ValueSet,
            Some(r) if r["resourceType"] == "CodeSystem" && (r.get("supplements").is_some() || r["content"] == "supplement") => {
                SystemKind::Supplement
            }
            Some(r) if r["resourceType"] == "CodeSystem" => SystemKind::CodeSystem,
            _ => SystemKind::Other,
        };
        if let Ok(mut m) = self.value_set_systems.write() {
            m.insert(url.to_owned(), k);
        }
        k
    }

    /// Validates `resource` against base R4, its `meta.profile`s and `profiles`. Unknown entries
    /// of `profiles` are reported as errors (check [`Validator::knows_profile`] first to treat
    /// them as usage errors).
    pub fn validate(&self, resource: &Value, profiles: &[&str]) -> Vec<Finding> {
        self.validate_with(resource, profiles, None)
    }

    /// [`Validator::validate`], with a terminology server's verdicts for Codings of code
    /// systems not loaded here (gathered before, by
    /// [`Delegation::prefetch`](crate::terminology::delegate::Delegation::prefetch)).
    pub fn validate_with(&self, resource: &Value, profiles: &[&str], tx: Option<&TxAnswers>) -> Vec<Finding> {
        let mut out = Vec::new();
        let today = (self.clock)().div_euclid(86_400_000);
        walk::validate_root(self, resource, profiles, today, walk::TxView { answers: tx, wanted: None }, &mut out);
        narrative::links(resource, &mut out);
        narrative::bundle_narrative_links(resource, &mut out);
        dedup(&mut out);
        out
    }

    /// The bindings a validation of `resource` would ask a terminology server about: required
    /// and extensible ones to value sets that cannot be expanded here, with the code given
    /// (a walk whose findings are dropped).
    pub fn tx_wanted(&self, resource: &Value, profiles: &[&str]) -> Vec<VsQuery> {
        let wanted = std::cell::RefCell::new(Vec::new());
        let mut out = Vec::new();
        let today = (self.clock)().div_euclid(86_400_000);
        walk::validate_root(self, resource, profiles, today, walk::TxView { answers: None, wanted: Some(&wanted) }, &mut out);
        wanted.into_inner()
    }

    pub(crate) fn engine(&self) -> Option<&dyn InvariantEngine> {
        self.engine.as_deref()
    }
}

impl terminology::Lookup for Validator {
    fn resolve(&self, url: &str) -> Option<Arc<Value>> {
        Validator::resolve(self, url)
    }
}

/// Same finding from two profiles (base and a derived profile) reported once, order kept.
fn dedup(out: &mut Vec<Finding>) {
    if out.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashSet::with_capacity(out.len());
    out.retain(|f| seen.insert((f.severity, f.code, f.text.clone(), f.expression.clone())));
}

/// An ImplementationGuide's `global` (type, profile) pairs.
fn implementation_guide_globals(ig: &Value) -> Vec<(String, String)> {
    ig["global"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| Some((g["type"].as_str()?.to_owned(), g["profile"].as_str()?.to_owned())))
        .collect()
}
