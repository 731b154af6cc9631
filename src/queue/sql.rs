//! The SQL both backends run, written once with PostgreSQL placeholders (`$1`); the SQLite
//! backend rewrites them to `?1`. Schema differences are in [`schema`].

pub fn schema(postgres: bool) -> String {
    let (serial, blob) = if postgres { ("BIGSERIAL PRIMARY KEY", "BYTEA") } else { ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB") };
    let mut schema = format!(
        "CREATE TABLE IF NOT EXISTS submissions (
            seq {serial},
            id TEXT NOT NULL UNIQUE,
            idem_key TEXT NOT NULL UNIQUE,
            source_system TEXT NOT NULL DEFAULT '',
            record_id TEXT NOT NULL,
            record_version BIGINT NOT NULL,
            order_key TEXT NOT NULL,
            submitter TEXT NOT NULL,
            programme TEXT NOT NULL DEFAULT '',
            digest TEXT,
            created_at BIGINT NOT NULL
        );
        -- Idempotency-Keys, scoped per client: (client, key) names one submission and the digest
        -- of the record it was first used for.
        CREATE TABLE IF NOT EXISTS idempotency (
            client_key TEXT PRIMARY KEY,
            submission_id TEXT NOT NULL,
            digest TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS payloads (
            submission_seq BIGINT PRIMARY KEY,
            bundle {blob} NOT NULL
        );
        CREATE TABLE IF NOT EXISTS deliveries (
            submission_seq BIGINT NOT NULL,
            destination TEXT NOT NULL,
            order_key TEXT NOT NULL,
            source_system TEXT NOT NULL DEFAULT '',
            record_id TEXT NOT NULL,
            record_version BIGINT NOT NULL,
            state TEXT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            next_at BIGINT NOT NULL,
            lease_owner TEXT,
            lease_until BIGINT,
            last_status BIGINT,
            outcome TEXT,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (submission_seq, destination)
        );
        CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (destination, state, next_at);
        -- The open deliveries (a small set: the backlog) in queue order, and per person: a claim
        -- reads these only, never the delivered history (which grows for ever until pruned).
        CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (destination, submission_seq)
            WHERE state IN ('pending', 'leased');
        CREATE INDEX IF NOT EXISTS deliveries_open_person ON deliveries (destination, order_key, submission_seq)
            WHERE state IN ('pending', 'leased');
        DROP INDEX IF EXISTS deliveries_person;
        CREATE INDEX IF NOT EXISTS deliveries_record ON deliveries (destination, record_id, state);
        -- The operator console: unfinished and dead deliveries by submission (state counts),
        -- and a submission by its record id (search).
        CREATE INDEX IF NOT EXISTS deliveries_unfinished ON deliveries (submission_seq)
            WHERE state IN ('pending', 'leased', 'dead');
        CREATE INDEX IF NOT EXISTS submissions_record ON submissions (record_id);
        CREATE TABLE IF NOT EXISTS audit (
            id {serial},
            submission_seq BIGINT NOT NULL,
            at BIGINT NOT NULL,
            event TEXT NOT NULL,
            destination TEXT,
            detail TEXT
        );
        CREATE INDEX IF NOT EXISTS audit_submission ON audit (submission_seq, id);"
    );
    schema.push_str(&super::summary::schema(postgres));
    schema
}

/// Columns added after the first release of the schema: (table, column, definition). Each
/// backend adds the ones an older database lacks when it opens it. Rows from before carry
/// `''` and NULL: their identity is the one they were stored under.
pub const ADDED_COLUMNS: [(&str, &str, &str); 4] = [
    ("submissions", "source_system", "TEXT NOT NULL DEFAULT ''"),
    ("submissions", "programme", "TEXT NOT NULL DEFAULT ''"),
    ("submissions", "digest", "TEXT"),
    ("deliveries", "source_system", "TEXT NOT NULL DEFAULT ''"),
];

pub const INSERT_SUBMISSION: &str =
    "INSERT INTO submissions (id, idem_key, record_id, record_version, order_key, submitter, created_at, source_system, programme, digest)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (idem_key) DO NOTHING RETURNING seq";
/// The submission stored under an identity, and the digest of its content.
pub const FIND_BY_IDENTITY: &str = "SELECT id, digest FROM submissions WHERE idem_key = $1";
/// The submission a client's Idempotency-Key names, and the digest of its record.
pub const FIND_CLIENT_KEY: &str = "SELECT submission_id, digest FROM idempotency WHERE client_key = $1";
pub const INSERT_CLIENT_KEY: &str =
    "INSERT INTO idempotency (client_key, submission_id, digest) VALUES ($1, $2, $3) ON CONFLICT (client_key) DO NOTHING";
pub const INSERT_PAYLOAD: &str = "INSERT INTO payloads (submission_seq, bundle) VALUES ($1, $2)";
pub const INSERT_DELIVERY: &str = "INSERT INTO deliveries (submission_seq, destination, order_key, record_id, record_version, state, attempts, next_at, updated_at, source_system)
     VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $7)";
pub const INSERT_AUDIT: &str = "INSERT INTO audit (submission_seq, at, event, destination, detail) VALUES ($1, $2, $3, $4, $5)";

