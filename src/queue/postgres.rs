//! The replicated backend: PostgreSQL. Several gateways share one queue: claims take row locks
//! with `FOR UPDATE SKIP LOCKED`, so two replicas never lease the same delivery, and the
//! person-order rule holds across replicas (an earlier unfinished delivery blocks later ones).

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;

use super::{Accepted, Claim, DeliveryView, NewSubmission, Outcome, SubmissionView, overall_state, rfc3339, sql};
use crate::error::GatewayError;

/// The server's message and SQLSTATE; never its `detail`, which can quote row values.
fn store_err(e: impl Into<PgError>) -> GatewayError {
    let e: PgError = e.into();
    super::store_err(e.0)
}

pub struct PgError(String);

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

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    pub async fn open(url: &str) -> Result<Self, GatewayError> {
        let cfg: tokio_postgres::Config = url.parse().map_err(|e| GatewayError::Config {
            file: "store.url".into(),
            message: format!("not a PostgreSQL URL: {e}"),
        })?;
        let mgr = Manager::from_config(cfg, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(mgr).max_size(16).build().map_err(store_err)?;
        let mut client = pool.get().await.map_err(|e| GatewayError::Config {
            file: "store.url".into(),
            message: format!("cannot connect to PostgreSQL: {}", PgError::from(e).0),
        })?;
        // Replicas may start together: create the schema under an advisory lock.
        let tx = client.transaction().await.map_err(store_err)?;
        tx.execute("SELECT pg_advisory_xact_lock(724001)", &[]).await.map_err(store_err)?;
        tx.batch_execute(&sql::schema(true)).await.map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(PgStore { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, GatewayError> {
        self.pool.get().await.map_err(store_err)
    }

    pub async fn accept(&self, batch: Vec<NewSubmission>, now: i64) -> Result<Vec<Accepted>, GatewayError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(store_err)?;
        let ins = tx.prepare_cached(sql::INSERT_SUBMISSION).await.map_err(store_err)?;
        let pay = tx.prepare_cached(sql::INSERT_PAYLOAD).await.map_err(store_err)?;
        let del = tx.prepare_cached(sql::INSERT_DELIVERY).await.map_err(store_err)?;
        let aud = tx.prepare_cached(sql::INSERT_AUDIT).await.map_err(store_err)?;
        let mut out = Vec::with_capacity(batch.len());
        for s in batch {
            let row = tx
                .query_opt(&ins, &[&s.id, &s.idem_key, &s.record_id, &s.record_version, &s.order_key, &s.submitter, &now])
                .await
                .map_err(store_err)?;
            match row {
                Some(r) => {
                    let seq: i64 = r.get(0);
                    tx.execute(&pay, &[&seq, &s.bundle]).await.map_err(store_err)?;
                    for d in &s.destinations {
                        tx.execute(&del, &[&seq, d, &s.order_key, &s.record_id, &s.record_version, &now]).await.map_err(store_err)?;
                    }
                    let detail = serde_json::json!({"destinations": s.destinations, "submitter": s.submitter}).to_string();
                    tx.execute(&aud, &[&seq, &now, &"accepted", &Option::<String>::None, &detail]).await.map_err(store_err)?;
                    out.push(Accepted::New(s.id));
                }
                None => {
                    let r = tx.query_one(sql::FIND_BY_KEY, &[&s.idem_key]).await.map_err(store_err)?;
                    out.push(Accepted::Existing(r.get(0)));
                }
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
            let (seq, record_id, version, attempts): (i64, String, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
            if tx.query_opt(sql::SUPERSEDED, &[&destination, &record_id, &version, &seq]).await.map_err(store_err)?.is_some() {
                tx.execute(sql::MARK_SUPERSEDED, &[&seq, &destination, &now]).await.map_err(store_err)?;
                tx.execute(sql::INSERT_AUDIT, &[&seq, &now, &"superseded", &destination, &"a newer version was already delivered"])
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
                record_id,
                record_version: version,
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
            record_id: h.get(2),
            record_version: h.get(3),
            submitter: h.get(4),
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
        self.client().await?.execute(sql::PRUNE, &[&before]).await.map_err(store_err)
    }

    pub async fn audit(&self, id: &str) -> Result<Vec<Value>, GatewayError> {
        let rows = self.client().await?.query(sql::AUDIT, &[&id]).await.map_err(store_err)?;
        Ok(rows
            .into_iter()
            .map(|r| super::audit_entry(r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    pub async fn depth(&self) -> Result<Vec<(String, String, i64)>, GatewayError> {
        let rows = self.client().await?.query(sql::DEPTH, &[]).await.map_err(store_err)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }
}
