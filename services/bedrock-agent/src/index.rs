//! Each knowledge base's index, in memory, rebuilt from its chunk records.
//!
//! Every write of chunks moves the knowledge base's generation in the same batch (guarded by
//! a check of the generation it read). A search first reads the generation: the node's copy
//! serves it if it is that generation, else the copy is rebuilt from the records. The node
//! that writes applies its own changes to its copy, so ingestion does not rebuild it.

use crate::model::{CHUNKS, ChunkRec, GENERATIONS, load};
use basalt_core::AwsError;
use basalt_store::{StateStore, StoreError, WriteOp};
use basalt_vector::{Index, Metric};
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What Retrieve returns of a chunk besides its score.
#[derive(Debug, Clone)]
pub struct ChunkView {
    pub content: String,
    pub uri: String,
    pub metadata: Map<String, Value>,
}

#[derive(Default)]
pub struct Loaded {
    pub generation: u64,
    /// `None` until the first chunk fixes the dimension.
    pub index: Option<Index>,
    pub chunks: HashMap<String, ChunkView>,
}

impl Loaded {
    fn apply(&mut self, key: &str, rec: Option<&ChunkRec>) {
        let Some(rec) = rec else {
            if let Some(i) = &mut self.index {
                i.remove(key);
            }
            self.chunks.remove(key);
            return;
        };
        let Some(vector) = rec.decode_vector() else {
            return;
        };
        let index = self
            .index
            .get_or_insert_with(|| Index::new(vector.len(), Metric::Cosine));
        let metadata = rec.metadata();
        if index
            .upsert(key, &vector, &rec.text, metadata.clone())
            .is_err()
        {
            // A vector of another dimension (the embedding model changed size): it cannot
            // be compared with the others, so it is left out rather than failing the index.
            tracing::warn!(chunk = key, "chunk vector does not fit the index; skipped");
            return;
        }
        self.chunks.insert(
            key.to_owned(),
            ChunkView {
                content: rec.content.clone().unwrap_or_else(|| rec.text.clone()),
                uri: rec.uri.clone(),
                metadata,
            },
        );
    }
}

/// One change of a chunk: its new record, or `None` for a delete.
pub type Change = (String, Option<ChunkRec>);

#[derive(Default)]
pub struct Indexes {
    /// By knowledge base key (`{scope}/{kb}`).
    loaded: Mutex<HashMap<String, Arc<RwLock<Loaded>>>>,
}

fn generation(state: &dyn StateStore, kb_key: &str) -> Result<(u64, Option<Vec<u8>>), StoreError> {
    let raw = state.get(GENERATIONS, kb_key)?;
    let g = raw
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((g, raw))
}

impl Indexes {
    fn slot(&self, kb_key: &str) -> Arc<RwLock<Loaded>> {
        self.loaded
            .lock()
            .entry(kb_key.to_owned())
            .or_default()
            .clone()
    }

    /// The current index of a knowledge base (blocking: it may read every chunk).
    pub fn current(
        &self,
        state: &dyn StateStore,
        kb_key: &str,
    ) -> Result<Arc<RwLock<Loaded>>, AwsError> {
        let slot = self.slot(kb_key);
        let (g, _) = generation(state, kb_key)?;
        if slot.read().generation == g && g > 0 {
            return Ok(slot);
        }
        let mut fresh = Loaded {
            generation: g,
            ..Default::default()
        };
        let prefix = format!("{kb_key}/");
        let mut after: Option<String> = None;
        loop {
            let page = state.scan(CHUNKS, &prefix, after.as_deref(), 1000)?;
            for (k, raw) in &page {
                let rec: ChunkRec = load(raw)?;
                fresh.apply(k, Some(&rec));
            }
            match page.last() {
                Some((k, _)) if page.len() == 1000 => after = Some(k.clone()),
                _ => break,
            }
        }
        // A write that landed during the scan moved the generation: this copy may lack it,
        // so it is kept only as of the generation read before the scan (the next search
        // sees the newer one and rebuilds).
        *slot.write() = fresh;
        Ok(slot)
    }

    /// Writes `changes` with `extra` in one batch that moves the generation, retrying when
    /// another writer moved it first (changes are whole records, so rewriting them is
    /// harmless).
    pub fn commit(
        &self,
        state: &dyn StateStore,
        kb_key: &str,
        changes: &[Change],
        extra: &[WriteOp],
    ) -> Result<(), AwsError> {
        let mut ops: Vec<WriteOp> = changes
            .iter()
            .map(|(k, rec)| match rec {
                Some(r) => WriteOp::Put {
                    table: CHUNKS.into(),
                    key: k.clone(),
                    value: crate::model::dump(r),
                },
                None => WriteOp::Delete {
                    table: CHUNKS.into(),
                    key: k.clone(),
                },
            })
            .collect();
        ops.extend_from_slice(extra);
        let fixed = ops.len();
        for _ in 0..20 {
            let (g, raw) = generation(state, kb_key)?;
            ops.truncate(fixed);
            ops.push(WriteOp::Check {
                table: GENERATIONS.into(),
                key: kb_key.to_owned(),
                expected: raw,
            });
            ops.push(WriteOp::Put {
                table: GENERATIONS.into(),
                key: kb_key.to_owned(),
                value: (g + 1).to_string().into_bytes(),
            });
            match state.batch(&ops) {
                Ok(()) => {
                    let slot = self.slot(kb_key);
                    let mut l = slot.write();
                    if l.generation == g && (g > 0 || l.index.is_none()) {
                        for (k, rec) in changes {
                            l.apply(k, rec.as_ref());
                        }
                        l.generation = g + 1;
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AwsError::new(
            409,
            "ConflictException",
            "The knowledge base is being written by too many jobs at once; try again.",
        ))
    }

    /// Forgets a deleted knowledge base's copy.
    pub fn forget(&self, kb_key: &str) {
        self.loaded.lock().remove(kb_key);
    }
}
