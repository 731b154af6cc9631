//! One error model for the whole gateway.
//!
//! A [`Rejection`] is what any stage answers when it will not take a record: it knows its HTTP
//! status, and renders as a FHIR `OperationOutcome` whose issues name the *input* path (a JSON
//! Pointer into the submitted record, in `location`) and, where the problem concerns the produced
//! FHIR, the *output* path (a FHIRPath, in `expression`).
//!
//! Invariant: no text built here contains a value taken from a record. Messages are made from
//! schema keywords, codes of the gateway's own and paths only, so an OperationOutcome can be
//! logged, returned and stored without carrying patient data.

use serde_json::{Value, json};

/// Why a record (or a request) was refused: the one table of reasons. Each decides the HTTP
/// status ([`RejectKind::http_status`]), the rejection code of `CodeSystem-rejection` and the
/// metric label ([`RejectKind::label`]), and whether sending the same request again can help
/// ([`RejectKind::retryable`]). The OperationOutcome `issue.code` is the FHIR issue type of each
/// finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Not JSON, or JSON of the wrong outer shape.
    Malformed,
    /// JSON nested deeper than the configured limit.
    TooDeep,
    /// Request body larger than the configured limit.
    TooLarge,
    /// More records in one request than the configured limit.
    TooMany,
    /// Content-Type the endpoint does not read.
    UnsupportedMedia,
    /// Valid JSON that breaks the record schema.
    Schema,
    /// A code with no mapping in the loaded ConceptMaps.
    UnmappedCode,
    /// The produced FHIR failed the output check (a mapping defect, reported, never relayed).
    OutputInvalid,
    /// No credentials, or credentials that are not valid (401).
    Unauthenticated,
    /// A known caller without the scope, destination or programme the call needs (403).
    Forbidden,
    /// The caller exceeded its rate limit (429, with `Retry-After`).
    RateLimited,
    /// Too many requests in progress at once on this gateway (429, with `Retry-After`).
    Overloaded,
    /// The request took longer than the configured request timeout (408).
    Timeout,
    /// Contradicts what was accepted before: the same record identity with other content, or an
    /// Idempotency-Key reused by the same client for another payload (409).
    Conflict,
    /// Schema-valid but impossible (a birth date in the future, a vaccination before birth) (422).
    Implausible,
    /// A known route that does not take this method (405).
    MethodNotAllowed,
    /// The store does not answer; the same request may succeed later (503, `Retry-After`).
    Unavailable,
    /// A fault of the gateway itself (a bug): 500, without detail.
    Internal,
    /// No such route, or no such submission for this caller (404).
    NotFound,
}

impl RejectKind {
    /// Every kind. The unit test checks each against `CodeSystem-rejection` and that the
    /// CodeSystem has no code that no kind uses, so a new kind with its code must be listed here.
    pub const ALL: [RejectKind; 19] = {
        use RejectKind::*;
        [
            Malformed,
            TooDeep,
            TooLarge,
            TooMany,
            UnsupportedMedia,
            Schema,
            UnmappedCode,
            OutputInvalid,
            Unauthenticated,
            Forbidden,
            RateLimited,
            Overloaded,
            Timeout,
            Conflict,
            Implausible,
            MethodNotAllowed,
            Unavailable,
            Internal,
            NotFound,
        ]
    };

    pub fn http_status(self) -> u16 {
        match self {
            RejectKind::Malformed | RejectKind::TooDeep => 400,
            RejectKind::TooLarge | RejectKind::TooMany => 413,
            RejectKind::UnsupportedMedia => 415,
            RejectKind::Schema | RejectKind::UnmappedCode | RejectKind::OutputInvalid | RejectKind::Implausible => 422,
            RejectKind::Conflict => 409,
            RejectKind::MethodNotAllowed => 405,
            RejectKind::Unavailable => 503,
            RejectKind::Internal => 500,
            RejectKind::NotFound => 404,
            RejectKind::Unauthenticated => 401,
            RejectKind::Forbidden => 403,
            RejectKind::RateLimited | RejectKind::Overloaded => 429,
            RejectKind::Timeout => 408,
        }
    }

