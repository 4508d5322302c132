//! Records and their tables. Keys start with `{account}/{region}/`, so every account and
//! region sees only its own; a knowledge base's records share the prefix
//! `{scope}/{knowledgeBaseId}/`.

use basalt_core::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const KBS: &str = "bedrock-agent.knowledge-bases";
pub const SOURCES: &str = "bedrock-agent.data-sources";
pub const JOBS: &str = "bedrock-agent.ingestion-jobs";
/// Per document of a data source: what was indexed, so that a sync skips what did not change.
pub const DOCS: &str = "bedrock-agent.documents";
/// The indexed chunks, with their vectors.
pub const CHUNKS: &str = "bedrock-agent.chunks";
/// Per knowledge base: a number every write of chunks moves (see `index.rs`).
pub const GENERATIONS: &str = "bedrock-agent.generations";
/// Client tokens of create requests, so that a retried create returns what it created.
pub const TOKENS: &str = "bedrock-agent.client-tokens";
pub const SESSIONS: &str = "bedrock-agent.sessions";
/// Ingestion jobs waiting for or held by a node.
pub const INGEST_QUEUE: &str = "bedrock-agent.ingest";

pub const RECORD_VERSION: u32 = 1;

pub fn scope(ctx: &RequestContext) -> String {
    format!("{}/{}", ctx.account_id, ctx.region)
}

pub fn kb_key(scope: &str, kb: &str) -> String {
    format!("{scope}/{kb}")
}

pub fn ds_key(scope: &str, kb: &str, ds: &str) -> String {
    format!("{scope}/{kb}/{ds}")
}

pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

pub fn not_found(what: &str, id: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("{what} {id} does not exist."),
    )
}

pub fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "ConflictException", message)
}

