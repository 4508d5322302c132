//! Amazon Bedrock Knowledge Bases and Agents on local engines.
//!
//! * `bedrock-agent` ([`BedrockAgent`]): knowledge bases (`knowledge_bases.rs`), their data
//!   sources (`data_sources.rs`) and ingestion jobs (`ingestion.rs`), which read the
//!   documents from S3, cut them into chunks ([`basalt_documents`]), embed them with the
//!   local embedding model and index them ([`basalt_vector`]); agents, their action groups,
//!   knowledge base associations, versions and aliases (`agents/`).
//! * `bedrock-agent-runtime` ([`BedrockAgentRuntime`]): Retrieve (`retrieve.rs`) and
//!   RetrieveAndGenerate with its stream (`generate.rs`), which answers with the chat model
//!   through Bedrock's Converse, citing the chunks it used; InvokeAgent, InvokeInlineAgent
//!   and agent memory (`agents/invoke.rs`, `agents/orchestrate.rs`, `agents/sessions.rs`);
//!   Bedrock sessions, the checkpoint store of applications' own agent loops
//!   (`session_store.rs`).
//!
//! Every record lives in the state store (`model.rs` and `agents/model.rs` name the
//! tables); the index of a knowledge base is rebuilt in memory from its chunk records and
//! kept current by a generation number that every write of chunks moves (`index.rs`), so
//! that several nodes serve one knowledge base. Ingestion jobs run on the store's leases and
//! resume after a crash where they stopped.
//!
//! Whatever vector store a knowledge base names (OpenSearch Serverless, Pinecone, RDS...),
//! Basalt keeps the vectors itself; the storage configuration is kept and returned as given.
//! A knowledge base on S3 Vectors also writes them to the index it names (`s3_vectors.rs`).

mod agents;
mod data_sources;
mod documents;
mod generate;
mod implicit;
mod index;
mod ingestion;
mod knowledge_bases;
mod model;
mod rerank;
mod retrieve;
mod s3_vectors;
mod session_store;
mod transform;

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// Vectors, in order, and the tokens they took.
pub type Embedded = (Vec<Vec<f32>>, usize);

/// The embedding model, as the host runs it.
pub trait Embedder: Send + Sync + 'static {
    /// Unit-length vectors of `texts`, in order, from the model serving `model_id`, and the
    /// tokens they took.
    fn embed<'a>(
        &'a self,
        ctx: &'a RequestContext,
        model_id: &'a str,
        texts: Vec<String>,
    ) -> BoxFuture<'a, Result<Embedded, AwsError>>;
    /// The model's tokens, which chunk sizes are counted in.
    fn tokens(&self) -> Arc<dyn basalt_documents::Tokens>;
    /// Tokens the model reads in one pass, its special tokens included.
    fn window(&self) -> usize;
}

/// An S3 object as a data source lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub etag: String,
    pub size: u64,
}

/// S3, read in-process as the owning account.
pub trait Objects: Send + Sync + 'static {
    /// A page of the current objects of `bucket` under `prefix`, after `after`; `Ok(None)`
    /// when the bucket does not exist.
    fn list(
        &self,
        account: &str,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Option<Vec<ObjectInfo>>, String>;
    /// A whole object; `Ok(None)` when it does not exist.
    fn read(&self, account: &str, bucket: &str, key: &str) -> Result<Option<bytes::Bytes>, String>;
    /// Writes an object (a custom transformation's input); `Ok(false)` when the bucket does
    /// not exist.
    fn write(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> BoxFuture<'_, Result<bool, String>>;
}

/// What both services share.
pub struct KnowledgeBases {
    pub(crate) state: Arc<dyn StateStore>,
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) objects: Arc<dyn Objects>,
    pub(crate) indexes: index::Indexes,
    registry: OnceLock<ServiceRegistry>,
    wake: Arc<tokio::sync::Notify>,
    wake_documents: Arc<tokio::sync::Notify>,
    wake_mirror: Arc<tokio::sync::Notify>,
}

