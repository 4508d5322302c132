//! Group commit for the SQLite backend: batches that arrive while a commit is in flight are
//! committed together, in one transaction and so one fsync of the WAL, each in its own
//! savepoint so that one batch's failed precondition rolls back only that batch.
//!
//! The first writer to find no commit in flight leads: it takes every queued batch (its own
//! included), commits them, hands the lead to the oldest batch queued meanwhile (if any) and
//! returns. Followers sleep until their batch is committed or the lead is handed to them. A lone
//! writer pays two uncontended mutexes over a plain transaction; N concurrent writers share
//! one fsync.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::{StoreError, WriteOp};

enum State {
    Waiting,
    /// This batch's writer must lead the next group.
    Lead,
    Done(Result<(), StoreError>),
}

struct Slot {
    ops: Vec<WriteOp>,
    state: Mutex<State>,
    cv: Condvar,
}

impl Slot {
    fn set(&self, s: State) {
        *self.state.lock() = s;
        self.cv.notify_one();
    }
}

#[derive(Default)]
struct Queue {
    pending: Vec<Arc<Slot>>,
    /// A writer is leading (committing a group, or about to).
    leading: bool,
}

/// Runs a group's commit; a panic in it fails the group's `n` batches instead of leaving
/// the lead taken (which would stop every later write).
fn guarded(
    commit: impl FnOnce() -> Vec<Result<(), StoreError>>,
    n: usize,
) -> Vec<Result<(), StoreError>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(commit)).unwrap_or_else(|_| {
        (0..n)
            .map(|_| Err(StoreError::Other("the commit failed (a panic)".into())))
            .collect()
    })
}

/// The queue of batches waiting for a group commit.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
}

impl GroupCommit {
    /// Commits `ops` as part of a group; `commit` runs one group (a slice of batches) and
    /// returns each batch's outcome, in order.
    pub(crate) fn submit(
        &self,
        ops: &[WriteOp],
        commit: impl Fn(&[&[WriteOp]]) -> Vec<Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let slot = Arc::new(Slot {
            ops: ops.to_vec(),
            state: Mutex::new(State::Waiting),
            cv: Condvar::new(),
        });
        let lead = {
            let mut q = self.queue.lock();
            q.pending.push(slot.clone());
            !std::mem::replace(&mut q.leading, true)
        };
        if lead {
            self.lead(&commit);
        }
        let mut state = slot.state.lock();
        loop {
            match std::mem::replace(&mut *state, State::Waiting) {
                State::Done(r) => return r,
                State::Lead => {
                    drop(state);
                    self.lead(&commit);
                    state = slot.state.lock();
                }
                State::Waiting => slot.cv.wait(&mut state),
            }
        }
    }

    /// Commits `ops` alone, now, on the calling thread, if no group is being committed (so the
    /// caller would have led one of its own); `None` otherwise. Batches that queue meanwhile
    /// are handed the lead afterwards, as [`GroupCommit::submit`] hands it on.
    pub(crate) fn try_lead(
        &self,
        ops: &[WriteOp],
        commit: impl Fn(&[&[WriteOp]]) -> Vec<Result<(), StoreError>>,
    ) -> Option<Result<(), StoreError>> {
        {
            let mut q = self.queue.lock();
            if q.leading {
                return None;
            }
            // Nobody leads, so nothing is queued: a queued batch always has a leader.
            debug_assert!(q.pending.is_empty());
            q.leading = true;
        }
        let r = guarded(|| commit(&[ops]), 1).pop();
        self.hand_on();
        Some(r.unwrap_or_else(|| Err(StoreError::Other("group commit lost a batch".into()))))
    }

    /// Gives the lead to the oldest queued batch, or gives it up.
    fn hand_on(&self) {
        let mut q = self.queue.lock();
        match q.pending.first() {
            Some(next) => next.set(State::Lead),
            None => q.leading = false,
        }
    }

