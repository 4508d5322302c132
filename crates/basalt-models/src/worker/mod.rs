//! Model engines in supervised worker processes.
//!
//! An engine is native code running untrusted-shaped input at full speed: llama.cpp's
//! kernels, and the CPU features they assume. If it dies (SIGILL from an instruction the
//! machine refuses, SIGSEGV, abort, the OOM killer), it must take only its own requests down.
//! So the server runs each loaded engine in a child process of its own executable
//! (`basalt __worker SPEC`), talks to it over its stdin/stdout with length-prefixed frames, and
//! restarts it with backoff when it dies; every other service keeps answering throughout.
//!
//! - [`frame`]: the framing (a JSON header and an optional binary payload).
//! - [`host`]: the child side: loads the engine, serves calls concurrently.
//! - [`supervisor`]: the server side: starts, multiplexes, detects death, restarts, reports.
//!
//! The boundary costs one frame per generated token (tens of microseconds against tens of
//! milliseconds per token) and one copy of embedding vectors; continuous batching is
//! unaffected because the worker serves every call concurrently into the same engine.

pub mod frame;
pub mod host;
pub mod supervisor;

use crate::chat::{ChatError, ChatEvent};
use crate::embed::EmbedConfig;
use crate::engine::EngineConfig;
use basalt_chat::ChatRequest;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use supervisor::{Supervisor, WorkerChat, WorkerEmbed, WorkerStatus};

/// What a worker process loads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineSpec {
    Chat { path: PathBuf, config: EngineConfig },
    Embed { dir: PathBuf, config: EmbedConfig },
}

impl EngineSpec {
    /// The engine's short name in health, metrics and messages.
    pub fn engine(&self) -> &'static str {
        match self {
            EngineSpec::Chat { .. } => "chat",
            EngineSpec::Embed { .. } => "embeddings",
        }
    }
}

/// Server → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Call {
    Chat {
        id: u64,
        request: ChatRequest,
    },
    CountTokens {
        id: u64,
        request: ChatRequest,
    },
    /// Texts to embed; the vectors come back as the binary payload.
    Embed {
        id: u64,
        texts: Vec<String>,
    },
    /// The caller went away: stop generating for `id`.
    Cancel {
        id: u64,
    },
}

/// Worker → server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Reply {
    /// The engine is loaded; `info` describes it (kernels, dimensions, name).
    Ready {
        info: EngineInfo,
    },
    /// The engine could not be loaded; the worker exits after this.
    LoadFailed {
        error: String,
    },
    /// A chat call passed the engine's checks and is queued or generating.
    Started {
        id: u64,
    },
    Event {
        id: u64,
        event: ChatEvent,
    },
    Error {
        id: u64,
        error: ChatError,
    },
    Tokens {
        id: u64,
        count: usize,
    },
    /// `dimensions`-long f32 vectors, little-endian, one after another in the payload.
    Embedded {
        id: u64,
        dimensions: usize,
        counts: Vec<usize>,
    },
}

impl Reply {
    /// The call this reply answers, if any.
    pub fn id(&self) -> Option<u64> {
        match self {
            Reply::Ready { .. } | Reply::LoadFailed { .. } => None,
            Reply::Started { id }
            | Reply::Event { id, .. }
            | Reply::Error { id, .. }
            | Reply::Tokens { id, .. }
            | Reply::Embedded { id, .. } => Some(*id),
        }
    }

    /// Whether this is the last reply to its call.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Reply::Started { .. }
                | Reply::Event {
                    event: ChatEvent::Delta(_),
                    ..
                }
        )
    }
}

/// What a loaded engine reports about itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EngineInfo {
    pub name: String,
    /// The CPU kernel selection (`crate::cpu`), one line.
    pub cpu: String,
    /// llama.cpp's CPU backend level, for chat engines.
    pub llama_level: Option<String>,
    /// Basalt's own matrix kernel, for embedding engines.
    pub kernel: Option<String>,
    pub context_window: Option<usize>,
    pub dimensions: Option<usize>,
    pub max_tokens: Option<usize>,
    pub pid: u32,
}
