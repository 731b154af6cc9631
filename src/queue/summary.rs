//! What `Patient/$summary` reads: the newest version of each record, kept for
//! `[summary] retention_days` after its acceptance, found by the person's identifiers.
//!
//! # What is on disk
//! - `summaries`: one row per record (source system and record id): the newest
//!   accepted version's submission (seq, id), version, programme, destinations, submitter,
//!   acceptance time and the sealed transaction Bundle (the same bytes as its payload, kept
//!   apart because payloads are pruned on the relay's own schedule).
//! - `summary_identifiers`: (identifier key, record key). An identifier key is the SHA-256 of
//!   the identifier's system and value ([`identifier_key`]), so the index is not a readable
//!   list of passport numbers; a lookup hashes what it is asked for.
//!
//! # Invariants
//! - Nothing is kept unless the store was opened with a retention ([`Store::keep_summaries`]);
//!   with none, [`Store::prune_summaries`] empties both tables (turning the feature off keeps
//!   nothing extra).
//! - A version replaces the record's row only if it is higher than the one held and no higher
//!   version of the record was ever accepted (the submissions table remembers): an older
//!   version arriving later never replaces a newer one, even after the newer one's row expired.
//! - A row older than the retention is never answered, whether or not the hourly purge has
//!   removed it yet.
//! - Written in the accept transaction (all or nothing with its submission); a read is recorded
//!   in the submission's audit trail with the client's name only.

use rusqlite::{Connection, params};
use serde_json::json;

use super::{NewSubmission, Store};
use crate::error::GatewayError;

pub(super) fn schema(postgres: bool) -> String {
    let blob = if postgres { "BYTEA" } else { "BLOB" };
    format!(
        "
        CREATE TABLE IF NOT EXISTS summaries (
            record_key TEXT PRIMARY KEY,
            submission_seq BIGINT NOT NULL,
            submission_id TEXT NOT NULL,
            record_version BIGINT NOT NULL,
            programme TEXT NOT NULL,
            destinations TEXT NOT NULL,
            submitter TEXT NOT NULL,
            accepted_at BIGINT NOT NULL,
            bundle {blob} NOT NULL
        );
        CREATE INDEX IF NOT EXISTS summaries_accepted ON summaries (accepted_at);
        CREATE TABLE IF NOT EXISTS summary_identifiers (
            identifier_key TEXT NOT NULL,
            record_key TEXT NOT NULL,
            PRIMARY KEY (identifier_key, record_key)
        );
        CREATE INDEX IF NOT EXISTS summary_identifiers_record ON summary_identifiers (record_key);"
    )
}

/// Whether a higher version of the record was ever accepted.
const NEWER_ACCEPTED: &str = "SELECT 1 FROM submissions WHERE record_id = $1 AND source_system = $2 AND record_version > $3 LIMIT 1";
const UPSERT: &str = "INSERT INTO summaries
     (record_key, submission_seq, submission_id, record_version, programme, destinations, submitter, accepted_at, bundle)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (record_key) DO UPDATE SET submission_seq = excluded.submission_seq, submission_id = excluded.submission_id,
       record_version = excluded.record_version, programme = excluded.programme, destinations = excluded.destinations,
       submitter = excluded.submitter, accepted_at = excluded.accepted_at, bundle = excluded.bundle
     WHERE summaries.record_version < excluded.record_version";
const FORGET_IDENTIFIERS: &str = "DELETE FROM summary_identifiers WHERE record_key = $1";
const ADD_IDENTIFIER: &str =
    "INSERT INTO summary_identifiers (identifier_key, record_key) VALUES ($1, $2) ON CONFLICT (identifier_key, record_key) DO NOTHING";
/// The records held for an identifier, newest acceptance first.
const FIND: &str = "SELECT s.submission_seq, s.submission_id, s.record_version, s.programme, s.destinations, s.submitter,
       s.accepted_at, s.record_key
     FROM summary_identifiers i JOIN summaries s ON s.record_key = i.record_key
     WHERE i.identifier_key = $1 AND s.accepted_at >= $2
     ORDER BY s.accepted_at DESC, s.submission_seq DESC LIMIT 100";
const BUNDLE: &str = "SELECT bundle FROM summaries WHERE record_key = $1 AND submission_seq = $2";
const PURGE_IDENTIFIERS: &str =
    "DELETE FROM summary_identifiers WHERE record_key IN (SELECT record_key FROM summaries WHERE accepted_at < $1)";