    /// Commits every queued batch, then hands the lead on.
    fn lead(&self, commit: &impl Fn(&[&[WriteOp]]) -> Vec<Result<(), StoreError>>) {
        let group = std::mem::take(&mut self.queue.lock().pending);
        let batches: Vec<&[WriteOp]> = group.iter().map(|s| s.ops.as_slice()).collect();
        let results = guarded(|| commit(&batches), group.len());
        debug_assert_eq!(results.len(), group.len());
        for (slot, r) in group.iter().zip(results) {
            slot.set(State::Done(r));
        }
        self.hand_on();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn put(k: &str) -> WriteOp {
        WriteOp::Put {
            table: "t".into(),
            key: k.into(),
            value: vec![],
        }
    }

    #[test]
    fn concurrent_batches_share_commits_and_keep_their_own_outcome() {
        let g = GroupCommit::default();
        let commits = AtomicUsize::new(0);
        let batches = AtomicUsize::new(0);
        let commit = |group: &[&[WriteOp]]| {
            commits.fetch_add(1, Ordering::Relaxed);
            batches.fetch_add(group.len(), Ordering::Relaxed);
            // A slow fsync, so that writers pile up behind it.
            std::thread::sleep(std::time::Duration::from_millis(2));
            group
                .iter()
                .map(|ops| match &ops[0] {
                    WriteOp::Put { key, .. } if key.starts_with("bad") => Err(StoreError::Conflict),
                    _ => Ok(()),
                })
                .collect()
        };
        std::thread::scope(|s| {
            for t in 0..8 {
                let (g, commit) = (&g, &commit);
                s.spawn(move || {
                    for i in 0..50 {
                        let key = if i % 7 == 0 {
                            format!("bad-{t}-{i}")
                        } else {
                            format!("ok-{t}-{i}")
                        };
                        let r = g.submit(&[put(&key)], commit);
                        assert_eq!(r.is_ok(), key.starts_with("ok"), "{key}: {r:?}");
                    }
                });
            }
        });
        assert_eq!(
            batches.load(Ordering::Relaxed),
            400,
            "every batch committed once"
        );
        let commits = commits.load(Ordering::Relaxed);
        assert!(
            commits < 400,
            "no batches shared a commit ({commits} commits)"
        );
    }

    /// `try_lead` commits at once when nobody leads, declines while a group is committed, and
    /// hands the lead to the batches that queued behind it.
    #[test]
    fn try_lead_commits_only_when_nobody_leads() {
        let g = GroupCommit::default();
        let ok = |group: &[&[WriteOp]]| group.iter().map(|_| Ok(())).collect::<Vec<_>>();
        assert!(matches!(g.try_lead(&[put("a")], ok), Some(Ok(()))));
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        std::thread::scope(|s| {
            let g = &g;
            let leader = s.spawn(move || {
                g.try_lead(&[put("b")], |group| {
                    entered_tx.send(()).unwrap();
                    release_rx.lock().recv().unwrap();
                    group.iter().map(|_| Ok(())).collect()
                })
            });
            entered_rx.recv().unwrap();
            assert!(
                g.try_lead(&[put("c")], ok).is_none(),
                "a group is in flight"
            );
            // A writer queued behind the inline leader is handed the lead and commits.
            let follower = s.spawn(move || g.submit(&[put("d")], ok));
            while g.queue.lock().pending.is_empty() {
                std::thread::yield_now();
            }
            release_tx.send(()).unwrap();
            assert!(matches!(leader.join().unwrap(), Some(Ok(()))));
            follower.join().unwrap().unwrap();
        });
        assert!(!g.queue.lock().leading);
        assert!(g.try_lead(&[put("e")], ok).is_some());
    }

    #[test]
    fn a_commit_that_panics_fails_its_batch_and_frees_the_lead() {
        let g = GroupCommit::default();
        let r = g.submit(&[put("a")], |_| panic!("disk on fire"));
        assert!(matches!(r, Err(StoreError::Other(_))));
        assert!(matches!(
            g.try_lead(&[put("b")], |_| panic!("again")),
            Some(Err(_))
        ));
        // The lead is free: the next writer commits.
        g.submit(&[put("c")], |group| group.iter().map(|_| Ok(())).collect())
            .unwrap();
    }

    #[test]
    fn a_lone_writer_commits_alone() {
        let g = GroupCommit::default();
        for _ in 0..3 {
            g.submit(&[put("k")], |group| {
                assert_eq!(group.len(), 1);
                vec![Ok(())]
            })
            .unwrap();
        }
    }
}
