//! The replicated backend: PostgreSQL. Several gateways share one queue: claims take row locks
//! with `FOR UPDATE SKIP LOCKED`, so two replicas never lease the same delivery, and the
//! person-order rule holds across replicas (an earlier unfinished delivery blocks later ones).

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;

use super::{
    Accepted, Claim, DeliveryView, GroupOutcome, Identity, NewSubmission, Outcome, Step, SubmissionView, overall_state, rfc3339, sql,
};
use crate::error::GatewayError;

/// The server's message and SQLSTATE; never its `detail`, which can quote row values.
fn store_err(e: impl Into<PgError>) -> GatewayError {
    let e: PgError = e.into();
    super::store_err(e.0)
}

pub struct PgError(pub(super) String);

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => PgError(format!("PostgreSQL {}: {}", db.code().code(), db.message())),
            None => PgError(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(b) => b.into(),
            other => PgError(other.to_string()),
        }
    }
}

impl From<deadpool_postgres::BuildError> for PgError {
    fn from(e: deadpool_postgres::BuildError) -> Self {
        PgError(e.to_string())
    }
}

/// One submission inside the accept transaction: by the client's key first, then by identity.
async fn accept_one(
    tx: &deadpool_postgres::Transaction<'_>,
    s: NewSubmission,
    now: i64,
    summaries: bool,
) -> Result<Step, tokio_postgres::Error> {
    let find_key = |ck: String| async move {
        let row = tx.query_opt(sql::FIND_CLIENT_KEY, &[&ck]).await?;
        Ok::<_, tokio_postgres::Error>(row.map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))))
    };
    if let Some(ck) = &s.client_key {
        if let Some(step) = super::by_client_key(find_key(ck.clone()).await?, &s.digest) {
            return Ok(step);
        }
    }
    let key = s.identity.key();
    let ins = tx.prepare_cached(sql::INSERT_SUBMISSION).await?;
    let row = tx
        .query_opt(
            &ins,
            &[
                &s.id,
                &key,
                &s.identity.record_id,
                &s.identity.record_version,
                &s.order_key,
                &s.submitter,
                &now,
                &s.identity.source_system,
                &s.programme,
                &s.digest,
            ],
        )
        .await?;
    let step = match row {
        Some(r) => {
            let seq: i64 = r.get(0);
            let pay = tx.prepare_cached(sql::INSERT_PAYLOAD).await?;
            tx.execute(&pay, &[&seq, &s.bundle.as_bytes()]).await?;
            let del = tx.prepare_cached(sql::INSERT_DELIVERY).await?;
            for d in &s.destinations {
                tx.execute(
                    &del,
                    &[&seq, d, &s.order_key, &s.identity.record_id, &s.identity.record_version, &now, &s.identity.source_system],
                )
                .await?;
            }
            let detail = super::accepted_detail(&s);
            let aud = tx.prepare_cached(sql::INSERT_AUDIT).await?;
            tx.execute(&aud, &[&seq, &now, &"accepted", &Option::<String>::None, &detail]).await?;
            if summaries {
                super::summary::keep_pg(tx, seq, &s, now).await?;
            }
            Step::Stored(Accepted::New(s.id.clone()))
        }
        None => {
            let r = tx.query_one(sql::FIND_BY_IDENTITY, &[&key]).await?;
            super::by_identity(r.get(0), r.get(1), &s.digest)
        }
    };
    if let (Step::Stored(a), Some(ck)) = (&step, &s.client_key) {
        let id = a.id().to_owned();
        if tx.execute(sql::INSERT_CLIENT_KEY, &[ck, &id, &s.digest]).await? == 0 {
            // Another request took the same key meanwhile (it committed first): decide by it.
            if let Some(other) = super::by_client_key(find_key(ck.clone()).await?, &s.digest) {
                return Ok(other);
            }
        }
    }
    Ok(step)
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Days each record's newest version is kept for `$summary` (0: none; [`super::summary`]).
    pub(super) summary_days: u32,
}