    /// Whether the same request may succeed later: throttling, overload, a timeout, a store that
    /// does not answer. The others are properties of the input (or a bug) and never change.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            RejectKind::RateLimited | RejectKind::Overloaded | RejectKind::Timeout | RejectKind::Unavailable
        )
    }

    /// A stable, data-free label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            RejectKind::Malformed => "malformed",
            RejectKind::TooDeep => "too-deep",
            RejectKind::TooLarge => "too-large",
            RejectKind::TooMany => "too-many",
            RejectKind::UnsupportedMedia => "unsupported-media",
            RejectKind::Schema => "schema",
            RejectKind::UnmappedCode => "unmapped-code",
            RejectKind::OutputInvalid => "output-invalid",
            RejectKind::Unauthenticated => "unauthenticated",
            RejectKind::Forbidden => "forbidden",
            RejectKind::RateLimited => "rate-limited",
            RejectKind::Overloaded => "overloaded",
            RejectKind::Timeout => "timeout",
            RejectKind::Conflict => "conflict",
            RejectKind::Implausible => "implausible",
            RejectKind::MethodNotAllowed => "method-not-allowed",
            RejectKind::Unavailable => "unavailable",
            RejectKind::Internal => "internal",
            RejectKind::NotFound => "not-found",
        }
    }
}

/// A destination's answer read through the same table: whether sending the same delivery again
/// may succeed. The statuses [`RejectKind::retryable`] gives for the gateway's own answers (408,
/// 429, 503) and two more that mean something else when another server sends them: 401 (the
/// relay renews its token before the next attempt) and every other 5xx (a fault of the
/// destination, which may pass, where the gateway's own 500 is a bug of its own that will not).
/// Any other status is final: the delivery becomes a dead letter with the destination's
/// OperationOutcome, until an operator replays it.
pub fn destination_may_recover(status: u16) -> bool {
    let ours = RejectKind::ALL.iter().any(|k| k.retryable() && k.http_status() == status);
    ours || status == 401 || (500..=599).contains(&status)
}

/// One finding. `text` never holds record data (see the module invariant).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// FHIR `IssueType` code: structure, required, value, invalid, code-invalid, too-long, ...
    pub code: &'static str,
    pub text: String,
    /// JSON Pointer into the input record, e.g. `/vaccinations/2/vaccine`.
    pub input_path: Option<String>,
    /// FHIRPath of the output element concerned, e.g. `Bundle.entry[5].resource.vaccineCode`.
    pub expression: Option<String>,
    /// Which record of a batch this is about (`line 3`, `record 2`), when one answer covers many.
    pub origin: Option<String>,
}

impl Issue {
    pub fn new(code: &'static str, text: impl Into<String>) -> Self {
        Issue { code, text: text.into(), input_path: None, expression: None, origin: None }
    }
    pub fn at(mut self, input_path: impl Into<String>) -> Self {
        self.input_path = Some(input_path.into());
        self
    }
    pub fn expr(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }
}

/// Where in a request or a batch of files a rejected record came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRef {
    /// File name as given on the command line (never read from the record).
    pub file: Option<String>,
    /// 1-based position of the record in its file or body.
    pub record: Option<usize>,
    /// 1-based line, for NDJSON.
    pub line: Option<usize>,
}

impl SourceRef {
    /// `file F, record N, line L`, as far as known.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(f) = &self.file {
            parts.push(format!("file {f}"));
        }
        if let Some(r) = self.record {
            parts.push(format!("record {r}"));
        }
        if let Some(l) = self.line {
            parts.push(format!("line {l}"));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub kind: RejectKind,
    pub issues: Vec<Issue>,
    pub source: SourceRef,
}

impl Rejection {
    pub fn new(kind: RejectKind, issues: Vec<Issue>) -> Self {
        Rejection { kind, issues, source: SourceRef::default() }
    }
    pub fn one(kind: RejectKind, issue: Issue) -> Self {
        Self::new(kind, vec![issue])
    }
    pub fn with_source(mut self, source: SourceRef) -> Self {
        self.source = source;
        self
    }
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }

    /// Render as a FHIR R4 `OperationOutcome`.
    pub fn to_operation_outcome(&self) -> Value {
        let severity = if self.kind == RejectKind::Internal { "fatal" } else { "error" };
        outcome(&self.issues, severity, self.kind.label(), self.source.describe().as_deref())
    }
}

/// The code of a warning in `details.coding` (CodeSystem-rejection): possible, but unlikely.
pub const WARNING_CODE: &str = "unlikely";

