//! Leases for background work: durable work items with due times, claimed by workers (on this
//! node or another sharing the store) under time-limited leases.
//!
//! Every timer and queue of the services runs on this: SQS visibility timeouts, Lambda
//! asynchronous invocations and their retries, EventBridge deliveries and schedules, Step
//! Functions waits, SageMaker jobs. The guarantees (docs/architecture.md, "Leases"; the
//! contract suite in `contract.rs` checks them on every backend):
//!
//! - **At-least-once delivery.** A due item is handed to one claimer at a time; if that claimer
//!   neither completes, renews nor releases it before its lease expires (it died, hung, or lost
//!   the store), the item becomes claimable again, by any node, with its attempt count raised.
//! - **Exactly-once recorded completion.** [`complete`](super::StateStore::complete) removes the
//!   item and applies the caller's writes (the work's result) in one transaction, and only if
//!   the claim is still the item's current one: of two claimers that both did the work (the
//!   first one's lease having expired), exactly one records it; the other gets
//!   [`StoreError::Conflict`](crate::StoreError::Conflict) and must discard its result.
//!
//! Times are milliseconds since the Unix epoch, supplied by the caller on every backend, so
//! that tests can drive the clock. Workers take them from
//! [`clock_ms`](super::StateStore::clock_ms), the store's clock (PostgreSQL's on a shared
//! database), so that nodes whose clocks drift still agree on when a lease expires.

/// A claimed work item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub queue: String,
    pub id: String,
    pub payload: Vec<u8>,
    /// How many times the item has been claimed, this claim included.
    pub attempt: u32,
    /// This claim's identity: renew, complete and release with an older token fail.
    pub token: String,
    /// When the lease ends unless renewed.
    pub expires_ms: i64,
}

/// How the items of a queue stand at one moment (SQS's approximate message counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Due and not leased: a claim now would get them.
    pub ready: usize,
    /// Under a lease that has not expired.
    pub leased: usize,
    /// Not leased and not yet due.
    pub delayed: usize,
}

impl Counts {
    /// From SQL's totals (`COUNT(*)` and two `SUM`s).
    pub(crate) fn from_totals(total: i64, leased: i64, delayed: i64) -> Counts {
        let n = |v: i64| usize::try_from(v).unwrap_or(0);
        Counts {
            ready: n(total - leased - delayed),
            leased: n(leased),
            delayed: n(delayed),
        }
    }
}

/// A fresh lease token.
pub(crate) fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A work item in the memory backend.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub payload: Vec<u8>,
    pub due_ms: i64,
    pub attempts: u32,
    /// Token and expiry of the current lease.
    pub lease: Option<(String, i64)>,
}

impl Item {
    pub(crate) fn claimable(&self, now_ms: i64) -> bool {
        self.due_ms <= now_ms && self.lease.as_ref().is_none_or(|(_, exp)| *exp <= now_ms)
    }
}

/// How saving a leased job's progress ended ([`save_leased`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Saved,
    /// The stored record refused the write (a stop was asked for).
    Refused,
    /// The record is gone, or another node holds the lease now.
    Gone,
}

/// A period from the environment variable `var` in seconds (fractions allowed, above zero),
/// in milliseconds, or `default_ms`: retention periods that tests shorten.
pub fn ms_from_secs_env(var: &str, default_ms: i64) -> i64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(default_ms, |s| (s * 1000.0) as i64)
}

/// A lease length from the environment variable `var` (milliseconds, at least one second), or
/// `default_ms`: tests of a takeover after a crash shorten the wait with it.
pub fn lease_ms_from_env(var: &str, default_ms: i64) -> i64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|&ms| ms >= 1_000)
        .unwrap_or(default_ms)
}

