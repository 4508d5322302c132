//! In-memory views derived from records (a search index built from its entries), shared by
//! the nodes of one store.
//!
//! Every write of a view's records moves the view's generation number in the same batch,
//! guarded by a check of the generation it read. A reader first reads the generation: the
//! node's copy serves it if it is of that generation, else the copy is rebuilt from the
//! records. The writing node applies its own changes to its copy, so that a node that writes
//! does not rebuild what it just wrote; another node rebuilds once, on its next read.

use crate::{StateStore, StoreError, WriteOp};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;

/// A node's copy of one view.
#[derive(Default)]
pub struct View<T> {
    pub generation: u64,
    /// Whether `value` was built from the records (at `generation`).
    pub built: bool,
    pub value: T,
}

/// Views by key, their generations in table `table` under the same key.
pub struct Views<T> {
    table: &'static str,
    loaded: Mutex<HashMap<String, Arc<RwLock<View<T>>>>>,
}

/// Attempts of a write whose generation another writer moved first.
const ATTEMPTS: usize = 50;

impl<T: Default> Views<T> {
    pub fn new(table: &'static str) -> Views<T> {
        Views {
            table,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &str) -> Arc<RwLock<View<T>>> {
        self.loaded
            .lock()
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    fn generation(
        &self,
        state: &dyn StateStore,
        key: &str,
    ) -> Result<(u64, Option<Vec<u8>>), StoreError> {
        let raw = state.get(self.table, key)?;
        let g = raw
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((g, raw))
    }

    /// The current view `key`, rebuilt with `build` when this node's copy is not of the
    /// stored generation.
    pub fn current<E: From<StoreError>>(
        &self,
        state: &dyn StateStore,
        key: &str,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<RwLock<View<T>>>, E> {
        let slot = self.slot(key);
        let (g, _) = self.generation(state, key)?;
        let fresh = {
            let v = slot.read();
            v.built && v.generation == g
        };
        if fresh {
            return Ok(slot);
        }
        // Built as of `g`: a write landing meanwhile moves the generation past it, and the
        // next read rebuilds.
        let value = build()?;
        *slot.write() = View {
            generation: g,
            built: true,
            value,
        };
        Ok(slot)
    }

    /// Writes `ops` in one batch that moves view `key`'s generation, retrying when another
    /// writer moved it first (so `ops` must not hold checks that a retry would break), then
    /// applies the change to this node's copy with `apply` if the copy was current.
    pub fn commit(
        &self,
        state: &dyn StateStore,
        key: &str,
        ops: &[WriteOp],
        apply: impl FnOnce(&mut T),
    ) -> Result<(), StoreError> {
        let mut batch = ops.to_vec();
        for _ in 0..ATTEMPTS {
            let (g, raw) = self.generation(state, key)?;
            batch.truncate(ops.len());
            batch.push(WriteOp::Check {
                table: self.table.into(),
                key: key.to_owned(),
                expected: raw,
            });
            batch.push(WriteOp::Put {
                table: self.table.into(),
                key: key.to_owned(),
                value: (g + 1).to_string().into_bytes(),
            });
            match state.batch(&batch) {
                Ok(()) => {
                    let slot = self.slot(key);
                    let mut v = slot.write();
                    if v.built && v.generation == g {
                        apply(&mut v.value);
                        v.generation = g + 1;
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Forgets this node's copy of a deleted view (its generation record is the caller's).
    pub fn forget(&self, key: &str) {
        self.loaded.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryState;

    fn put(key: &str, v: &str) -> WriteOp {
        WriteOp::Put {
            table: "items".into(),
            key: key.into(),
            value: v.as_bytes().to_vec(),
        }
    }

    /// A view counting the records of table `items`.
    fn build(state: &dyn StateStore) -> Result<usize, StoreError> {
        Ok(state.scan("items", "", None, 1000)?.len())
    }

    #[test]
    fn writers_apply_their_own_changes_and_others_rebuild() {
        let state = MemoryState::default();
        let (a, b): (Views<usize>, Views<usize>) = (Views::new("gen"), Views::new("gen"));
        let builds = std::cell::Cell::new(0);
        let counted = |v: &Views<usize>| {
            v.current(&state, "k", || {
                builds.set(builds.get() + 1);
                build(&state)
            })
            .unwrap()
            .read()
            .value
        };
        assert_eq!(counted(&a), 0);
        assert_eq!(counted(&b), 0);
        assert_eq!(builds.get(), 2);
        // Node a writes: its copy follows without a rebuild; b's is stale and rebuilds once.
        a.commit(&state, "k", &[put("x", "1")], |n| *n += 1)
            .unwrap();
        assert_eq!(counted(&a), 1);
        assert_eq!(builds.get(), 2);
        assert_eq!(counted(&b), 1);
        assert_eq!(counted(&b), 1);
        assert_eq!(builds.get(), 3);
        // A copy that was never built is not patched: it is built when first read.
        let c: Views<usize> = Views::new("gen");
        c.commit(&state, "k", &[put("y", "1")], |n| *n += 100)
            .unwrap();
        assert_eq!(counted(&c), 2);
    }
}
