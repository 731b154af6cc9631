//! Reading the store for operators (the console): counts by state, per-destination figures,
//! filtered and paged lists of submissions, dead letters, submitters, a Bundle's bytes for its
//! shape, and replaying several submissions in one transaction.
//!
//! Every query is written once (PostgreSQL placeholders, as in [`super::sql`]) and run by both
//! backends through one small cell layer ([`Param`], [`Cell`]), so that SQLite and PostgreSQL
//! answer the same. A page is a bounded number of queries whatever its length (the deliveries of
//! a page are read with one `IN` list, never one query per row). Lists walk `seq` backwards from
//! a cursor (`before`), so a page reads its rows by the primary key, never the whole table.
//!
//! It does not know HTTP, HTML or who is asking: visibility is a predicate the caller passes.

use std::collections::BTreeMap;

use super::{DeliveryView, Store, SubmissionView, overall_state, rfc3339};
use crate::error::GatewayError;

/// A query parameter.
#[derive(Clone, Debug)]
pub(super) enum Param {
    I(i64),
    T(Option<String>),
}

/// A column value as read.
#[derive(Clone, Debug)]
pub(super) enum Cell {
    I(Option<i64>),
    T(Option<String>),
    B(Option<Vec<u8>>),
}

impl Cell {
    fn int(&self) -> i64 {
        match self {
            Cell::I(Some(v)) => *v,
            _ => 0,
        }
    }
    fn opt_int(&self) -> Option<i64> {
        match self {
            Cell::I(v) => *v,
            _ => None,
        }
    }
    fn text(&self) -> String {
        self.opt_text().unwrap_or_default()
    }
    fn opt_text(&self) -> Option<String> {
        match self {
            Cell::T(v) => v.clone(),
            Cell::B(Some(b)) => String::from_utf8(b.clone()).ok(),
            _ => None,
        }
    }
}

/// Submissions by overall state, among the unfinished and dead deliveries (a small set next to
/// the delivered history): a submission without one is delivered.
const OPEN_STATES: &str = "SELECT st, COUNT(*) FROM (SELECT submission_seq,
       CASE WHEN SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END) > 0 THEN 'dead-letter'
            WHEN SUM(CASE WHEN state = 'leased' THEN 1 ELSE 0 END) > 0 THEN 'delivering'
            WHEN SUM(CASE WHEN state = 'pending' AND attempts > 0 THEN 1 ELSE 0 END) > 0 THEN 'retrying'
            ELSE 'accepted' END AS st
     FROM deliveries WHERE state IN ('pending', 'leased', 'dead') GROUP BY submission_seq) x GROUP BY st";
const TOTAL: &str = "SELECT COUNT(*) FROM submissions";
/// Per destination and unfinished or dead state (a small set, read through the
/// `deliveries_unfinished` index): how many, the last change after a failed attempt, and the
/// acceptance time of the oldest. Delivered history is never scanned: see [`LAST_DELIVERED`].
const DESTINATIONS: &str = "SELECT g.destination, g.state, g.n, g.last_failed_at,
       (SELECT s.created_at FROM submissions s WHERE s.seq = g.first_seq)
     FROM (SELECT destination, state, COUNT(*) AS n,
                  MAX(CASE WHEN attempts > 0 THEN updated_at END) AS last_failed_at,
                  MIN(submission_seq) AS first_seq
           FROM deliveries WHERE state IN ('pending', 'leased', 'dead') GROUP BY destination, state) g
     ORDER BY g.destination, g.state";
/// A destination's last delivery: `next_at` is when it finished (`sql::finish_values`), so the
/// `deliveries_due` index (destination, state, next_at) answers it without a scan.
const LAST_DELIVERED: &str = "SELECT MAX(next_at) FROM deliveries WHERE destination = $1 AND state = 'delivered'";
const HEAD: &str = "s.seq, s.id, s.record_id, s.record_version, s.submitter, s.created_at, s.source_system, s.programme";
/// A page of candidates, newest first, below the cursor.
const FILTERED: &str = "WHERE s.seq < $1 AND s.created_at >= $2 AND s.created_at < $3
       AND (CAST($4 AS TEXT) IS NULL OR s.programme = $4)
       AND (CAST($5 AS TEXT) IS NULL OR s.submitter = $5)
       AND (CAST($6 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM deliveries d WHERE d.submission_seq = s.seq AND d.destination = $6))
       AND (CAST($7 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM deliveries d WHERE d.submission_seq = s.seq AND d.state = $7))
     ORDER BY s.seq DESC LIMIT $8";
