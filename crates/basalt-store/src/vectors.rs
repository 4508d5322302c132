//! Vector collections kept by the state store itself, where its engine has a vector index
//! (PostgreSQL with pgvector): the entries of a collection are written in the same
//! transaction as the state records that describe them, and searched by the engine, so
//! every node reads one index and nothing has to be rebuilt in memory.
//!
//! A store without one answers `None` to [`crate::StateStore::vectors`]; its callers then
//! keep their own index (`basalt-vector`) built from their records.

use crate::{StoreError, WriteOp};
use basalt_vector::Filter;
use serde_json::{Map, Value};

/// One entry of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorEntry {
    pub key: String,
    pub vector: Vec<f32>,
    /// What keyword search matches.
    pub text: String,
    /// What a search returns (the text itself, or the larger passage it stands for).
    pub content: String,
    pub uri: String,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum VectorOp {
    Upsert(VectorEntry),
    Remove(String),
}

/// A search of one collection.
#[derive(Debug, Clone)]
pub struct VectorQuery<'a> {
    pub vector: &'a [f32],
    /// Keyword text: `Some` fuses keyword and vector ranks ([`basalt_vector::fuse`]).
    pub text: Option<&'a str>,
    pub k: usize,
    pub filter: Option<&'a Filter>,
    /// Compare with every entry instead of walking the approximate index (the ground truth).
    pub exact: bool,
}

/// A found entry. `score` is the cosine similarity for a vector search and the fused rank
/// score, in (0, 1], for a hybrid one.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    pub key: String,
    pub score: f32,
    pub content: String,
    pub uri: String,
    pub metadata: Map<String, Value>,
}

/// Collections of vectors with their text and metadata, cosine similarity, each collection of
/// one dimension (fixed by its first entry; an entry of another dimension is left out, as
/// `basalt_vector::Index` leaves it out).
pub trait VectorStore: Send + Sync {
    /// The engine, for health reports (`pgvector 0.8.5`); `None` while the database has none
    /// this store can use.
    fn describe(&self) -> Option<String>;

    /// Applies `state` and, where the database has a vector index, registers an empty
    /// collection with it atomically; whether it did.
    fn create_collection(&self, collection: &str, state: &[WriteOp]) -> Result<bool, StoreError>;

    /// Whether the collection exists (answered by every node of the database, whether or not
    /// it can use the vector index itself).
    fn has_collection(&self, collection: &str) -> Result<bool, StoreError>;

    /// Applies `ops` to the collection and `state` to the state store in one transaction:
    /// both or neither. [`StoreError::Conflict`] when a check of `state` fails or the
    /// collection does not exist.
    fn write(
        &self,
        collection: &str,
        ops: &[VectorOp],
        state: &[WriteOp],
    ) -> Result<(), StoreError>;

    /// The best `query.k` entries that pass the filter, best first.
    fn search(
        &self,
        collection: &str,
        query: &VectorQuery<'_>,
    ) -> Result<Vec<VectorHit>, StoreError>;

    /// Removes the collection and its entries (nothing if it does not exist).
    fn drop_collection(&self, collection: &str) -> Result<(), StoreError>;
}
