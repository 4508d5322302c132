//! Sentence embeddings: a BERT-family sentence-transformers model (safetensors +
//! tokenizer.json, e.g. all-MiniLM-L6-v2) run with candle; mean pooling over the attention
//! mask, then L2 normalisation, as sentence-transformers computes them.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::Path;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model at {0} could not be loaded: {1}")]
    Load(String, String),
    #[error("embedding failed: {0}")]
    Run(String),
}

pub struct EmbeddingModel {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pub dimensions: usize,
    pub max_tokens: usize,
    pub name: String,
}

/// Sentences embedded in one forward pass (sorted by length so padding stays small).
const BATCH: usize = 32;

fn run<E: std::fmt::Display>(e: E) -> EmbedError {
    EmbedError::Run(e.to_string())
}

impl EmbeddingModel {
    pub fn load(dir: &Path) -> Result<EmbeddingModel, EmbedError> {
        let load = |e: String| EmbedError::Load(dir.display().to_string(), e);
        let config: Config = serde_json::from_slice(
            &std::fs::read(dir.join("config.json")).map_err(|e| load(e.to_string()))?,
        )
        .map_err(|e| load(e.to_string()))?;
        let raw: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("config.json")).map_err(|e| load(e.to_string()))?,
        )
        .map_err(|e| load(e.to_string()))?;
        let dimensions = raw["hidden_size"].as_u64().unwrap_or(384) as usize;
        let max_positions = raw["max_position_embeddings"].as_u64().unwrap_or(512) as usize;
        // sentence-transformers truncates at the model's max_seq_length (256 for MiniLM).
        let max_tokens = std::fs::read(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["max_seq_length"].as_u64())
            .map(|n| n as usize)
            .unwrap_or(max_positions)
            .min(max_positions);
        let mut tokenizer =
            Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| load(e.to_string()))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| load(e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let device = Device::Cpu;
        // SAFETY: the weights file is memory-mapped read-only and not modified while loaded.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &device,
            )
        }
        .map_err(|e| load(e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| load(e.to_string()))?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(EmbeddingModel {
            model,
            tokenizer,
            device,
            dimensions,
            max_tokens,
            name,
        })
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
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        let mut counts = vec![0; texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_str()).collect();
            let enc = self.tokenizer.encode_batch(batch, true).map_err(run)?;
            let len = enc.first().map(|e| e.get_ids().len()).unwrap_or(0);
            let ids: Vec<u32> = enc.iter().flat_map(|e| e.get_ids().to_vec()).collect();
            let mask: Vec<u32> = enc
                .iter()
                .flat_map(|e| e.get_attention_mask().to_vec())
                .collect();
            for (k, e) in enc.iter().enumerate() {
                counts[chunk[k]] = e.get_attention_mask().iter().filter(|m| **m == 1).count();
            }
            let n = chunk.len();
            let ids = Tensor::from_vec(ids, (n, len), &self.device).map_err(run)?;
            let mask = Tensor::from_vec(mask, (n, len), &self.device).map_err(run)?;
            let types = ids.zeros_like().map_err(run)?;
            let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(run)?;
            // Mean over real tokens only.
            let m = mask
                .to_dtype(DType::F32)
                .map_err(run)?
                .unsqueeze(2)
                .map_err(run)?;
            let summed = hidden.broadcast_mul(&m).map_err(run)?.sum(1).map_err(run)?;
            let lens = m.sum(1).map_err(run)?;
            let mean = summed.broadcast_div(&lens).map_err(run)?;
            let norm = mean
                .sqr()
                .map_err(run)?
                .sum_keepdim(1)
                .map_err(run)?
                .sqrt()
                .map_err(run)?;
            let unit = mean.broadcast_div(&norm).map_err(run)?;
            let rows: Vec<Vec<f32>> = unit.to_vec2().map_err(run)?;
            for (k, row) in rows.into_iter().enumerate() {
                out[chunk[k]] = row;
            }
        }
        Ok((out, counts))
    }
}
