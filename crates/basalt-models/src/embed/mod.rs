//! Sentence embeddings: a BERT-family sentence-transformers model (safetensors +
//! tokenizer.json, e.g. all-MiniLM-L6-v2) run by Basalt's own encoder; mean pooling over the
//! tokens, then L2 normalisation, as sentence-transformers computes them.
//!
//! Sentences are batched without padding; the linear layers run on AVX-512 where the CPU has
//! it, in f32 by default or bf16 on request: see `gemm` for the kernels and their accuracy.

mod bert;
pub mod gemm;
mod math;

pub use gemm::{Kernel, Precision};

use std::path::Path;
use tokenizers::{Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model at {0} could not be loaded: {1}")]
    Load(String, String),
    #[error("embedding failed: {0}")]
    Run(String),
}

/// How an embedding model runs.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct EmbedConfig {
    /// Threads for one batch (0: one per core).
    pub threads: usize,
    pub precision: Precision,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            threads: 0,
            precision: Precision::F32,
        }
    }
}

/// An embedding model's tokenizer on its own, without truncation: where a text's tokens
/// fall (knowledge bases cut chunks by them) even when the model runs in a worker process.
pub struct Wordpieces {
    tokenizer: Tokenizer,
    /// Tokens the model takes in one pass, its special tokens included.
    pub window: usize,
}

impl Wordpieces {
    pub fn load(dir: &Path) -> Result<Wordpieces, EmbedError> {
        let load = |e: String| EmbedError::Load(dir.display().to_string(), e);
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load(e.to_string()))?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| load(e.to_string()))?;
        tokenizer.with_padding(None);
        let window = std::fs::read(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["max_seq_length"].as_u64())
            .map_or(256, |n| n as usize);
        Ok(Wordpieces { tokenizer, window })
    }

    /// Byte ranges of `text`'s tokens, special tokens left out.
    pub fn spans(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let Ok(enc) = self.tokenizer.encode(text, false) else {
            return Vec::new();
        };
        let mut out: Vec<std::ops::Range<usize>> = Vec::with_capacity(enc.len());
        for &(s, e) in enc.get_offsets() {
            if e <= s {
                continue;
            }
            // Pieces of one word (`##` continuations) share the word's bytes in some
            // tokenizers' offsets; each still counts as a token.
            out.push(s..e);
        }
        out
    }
}

pub struct EmbeddingModel {
    model: bert::Bert,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
    kernel: Kernel,
    pub dimensions: usize,
    pub max_tokens: usize,
    pub name: String,
}

/// Tokens per forward pass: bounds the activations' memory (about 10 KiB per token for
/// MiniLM) while keeping every matrix product large enough to run at full speed.
const TOKENS_PER_PASS: usize = 4096;

fn run<E: std::fmt::Display>(e: E) -> EmbedError {
    EmbedError::Run(e.to_string())
}

impl EmbeddingModel {
    pub fn load(dir: &Path) -> Result<EmbeddingModel, EmbedError> {
        Self::load_with(dir, EmbedConfig::default())
    }

    pub fn load_with(dir: &Path, config: EmbedConfig) -> Result<EmbeddingModel, EmbedError> {
        let load = |e: String| EmbedError::Load(dir.display().to_string(), e);
        let cfg: bert::Config = serde_json::from_slice(
            &std::fs::read(dir.join("config.json")).map_err(|e| load(e.to_string()))?,
        )
        .map_err(|e| load(e.to_string()))?;
        let dimensions = cfg.hidden_size;
        // sentence-transformers truncates at the model's max_seq_length (256 for MiniLM).
        let max_tokens = std::fs::read(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["max_seq_length"].as_u64())
            .map(|n| n as usize)
            .unwrap_or(cfg.max_position_embeddings)
            .min(cfg.max_position_embeddings);
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load(e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| load(e.to_string()))?;
        // tokenizer.json may ask for padding; the encoder takes sentences end to end.
        tokenizer.with_padding(None);
        let raw = std::fs::read(dir.join("model.safetensors")).map_err(|e| load(e.to_string()))?;
        let tensors = bert::Tensors::parse(&raw).map_err(load)?;
        drop(raw);
        let kernel = Kernel::select(config.precision);
        let model = bert::Bert::load(cfg, tensors, kernel).map_err(load)?;
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("embed-{i}"))
            .build()
            .map_err(|e| load(e.to_string()))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        tracing::info!(model = %name, kernel = kernel.name(), threads, "embedding model loaded");
        Ok(EmbeddingModel {
            model,
            tokenizer,
            pool,
            kernel,
            dimensions,
            max_tokens,
            name,
        })
    }

    /// The matrix kernel this model runs on.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Tokens of `text` as the model sees them (special tokens included, truncated).
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(self
            .tokenizer
            .encode(text, true)
            .map_err(run)?
            .get_ids()
            .len())
    }

    /// Unit-length embeddings of `texts`, in order, and the token count of each.
    pub fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, Vec<usize>), EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let enc = self.tokenizer.encode_batch(inputs, true).map_err(run)?;
        let vocab = self.model.vocab_size();
        let ids: Vec<&[u32]> = enc.iter().map(|e| e.get_ids()).collect();
        if let Some(bad) = ids
            .iter()
            .flat_map(|s| s.iter())
            .find(|&&t| t as usize >= vocab)
        {
            return Err(EmbedError::Run(format!(
                "token id {bad} outside the model's vocabulary of {vocab}"
            )));
        }
        let counts: Vec<usize> = ids.iter().map(|s| s.len()).collect();
        let mut out = Vec::with_capacity(texts.len());
        let mut start = 0;
        while start < ids.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < ids.len() && (end == start || tokens + ids[end].len() <= TOKENS_PER_PASS) {
                tokens += ids[end].len();
                end += 1;
            }
            out.extend(self.model.embed(&ids[start..end], &self.pool));
            start = end;
        }
        Ok((out, counts))
    }
}
