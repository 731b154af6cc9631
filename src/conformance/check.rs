//! A run's results: one [`Check`] per thing verified (a vector's answer, a rule of the target),
//! gathered in a [`Run`] that the reports render. A check names its vector and its rule; its
//! detail is an OperationOutcome the target gave or a list of differing paths, never a value
//! of a record beyond the synthetic vectors.

use serde_json::Value;

/// What became of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Not applicable or not allowed by the target (said, never silently passed).
    Skip,
}

#[derive(Debug, Clone)]
pub struct Check {
    /// The group it belongs to (`capability`, `convert`, `records`, `delivery`, ...).
    pub suite: String,
    /// The rule checked, a stable name (`exactly-one-per-identifier`, `status`, ...).
    pub rule: String,
    /// The vector concerned, if any.
    pub vector: Option<String>,
    pub verdict: Verdict,
    /// One line: why it failed or was skipped (names the vector and the rule).
    pub message: String,
    /// What the target answered (an OperationOutcome) or a diff, for a failure.
    pub detail: Option<Value>,
    /// How long the check's request(s) took.
    pub millis: f64,
}

impl Check {
    pub fn name(&self) -> String {
        match &self.vector {
            Some(v) => format!("{} [{v}]", self.rule),
            None => self.rule.clone(),
        }
    }
}

/// Which check: its suite, its rule and the vector it concerns.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub suite: &'a str,
    pub rule: &'a str,
    pub vector: Option<&'a str>,
}

pub fn at<'a>(suite: &'a str, rule: &'a str, vector: Option<&'a str>) -> At<'a> {
    At { suite, rule, vector }
}

/// Everything a run checked, with what it ran against.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// `gateway` or `destination`.
    pub kind: String,
    /// The target's base URL (no credentials).
    pub target: String,
    /// Start, RFC 3339.
    pub started: String,
    pub millis: f64,
    pub checks: Vec<Check>,
}

impl Run {
    pub fn new(kind: &str, target: &str) -> Run {
        Run {
            kind: kind.to_owned(),
            target: target.to_owned(),
            started: crate::calendar::rfc3339(crate::calendar::now_ms()),
            ..Default::default()
        }
    }

    fn push(&mut self, at: At<'_>, verdict: Verdict, message: String, detail: Option<Value>, millis: f64) {
        self.checks.push(Check {
            suite: at.suite.to_owned(),
            rule: at.rule.to_owned(),
            vector: at.vector.map(str::to_owned),
            verdict,
            message,
            detail,
            millis,
        });
    }

    pub fn pass(&mut self, at: At<'_>, millis: f64) {
        self.push(at, Verdict::Pass, String::new(), None, millis);
    }

    /// A failure: `what` says what was wrong; the message names the vector and the rule.
    pub fn fail(&mut self, at: At<'_>, what: &str, detail: Option<Value>, millis: f64) {
        let message = match at.vector {
            Some(v) => format!("{v}: {}: {what}", at.rule),
            None => format!("{}: {what}", at.rule),
        };
        self.push(at, Verdict::Fail, message, detail, millis);
    }

    pub fn skip(&mut self, at: At<'_>, why: &str) {
        self.push(at, Verdict::Skip, why.to_owned(), None, 0.0);
    }

    /// Pass when `ok`, else a failure saying `what`.
    pub fn expect(&mut self, at: At<'_>, ok: bool, what: &str, detail: Option<Value>, millis: f64) {
        if ok {
            self.pass(at, millis);
        } else {
            self.fail(at, what, detail, millis);
        }
    }

    pub fn count(&self, v: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == v).count()
    }

    /// `mhg conformance gateway: 412 checks, 410 passed, 1 failed, 1 skipped (3.2 s)`.
    pub fn summary(&self) -> String {
        format!(
            "mhg conformance {} {}: {} checks, {} passed, {} failed, {} skipped ({:.1} s)",
            self.kind,
            self.target,
            self.checks.len(),
            self.count(Verdict::Pass),
            self.count(Verdict::Fail),
            self.count(Verdict::Skip),
            self.millis / 1000.0
        )
    }

    /// The exit status: 0 when nothing failed, else 1.
    pub fn status(&self) -> i32 {
        i32::from(self.count(Verdict::Fail) > 0)
    }
}