const PURGE: &str = "DELETE FROM summaries WHERE accepted_at < $1";
const READ_AUDIT: &str = "INSERT INTO audit (submission_seq, at, event, destination, detail) VALUES ($1, $2, 'summary-read', NULL, $3)";

/// The key a person identifier is kept and looked up under: hex SHA-256 of its system and
/// value (a JSON array, so no separator can be forged by either).
pub fn identifier_key(system: &str, value: &str) -> String {
    crate::auth::sha256_hex(json!([system, value]).to_string().as_bytes())
}

/// The row a record's versions share: its source system and record id.
fn record_key(s: &NewSubmission) -> String {
    json!([s.identity.source_system, s.identity.record_id]).to_string()
}

/// One record held for `$summary` (no patient data: ids, names of systems, times).
#[derive(Debug, Clone)]
pub struct HeldSummary {
    pub submission_seq: i64,
    pub submission_id: String,
    pub record_version: i64,
    pub programme: String,
    pub destinations: Vec<String>,
    pub submitter: String,
    /// Unix ms.
    pub accepted_at: i64,
    record_key: String,
}

/// A `FIND` row, read through `get` (column index to text or number) by either backend.
macro_rules! held_from {
    ($get:expr) => {{
        let destinations: String = $get(4)?;
        HeldSummary {
            submission_seq: $get(0)?,
            submission_id: $get(1)?,
            record_version: $get(2)?,
            programme: $get(3)?,
            destinations: serde_json::from_str(&destinations).unwrap_or_default(),
            submitter: $get(5)?,
            accepted_at: $get(6)?,
            record_key: $get(7)?,
        }
    }};
}

fn days_ms(days: u32) -> i64 {
    i64::from(days) * 86_400_000
}

/// Keeps a newly stored submission for `$summary` (SQLite, inside the accept transaction).
pub(super) fn keep_sqlite(tx: &Connection, seq: i64, s: &NewSubmission, now: i64) -> rusqlite::Result<()> {
    use super::sqlite::q;
    use rusqlite::OptionalExtension;
    let newer = tx
        .prepare_cached(&q(NEWER_ACCEPTED))?
        .query_row(params![s.identity.record_id, s.identity.source_system, s.identity.record_version], |_| Ok(()))
        .optional()?;
    if newer.is_some() {
        return Ok(());
    }
    let key = record_key(s);
    let destinations = json!(s.destinations).to_string();
    let changed = tx.prepare_cached(&q(UPSERT))?.execute(params![
        key,
        seq,
        s.id,
        s.identity.record_version,
        s.programme,
        destinations,
        s.submitter,
        now,
        s.bundle.as_bytes()
    ])?;
    if changed == 0 {
        return Ok(());
    }
    tx.prepare_cached(&q(FORGET_IDENTIFIERS))?.execute(params![key])?;
    let mut add = tx.prepare_cached(&q(ADD_IDENTIFIER))?;
    for i in &s.person_identifiers {
        add.execute(params![i, key])?;
    }
    Ok(())
}

/// The same for PostgreSQL.
pub(super) async fn keep_pg(
    tx: &deadpool_postgres::Transaction<'_>,
    seq: i64,
    s: &NewSubmission,
    now: i64,
) -> Result<(), tokio_postgres::Error> {
    let newer = tx.prepare_cached(NEWER_ACCEPTED).await?;
    if tx.query_opt(&newer, &[&s.identity.record_id, &s.identity.source_system, &s.identity.record_version]).await?.is_some() {
        return Ok(());
    }
    let key = record_key(s);
    let destinations = json!(s.destinations).to_string();
    let upsert = tx.prepare_cached(UPSERT).await?;
    let changed = tx
        .execute(
            &upsert,
            &[&key, &seq, &s.id, &s.identity.record_version, &s.programme, &destinations, &s.submitter, &now, &s.bundle.as_bytes()],
        )
        .await?;
    if changed == 0 {
        return Ok(());
    }
    tx.execute(FORGET_IDENTIFIERS, &[&key]).await?;
    let add = tx.prepare_cached(ADD_IDENTIFIER).await?;
    for i in &s.person_identifiers {
        tx.execute(&add, &[i, &key]).await?;
    }
    Ok(())
}

fn pg_err(e: tokio_postgres::Error) -> GatewayError {
    super::store_err(super::postgres::PgError::from(e).0)
}