/// Ten upper-case letters and digits, as Bedrock's knowledge base, data source and
/// ingestion job ids look.
pub fn new_id() -> String {
    basalt_core::ids::upper_alnum(10)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KbRec {
    pub v: u32,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub role_arn: String,
    /// `knowledgeBaseConfiguration` as given.
    pub config: Value,
    /// `storageConfiguration` as given; Basalt's own index serves every type.
    #[serde(default)]
    pub storage: Value,
    pub status: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl KbRec {
    /// The embedding model's id (the last part of `embeddingModelArn`).
    pub fn embedding_model(&self) -> String {
        let arn = self.config["vectorKnowledgeBaseConfiguration"]["embeddingModelArn"]
            .as_str()
            .unwrap_or_default();
        arn.rsplit_once('/').map_or(arn, |(_, id)| id).to_owned()
    }

    /// Whether the vector store supports keyword search next to vectors (HYBRID), as
    /// Bedrock's do: OpenSearch, RDS and MongoDB Atlas.
    pub fn supports_hybrid(&self) -> bool {
        matches!(
            self.storage["type"].as_str(),
            Some("OPENSEARCH_SERVERLESS" | "OPENSEARCH_MANAGED_CLUSTER" | "RDS" | "MONGO_DB_ATLAS")
        )
    }

    pub fn arn(&self, ctx: &RequestContext) -> String {
        format!(
            "arn:aws:bedrock:{}:{}:knowledge-base/{}",
            ctx.region, ctx.account_id, self.id
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DsRec {
    pub v: u32,
    pub kb: String,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `dataSourceConfiguration` as given.
    pub config: Value,
    /// `vectorIngestionConfiguration` as given.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub ingestion: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub encryption: Value,
    pub deletion_policy: String,
    pub status: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl DsRec {
    /// The bucket of an S3 data source.
    pub fn bucket(&self) -> Option<&str> {
        self.config["s3Configuration"]["bucketArn"]
            .as_str()
            .and_then(|a| a.strip_prefix("arn:aws:s3:::"))
            .filter(|b| !b.is_empty() && !b.contains('/'))
    }

    pub fn prefixes(&self) -> Vec<String> {
        let listed: Vec<String> = self.config["s3Configuration"]["inclusionPrefixes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if listed.is_empty() {
            vec![String::new()]
        } else {
            listed
        }
    }

    pub fn owner_account(&self) -> Option<&str> {
        self.config["s3Configuration"]["bucketOwnerAccountId"].as_str()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub scanned: u64,
    pub metadata_scanned: u64,
    pub new_indexed: u64,
    pub modified_indexed: u64,
    pub metadata_modified: u64,
    pub deleted: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Stats {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "numberOfDocumentsScanned": self.scanned,
            "numberOfMetadataDocumentsScanned": self.metadata_scanned,
            "numberOfNewDocumentsIndexed": self.new_indexed,
            "numberOfModifiedDocumentsIndexed": self.modified_indexed,
            "numberOfMetadataDocumentsModified": self.metadata_modified,
            "numberOfDocumentsDeleted": self.deleted,
            "numberOfDocumentsFailed": self.failed,
            "numberOfDocumentsSkipped": self.skipped,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRec {
    pub v: u32,
    pub kb: String,
    pub ds: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: String,
    pub stats: Stats,
    #[serde(default)]
    pub failure_reasons: Vec<String>,
    pub started_ms: i64,
    pub updated_ms: i64,
    /// The last object key this job finished with (objects go in key order), so that a job
    /// resumed on another node neither redoes nor recounts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl JobRec {
    pub fn is_running(&self) -> bool {
        matches!(
            self.status.as_str(),
            "STARTING" | "IN_PROGRESS" | "STOPPING"
        )
    }

    pub fn to_json(&self, summary: bool) -> Value {
        let mut m = Map::new();
        m.insert("knowledgeBaseId".into(), self.kb.clone().into());
        m.insert("dataSourceId".into(), self.ds.clone().into());
        m.insert("ingestionJobId".into(), self.id.clone().into());
        if let Some(d) = &self.description {
            m.insert("description".into(), d.clone().into());
        }
        m.insert("status".into(), self.status.clone().into());
        m.insert("statistics".into(), self.stats.to_json());
        if !summary && !self.failure_reasons.is_empty() {
            m.insert("failureReasons".into(), self.failure_reasons.clone().into());
        }
        m.insert("startedAt".into(), secs(self.started_ms).into());
        m.insert("updatedAt".into(), secs(self.updated_ms).into());
        Value::Object(m)
    }
}

/// A document of a data source as last indexed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocRec {
    pub uri: String,
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_etag: Option<String>,
    /// Its chunks are `{doc key}/{n:05}` for `n` below this.
    pub chunks: u32,
    pub indexed_ms: i64,
    /// Set while a directly ingested document waits or after it failed (`STARTING`,
    /// `FAILED`); absent once indexed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// The source URI of a custom document (direct ingestion), which Retrieve reports as a
/// CUSTOM location.
pub fn custom_uri(id: &str) -> String {
    format!("custom://{id}")
}

/// Retrieve's `location` of a chunk's source.
pub fn location(uri: &str) -> Value {
    match uri.strip_prefix("custom://") {
        Some(id) => serde_json::json!({"type": "CUSTOM", "customDocumentLocation": {"id": id}}),
        None => serde_json::json!({"type": "S3", "s3Location": {"uri": uri}}),
    }
}

/// The `DocumentIdentifier` of a source URI.
pub fn identifier(uri: &str) -> Value {
    match uri.strip_prefix("custom://") {
        Some(id) => serde_json::json!({"dataSourceType": "CUSTOM", "custom": {"id": id}}),
        None => serde_json::json!({"dataSourceType": "S3", "s3": {"uri": uri}}),
    }
}

/// An indexed chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChunkRec {
    pub ds: String,
    pub uri: String,
    /// The id Retrieve reports (`x-amz-bedrock-kb-chunk-id`).
    pub id: String,
    /// The text that was embedded and is searched by keywords.
    pub text: String,
    /// The text returned when the chunk is retrieved (the parent chunk under hierarchical
    /// chunking); absent when it is `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// The document's metadata attributes.
    #[serde(default)]
    pub attributes: Map<String, Value>,
    /// The vector, little-endian `f32`s in base64.
    pub vector: String,
}

impl ChunkRec {
    pub fn encode_vector(v: &[f32]) -> String {
        basalt_vector::codec::encode(v)
    }

    pub fn decode_vector(&self) -> Option<Vec<f32>> {
        basalt_vector::codec::decode(&self.vector)
    }

    /// The metadata Retrieve returns and filters see: the document's attributes and
    /// Bedrock's own keys.
    pub fn metadata(&self) -> Map<String, Value> {
        let mut m = self.attributes.clone();
        m.insert(
            "x-amz-bedrock-kb-source-uri".into(),
            self.uri.clone().into(),
        );
        m.insert("x-amz-bedrock-kb-chunk-id".into(), self.id.clone().into());
        m.insert(
            "x-amz-bedrock-kb-data-source-id".into(),
            self.ds.clone().into(),
        );
        if let Some(p) = self.page {
            m.insert("x-amz-bedrock-kb-document-page-number".into(), p.into());
        }
        m
    }
}

pub fn load<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, AwsError> {
    serde_json::from_slice(raw).map_err(|e| AwsError::internal(format!("corrupt record: {e}")))
}

pub fn dump<T: Serialize>(rec: &T) -> Vec<u8> {
    serde_json::to_vec(rec).unwrap_or_default()
}

pub fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip() {
        let v = vec![0.25, -1.5, 3.0e-8];
        let c = ChunkRec {
            ds: "D".into(),
            uri: "s3://b/k".into(),
            id: "x".into(),
            text: "t".into(),
            content: None,
            page: Some(2),
            attributes: Map::new(),
            vector: ChunkRec::encode_vector(&v),
        };
        assert_eq!(c.decode_vector().unwrap(), v);
        let m = c.metadata();
        assert_eq!(m["x-amz-bedrock-kb-source-uri"], "s3://b/k");
        assert_eq!(m["x-amz-bedrock-kb-document-page-number"], 2);
    }
}
