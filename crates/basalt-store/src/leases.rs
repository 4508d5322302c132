//! Leases for background work: durable work items with due times, claimed by workers (on this
//! node or another sharing the store) under time-limited leases.
//!
//! Every timer and queue of the services runs on this: SQS visibility timeouts, Lambda
//! asynchronous invocations and their retries, EventBridge deliveries and schedules, Step
//! Functions waits, SageMaker jobs. The guarantees (docs/architecture.md, "Leases"):
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
//! Times are milliseconds since the Unix epoch, supplied by the caller, so that tests can
//! drive the clock and nodes agree on one timeline (the store's clock on networked backends).

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

#[cfg(test)]
pub(crate) mod contract {
    //! The lease contract every state backend must meet; run by each backend's tests.

    use crate::{StateStore, StoreError, WriteOp};
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn put(table: &str, key: &str, v: &[u8]) -> WriteOp {
        WriteOp::Put {
            table: table.into(),
            key: key.into(),
            value: v.to_vec(),
        }
    }

    pub fn due_order_and_leases(s: &dyn StateStore) {
        s.enqueue("q", "late", b"L", 2_000).unwrap();
        s.enqueue("q", "early", b"E", 1_000).unwrap();
        s.enqueue("other", "x", b"X", 0).unwrap();
        assert!(
            s.claim("q", 999, 10_000, 10).unwrap().is_empty(),
            "nothing due yet"
        );
        let c = s.claim("q", 1_500, 10_000, 10).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].id.as_str(), c[0].payload.as_slice(), c[0].attempt),
            ("early", &b"E"[..], 1)
        );
        assert_eq!(c[0].expires_ms, 11_500);
        // Leased: nobody else gets it, the later item comes when due, in due order.
        let c2 = s.claim("q", 2_000, 10_000, 10).unwrap();
        assert_eq!(
            c2.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            vec!["late"]
        );
        assert_eq!(s.pending("q").unwrap(), 2);
        // The lease expires: claimable again, second attempt, new token.
        let again = s.claim("q", 11_500, 1_000, 10).unwrap();
        let ids: Vec<&str> = again.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, vec!["early"], "late's lease runs until 12000");
        assert_eq!(again[0].attempt, 2);
        assert_ne!(again[0].token, c[0].token);
        // The first claimer lost it: no renew, no completion, no release.
        assert!(matches!(
            s.renew(&c[0], 11_600, 1_000),
            Err(StoreError::Conflict)
        ));
        assert!(matches!(s.complete(&c[0], &[]), Err(StoreError::Conflict)));
        assert!(matches!(s.release(&c[0], 0), Err(StoreError::Conflict)));
        // The current claimer renews, and nobody can take it meanwhile.
        let renewed = s.renew(&again[0], 12_000, 5_000).unwrap();
        assert_eq!(renewed, 17_000);
        assert!(
            s.claim("q", 13_000, 1_000, 10)
                .unwrap()
                .iter()
                .all(|c| c.id != "early")
        );
        // Release with a later due time: a retry with backoff.
        s.release(&again[0], 20_000).unwrap();
        let before = s.claim("q", 19_999, 1_000, 10).unwrap();
        assert!(before.iter().all(|c| c.id != "early"));
        // `late`'s lease from 13000 expired at 14000: claimed again here.
        let late = before.iter().find(|c| c.id == "late").unwrap().clone();
        let third = s.claim("q", 20_000, 1_000, 10).unwrap();
        let early = third.iter().find(|c| c.id == "early").unwrap();
        assert_eq!(early.attempt, 3);
        s.complete(early, &[]).unwrap();
        assert!(
            matches!(s.complete(early, &[]), Err(StoreError::Conflict)),
            "completed once"
        );
        assert_eq!(s.pending("q").unwrap(), 1);
        assert_eq!(s.pending("other").unwrap(), 1);
        // Re-enqueueing an id replaces the item and ends any lease on it.
        s.enqueue("q", "late", b"L2", 30_000).unwrap();
        assert!(matches!(s.complete(&late, &[]), Err(StoreError::Conflict)));
        let c = s.claim("q", 30_000, 1_000, 10).unwrap();
        assert_eq!((c[0].payload.as_slice(), c[0].attempt), (&b"L2"[..], 1));
        // Limits: at most `max` per claim.
        for i in 0..5 {
            s.enqueue("many", &format!("{i}"), b"", i).unwrap();
        }
        assert_eq!(s.claim("many", 100, 1_000, 3).unwrap().len(), 3);
        assert_eq!(s.claim("many", 100, 1_000, 3).unwrap().len(), 2);
        assert!(s.claim("many", 100, 1_000, 0).unwrap().is_empty());
    }

    pub fn completion_is_atomic_with_results(s: &dyn StateStore) {
        s.enqueue("jobs", "j1", b"work", 0).unwrap();
        let c = s.claim("jobs", 0, 1_000, 1).unwrap().remove(0);
        // A failed precondition: nothing is written and the claim still stands.
        let blocked = [
            WriteOp::Check {
                table: "results".into(),
                key: "j1".into(),
                expected: Some(b"never".to_vec()),
            },
            put("results", "j1", b"done"),
        ];
        assert!(matches!(
            s.complete(&c, &blocked),
            Err(StoreError::Conflict)
        ));
        assert_eq!(s.get("results", "j1").unwrap(), None);
        assert_eq!(s.pending("jobs").unwrap(), 1);
        s.complete(&c, &[put("results", "j1", b"done")]).unwrap();
        assert_eq!(
            s.get("results", "j1").unwrap().as_deref(),
            Some(&b"done"[..])
        );
        assert_eq!(s.pending("jobs").unwrap(), 0);
        // Work scheduled in a batch commits with the batch, or not at all.
        s.batch(&[
            put("state", "wait", b"1"),
            WriteOp::Enqueue {
                queue: "timers".into(),
                id: "t1".into(),
                payload: b"fire".to_vec(),
                due_ms: 5,
            },
        ])
        .unwrap();
        assert_eq!(s.pending("timers").unwrap(), 1);
        let failed = s.batch(&[
            WriteOp::Check {
                table: "state".into(),
                key: "wait".into(),
                expected: None,
            },
            WriteOp::Enqueue {
                queue: "timers".into(),
                id: "t2".into(),
                payload: vec![],
                due_ms: 5,
            },
        ]);
        assert!(matches!(failed, Err(StoreError::Conflict)));
        assert_eq!(s.pending("timers").unwrap(), 1);
        // A completion may schedule the next step.
        let t = s.claim("timers", 5, 1_000, 1).unwrap().remove(0);
        s.complete(
            &t,
            &[WriteOp::Enqueue {
                queue: "timers".into(),
                id: "t3".into(),
                payload: vec![],
                due_ms: 10,
            }],
        )
        .unwrap();
        assert_eq!(s.claim("timers", 10, 1_000, 5).unwrap()[0].id, "t3");
    }

    /// Workers claim and complete concurrently, some "dying" with their claims; every item is
    /// completed exactly once (a completion record written with the completion), none lost.
    pub fn concurrent_workers_complete_each_item_once(s: Arc<dyn StateStore>) {
        const ITEMS: usize = 600;
        for i in 0..ITEMS {
            s.enqueue("load", &format!("{i:05}"), b"", 0).unwrap();
        }
        let clock = Arc::new(AtomicI64::new(0));
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let s = s.clone();
                let clock = clock.clone();
                std::thread::spawn(move || {
                    let mut done = 0;
                    let mut abandoned = 0;
                    for round in 0.. {
                        let now = clock.fetch_add(1, Ordering::SeqCst);
                        let claims = s.claim("load", now, 50, 8).unwrap();
                        if claims.is_empty() {
                            if s.pending("load").unwrap() == 0 {
                                break;
                            }
                            std::thread::yield_now();
                            continue;
                        }
                        for c in claims {
                            // Worker 0 dies with every third claim of its early rounds.
                            if w == 0 && round < 40 && c.id.ends_with('3') {
                                abandoned += 1;
                                continue;
                            }
                            let record = [
                                WriteOp::Check {
                                    table: "done".into(),
                                    key: c.id.clone(),
                                    expected: None,
                                },
                                put("done", &c.id, format!("{w}").as_bytes()),
                            ];
                            match s.complete(&c, &record) {
                                Ok(()) => done += 1,
                                Err(StoreError::Conflict) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    (done, abandoned)
                })
            })
            .collect();
        let results: Vec<(usize, usize)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        let completed: usize = results.iter().map(|r| r.0).sum();
        assert_eq!(completed, ITEMS, "{results:?}");
        let done = s.scan("done", "", None, ITEMS + 1).unwrap();
        let ids: HashSet<String> = done.into_iter().map(|(k, _)| k).collect();
        assert_eq!(ids.len(), ITEMS);
        assert_eq!(s.pending("load").unwrap(), 0);
    }
}