impl Store {
    /// The same store, keeping each record's newest version for `$summary` for `days` after
    /// its acceptance (0: keeping nothing).
    pub fn keep_summaries(self, days: u32) -> Store {
        match self {
            Store::Sqlite(mut s) => {
                s.summary_days = days;
                Store::Sqlite(s)
            }
            Store::Postgres(mut p) => {
                p.summary_days = days;
                Store::Postgres(p)
            }
        }
    }

    /// Days summaries are kept (0: `$summary` is off).
    pub fn summary_days(&self) -> u32 {
        match self {
            Store::Sqlite(s) => s.summary_days,
            Store::Postgres(p) => p.summary_days,
        }
    }

    /// The records held for a person identifier key ([`identifier_key`]) and still within the
    /// retention at `now`, newest acceptance first; none when summaries are off.
    pub async fn summaries_for(&self, identifier: &str, now: i64) -> Result<Vec<HeldSummary>, GatewayError> {
        let days = self.summary_days();
        if days == 0 {
            return Ok(Vec::new());
        }
        let (identifier, since) = (identifier.to_owned(), now - days_ms(days));
        match self {
            Store::Sqlite(s) => {
                s.with(move |c| {
                    c.prepare_cached(&super::sqlite::q(FIND))?
                        .query_map(params![identifier, since], |r| Ok(held_from!(|i| r.get(i))))?
                        .collect()
                })
                .await
            }
            Store::Postgres(p) => {
                let rows = p.client().await?.query(FIND, &[&identifier, &since]).await.map_err(pg_err)?;
                rows.iter().map(|r| Ok(held_from!(|i| r.try_get(i)))).collect::<Result<_, tokio_postgres::Error>>().map_err(pg_err)
            }
        }
    }

    /// The stored transaction Bundle of a held record; `None` when a newer version replaced it
    /// (or it was purged) since it was found.
    pub async fn summary_bundle(&self, h: &HeldSummary) -> Result<Option<Vec<u8>>, GatewayError> {
        let (key, seq) = (h.record_key.clone(), h.submission_seq);
        match self {
            Store::Sqlite(s) => {
                s.with(move |c| {
                    use rusqlite::OptionalExtension;
                    c.prepare_cached(&super::sqlite::q(BUNDLE))?.query_row(params![key, seq], |r| r.get(0)).optional()
                })
                .await
            }
            Store::Postgres(p) => {
                let row = p.client().await?.query_opt(BUNDLE, &[&key, &seq]).await.map_err(pg_err)?;
                Ok(row.map(|r| r.get(0)))
            }
        }
    }

    /// Records in the submission's audit trail that `client` read its summary at `now` (the
    /// client's name only: no identifier, no patient data).
    pub async fn record_summary_read(&self, submission_seq: i64, client: &str, now: i64) -> Result<(), GatewayError> {
        let detail = json!({"client": client, "operation": "Patient/$summary"}).to_string();
        match self {
            Store::Sqlite(s) => {
                s.with(move |c| c.execute(&super::sqlite::q(READ_AUDIT), params![submission_seq, now, detail]).map(|_| ())).await
            }
            Store::Postgres(p) => {
                p.client().await?.execute(READ_AUDIT, &[&submission_seq, &now, &detail]).await.map(|_| ()).map_err(pg_err)
            }
        }
    }

    /// Deletes what is held for `$summary` beyond the retention at `now` (everything when
    /// summaries are off). Returns how many records were dropped.
    pub async fn prune_summaries(&self, now: i64) -> Result<u64, GatewayError> {
        let days = self.summary_days();
        let before = if days == 0 { i64::MAX } else { now - days_ms(days) };
        match self {
            Store::Sqlite(s) => {
                s.with(move |c| {
                    let tx = c.transaction()?;
                    tx.execute(&super::sqlite::q(PURGE_IDENTIFIERS), params![before])?;
                    let n = tx.execute(&super::sqlite::q(PURGE), params![before])?;
                    tx.commit()?;
                    Ok(n as u64)
                })
                .await
            }
            Store::Postgres(p) => {
                let mut c = p.client().await?;
                let tx = c.transaction().await.map_err(pg_err)?;
                tx.execute(PURGE_IDENTIFIERS, &[&before]).await.map_err(pg_err)?;
                let n = tx.execute(PURGE, &[&before]).await.map_err(pg_err)?;
                tx.commit().await.map_err(pg_err)?;
                Ok(n)
            }
        }
    }
}
