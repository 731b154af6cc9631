//! The workers: one loop per destination, woken when records are accepted or a retry is due.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::deliver::{Backoff, Destination};
use crate::queue::{Claim, Outcome, Store, now_ms};

/// Relay tuning (`[relay]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Longest wait between looks at the queue when nothing wakes the worker.
    pub poll_ms: u64,
    /// How long a lease lasts; a worker that dies gives its deliveries back after this.
    pub lease_secs: u64,
    /// First retry delay; doubles each attempt.
    pub backoff_base_ms: i64,
    /// Longest retry delay.
    pub backoff_max_ms: i64,
    /// Consecutive all-failing rounds after which a destination's breaker opens.
    pub breaker_threshold: u32,
    /// Delivered payloads are deleted after this many days (the audit stays).
    pub retention_days: u32,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            poll_ms: 500,
            lease_secs: 120,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            breaker_threshold: 3,
            retention_days: 30,
        }
    }
}

/// The running relay: workers, and the handles to wake and stop them.
pub struct Relay {
    pub wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    store: Store,
    owner: String,
}

impl Relay {
    pub fn start(store: Store, destinations: Vec<Arc<Destination>>, cfg: RelayConfig) -> Relay {
        let wake = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let owner = format!("mhg-{}", uuid::Uuid::new_v4());
        let mut tasks = JoinSet::new();
        for d in destinations {
            tasks.spawn(run(store.clone(), d, cfg.clone(), owner.clone(), wake.clone(), stop_rx.clone()));
        }
        tasks.spawn(retention(store.clone(), cfg.retention_days, stop_rx));
        Relay { wake, stop, tasks, store, owner }
    }

    /// Stops claiming, lets in-flight deliveries finish, gives back any lease still held.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.wake.notify_waiters();
        while self.tasks.join_next().await.is_some() {}
        if let Err(e) = self.store.release(&self.owner).await {
            tracing::warn!(stage = "relay", error = %e, "could not release leases; they expire instead");
        }
    }
}

async fn retention(store: Store, days: u32, mut stop: watch::Receiver<bool>) {
    loop {
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
        match store.prune(cutoff).await {
            Ok(n) if n > 0 => tracing::info!(stage = "retention", pruned = n, "delivered payloads pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(stage = "retention", error = %e, "prune failed"),
        }
        // `$summary`'s records beyond `[summary] retention_days` (all of them when it is off).
        match store.prune_summaries(now_ms()).await {
            Ok(n) if n > 0 => tracing::info!(stage = "retention", pruned = n, "summaries past their retention dropped"),
            Ok(_) => {}
            Err(e) => tracing::warn!(stage = "retention", error = %e, "summary prune failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One destination's worker: a pipeline that keeps up to `concurrency` deliveries in flight and
/// claims the next as soon as one finishes (rounds that waited for their slowest delivery left
/// the destination idle a sixth of the time). Claiming beside deliveries in flight is safe for
/// order: a later version of a person is not due while an earlier one is pending or leased
/// (`sql::DUE`).
///
/// Breaker: `breaker_threshold` retryable failures in a row, with no success between, open it;
/// then one delivery at a time is claimed, each failing probe followed by a backoff pause, until
/// one succeeds.
async fn run(store: Store, dest: Arc<Destination>, cfg: RelayConfig, owner: String, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let name = dest.config.name.clone();
    let backoff = Backoff { base_ms: cfg.backoff_base_ms, max_ms: cfg.backoff_max_ms };
    let lease_ms = (cfg.lease_secs as i64) * 1000;
    // Retryable failures in a row.
    let mut failing: u32 = 0;
    let mut inflight: JoinSet<bool> = JoinSet::new();
    // Whether the last claim found the queue empty (then wait for a wake-up or the poll).
    let mut drained = false;
    tracing::info!(stage = "relay", destination = %name, "worker started");
    crate::ops::set_gauge("mhg_breaker_open", &[("destination", &name)], 0);
    loop {
        if *stop.borrow() {
            break;
        }
        let open = failing >= cfg.breaker_threshold;
        let limit = if open { 1 } else { dest.config.concurrency.max(1) };
        let free = limit.saturating_sub(inflight.len());
        if free > 0 && !drained {
            match store.claim(&name, free as i64, &owner, lease_ms, now_ms()).await {
                Ok(claims) => {
                    drained = claims.len() < free;
                    for c in claims {
                        spawn_delivery(&mut inflight, dest.clone(), store.clone(), owner.clone(), backoff, c);
                    }
                }
                Err(e) => {
                    tracing::error!(stage = "relay", destination = %name, error = %e, "claim failed");
                    drained = true;
                }
            }
            if inflight.len() < limit && !drained {
                continue;
            }
        }
        // Wait for a delivery to finish, new work, the poll tick (retries falling due) or stop.
        let notified = wake.notified();
        tokio::select! {
            done = inflight.join_next(), if !inflight.is_empty() => {
                let retryable = done.map(|r| r.unwrap_or(true)).unwrap_or(false);
                if retryable {
                    failing = failing.saturating_add(1);
                    if failing == cfg.breaker_threshold {
                        tracing::warn!(stage = "relay", destination = %name, "breaker open: destination keeps failing");
                        crate::ops::set_gauge("mhg_breaker_open", &[("destination", &name)], 1);
                    }
                    if failing >= cfg.breaker_threshold && inflight.is_empty() {
                        let pause = backoff.delay_ms(i64::from(failing - cfg.breaker_threshold + 1)).max(0) as u64;
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(pause)) => {}
                            _ = stop.changed() => {}
                        }
                    }
                } else {
                    if failing >= cfg.breaker_threshold {
                        tracing::info!(stage = "relay", destination = %name, "breaker closed");
                        crate::ops::set_gauge("mhg_breaker_open", &[("destination", &name)], 0);
                    }
                    failing = 0;
                }
                // A slot is free: claim again (work may have become due meanwhile).
                drained = false;
            }
            _ = notified, if free > 0 => { drained = false; }
            _ = tokio::time::sleep(Duration::from_millis(cfg.poll_ms)), if free > 0 => { drained = false; }
            _ = stop.changed() => {}
        }
    }
    // Stopping: let the deliveries in flight finish (their outcomes are recorded).
    while inflight.join_next().await.is_some() {}
    tracing::info!(stage = "relay", destination = %name, "worker stopped");
}

fn spawn_delivery(inflight: &mut JoinSet<bool>, d: Arc<Destination>, s: Store, o: String, backoff: Backoff, c: Claim) {
    inflight.spawn(async move {
        let t0 = std::time::Instant::now();
        let outcome = d.deliver(&c, backoff).await;
        crate::ops::observe("mhg_stage_seconds", &[("stage", "deliver")], t0.elapsed().as_secs_f64());
        let (label, status) = match &outcome {
            Outcome::Delivered { status, .. } => ("delivered", *status),
            Outcome::Retry { status, .. } => ("retry", *status),
            Outcome::Dead { status, .. } => ("dead-letter", *status),
        };
        tracing::info!(stage = "relay", destination = %d.config.name, submission_id = %c.submission_id,
                       attempt = c.attempts, outcome = label, status = status.unwrap_or(0), "delivery attempt");
        crate::ops::inc("mhg_deliveries_total", &[("destination", &d.config.name), ("outcome", label)], 1);
        let retryable = matches!(outcome, Outcome::Retry { .. });
        if let Err(e) = s.complete(&c, &o, outcome, now_ms()).await {
            tracing::error!(stage = "relay", destination = %d.config.name, error = %e, "could not record the outcome; the lease will expire and the delivery repeat");
        }
        retryable
    });
}