/// Submissions named by a submission id, a record id or an Idempotency-Key (of any client: the
/// key is stored as a JSON array `[client, key]`). A union, so that each arm uses its index
/// (`id` unique, `submissions_record`); the key's arm reads the `idempotency` table.
const SEARCH: &str = "WHERE s.seq IN (SELECT a.seq FROM submissions a WHERE a.id = $1
       UNION SELECT b.seq FROM submissions b WHERE b.record_id = $1
       UNION SELECT c.seq FROM submissions c JOIN idempotency i ON i.submission_id = c.id WHERE i.client_key LIKE $2)
     ORDER BY s.seq DESC LIMIT $3";
/// The `state IN` term lets both databases read the `deliveries_unfinished` partial index.
const DEAD: &str = "SELECT d.submission_seq, d.destination, d.last_status, d.outcome, d.updated_at
     FROM deliveries d WHERE d.state IN ('pending', 'leased', 'dead') AND d.state = 'dead' ORDER BY d.destination, d.submission_seq DESC LIMIT $1";
const SUBMITTERS: &str = "SELECT submitter, COUNT(*), MAX(created_at) FROM submissions GROUP BY submitter ORDER BY submitter";
const BUNDLE: &str = "SELECT p.bundle FROM payloads p JOIN submissions s ON s.seq = p.submission_seq WHERE s.id = $1";
const REPLAY_AUDIT: &str = "INSERT INTO audit (submission_seq, at, event, destination, detail)
     SELECT seq, $2, 'replayed', NULL, $3 FROM submissions WHERE id = $1";

/// What a list of submissions is filtered by (`None`: any).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The overall state (`accepted`, `delivering`, `delivered`, `retrying`, `dead-letter`).
    pub state: Option<String>,
    pub destination: Option<String>,
    pub programme: Option<String>,
    pub submitter: Option<String>,
    /// Accepted at or after, unix ms.
    pub from_ms: Option<i64>,
    /// Accepted before, unix ms.
    pub to_ms: Option<i64>,
    /// A submission id, record id or Idempotency-Key (the other filters then do not apply).
    pub search: Option<String>,
    /// The cursor: only submissions stored before this `seq` (the previous page's `next`).
    pub before: Option<i64>,
}

/// One page: the submissions, and the cursor of the next page if there may be more.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<SubmissionView>,
    pub next: Option<i64>,
}

/// One destination's figures.
#[derive(Debug, Default, Clone)]
pub struct DestinationFigures {
    pub name: String,
    /// Unfinished and dead deliveries by state (`pending`, `leased`, `dead`).
    pub by_state: BTreeMap<String, i64>,
    pub last_success_ms: Option<i64>,
    pub last_failure_ms: Option<i64>,
    /// When the oldest pending or leased delivery's submission was accepted.
    pub oldest_open_ms: Option<i64>,
}

impl DestinationFigures {
    /// Deliveries waiting or in flight.
    pub fn depth(&self) -> i64 {
        ["pending", "leased"].iter().map(|s| self.by_state.get(*s).copied().unwrap_or(0)).sum()
    }
}

/// A dead delivery.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub submission: SubmissionView,
    pub destination: String,
    pub last_status: Option<i64>,
    /// The destination's answer (`{"gaveUpAfter", "last"}` or its OperationOutcome).
    pub outcome: Option<serde_json::Value>,
    pub at_ms: i64,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

