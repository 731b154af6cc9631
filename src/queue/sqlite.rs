//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL` (a commit is on
//! disk when it returns). One connection behind a mutex, used from blocking threads: SQLite has
//! one writer at a time anyway, and group commit keeps the writer busy with batches.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{Accepted, Claim, DeliveryView, NewSubmission, Outcome, SubmissionView, overall_state, rfc3339, sql, store_err};
use crate::error::GatewayError;

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

/// `$1` -> `?1`: the shared SQL is written for PostgreSQL.
fn q(s: &str) -> String {
    s.replace('$', "?")
}

impl SqliteStore {
    pub async fn open(path: &str) -> Result<Self, GatewayError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = Path::new(&path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir).map_err(|e| GatewayError::Config {
                        file: "store.url".into(),
                        message: format!("cannot create {}: {e}", dir.display()),
                    })?;
                }
            }
            let conn = Connection::open(&path).map_err(|e| GatewayError::Config {
                file: "store.url".into(),
                message: format!("cannot open SQLite database {path}: {e}"),
            })?;
            conn.pragma_update(None, "journal_mode", "WAL").map_err(store_err)?;
            conn.pragma_update(None, "synchronous", "FULL").map_err(store_err)?;
            conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(store_err)?;
            conn.execute_batch(&sql::schema(false)).map_err(store_err)?;
            Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)) })
        })
        .await
        .map_err(store_err)?
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, GatewayError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().map_err(|_| store_err("store lock poisoned"))?;
            f(&mut c).map_err(store_err)
        })
        .await
        .map_err(store_err)?
    }

    pub async fn accept(&self, batch: Vec<NewSubmission>, now: i64) -> Result<Vec<Accepted>, GatewayError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let mut out = Vec::with_capacity(batch.len());
            {
                let mut ins = tx.prepare_cached(&q(sql::INSERT_SUBMISSION))?;
                let mut find = tx.prepare_cached(&q(sql::FIND_BY_KEY))?;
                let mut pay = tx.prepare_cached(&q(sql::INSERT_PAYLOAD))?;
                let mut del = tx.prepare_cached(&q(sql::INSERT_DELIVERY))?;
                let mut aud = tx.prepare_cached(&q(sql::INSERT_AUDIT))?;
                for s in batch {
                    let seq: Option<i64> = ins
                        .query_row(
                            params![s.id, s.idem_key, s.record_id, s.record_version, s.order_key, s.submitter, now],
                            |r| r.get(0),
                        )
                        .optional()?;
                    match seq {
                        Some(seq) => {
                            pay.execute(params![seq, s.bundle])?;
                            for d in &s.destinations {
                                del.execute(params![seq, d, s.order_key, s.record_id, s.record_version, now])?;
                            }
                            let detail = serde_json::json!({"destinations": s.destinations, "submitter": s.submitter}).to_string();
                            aud.execute(params![seq, now, "accepted", Option::<String>::None, detail])?;
                            out.push(Accepted::New(s.id));
                        }
                        None => out.push(Accepted::Existing(find.query_row(params![s.idem_key], |r| r.get(0))?)),
                    }
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    pub async fn claim(&self, destination: &str, limit: i64, owner: &str, lease_ms: i64, now: i64) -> Result<Vec<Claim>, GatewayError> {
        let (destination, owner) = (destination.to_owned(), owner.to_owned());
        self.with(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut out = Vec::new();
            {
                let mut due = tx.prepare_cached(&q(sql::DUE))?;
                let rows: Vec<(i64, String, i64, i64)> = due
                    .query_map(params![destination, now, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<Result<_, _>>()?;
                let mut sup = tx.prepare_cached(&q(sql::SUPERSEDED))?;
                let mut mark = tx.prepare_cached(&q(sql::MARK_SUPERSEDED))?;
                let mut lease = tx.prepare_cached(&q(sql::LEASE))?;
                let mut load = tx.prepare_cached(&q(sql::LOAD))?;
                let mut aud = tx.prepare_cached(&q(sql::INSERT_AUDIT))?;
                for (seq, record_id, version, attempts) in rows {
                    if sup.exists(params![destination, record_id, version, seq])? {
                        mark.execute(params![seq, destination, now])?;
                        aud.execute(params![seq, now, "superseded", destination, "a newer version was already delivered"])?;
                        continue;
                    }
                    lease.execute(params![seq, destination, owner, now + lease_ms, now])?;
                    let Some((submission_id, bundle)) =
                        load.query_row(params![seq], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))).optional()?
                    else {
                        continue;
                    };
                    aud.execute(params![seq, now, "attempt", destination, format!("attempt {}", attempts + 1)])?;
                    out.push(Claim {
                        seq,
                        submission_id,
                        destination: destination.clone(),
                        record_id,
                        record_version: version,
                        attempts: attempts + 1,
                        bundle,
                    });
                }
            }
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    pub async fn complete(&self, claim: &Claim, owner: &str, outcome: Outcome, now: i64) -> Result<(), GatewayError> {
        let (seq, dest, owner) = (claim.seq, claim.destination.clone(), owner.to_owned());
        self.with(move |c| {
            let tx = c.transaction()?;
            let (state, next, status, detail, event) = sql::finish_values(&outcome, now);
            let n = tx.execute(&q(sql::FINISH), params![seq, dest, state, next, status, detail, now, owner])?;
            if n == 1 {
                tx.execute(&q(sql::INSERT_AUDIT), params![seq, now, event, dest, detail])?;
            }
            tx.commit()
        })
        .await
    }

    pub async fn release(&self, owner: &str) -> Result<(), GatewayError> {
        let owner = owner.to_owned();
        self.with(move |c| c.execute(&q(sql::RELEASE), params![owner]).map(|_| ())).await
    }

    pub async fn get(&self, id: &str) -> Result<Option<SubmissionView>, GatewayError> {
        let id = id.to_owned();
        self.with(move |c| {
            let head = c
                .query_row(&q(sql::GET_SUBMISSION), params![id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?, r.get::<_, String>(4)?, r.get::<_, i64>(5)?))
                })
                .optional()?;
            let Some((seq, id, record_id, record_version, submitter, created)) = head else { return Ok(None) };
            let mut st = c.prepare_cached(&q(sql::GET_DELIVERIES))?;
            let deliveries: Vec<DeliveryView> = st
                .query_map(params![seq], |r| Ok(DeliveryView::from_row(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                .collect::<Result<_, _>>()?;
            Ok(Some(SubmissionView {
                state: overall_state(&deliveries).to_owned(),
                id,
                record_id,
                record_version,
                submitter,
                accepted_at: rfc3339(created),
                deliveries,
            }))
        })
        .await
    }

    pub async fn recent_ids(&self, state: Option<&str>, limit: i64) -> Result<Vec<String>, GatewayError> {
        let filter = state.map(super::delivery_state_for);
        self.with(move |c| match filter {
            None => c.prepare_cached(&q(sql::RECENT_ALL))?.query_map(params![limit], |r| r.get(0))?.collect(),
            Some(ds) => c.prepare_cached(&q(sql::RECENT_WITH_DELIVERY_STATE))?.query_map(params![ds, limit], |r| r.get(0))?.collect(),
        })
        .await
    }

    pub async fn replay(&self, id: &str, now: i64) -> Result<u64, GatewayError> {
        let id = id.to_owned();
        self.with(move |c| {
            let tx = c.transaction()?;
            let n = tx.execute(&q(sql::REPLAY), params![id, now])?;
            if n > 0 {
                tx.execute(
                    "INSERT INTO audit (submission_seq, at, event, destination, detail) SELECT seq, ?2, 'replayed', NULL, ?3 FROM submissions WHERE id = ?1",
                    params![id, now, format!("{n} dead delivery(ies) replayed")],
                )?;
            }
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }

    pub async fn prune(&self, before: i64) -> Result<u64, GatewayError> {
        self.with(move |c| c.execute(&q(sql::PRUNE), params![before]).map(|n| n as u64)).await
    }

    pub async fn audit(&self, id: &str) -> Result<Vec<Value>, GatewayError> {
        let id = id.to_owned();
        self.with(move |c| {
            c.prepare_cached(&q(sql::AUDIT))?
                .query_map(params![id], |r| Ok(super::audit_entry(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .await
    }

    pub async fn depth(&self) -> Result<Vec<(String, String, i64)>, GatewayError> {
        self.with(|c| c.prepare_cached(sql::DEPTH)?.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()).await
    }
}
