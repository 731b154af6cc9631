//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL` (a commit is on
//! disk when it returns). One connection behind a mutex, used from blocking threads: SQLite has
//! one writer at a time anyway, and group commit keeps the writer busy with batches.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{
    Accepted, Claim, DeliveryView, GroupOutcome, Identity, NewSubmission, Outcome, Step, SubmissionView, overall_state, rfc3339, sql,
    store_err,
};
use crate::error::GatewayError;

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Days each record's newest version is kept for `$summary` (0: none; [`super::summary`]).
    pub(super) summary_days: u32,
}

/// One submission inside the accept transaction: by the client's key first, then by identity.
fn accept_one(tx: &Connection, s: NewSubmission, now: i64, summaries: bool) -> rusqlite::Result<Step> {
    let find_key = |ck: &str| {
        tx.prepare_cached(&q(sql::FIND_CLIENT_KEY))?
            .query_row(params![ck], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .optional()
    };
    if let Some(ck) = &s.client_key {
        if let Some(step) = super::by_client_key(find_key(ck)?, &s.digest) {
            return Ok(step);
        }
    }
    let key = s.identity.key();
    let seq: Option<i64> = tx
        .prepare_cached(&q(sql::INSERT_SUBMISSION))?
        .query_row(
            params![
                s.id,
                key,
                s.identity.record_id,
                s.identity.record_version,
                s.order_key,
                s.submitter,
                now,
                s.identity.source_system,
                s.programme,
                s.digest
            ],
            |r| r.get(0),
        )
        .optional()?;
    let step = match seq {
        Some(seq) => {
            tx.prepare_cached(&q(sql::INSERT_PAYLOAD))?.execute(params![seq, s.bundle.as_bytes()])?;
            let mut del = tx.prepare_cached(&q(sql::INSERT_DELIVERY))?;
            for d in &s.destinations {
                del.execute(params![
                    seq,
                    d,
                    s.order_key,
                    s.identity.record_id,
                    s.identity.record_version,
                    now,
                    s.identity.source_system
                ])?;
            }
            let detail = super::accepted_detail(&s);
            tx.prepare_cached(&q(sql::INSERT_AUDIT))?.execute(params![seq, now, "accepted", Option::<String>::None, detail])?;
            if summaries {
                super::summary::keep_sqlite(tx, seq, &s, now)?;
            }
            Step::Stored(Accepted::New(s.id))
        }
        None => {
            let (id, digest) = tx
                .prepare_cached(&q(sql::FIND_BY_IDENTITY))?
                .query_row(params![key], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?;
            super::by_identity(id, digest, &s.digest)
        }
    };
    if let (Step::Stored(a), Some(ck)) = (&step, &s.client_key) {
        if tx.prepare_cached(&q(sql::INSERT_CLIENT_KEY))?.execute(params![ck, a.id(), s.digest])? == 0 {
            // Another request took the same key meanwhile (it committed first): decide by it.
            if let Some(other) = super::by_client_key(find_key(ck)?, &s.digest) {
                return Ok(other);
            }
        }
    }
    Ok(step)
}

/// Adds the columns an older database lacks ([`sql::ADDED_COLUMNS`]).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, def) in sql::ADDED_COLUMNS {
        let has: bool = conn.query_row("SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2", params![table, column], |r| {
            r.get(0)
        })?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {def}"))?;
        }
    }
    Ok(())
}

/// `$1` -> `?1`: the shared SQL is written for PostgreSQL.
pub(super) fn q(s: &str) -> String {
    s.replace('$', "?")
}

