//! Group commit: every request that wants to store submissions sends them here; one task takes
//! everything waiting, stores it in one transaction, and answers each request once it committed.
//! Under load this turns N fsyncs into one; when idle a request waits for nobody.

use tokio::sync::{mpsc, oneshot};

use super::{GroupOutcome, NewSubmission, Store, now_ms};
use crate::error::GatewayError;

type Request = (Vec<NewSubmission>, oneshot::Sender<Result<GroupOutcome, CommitFailed>>);

/// The group's transaction did not commit (the cause is logged once, for the whole group).
#[derive(Debug, thiserror::Error)]
#[error("the store could not commit")]
struct CommitFailed;

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Request>,
}

/// Most submissions in one transaction.
const MAX_BATCH: usize = 2048;

impl Committer {
    pub fn start(store: Store) -> Committer {
        let (tx, mut rx) = mpsc::channel::<Request>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut waiting = vec![first];
                let mut n = waiting[0].0.len();
                while n < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => {
                            n += r.0.len();
                            waiting.push(r);
                        }
                        Err(_) => break,
                    }
                }
                let (groups, replies): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
                match store.accept_groups(groups, now_ms()).await {
                    Ok(outcomes) => {
                        for (outcome, reply) in outcomes.into_iter().zip(replies) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        tracing::error!(stage = "queue", error = %e, records = n, "commit failed");
                        for reply in replies {
                            let _ = reply.send(Err(CommitFailed));
                        }
                    }
                }
            }
        });
        Committer { tx }
    }

    /// Stores `batch` (one request: all or none); returns only after it is committed.
    pub async fn submit(&self, batch: Vec<NewSubmission>) -> Result<GroupOutcome, GatewayError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((batch, tx)).await.map_err(|_| super::store_err("the committer has stopped"))?;
        rx.await.map_err(|_| super::store_err("the committer has stopped"))?.map_err(super::store_err)
    }
}