impl KnowledgeBases {
    pub fn new(
        state: Arc<dyn StateStore>,
        embedder: Arc<dyn Embedder>,
        objects: Arc<dyn Objects>,
    ) -> Arc<KnowledgeBases> {
        Arc::new(KnowledgeBases {
            state,
            embedder,
            objects,
            indexes: index::Indexes::default(),
            registry: OnceLock::new(),
            wake: Arc::new(tokio::sync::Notify::new()),
            wake_documents: Arc::new(tokio::sync::Notify::new()),
            wake_mirror: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// The in-process client, for Converse (generation) and later Lambda (custom
    /// transformations).
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    pub(crate) fn registry(&self) -> Result<&ServiceRegistry, AwsError> {
        self.registry
            .get()
            .ok_or_else(|| AwsError::internal("the in-process client is not set"))
    }

    /// Starts the ingestion worker of this node.
    pub fn start_workers(self: &Arc<Self>) {
        ingestion::start_worker(self.clone());
        documents::start_worker(self.clone());
        s3_vectors::start_worker(self.clone());
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.state.now_ms()
    }
}

/// `bedrock-agent`: the knowledge bases' control plane.
#[derive(Clone)]
pub struct BedrockAgent(pub Arc<KnowledgeBases>);

#[async_trait::async_trait]
impl Service for BedrockAgent {
    fn name(&self) -> &'static str {
        "bedrock-agent"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let k = &self.0;
        let out = match operation {
            "CreateKnowledgeBase" => knowledge_bases::create(k, ctx, &input)?,
            "GetKnowledgeBase" => knowledge_bases::get(k, ctx, &input)?,
            "ListKnowledgeBases" => knowledge_bases::list(k, ctx, &input)?,
            "UpdateKnowledgeBase" => knowledge_bases::update(k, ctx, &input)?,
            "DeleteKnowledgeBase" => knowledge_bases::delete(k, ctx, &input)?,
            "CreateDataSource" => data_sources::create(k, ctx, &input)?,
            "GetDataSource" => data_sources::get(k, ctx, &input)?,
            "ListDataSources" => data_sources::list(k, ctx, &input)?,
            "UpdateDataSource" => data_sources::update(k, ctx, &input)?,
            "DeleteDataSource" => data_sources::delete(k, ctx, &input)?,
            "StartIngestionJob" => ingestion::start(k, ctx, &input)?,
            "GetIngestionJob" => ingestion::get(k, ctx, &input)?,
            "ListIngestionJobs" => ingestion::list(k, ctx, &input)?,
            "StopIngestionJob" => ingestion::stop(k, ctx, &input)?,
            "IngestKnowledgeBaseDocuments" => documents::ingest(k, ctx, &input)?,
            "GetKnowledgeBaseDocuments" => documents::get(k, ctx, &input)?,
            "ListKnowledgeBaseDocuments" => documents::list(k, ctx, &input)?,
            "DeleteKnowledgeBaseDocuments" => documents::delete(k, ctx, &input)?,
            "CreateAgent" => agents::agent::create(k, ctx, &input)?,
            "GetAgent" => agents::agent::get(k, ctx, &input)?,
            "ListAgents" => agents::agent::list(k, ctx, &input)?,
            "UpdateAgent" => agents::agent::update(k, ctx, &input)?,
            "DeleteAgent" => agents::agent::delete(k, ctx, &input)?,
            "PrepareAgent" => agents::agent::prepare(k, ctx, &input).await?,
            "ListAgentVersions" => agents::agent::list_versions(k, ctx, &input)?,
            "GetAgentVersion" => agents::agent::get_version(k, ctx, &input)?,
            "DeleteAgentVersion" => agents::agent::delete_version(k, ctx, &input)?,
            "CreateAgentActionGroup" => agents::action_groups::create(k, ctx, &input)?,
            "GetAgentActionGroup" => agents::action_groups::get(k, ctx, &input)?,
            "ListAgentActionGroups" => agents::action_groups::list(k, ctx, &input)?,
            "UpdateAgentActionGroup" => agents::action_groups::update(k, ctx, &input)?,
            "DeleteAgentActionGroup" => agents::action_groups::delete(k, ctx, &input)?,
            "CreateAgentAlias" => agents::aliases::create(k, ctx, &input)?,
            "GetAgentAlias" => agents::aliases::get(k, ctx, &input)?,
            "ListAgentAliases" => agents::aliases::list(k, ctx, &input)?,
            "UpdateAgentAlias" => agents::aliases::update(k, ctx, &input)?,
            "DeleteAgentAlias" => agents::aliases::delete(k, ctx, &input)?,
            "AssociateAgentKnowledgeBase" => agents::associations::associate(k, ctx, &input)?,
            "GetAgentKnowledgeBase" => agents::associations::get(k, ctx, &input)?,
            "ListAgentKnowledgeBases" => agents::associations::list(k, ctx, &input)?,
            "UpdateAgentKnowledgeBase" => agents::associations::update(k, ctx, &input)?,
            "DisassociateAgentKnowledgeBase" => agents::associations::disassociate(k, ctx, &input)?,
            "AssociateAgentCollaborator" => agents::collaborators::associate(k, ctx, &input)?,
            "GetAgentCollaborator" => agents::collaborators::get(k, ctx, &input)?,
            "ListAgentCollaborators" => agents::collaborators::list(k, ctx, &input)?,
            "UpdateAgentCollaborator" => agents::collaborators::update(k, ctx, &input)?,
            "DisassociateAgentCollaborator" => agents::collaborators::disassociate(k, ctx, &input)?,
            "TagResource" | "UntagResource" | "ListTagsForResource" => {
                return tag_operation(k, ctx, operation, &input);
            }
            other => return Err(AwsError::not_implemented("bedrock-agent", other)),
        };
        Ok(Output::new(out))
    }
}

/// TagResource, UntagResource and ListTagsForResource, for knowledge bases, agents and
/// agent aliases.
fn tag_operation(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    operation: &str,
    input: &Value,
) -> Result<Output, AwsError> {
    let arn = input["resourceArn"].as_str().unwrap_or_default();
    if arn.contains(":knowledge-base/") {
        return Ok(Output::new(match operation {
            "TagResource" => knowledge_bases::tag(k, ctx, input)?,
            "UntagResource" => knowledge_bases::untag(k, ctx, input)?,
            _ => knowledge_bases::list_tags(k, ctx, input)?,
        }));
    }
    let tags = agents::agent::tags(k, ctx, arn, |tags| match operation {
        "TagResource" => tags.extend(knowledge_bases::tags_in(input)),
        "UntagResource" => {
            for key in input["tagKeys"].as_array().into_iter().flatten() {
                if let Some(key) = key.as_str() {
                    tags.remove(key);
                }
            }
        }
        _ => {}
    })?;
    Ok(Output::new(if operation == "ListTagsForResource" {
        serde_json::json!({"tags": tags})
    } else {
        serde_json::json!({})
    }))
}

/// The Bedrock sessions operations of `bedrock-agent-runtime`.
fn session_op(
    k: &KnowledgeBases,
    ctx: &RequestContext,
    operation: &str,
    input: &Value,
) -> Result<Value, AwsError> {
    use session_store as s;
    match operation {
        "CreateSession" => s::create_session(k, ctx, input),
        "GetSession" => s::get_session(k, ctx, input),
        "UpdateSession" => s::update_session(k, ctx, input),
        "EndSession" => s::end_session(k, ctx, input),
        "DeleteSession" => s::delete_session(k, ctx, input),
        "ListSessions" => s::list_sessions(k, ctx, input),
        "CreateInvocation" => s::create_invocation(k, ctx, input),
        "ListInvocations" => s::list_invocations(k, ctx, input),
        "PutInvocationStep" => s::put_invocation_step(k, ctx, input),
        "GetInvocationStep" => s::get_invocation_step(k, ctx, input),
        "ListInvocationSteps" => s::list_invocation_steps(k, ctx, input),
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            s::tags(k, ctx, operation, input)
        }
        other => Err(AwsError::not_implemented("bedrock-agent-runtime", other)),
    }
}

/// `bedrock-agent-runtime`: retrieval and generation over knowledge bases, agents, and
/// Bedrock sessions.
#[derive(Clone)]
pub struct BedrockAgentRuntime(pub Arc<KnowledgeBases>);

#[async_trait::async_trait]
impl Service for BedrockAgentRuntime {
    fn name(&self) -> &'static str {
        "bedrock-agent-runtime"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        match operation {
            "Retrieve" => retrieve::retrieve(&self.0, ctx, &input)
                .await
                .map(Output::new),
            "RetrieveAndGenerate" => generate::retrieve_and_generate(&self.0, ctx, &input)
                .await
                .map(Output::new),
            "RetrieveAndGenerateStream" => generate::stream(&self.0, ctx, &input).await,
            "Rerank" => rerank::rerank(&self.0, ctx, &input).await.map(Output::new),
            "InvokeAgent" => agents::invoke::invoke_agent(&self.0, ctx, &input).await,
            "InvokeInlineAgent" => agents::invoke::invoke_inline_agent(&self.0, ctx, &input).await,
            "GetAgentMemory" => agents::sessions::get_memory(&self.0, ctx, &input).map(Output::new),
            "DeleteAgentMemory" => {
                agents::sessions::delete_memory(&self.0, ctx, &input).map(Output::new)
            }
            op => session_op(&self.0, ctx, op, &input).map(Output::new),
        }
    }
}