impl PgStore {
    pub async fn open(url: &str) -> Result<Self, GatewayError> {
        let cfg: tokio_postgres::Config =
            url.parse().map_err(|e| GatewayError::Config { file: "store.url".into(), message: format!("not a PostgreSQL URL: {e}") })?;
        let mgr = Manager::from_config(cfg, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr).max_size(16).build().map_err(store_err)?;
        let mut client = pool.get().await.map_err(|e| GatewayError::Config {
            file: "store.url".into(),
            message: format!("cannot connect to PostgreSQL: {}", PgError::from(e).0),
        })?;
        // Replicas may start together: create the schema under an advisory lock, and only when
        // the database does not hold this schema already. `CREATE INDEX IF NOT EXISTS` and
        // `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` lock their tables even when there is nothing
        // to do, so a replica starting beside running ones deadlocked with their transactions
        // (seen in `relay::replicas_share_one_postgres_queue`). The schema is named by the
        // digest of its DDL: any change to it runs the DDL once more.
        let mut ddl = sql::schema(true);
        for (table, column, def) in sql::ADDED_COLUMNS {
            ddl.push_str(&format!(";\nALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {def}"));
        }
        let digest = crate::auth::sha256_hex(ddl.as_bytes());
        let tx = client.transaction().await.map_err(store_err)?;
        tx.execute("SELECT pg_advisory_xact_lock(724001)", &[]).await.map_err(store_err)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS mhg_schema (digest TEXT PRIMARY KEY)").await.map_err(store_err)?;
        let current = tx.query_opt("SELECT 1 FROM mhg_schema WHERE digest = $1", &[&digest]).await.map_err(store_err)?.is_some();
        if !current {
            tx.batch_execute(&ddl).await.map_err(store_err)?;
            tx.execute("INSERT INTO mhg_schema (digest) VALUES ($1) ON CONFLICT DO NOTHING", &[&digest]).await.map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(PgStore { pool, summary_days: 0 })
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, GatewayError> {
        self.pool.get().await.map_err(store_err)
    }

    pub async fn accept(&self, groups: Vec<Vec<NewSubmission>>, now: i64) -> Result<Vec<GroupOutcome>, GatewayError> {
        let summaries = self.summary_days > 0;
        let mut c = self.client().await?;
        let mut tx = c.transaction().await.map_err(store_err)?;
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let sp = tx.transaction().await.map_err(store_err)?;
            let mut accepted = Vec::with_capacity(group.len());
            let mut conflicts = Vec::new();
            for (i, s) in group.into_iter().enumerate() {
                match accept_one(&sp, s, now, summaries).await.map_err(store_err)? {
                    Step::Stored(a) => accepted.push(a),
                    Step::Conflict(k) => conflicts.push((i, k)),
                }
            }
            if conflicts.is_empty() {
                sp.commit().await.map_err(store_err)?;
                out.push(GroupOutcome::Stored(accepted));
            } else {
                sp.rollback().await.map_err(store_err)?;
                out.push(GroupOutcome::Refused(conflicts));
            }
        }
        tx.commit().await.map_err(store_err)?;
        Ok(out)
    }

    pub async fn claim(&self, destination: &str, limit: i64, owner: &str, lease_ms: i64, now: i64) -> Result<Vec<Claim>, GatewayError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(store_err)?;
        let due = format!("{} FOR UPDATE OF d SKIP LOCKED", sql::DUE);
        let rows = tx.query(&due, &[&destination, &now, &limit]).await.map_err(store_err)?;
        let mut out = Vec::new();
        for r in rows {
            let (seq, record_id, version, attempts, source_system): (i64, String, i64, i64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            if tx
                .query_opt(sql::SUPERSEDED, &[&destination, &record_id, &version, &seq, &source_system])
                .await
                .map_err(store_err)?
                .is_some()
            {
                tx.execute(sql::MARK_SUPERSEDED, &[&seq, &destination, &now]).await.map_err(store_err)?;
                tx.execute(
                    sql::INSERT_AUDIT,
                    &[&seq, &now, &"superseded", &destination, &"a newer version was already delivered"],
                )
                .await
                .map_err(store_err)?;
                continue;
            }
            let until = now + lease_ms;
            tx.execute(sql::LEASE, &[&seq, &destination, &owner, &until, &now]).await.map_err(store_err)?;
            let Some(p) = tx.query_opt(sql::LOAD, &[&seq]).await.map_err(store_err)? else { continue };
            let note = format!("attempt {}", attempts + 1);
            tx.execute(sql::INSERT_AUDIT, &[&seq, &now, &"attempt", &destination, &note]).await.map_err(store_err)?;
            out.push(Claim {
                seq,
                submission_id: p.get(0),
                destination: destination.to_owned(),
                identity: Identity { source_system, record_id, record_version: version },
                attempts: attempts + 1,
                bundle: p.get(1),
            });
        }
        tx.commit().await.map_err(store_err)?;
        Ok(out)
    }

    pub async fn complete(&self, claim: &Claim, owner: &str, outcome: Outcome, now: i64) -> Result<(), GatewayError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(store_err)?;
        let (state, next, status, detail, event) = sql::finish_values(&outcome, now);
        let n = tx
            .execute(sql::FINISH, &[&claim.seq, &claim.destination, &state, &next, &status, &detail, &now, &owner])
            .await
            .map_err(store_err)?;
        if n == 1 {
            tx.execute(sql::INSERT_AUDIT, &[&claim.seq, &now, &event, &claim.destination, &detail]).await.map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)
    }