/// Warnings about an accepted record as an OperationOutcome (severity `warning`, each issue at
/// its input path), or `None` when there are none. Same rule as refusals: no record values.
pub fn warnings_outcome(warnings: &[Issue], origin: Option<&str>) -> Option<Value> {
    (!warnings.is_empty()).then(|| outcome(warnings, "warning", WARNING_CODE, origin))
}

/// An OperationOutcome of `issues`, each with `severity`, its FHIR issue type, the reason
/// `reason` of CodeSystem-rejection, its text (prefixed with the record of a batch and the input
/// path), `diagnostics` (where it came from), `location` and `expression`. Refusals and warnings
/// are rendered alike by this one function.
fn outcome(issues: &[Issue], severity: &str, reason: &str, origin: Option<&str>) -> Value {
    let issues: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut text = String::new();
            if let Some(o) = &i.origin {
                text.push_str(o);
                text.push_str(": ");
            }
            if let Some(p) = &i.input_path {
                text.push_str(&format!("input {p}: "));
            }
            text.push_str(&i.text);
            let mut v = json!({
                "severity": severity,
                "code": i.code,
                "details": {"coding": [{"system": crate::CANONICAL_CS_REJECTION, "code": reason}], "text": text}
            });
            if let Some(o) = origin {
                v["diagnostics"] = json!(o);
            }
            if let Some(p) = &i.input_path {
                v["location"] = json!([p]);
            }
            if let Some(e) = &i.expression {
                v["expression"] = json!([e]);
            }
            v
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

impl Rejection {
    /// One OperationOutcome for every refused record of a request, each issue prefixed with its
    /// line or record number in a batch. The status is the most telling one (a malformed body
    /// outranks a schema error).
    pub fn merge(refused: Vec<Rejection>, batch: bool) -> Rejection {
        let kind = refused.iter().map(|r| r.kind).min_by_key(|k| k.http_status()).unwrap_or(RejectKind::Schema);
        let issues = refused
            .into_iter()
            .flat_map(|r| {
                let prefix = match (r.source.record, r.source.line, batch) {
                    (_, Some(l), true) => format!("line {l}"),
                    (Some(n), None, true) => format!("record {n}"),
                    _ => String::new(),
                };
                r.issues.into_iter().map(move |mut i| {
                    if !prefix.is_empty() {
                        i.origin = Some(prefix.clone());
                    }
                    i
                })
            })
            .collect();
        Rejection::new(kind, issues)
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} issue(s))", self.kind.label(), self.issues.len())
    }
}

impl std::error::Error for Rejection {}

/// A failure of the gateway itself (configuration, mapping files, I/O), as opposed to a refusal
/// of input. These name files and keys, never record content.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("{file}: {message}")]
    Mapping { file: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The store failed (a database error, never its row values): the request may succeed
    /// later, so it is answered 503 with `Retry-After`, never as a configuration error.
    #[error("store: {0}")]
    Store(String),
}

#[cfg(test)]
mod tests {

    /// Every rejection label is a code of the published CodeSystem (the OperationOutcomes'
    /// `details.coding` must resolve there).
    #[test]
    fn every_label_is_in_the_rejection_code_system() {
        let cs: serde_json::Value =
            serde_json::from_str(include_str!("../conformance/CodeSystem-rejection.json")).expect("the CodeSystem is JSON");
        let codes: Vec<&str> = cs["concept"].as_array().into_iter().flatten().filter_map(|c| c["code"].as_str()).collect();
        let kinds = super::RejectKind::ALL;
        for k in kinds {
            assert!(codes.contains(&k.label()), "{} is not in CodeSystem-rejection.json", k.label());
            assert!((400..600).contains(&k.http_status()));
            assert_eq!(k.retryable(), matches!(k.http_status(), 408 | 429 | 503), "{}", k.label());
        }
        assert!(codes.contains(&super::WARNING_CODE));
        let recoverable: Vec<u16> = (100..600).filter(|s| super::destination_may_recover(*s)).collect();
        assert_eq!(recoverable, [401, 408, 429].into_iter().chain(500..600).collect::<Vec<_>>());
        assert_eq!(codes.len(), kinds.len() + 1, "a code of the CodeSystem that no kind (or the warning) uses");
    }
}
