//! Stage 4, **queue**: the durable store between accepting a record and delivering it.
//!
//! # What is on disk
//! - `submissions`: one row per accepted record (`seq` orders everything; `id` is what callers
//!   see; `idem_key` is the record's [`Identity`] (source system, record id, version), unique, so
//!   a resend finds the first submission; `digest` is its content's, so a different record under
//!   the same identity is refused, not taken for a resend).
//! - `idempotency`: each client's `Idempotency-Key`s, scoped by client, with the submission and
//!   content digest they first named.
//! - `payloads`: the validated Bundle of each submission (pruned after the retention period once
//!   every delivery is final; the audit stays).
//! - `deliveries`: one row per (submission, destination): `pending` (due at `next_at`),
//!   `leased` (a worker holds it until `lease_until`), `delivered`, `dead`, `superseded`.
//! - `audit`: append-only history of every state change, with no patient data (ids, states,
//!   HTTP statuses, the destination's OperationOutcome), and of every `$summary` read (who).
//! - `summaries`, `summary_identifiers`: the newest version of each record for
//!   `Patient/$summary`, when `[summary] retention_days` is set ([`summary`]).
//!
//! # Invariants
//! - A submission is answered "accepted" only after the transaction holding its submission,
//!   payload and deliveries has committed (SQLite: WAL with `synchronous=FULL`; PostgreSQL:
//!   a committed transaction). Accepting is group-committed: one transaction for everything
//!   waiting, so durability costs one fsync per batch, not per record.
//! - A delivery is claimable only if no earlier unfinished delivery to the same destination
//!   exists for the same person (`order_key`): records of a person arrive in order.
//! - A delivery whose record (same source system and record id) already reached that
//!   destination at the same or a higher version is `superseded`, never sent: an older version
//!   never overwrites a newer one.
//! - One request's submissions are stored all or none (a savepoint per request inside the group
//!   commit): a conflict answers 409 with nothing of that request stored, and no other request's
//!   records undone.
//! - Leases expire: a worker that dies (kill -9) leaves nothing stuck; the delivery is claimed
//!   again and, being idempotent at the destination, sent again harmlessly.
//!
//! Only this module knows SQL. It does not know HTTP or FHIR beyond carrying bytes.

pub mod browse;
pub mod commit;
mod postgres;
pub mod sql;
mod sqlite;
pub mod summary;

use serde_json::Value;

use crate::error::GatewayError;

/// A record's identity: which system it comes from, its id there, and its version. Everything
/// that tells records apart (idempotency, supersession, file names, the audit) uses all three.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub source_system: String,
    pub record_id: String,
    pub record_version: i64,
}

impl Identity {
    /// The unique key a submission is stored under: unambiguous whatever the ids hold (a JSON
    /// array, so no separator can be forged by an id).
    pub fn key(&self) -> String {
        format!("id:{}", serde_json::json!([self.source_system, self.record_id, self.record_version]))
    }
}

/// What [`Store::accept`] stores for one record.
#[derive(Clone)]
pub struct NewSubmission {
    pub id: String,
    pub identity: Identity,
    /// SHA-256 of the record's content (canonical JSON): the same identity with other content
    /// is a conflict, never a silent duplicate.
    pub digest: String,
    /// The caller's `Idempotency-Key`, scoped by the caller (`client` and key, see
    /// [`client_key`]); `None` without one.
    pub client_key: Option<String>,
    /// The record's programme: reads are scoped by it, as writes are.
    pub programme: String,
    /// Pseudonymous key of the person (a hash), for ordering.
    pub order_key: String,
    /// Who submitted (a client name, never a person).
    pub submitter: String,
    /// The Bundle, sealed by the pipeline after its output gate.
    pub bundle: crate::pipeline::ValidatedBundle,
    pub destinations: Vec<String>,
    /// The person's identifiers as [`summary::identifier_key`]s (hashes), under which
    /// `$summary` finds the record when summaries are kept.
    pub person_identifiers: Vec<String>,
}

/// An Idempotency-Key as stored: scoped by the client that sent it, so that two clients' keys
/// never meet.
pub fn client_key(client: &str, key: &str) -> String {
    serde_json::json!([client, key]).to_string()
}

impl std::fmt::Debug for NewSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubmission").field("id", &self.id).field("destinations", &self.destinations).finish_non_exhaustive()
    }
}

/// The answer for one record: stored now, or found stored before (same identity and content, or
/// the same client's Idempotency-Key for the same content).
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    New(String),
    Existing(String),
}

impl Accepted {
    pub fn id(&self) -> &str {
        match self {
            Accepted::New(i) | Accepted::Existing(i) => i,
        }
    }
}

/// Why a record cannot be stored next to what was accepted before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The identity (source system, record id, version) was accepted with other content: a
    /// correction needs a new `recordVersion`.
    ContentDiffers,
    /// The client used this Idempotency-Key before, for another record.
    KeyReused,
}

/// What became of one group of submissions (one request): all stored (or found), or none,
/// with the conflicts by position in the group.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupOutcome {
    Stored(Vec<Accepted>),
    Refused(Vec<(usize, Conflict)>),
}

