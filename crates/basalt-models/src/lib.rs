//! The model runtime: chat models (GGUF, run by llama.cpp with continuous batching), chat
//! templates, grammar-constrained tool calls, remote OpenAI-compatible servers, and fetching the
//! default weights. No HTTP server and no AWS wire formats: Bedrock, SageMaker and the OpenAI
//! facade sit on top.

pub mod backend;
pub mod chat;
pub mod cpu;
pub mod embed;
pub mod engine;
pub mod level;
pub mod pull;
pub mod remote;
pub mod template;
pub mod worker;

pub use backend::{ChatBackend, EmbedBackend, ModelRoute};
pub use chat::{ChatError, ChatEvent, ChatModel};
pub use embed::EmbeddingModel;
pub use engine::EngineConfig;