impl Store {
    async fn rows(&self, sql: &str, params: Vec<Param>) -> Result<Vec<Vec<Cell>>, GatewayError> {
        match self {
            Store::Sqlite(s) => {
                let sql = super::sqlite::q(sql);
                s.with(move |c| {
                    use rusqlite::types::Value as V;
                    let mut st = c.prepare_cached(&sql)?;
                    let n = st.column_count();
                    let vals: Vec<V> = params
                        .into_iter()
                        .map(|p| match p {
                            Param::I(i) => V::Integer(i),
                            Param::T(Some(t)) => V::Text(t),
                            Param::T(None) => V::Null,
                        })
                        .collect();
                    let rows = st.query_map(rusqlite::params_from_iter(vals), |r| {
                        (0..n)
                            .map(|i| {
                                Ok(match r.get::<_, V>(i)? {
                                    V::Integer(v) => Cell::I(Some(v)),
                                    V::Text(t) => Cell::T(Some(t)),
                                    V::Blob(b) => Cell::B(Some(b)),
                                    V::Real(f) => Cell::I(Some(f as i64)),
                                    V::Null => Cell::I(None),
                                })
                            })
                            .collect::<rusqlite::Result<Vec<Cell>>>()
                    })?;
                    rows.collect()
                })
                .await
            }
            Store::Postgres(p) => {
                use tokio_postgres::types::{ToSql, Type};
                let c = p.client().await?;
                let boxed: Vec<Box<dyn ToSql + Sync + Send>> = params
                    .into_iter()
                    .map(|p| -> Box<dyn ToSql + Sync + Send> {
                        match p {
                            Param::I(i) => Box::new(i),
                            Param::T(t) => Box::new(t),
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
                let rows = c.query(sql, &refs).await.map_err(|e| super::store_err(super::postgres::PgError::from(e).0))?;
                Ok(rows
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| match *r.columns()[i].type_() {
                                Type::INT8 => Cell::I(r.get(i)),
                                Type::INT4 => Cell::I(r.get::<_, Option<i32>>(i).map(i64::from)),
                                Type::BYTEA => Cell::B(r.get(i)),
                                _ => Cell::T(r.get(i)),
                            })
                            .collect()
                    })
                    .collect())
            }
        }
    }

    /// Submissions by overall state (all five, zeros included) and the total.
    pub async fn state_counts(&self) -> Result<(BTreeMap<&'static str, i64>, i64), GatewayError> {
        let total = self.rows(TOTAL, vec![]).await?.first().map(|r| r[0].int()).unwrap_or(0);
        let mut out: BTreeMap<&'static str, i64> =
            ["accepted", "delivering", "delivered", "retrying", "dead-letter"].into_iter().map(|s| (s, 0)).collect();
        let mut open = 0;
        for r in self.rows(OPEN_STATES, vec![]).await? {
            let st = r[0].text();
            if let Some(k) = out.keys().copied().find(|k| *k == st) {
                out.insert(k, r[1].int());
                open += r[1].int();
            }
        }
        out.insert("delivered", (total - open).max(0));
        Ok((out, total))
    }