impl GroupOutcome {
    /// The accepted submissions, or `None` for a refused group.
    pub fn stored(self) -> Option<Vec<Accepted>> {
        match self {
            GroupOutcome::Stored(a) => Some(a),
            GroupOutcome::Refused(_) => None,
        }
    }
}

/// How one submission fared inside the accept transaction (shared by both backends).
pub(crate) enum Step {
    Stored(Accepted),
    Conflict(Conflict),
}

/// The audit entry of an accepted submission: its identity, destinations and submitter (no
/// patient data: ids of the record and names of systems).
pub(crate) fn accepted_detail(s: &NewSubmission) -> String {
    serde_json::json!({
        "sourceSystem": s.identity.source_system,
        "recordId": s.identity.record_id,
        "recordVersion": s.identity.record_version,
        "destinations": s.destinations,
        "submitter": s.submitter,
    })
    .to_string()
}

/// Decides a submission's fate from what the store holds: the submission its client key names
/// (id and digest), if any. `None` means: go on by identity.
pub(crate) fn by_client_key(found: Option<(String, String)>, digest: &str) -> Option<Step> {
    let (id, d) = found?;
    Some(if d == digest { Step::Stored(Accepted::Existing(id)) } else { Step::Conflict(Conflict::KeyReused) })
}

/// The same for the submission stored under the identity. A row stored before digests were
/// kept (`None`) counts as the same content.
pub(crate) fn by_identity(id: String, stored_digest: Option<String>, digest: &str) -> Step {
    if stored_digest.as_deref().is_none_or(|d| d == digest) {
        Step::Stored(Accepted::Existing(id))
    } else {
        Step::Conflict(Conflict::ContentDiffers)
    }
}

/// A delivery a worker holds.
#[derive(Clone)]
pub struct Claim {
    pub seq: i64,
    pub submission_id: String,
    pub destination: String,
    pub identity: Identity,
    pub attempts: i64,
    pub bundle: Vec<u8>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Accepted by the destination; `detail` keeps its resource ids and versions.
    Delivered { status: Option<u16>, detail: Value },
    /// Try again at `at` (unix ms).
    Retry { status: Option<u16>, at: i64, detail: Value },
    /// Refused for good; `detail` keeps the destination's OperationOutcome.
    Dead { status: Option<u16>, detail: Value },
}

/// The state of a submission, derived from its deliveries.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubmissionView {
    pub id: String,
    pub state: String,
    #[serde(rename = "sourceSystem")]
    pub source_system: String,
    #[serde(rename = "recordId")]
    pub record_id: String,
    #[serde(rename = "recordVersion")]
    pub record_version: i64,
    pub submitter: String,
    pub programme: String,
    #[serde(rename = "acceptedAt")]
    pub accepted_at: String,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryView {
    pub destination: String,
    pub state: String,
    pub attempts: i64,
    #[serde(rename = "lastStatus", skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i64>,
    #[serde(rename = "nextAttemptAt", skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The destination's answer: resource ids and versions, or its OperationOutcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
}

impl DeliveryView {
    /// From a `deliveries` row as both backends read it (`GET_DELIVERIES`).
    fn from_row(
        destination: String,
        state: String,
        attempts: i64,
        last_status: Option<i64>,
        next_at: i64,
        outcome: Option<String>,
    ) -> Self {
        DeliveryView {
            destination,
            next_attempt_at: (state == "pending").then(|| rfc3339(next_at)),
            state,
            attempts,
            last_status,
            outcome: outcome.and_then(|o| serde_json::from_str::<Value>(&o).ok()),
        }
    }
}

/// One audit entry from an `audit` row as both backends read it (`AUDIT`); a detail that is not
/// JSON (e.g. "attempt 2") is kept as a string.
fn audit_entry(at: i64, event: String, destination: Option<String>, detail: Option<String>) -> Value {
    serde_json::json!({
        "at": rfc3339(at),
        "event": event,
        "destination": destination,
        "detail": detail.map(|d| serde_json::from_str::<Value>(&d).unwrap_or(Value::String(d))),
    })
}

/// A submission's overall state from its deliveries' states and attempts.
pub fn overall_state(deliveries: &[DeliveryView]) -> &'static str {
    let all = |f: &dyn Fn(&DeliveryView) -> bool| deliveries.iter().all(f);
    let any = |f: &dyn Fn(&DeliveryView) -> bool| deliveries.iter().any(f);
    if any(&|d| d.state == "dead") {
        "dead-letter"
    } else if all(&|d| d.state == "delivered" || d.state == "superseded") {
        "delivered"
    } else if any(&|d| d.state == "leased") {
        "delivering"
    } else if any(&|d| d.state == "pending" && d.attempts > 0) {
        "retrying"
    } else {
        "accepted"
    }
}

pub use crate::calendar::{now_ms, rfc3339};