impl SqliteStore {
    pub async fn open(path: &str) -> Result<Self, GatewayError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = Path::new(&path).parent() {
                if !dir.as_os_str().is_empty() {
                    crate::files::private_dir(dir).map_err(|e| GatewayError::Config {
                        file: "store.url".into(),
                        message: format!("cannot create {}: {e}", dir.display()),
                    })?;
                }
            }
            crate::files::private_file(Path::new(&path)).map_err(|e| GatewayError::Config {
                file: "store.url".into(),
                message: format!("cannot create SQLite database {path}: {e}"),
            })?;
            let conn = Connection::open(&path).map_err(|e| GatewayError::Config {
                file: "store.url".into(),
                message: format!("cannot open SQLite database {path}: {e}"),
            })?;
            conn.pragma_update(None, "journal_mode", "WAL").map_err(store_err)?;
            conn.pragma_update(None, "synchronous", "FULL").map_err(store_err)?;
            conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(store_err)?;
            conn.execute_batch(&sql::schema(false)).map_err(store_err)?;
            migrate(&conn).map_err(store_err)?;
            // The WAL and shared-memory files hold records too: SQLite gives them the database
            // file's mode when it makes them; older ones are made private here.
            for suffix in ["-wal", "-shm"] {
                let p = format!("{path}{suffix}");
                if Path::new(&p).exists() {
                    crate::files::make_private(Path::new(&p)).map_err(store_err)?;
                }
            }
            Ok(SqliteStore { conn: Arc::new(Mutex::new(conn)), summary_days: 0 })
        })
        .await
        .map_err(store_err)?
    }

    pub(super) async fn with<T: Send + 'static>(
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

    pub async fn accept(&self, groups: Vec<Vec<NewSubmission>>, now: i64) -> Result<Vec<GroupOutcome>, GatewayError> {
        let summaries = self.summary_days > 0;
        self.with(move |c| {
            let mut tx = c.transaction()?;
            let mut out = Vec::with_capacity(groups.len());
            for group in groups {
                let sp = tx.savepoint()?;
                let mut accepted = Vec::with_capacity(group.len());
                let mut conflicts = Vec::new();
                for (i, s) in group.into_iter().enumerate() {
                    match accept_one(&sp, s, now, summaries)? {
                        Step::Stored(a) => accepted.push(a),
                        Step::Conflict(k) => conflicts.push((i, k)),
                    }
                }
                if conflicts.is_empty() {
                    sp.commit()?;
                    out.push(GroupOutcome::Stored(accepted));
                } else {
                    drop(sp); // rolls the group back
                    out.push(GroupOutcome::Refused(conflicts));
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
                let rows: Vec<(i64, String, i64, i64, String)> = due
                    .query_map(params![destination, now, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                    .collect::<Result<_, _>>()?;
                let mut sup = tx.prepare_cached(&q(sql::SUPERSEDED))?;
                let mut mark = tx.prepare_cached(&q(sql::MARK_SUPERSEDED))?;
                let mut lease = tx.prepare_cached(&q(sql::LEASE))?;
                let mut load = tx.prepare_cached(&q(sql::LOAD))?;
                let mut aud = tx.prepare_cached(&q(sql::INSERT_AUDIT))?;
                for (seq, record_id, version, attempts, source_system) in rows {
                    if sup.exists(params![destination, record_id, version, seq, source_system])? {
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
                        identity: Identity { source_system, record_id, record_version: version },
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
                    Ok((
                        (r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?),
                        (r.get::<_, String>(4)?, r.get::<_, i64>(5)?, r.get::<_, String>(6)?, r.get::<_, String>(7)?),
                    ))
                })
                .optional()?;
            let Some(((seq, id, record_id, record_version), (submitter, created, source_system, programme))) = head else {
                return Ok(None);
            };
            let mut st = c.prepare_cached(&q(sql::GET_DELIVERIES))?;
            let deliveries: Vec<DeliveryView> = st
                .query_map(params![seq], |r| {
                    Ok(DeliveryView::from_row(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(Some(SubmissionView {
                state: overall_state(&deliveries).to_owned(),
                id,
                source_system,
                record_id,
                record_version,
                submitter,
                programme,
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
        self.with(move |c| {
            let tx = c.transaction()?;
            for answers in sql::prune_answers() {
                tx.execute(&q(&answers), params![before])?;
            }
            let n = tx.execute(&q(sql::PRUNE), params![before])?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
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
