//! Each knowledge base's index, in memory, rebuilt from its chunk records and kept current
//! across nodes by a generation number ([`basalt_store::views`]).

use crate::model::{CHUNKS, ChunkRec, GENERATIONS, load};
use basalt_core::AwsError;
use basalt_store::views::{View, Views};
use basalt_store::{StateStore, StoreError, WriteOp};
use basalt_vector::{Index, Metric};
use parking_lot::RwLock;
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

/// Knowledge bases' indexes by knowledge base key (`{scope}/{kb}`).
pub struct Indexes(Views<Loaded>);

impl Default for Indexes {
    fn default() -> Self {
        Indexes(Views::new(GENERATIONS))
    }
}

impl Indexes {
    /// The current index of a knowledge base (it may read every chunk).
    pub fn current(
        &self,
        state: &dyn StateStore,
        kb_key: &str,
    ) -> Result<Arc<RwLock<View<Loaded>>>, AwsError> {
        self.0.current(state, kb_key, || {
            let mut fresh = Loaded::default();
            let prefix = format!("{kb_key}/");
            let mut after: Option<String> = None;
            loop {
                let page = state.scan(CHUNKS, &prefix, after.as_deref(), 1000)?;
                for (k, raw) in &page {
                    fresh.apply(k, Some(&load::<ChunkRec>(raw)?));
                }
                match page.last() {
                    Some((k, _)) if page.len() == 1000 => after = Some(k.clone()),
                    _ => return Ok::<_, AwsError>(fresh),
                }
            }
        })
    }

    /// Writes `changes` with `extra` in one batch that moves the knowledge base's generation
    /// (changes are whole records, so a retry rewriting them is harmless).
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
        // A knowledge base on S3 Vectors: the mirror's items land with the chunks.
        ops.extend(crate::s3_vectors::outbox(state, kb_key, changes)?);
        self.0
            .commit(state, kb_key, &ops, |l| {
                for (k, rec) in changes {
                    l.apply(k, rec.as_ref());
                }
            })
            .map_err(|e| match e {
                StoreError::Conflict => AwsError::new(
                    409,
                    "ConflictException",
                    "The knowledge base is being written by too many jobs at once; try again.",
                ),
                e => e.into(),
            })
    }

    /// Forgets a deleted knowledge base's copy.
    pub fn forget(&self, kb_key: &str) {
        self.0.forget(kb_key);
    }
}