/// Due deliveries of a destination whose person has no earlier unfinished delivery there.
/// Index-bound on `deliveries_open`: the `state IN` term is what lets both databases use the
/// partial index (without it the claim scanned every delivery of the destination: 3.6 ms at
/// 50,000 delivered, growing).
pub const DUE: &str = "SELECT d.submission_seq, d.record_id, d.record_version, d.attempts, d.source_system FROM deliveries d
     WHERE d.destination = $1 AND d.state IN ('pending', 'leased')
       AND ((d.state = 'pending' AND d.next_at <= $2) OR (d.state = 'leased' AND d.lease_until < $2))
       AND NOT EXISTS (SELECT 1 FROM deliveries e
                       WHERE e.destination = d.destination AND e.order_key = d.order_key
                         AND e.submission_seq < d.submission_seq AND e.state IN ('pending', 'leased'))
     ORDER BY d.submission_seq LIMIT $3";
/// Whether the same record (same source system and record id) already reached the destination
/// at this or a higher version.
pub const SUPERSEDED: &str = "SELECT 1 FROM deliveries f
     WHERE f.destination = $1 AND f.record_id = $2 AND f.record_version >= $3
       AND f.submission_seq <> $4 AND f.state = 'delivered' AND f.source_system = $5 LIMIT 1";
pub const MARK_SUPERSEDED: &str = "UPDATE deliveries SET state = 'superseded', lease_owner = NULL, lease_until = NULL, updated_at = $3
     WHERE submission_seq = $1 AND destination = $2";
pub const LEASE: &str =
    "UPDATE deliveries SET state = 'leased', lease_owner = $3, lease_until = $4, attempts = attempts + 1, updated_at = $5
     WHERE submission_seq = $1 AND destination = $2";
pub const LOAD: &str = "SELECT s.id, p.bundle FROM submissions s JOIN payloads p ON p.submission_seq = s.seq WHERE s.seq = $1";
pub const FINISH: &str = "UPDATE deliveries SET state = $3, next_at = $4, last_status = $5, outcome = $6, lease_owner = NULL, lease_until = NULL, updated_at = $7
     WHERE submission_seq = $1 AND destination = $2 AND lease_owner = $8";
pub const RELEASE: &str = "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_until = NULL, attempts = attempts - 1
     WHERE state = 'leased' AND lease_owner = $1";
pub const GET_SUBMISSION: &str =
    "SELECT seq, id, record_id, record_version, submitter, created_at, source_system, programme FROM submissions WHERE id = $1";
pub const GET_DELIVERIES: &str =
    "SELECT destination, state, attempts, last_status, next_at, outcome FROM deliveries WHERE submission_seq = $1 ORDER BY destination";
pub const RECENT_ALL: &str = "SELECT id FROM submissions ORDER BY seq DESC LIMIT $1";
/// Candidates for a state filter (the overall state is derived; the caller filters exactly).
pub const RECENT_WITH_DELIVERY_STATE: &str = "SELECT s.id FROM submissions s WHERE EXISTS
     (SELECT 1 FROM deliveries d WHERE d.submission_seq = s.seq AND d.state = $1) ORDER BY s.seq DESC LIMIT $2";
pub const REPLAY: &str = "UPDATE deliveries SET state = 'pending', next_at = $2, updated_at = $2
     WHERE state = 'dead' AND submission_seq = (SELECT seq FROM submissions WHERE id = $1)";
pub const PRUNE: &str = "DELETE FROM payloads WHERE submission_seq IN (
     SELECT s.seq FROM submissions s WHERE s.created_at < $1
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.submission_seq = s.seq AND d.state IN ('pending', 'leased', 'dead')))";
/// The submissions whose payload [`PRUNE`] removes: every delivery final and not dead.
const PRUNABLE: &str = "SELECT s.seq FROM submissions s WHERE s.created_at < $1
       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.submission_seq = s.seq AND d.state IN ('pending', 'leased', 'dead'))";
/// A destination's answers to failed attempts (its OperationOutcomes, which may echo patient
/// data) are kept as long as the payload: pruned with it, leaving states, statuses and times.
pub fn prune_answers() -> [String; 2] {
    [
        format!(
            "UPDATE deliveries SET outcome = NULL WHERE outcome IS NOT NULL AND state <> 'delivered' AND submission_seq IN ({PRUNABLE})"
        ),
        format!(
            "UPDATE audit SET detail = NULL WHERE detail IS NOT NULL AND event IN ('retry-scheduled', 'dead-letter') AND submission_seq IN ({PRUNABLE})"
        ),
    ]
}
pub const AUDIT: &str = "SELECT a.at, a.event, a.destination, a.detail FROM audit a JOIN submissions s ON s.seq = a.submission_seq
     WHERE s.id = $1 ORDER BY a.id";
pub const DEPTH: &str = "SELECT destination, state, COUNT(*) FROM deliveries GROUP BY destination, state ORDER BY destination, state";

/// The delivery state an outcome leads to, its next time, status and stored detail.
pub fn finish_values(outcome: &super::Outcome, now: i64) -> (&'static str, i64, Option<i64>, String, &'static str) {
    use super::Outcome::*;
    match outcome {
        Delivered { status, detail } => ("delivered", now, status.map(i64::from), detail.to_string(), "delivered"),
        Retry { status, at, detail } => ("pending", *at, status.map(i64::from), detail.to_string(), "retry-scheduled"),
        Dead { status, detail } => ("dead", now, status.map(i64::from), detail.to_string(), "dead-letter"),
    }
}