/// The store: SQLite (embedded) or PostgreSQL (replicas), chosen by URL.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// `sqlite://path/to/file.db` (relative to the working directory) or `postgres://...`.
    pub async fn open(url: &str) -> Result<Store, GatewayError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Store::Sqlite(sqlite::SqliteStore::open(path).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(postgres::PgStore::open(url).await?))
        } else {
            Err(GatewayError::Config { file: "store.url".into(), message: "expected sqlite://PATH or postgres://USER@HOST/DB".into() })
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Stores one group of submissions (one request), all or none; answers only after it
    /// committed.
    pub async fn accept(&self, batch: Vec<NewSubmission>, now: i64) -> Result<GroupOutcome, GatewayError> {
        let mut out = self.accept_groups(vec![batch], now).await?;
        Ok(out.pop().unwrap_or(GroupOutcome::Stored(Vec::new())))
    }

    /// Stores several groups in one transaction (group commit): each group all or none (a
    /// savepoint each), so one request's conflict never undoes another's records.
    pub async fn accept_groups(&self, groups: Vec<Vec<NewSubmission>>, now: i64) -> Result<Vec<GroupOutcome>, GatewayError> {
        match self {
            Store::Sqlite(s) => s.accept(groups, now).await,
            Store::Postgres(s) => s.accept(groups, now).await,
        }
    }

    /// Leases up to `limit` due deliveries of `destination` to `owner` until `now + lease_ms`.
    /// Deliveries already superseded by a newer delivered version are marked so and not returned.
    pub async fn claim(&self, destination: &str, limit: i64, owner: &str, lease_ms: i64, now: i64) -> Result<Vec<Claim>, GatewayError> {
        match self {
            Store::Sqlite(s) => s.claim(destination, limit, owner, lease_ms, now).await,
            Store::Postgres(s) => s.claim(destination, limit, owner, lease_ms, now).await,
        }
    }

    pub async fn complete(&self, claim: &Claim, owner: &str, outcome: Outcome, now: i64) -> Result<(), GatewayError> {
        match self {
            Store::Sqlite(s) => s.complete(claim, owner, outcome, now).await,
            Store::Postgres(s) => s.complete(claim, owner, outcome, now).await,
        }
    }

    /// Gives back leases held by `owner` (graceful shutdown): due again at once.
    pub async fn release(&self, owner: &str) -> Result<(), GatewayError> {
        match self {
            Store::Sqlite(s) => s.release(owner).await,
            Store::Postgres(s) => s.release(owner).await,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<SubmissionView>, GatewayError> {
        match self {
            Store::Sqlite(s) => s.get(id).await,
            Store::Postgres(s) => s.get(id).await,
        }
    }

    /// Submissions whose overall state is `state` (all when None) and that `visible` lets the
    /// caller see, newest first, at most `limit`. `scan` bounds how many candidates are read
    /// (a caller who may see few submissions does not make the store read them all).
    pub async fn list(
        &self,
        state: Option<&str>,
        limit: i64,
        scan: i64,
        visible: impl Fn(&SubmissionView) -> bool,
    ) -> Result<Vec<SubmissionView>, GatewayError> {
        let ids = match self {
            Store::Sqlite(s) => s.recent_ids(state, scan.max(limit)).await?,
            Store::Postgres(s) => s.recent_ids(state, scan.max(limit)).await?,
        };
        let mut out = Vec::new();
        for id in ids {
            if out.len() as i64 >= limit {
                break;
            }
            if let Some(v) = self.get(&id).await? {
                if state.is_none_or(|s| s == v.state) && visible(&v) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    /// Dead deliveries of a submission become pending again. Returns how many.
    pub async fn replay(&self, id: &str, now: i64) -> Result<u64, GatewayError> {
        match self {
            Store::Sqlite(s) => s.replay(id, now).await,
            Store::Postgres(s) => s.replay(id, now).await,
        }
    }

    /// Deletes payloads whose deliveries are all final and older than `before` (unix ms).
    pub async fn prune(&self, before: i64) -> Result<u64, GatewayError> {
        match self {
            Store::Sqlite(s) => s.prune(before).await,
            Store::Postgres(s) => s.prune(before).await,
        }
    }

    /// Audit trail of a submission: (time, event, destination, detail).
    pub async fn audit(&self, id: &str) -> Result<Vec<Value>, GatewayError> {
        match self {
            Store::Sqlite(s) => s.audit(id).await,
            Store::Postgres(s) => s.audit(id).await,
        }
    }

    /// Counts of deliveries by (destination, state), for readiness and operators.
    pub async fn depth(&self) -> Result<Vec<(String, String, i64)>, GatewayError> {
        match self {
            Store::Sqlite(s) => s.depth().await,
            Store::Postgres(s) => s.depth().await,
        }
    }
}

pub(crate) fn store_err(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Store(e.to_string())
}

/// The delivery state that an overall state implies at least one delivery to be in (a cheap
/// pre-filter for listing; the overall state is then computed exactly).
pub(crate) fn delivery_state_for(overall: &str) -> String {
    match overall {
        "dead-letter" => "dead",
        "delivered" => "delivered",
        "delivering" => "leased",
        _ => "pending",
    }
    .to_owned()
}
