//! Each knowledge base's index: in the state store's own vector collections where it has
//! them (PostgreSQL with pgvector: [`basalt_store::vectors`]), written with the chunk records
//! in one transaction; otherwise in memory, rebuilt from its chunk records and kept current
//! across nodes by a generation number ([`basalt_store::views`]).
//!
//! A knowledge base's engine is fixed when it is created (its collection exists or not), so
//! one created before the database had pgvector (or migrated from SQLite) keeps the
//! in-memory index its records rebuild.

use crate::model::{CHUNKS, ChunkRec, GENERATIONS, load};
use basalt_core::AwsError;
use basalt_store::views::{View, Views};
use basalt_store::{
    StateStore, StoreError, VectorEntry, VectorOp, VectorQuery, VectorStore, WriteOp,
};
use basalt_vector::{Filter, Index, Metric};
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
pub struct Indexes {
    views: Views<Loaded>,
    /// Whether a knowledge base's index is the store's vector collection (fixed at creation).
    in_store: Mutex<HashMap<String, bool>>,
}

impl Default for Indexes {
    fn default() -> Self {
        Indexes {
            views: Views::new(GENERATIONS),
            in_store: Mutex::new(HashMap::new()),
        }
    }
}

fn conflict(e: StoreError) -> AwsError {
    match e {
        StoreError::Conflict => AwsError::new(
            409,
            "ConflictException",
            "The knowledge base is being written by too many jobs at once; try again.",
        ),
        e => e.into(),
    }
}

impl Indexes {
    /// Registers a new knowledge base's index, atomically with its records `ops`.
    pub fn create(
        &self,
        state: &dyn StateStore,
        kb_key: &str,
        ops: &[WriteOp],
    ) -> Result<(), AwsError> {
        let in_store = match state.vectors() {
            Some(v) => v.create_collection(kb_key, ops)?,
            None => {
                state.batch(ops)?;
                false
            }
        };
        self.in_store.lock().insert(kb_key.to_owned(), in_store);
        Ok(())
    }

    /// The store's collection that holds this knowledge base's index, if that is where it is.
    fn in_store<'a>(
        &self,
        state: &'a dyn StateStore,
        kb_key: &str,
    ) -> Result<Option<&'a dyn VectorStore>, AwsError> {
        let Some(v) = state.vectors() else {
            return Ok(None);
        };
        if let Some(&known) = self.in_store.lock().get(kb_key) {
            return Ok(known.then_some(v));
        }
        let known = v.has_collection(kb_key)?;
        self.in_store.lock().insert(kb_key.to_owned(), known);
        Ok(known.then_some(v))
    }

    /// The `depth` chunks nearest `vector` (fused with keyword ranks for `text`) among those
    /// that pass `filter`, best first, with their similarity (or fused score).
    pub fn search(
        &self,
        state: &dyn StateStore,
        kb_key: &str,
        vector: &[f32],
        text: Option<&str>,
        depth: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<(f32, ChunkView)>, AwsError> {
        if let Some(v) = self.in_store(state, kb_key)? {
            let query = VectorQuery {
                vector,
                text,
                k: depth,
                filter,
                exact: false,
            };
            return Ok(v
                .search(kb_key, &query)?
                .into_iter()
                .map(|h| {
                    let chunk = ChunkView {
                        content: h.content,
                        uri: h.uri,
                        metadata: h.metadata,
                    };
                    (h.score, chunk)
                })
                .collect());
        }
        let loaded = self.current(state, kb_key)?;
        let view = loaded.read();
        let l = &view.value;
        let Some(index) = &l.index else {
            return Ok(Vec::new());
        };
        let hits = match text {
            Some(t) => index.hybrid(vector, t, depth, filter),
            None => index.nearest(vector, depth, filter),
        }
        .map_err(|e| AwsError::internal(e.to_string()))?;
        Ok(hits
            .into_iter()
            .filter_map(|h| l.chunks.get(&h.key).map(|c| (h.score, c.clone())))
            .collect())
    }

    /// The current index of a knowledge base (it may read every chunk).
    fn current(
        &self,
        state: &dyn StateStore,
        kb_key: &str,
    ) -> Result<Arc<RwLock<View<Loaded>>>, AwsError> {
        self.views.current(state, kb_key, || {
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
        if let Some(v) = self.in_store(state, kb_key)? {
            let entries: Vec<VectorOp> = changes
                .iter()
                .filter_map(|(k, rec)| match rec {
                    None => Some(VectorOp::Remove(k.clone())),
                    Some(r) => r.decode_vector().map(|vector| {
                        VectorOp::Upsert(VectorEntry {
                            key: k.clone(),
                            vector,
                            text: r.text.clone(),
                            content: r.content.clone().unwrap_or_else(|| r.text.clone()),
                            uri: r.uri.clone(),
                            metadata: r.metadata(),
                        })
                    }),
                })
                .collect();
            return match v.write(kb_key, &entries, &ops) {
                // Deleted meanwhile: the collection went first (`forget`).
                Err(StoreError::Conflict) if !v.has_collection(kb_key)? => Err(AwsError::new(
                    404,
                    "ResourceNotFoundException",
                    "The knowledge base was deleted.",
                )),
                r => r.map_err(conflict),
            };
        }
        self.views
            .commit(state, kb_key, &ops, |l| {
                for (k, rec) in changes {
                    l.apply(k, rec.as_ref());
                }
            })
            .map_err(conflict)
    }

    /// Removes a deleted knowledge base's index (its records are the caller's).
    pub fn forget(&self, state: &dyn StateStore, kb_key: &str) -> Result<(), AwsError> {
        self.views.forget(kb_key);
        if let Some(v) = state.vectors() {
            v.drop_collection(kb_key)?;
        }
        self.in_store.lock().remove(kb_key);
        Ok(())
    }
}