    /// Per destination (those named, and any the store holds unfinished or dead deliveries
    /// for): open and dead deliveries by state, last success and failure, oldest open delivery.
    /// One query for the open set, and one index probe per destination for its last success.
    pub async fn destination_figures(&self, names: &[String]) -> Result<Vec<DestinationFigures>, GatewayError> {
        let mut by: BTreeMap<String, DestinationFigures> =
            names.iter().map(|n| (n.clone(), DestinationFigures { name: n.clone(), ..Default::default() })).collect();
        for r in self.rows(DESTINATIONS, vec![]).await? {
            let name = r[0].text();
            let f = by.entry(name.clone()).or_insert_with(|| DestinationFigures { name, ..Default::default() });
            let state = r[1].text();
            f.by_state.insert(state.clone(), r[2].int());
            f.last_failure_ms = f.last_failure_ms.max(r[3].opt_int());
            if state != "dead" {
                f.oldest_open_ms = match (f.oldest_open_ms, r[4].opt_int()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        for f in by.values_mut() {
            f.last_success_ms = self.rows(LAST_DELIVERED, vec![Param::T(Some(f.name.clone()))]).await?.first().and_then(|r| r[0].opt_int());
        }
        Ok(by.into_values().collect())
    }

    /// The deliveries of several submissions (by `seq`), in one query.
    async fn deliveries_of(&self, seqs: &[i64]) -> Result<BTreeMap<i64, Vec<DeliveryView>>, GatewayError> {
        let mut out: BTreeMap<i64, Vec<DeliveryView>> = BTreeMap::new();
        if seqs.is_empty() {
            return Ok(out);
        }
        let list: Vec<String> = (1..=seqs.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT submission_seq, destination, state, attempts, last_status, next_at, outcome FROM deliveries
             WHERE submission_seq IN ({}) ORDER BY submission_seq, destination",
            list.join(", ")
        );
        for r in self.rows(&sql, seqs.iter().map(|s| Param::I(*s)).collect()).await? {
            let d = DeliveryView::from_row(r[1].text(), r[2].text(), r[3].int(), r[4].opt_int(), r[5].int(), r[6].opt_text());
            out.entry(r[0].int()).or_default().push(d);
        }
        Ok(out)
    }

    /// Submission heads (the `HEAD` columns) with their deliveries, in the order given.
    async fn views(&self, heads: Vec<Vec<Cell>>) -> Result<Vec<(i64, SubmissionView)>, GatewayError> {
        let seqs: Vec<i64> = heads.iter().map(|h| h[0].int()).collect();
        let mut dels = self.deliveries_of(&seqs).await?;
        Ok(heads
            .into_iter()
            .map(|h| {
                let seq = h[0].int();
                let deliveries = dels.remove(&seq).unwrap_or_default();
                let v = SubmissionView {
                    state: overall_state(&deliveries).to_owned(),
                    id: h[1].text(),
                    record_id: h[2].text(),
                    record_version: h[3].int(),
                    submitter: h[4].text(),
                    accepted_at: rfc3339(h[5].int()),
                    source_system: h[6].text(),
                    programme: h[7].text(),
                    deliveries,
                };
                (seq, v)
            })
            .collect())
    }

    /// A page of at most `limit` submissions matching `f` that `visible` lets the caller see,
    /// newest first. Reads at most `rounds` batches of candidates (the overall state and
    /// visibility are decided per submission), then offers the cursor to read on.
    pub async fn browse(&self, f: &Filter, limit: i64, visible: impl Fn(&SubmissionView) -> bool) -> Result<Page, GatewayError> {
        let limit = limit.clamp(1, 500);
        if let Some(q) = f.search.as_deref().filter(|q| !q.is_empty()) {
            let pattern = format!("%,{}]", like_escape(&serde_json::Value::String(q.to_owned()).to_string()));
            let sql = format!("SELECT {HEAD} FROM submissions s {}", SEARCH.replace("LIKE $2", "LIKE $2 ESCAPE '\\'"));
            let heads = self.rows(&sql, vec![Param::T(Some(q.to_owned())), Param::T(Some(pattern)), Param::I(limit)]).await?;
            let rows = self.views(heads).await?.into_iter().map(|(_, v)| v).filter(|v| visible(v)).collect();
            return Ok(Page { rows, next: None });
        }
        let sql = format!("SELECT {HEAD} FROM submissions s {FILTERED}");
        let mut before = f.before.unwrap_or(i64::MAX);
        let mut rows = Vec::new();
        for _ in 0..8 {
            let params = vec![
                Param::I(before),
                Param::I(f.from_ms.unwrap_or(0)),
                Param::I(f.to_ms.unwrap_or(i64::MAX)),
                Param::T(f.programme.clone()),
                Param::T(f.submitter.clone()),
                Param::T(f.destination.clone()),
                Param::T(f.state.as_deref().map(super::delivery_state_for)),
                Param::I(limit),
            ];
            let heads = self.rows(&sql, params).await?;
            let exhausted = (heads.len() as i64) < limit;
            for (seq, v) in self.views(heads).await? {
                before = seq;
                if f.state.as_deref().is_none_or(|s| s == v.state) && visible(&v) {
                    rows.push(v);
                    if rows.len() as i64 == limit {
                        return Ok(Page { rows, next: Some(seq) });
                    }
                }
            }
            if exhausted {
                return Ok(Page { rows, next: None });
            }
        }
        Ok(Page { rows, next: Some(before) })
    }

    /// Dead deliveries, by destination then newest first, at most `limit`, with their
    /// submissions (one query for the dead, one for their submissions, one for all deliveries).
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>, GatewayError> {
        let dead = self.rows(DEAD, vec![Param::I(limit)]).await?;
        let mut seqs: Vec<i64> = dead.iter().map(|r| r[0].int()).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut heads = Vec::new();
        if !seqs.is_empty() {
            let list: Vec<String> = (1..=seqs.len()).map(|i| format!("${i}")).collect();
            let sql = format!("SELECT {HEAD} FROM submissions s WHERE s.seq IN ({})", list.join(", "));
            heads = self.rows(&sql, seqs.iter().map(|s| Param::I(*s)).collect()).await?;
        }
        let views: BTreeMap<i64, SubmissionView> = self.views(heads).await?.into_iter().collect();
        Ok(dead
            .into_iter()
            .filter_map(|r| {
                let submission = views.get(&r[0].int())?.clone();
                Some(DeadLetter {
                    submission,
                    destination: r[1].text(),
                    last_status: r[2].opt_int(),
                    outcome: r[3].opt_text().and_then(|o| serde_json::from_str(&o).ok()),
                    at_ms: r[4].int(),
                })
            })
            .collect())
    }

    /// Who submitted: client name, how many submissions, the last one's time.
    pub async fn submitters(&self) -> Result<Vec<(String, i64, i64)>, GatewayError> {
        Ok(self.rows(SUBMITTERS, vec![]).await?.into_iter().map(|r| (r[0].text(), r[1].int(), r[2].int())).collect())
    }

    /// The stored Bundle of a submission (`None` once pruned).
    pub async fn bundle(&self, id: &str) -> Result<Option<Vec<u8>>, GatewayError> {
        let rows = self.rows(BUNDLE, vec![Param::T(Some(id.to_owned()))]).await?;
        Ok(rows.into_iter().next().and_then(|r| match r.into_iter().next() {
            Some(Cell::B(b)) => b,
            Some(Cell::T(t)) => t.map(String::into_bytes),
            _ => None,
        }))
    }

    /// Replays the dead deliveries of each submission, all in one transaction; how many
    /// deliveries became pending again.
    pub async fn replay_many(&self, ids: Vec<String>, now: i64) -> Result<u64, GatewayError> {
        match self {
            Store::Sqlite(s) => {
                s.with(move |c| {
                    let tx = c.transaction()?;
                    let mut total = 0u64;
                    for id in &ids {
                        let n = tx.execute(&super::sqlite::q(super::sql::REPLAY), rusqlite::params![id, now])?;
                        if n > 0 {
                            let note = format!("{n} dead delivery(ies) replayed");
                            tx.execute(&super::sqlite::q(REPLAY_AUDIT), rusqlite::params![id, now, note])?;
                        }
                        total += n as u64;
                    }
                    tx.commit()?;
                    Ok(total)
                })
                .await
            }
            Store::Postgres(p) => {
                let err = |e: tokio_postgres::Error| super::store_err(super::postgres::PgError::from(e).0);
                let mut c = p.client().await?;
                let tx = c.transaction().await.map_err(err)?;
                let mut total = 0u64;
                for id in &ids {
                    let n = tx.execute(super::sql::REPLAY, &[id, &now]).await.map_err(err)?;
                    if n > 0 {
                        let note = format!("{n} dead delivery(ies) replayed");
                        tx.execute(REPLAY_AUDIT, &[id, &now, &note]).await.map_err(err)?;
                    }
                    total += n;
                }
                tx.commit().await.map_err(err)?;
                Ok(total)
            }
        }
    }
}