/// Saves the progress of a job its worker holds under `claim`: writes `value()` over
/// `table`/`key` if the record is still there and `proceed` accepts what is stored (read and
/// written in one batch, retried when another writer came between), then renews the lease for
/// `lease_ms`. Long jobs (ingestion, batch inference) call it between units of work.
pub fn save_leased(
    state: &dyn crate::StateStore,
    claim: &mut Claim,
    lease_ms: i64,
    table: &str,
    key: &str,
    proceed: impl Fn(&[u8]) -> bool,
    value: impl Fn() -> Vec<u8>,
) -> Result<Saved, crate::StoreError> {
    loop {
        let Some(raw) = state.get(table, key)? else {
            return Ok(Saved::Gone);
        };
        if !proceed(&raw) {
            return Ok(Saved::Refused);
        }
        let ops = [
            crate::WriteOp::Check {
                table: table.into(),
                key: key.into(),
                expected: Some(raw),
            },
            crate::WriteOp::Put {
                table: table.into(),
                key: key.into(),
                value: value(),
            },
        ];
        match state.batch(&ops) {
            Ok(()) => break,
            Err(crate::StoreError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    match state.renew(claim, state.now_ms(), lease_ms) {
        Ok(expires) => {
            claim.expires_ms = expires;
            Ok(Saved::Saved)
        }
        Err(_) => Ok(Saved::Gone),
    }
}

/// A worker on the leases: claims up to `batch` due items of `queue` at a time (leased for
/// `lease_ms`) and hands each batch to its work; when none is due, it waits for `wake` or for
/// `idle`, whichever comes first. The deliveries, invocations and fires of the services run
/// on it, on every node at once: an item goes to whichever node claims it.
pub struct Worker {
    pub state: std::sync::Arc<dyn crate::StateStore>,
    pub queue: &'static str,
    pub lease_ms: i64,
    pub batch: usize,
    pub idle: std::time::Duration,
    pub wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Worker {
    /// Runs `work` on each claimed batch, one batch at a time, for as long as the process
    /// lives. A batch's items that `work` neither completes nor releases come back when
    /// their lease ends.
    pub fn spawn<W, F>(self, work: W)
    where
        W: Fn(Vec<Claim>) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(async move {
            loop {
                let state = self.state.clone();
                let (queue, lease_ms, batch) = (self.queue, self.lease_ms, self.batch);
                let claimed = tokio::task::spawn_blocking(move || {
                    let now = state.clock_ms()?;
                    state.claim(queue, now, lease_ms, batch)
                })
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
                if claimed.is_empty() {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.idle) => {}
                    }
                    continue;
                }
                work(claimed).await;
            }
        });
    }
}

/// Runs `work` as a recurring job on the leases: one item `id` of `queue`, claimed by one
/// node at a time under `lease_ms` (work that takes long renews it), and due again
/// `period_ms()` after each run ends; a node that dies mid-run leaves it to another once the
/// lease expires. Nodes look for it at most every 5 seconds (sooner for shorter periods).
pub fn spawn_recurring<W>(
    state: std::sync::Arc<dyn crate::StateStore>,
    queue: &'static str,
    id: &'static str,
    lease_ms: i64,
    period_ms: fn() -> i64,
    work: W,
) where
    W: Fn(&Claim) -> Result<(), crate::StoreError> + Send + Sync + 'static,
{
    let work = std::sync::Arc::new(work);
    tokio::spawn(async move {
        // Enqueueing the item again would only move its due time: schedule it only when
        // no node has yet.
        if state.pending(queue).unwrap_or(1) == 0 {
            let _ = state.enqueue(queue, id, b"", 0);
        }
        loop {
            let claimed = state
                .clock_ms()
                .and_then(|now| state.claim(queue, now, lease_ms, 1))
                .unwrap_or_default();
            if let Some(claim) = claimed.into_iter().next() {
                let w = work.clone();
                let result = tokio::task::spawn_blocking(move || w(&claim).map(|()| claim)).await;
                match result {
                    Ok(Ok(claim)) => {
                        let next = state.clock_ms().unwrap_or(0) + period_ms();
                        let _ = state.release(&claim, next);
                    }
                    Ok(Err(e)) => tracing::warn!("recurring job {queue} failed: {e}"),
                    Err(e) => tracing::error!("recurring job {queue} panicked: {e}"),
                }
            }
            let nap = period_ms().clamp(200, 5000) as u64;
            tokio::time::sleep(std::time::Duration::from_millis(nap)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryState, StateStore};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_worker_completes_every_item_and_wakes_on_notice() {
        let state: Arc<dyn StateStore> = Arc::new(MemoryState::default());
        for i in 0..50 {
            state.enqueue("q", &format!("item-{i}"), b"x", 0).unwrap();
        }
        let done = Arc::new(AtomicUsize::new(0));
        let wake = Arc::new(tokio::sync::Notify::new());
        let (s, d) = (state.clone(), done.clone());
        Worker {
            state: state.clone(),
            queue: "q",
            lease_ms: 10_000,
            batch: 8,
            // Long enough that only a notice can explain a prompt second round.
            idle: std::time::Duration::from_secs(30),
            wake: wake.clone(),
        }
        .spawn(move |claims| {
            let (s, d) = (s.clone(), d.clone());
            async move {
                for c in claims {
                    s.complete(&c, &[]).unwrap();
                    d.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let wait_for = |n: usize| {
            let done = done.clone();
            async move {
                for _ in 0..200 {
                    if done.load(Ordering::SeqCst) >= n {
                        return true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                false
            }
        };
        assert!(wait_for(50).await, "{} of 50", done.load(Ordering::SeqCst));
        assert_eq!(state.pending("q").unwrap(), 0);
        // Idle now; new work is picked up at once when the worker is woken.
        state.enqueue("q", "late", b"x", 0).unwrap();
        wake.notify_one();
        assert!(wait_for(51).await);
        assert_eq!(done.load(Ordering::SeqCst), 51);
    }
}