    pub async fn release(&self, owner: &str) -> Result<(), GatewayError> {
        self.client().await?.execute(sql::RELEASE, &[&owner]).await.map(|_| ()).map_err(store_err)
    }

    pub async fn get(&self, id: &str) -> Result<Option<SubmissionView>, GatewayError> {
        let c = self.client().await?;
        let Some(h) = c.query_opt(sql::GET_SUBMISSION, &[&id]).await.map_err(store_err)? else { return Ok(None) };
        let seq: i64 = h.get(0);
        let deliveries: Vec<DeliveryView> = c
            .query(sql::GET_DELIVERIES, &[&seq])
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|r| DeliveryView::from_row(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect();
        Ok(Some(SubmissionView {
            state: overall_state(&deliveries).to_owned(),
            id: h.get(1),
            source_system: h.get(6),
            record_id: h.get(2),
            record_version: h.get(3),
            submitter: h.get(4),
            programme: h.get(7),
            accepted_at: rfc3339(h.get(5)),
            deliveries,
        }))
    }

    pub async fn recent_ids(&self, state: Option<&str>, limit: i64) -> Result<Vec<String>, GatewayError> {
        let c = self.client().await?;
        let rows = match state {
            None => c.query(sql::RECENT_ALL, &[&limit]).await,
            Some(s) => c.query(sql::RECENT_WITH_DELIVERY_STATE, &[&super::delivery_state_for(s), &limit]).await,
        }
        .map_err(store_err)?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    pub async fn replay(&self, id: &str, now: i64) -> Result<u64, GatewayError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(store_err)?;
        let n = tx.execute(sql::REPLAY, &[&id, &now]).await.map_err(store_err)?;
        if n > 0 {
            let note = format!("{n} dead delivery(ies) replayed");
            tx.execute(
                "INSERT INTO audit (submission_seq, at, event, destination, detail) SELECT seq, $2, 'replayed', NULL, $3 FROM submissions WHERE id = $1",
                &[&id, &now, &note],
            )
            .await
            .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(n)
    }

    pub async fn prune(&self, before: i64) -> Result<u64, GatewayError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(store_err)?;
        for answers in sql::prune_answers() {
            tx.execute(answers.as_str(), &[&before]).await.map_err(store_err)?;
        }
        let n = tx.execute(sql::PRUNE, &[&before]).await.map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(n)
    }

    pub async fn audit(&self, id: &str) -> Result<Vec<Value>, GatewayError> {
        let rows = self.client().await?.query(sql::AUDIT, &[&id]).await.map_err(store_err)?;
        Ok(rows.into_iter().map(|r| super::audit_entry(r.get(0), r.get(1), r.get(2), r.get(3))).collect())
    }

    pub async fn depth(&self) -> Result<Vec<(String, String, i64)>, GatewayError> {
        let rows = self.client().await?.query(sql::DEPTH, &[]).await.map_err(store_err)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }
}
