//! The models behind the Bedrock ids: loaded on first use, shared by every caller.

use crate::catalog;
use basalt_core::AwsError;
use basalt_models::{ChatModel, EmbeddingModel, EngineConfig, pull};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::OnceCell;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub model_dir: PathBuf,
    pub engine: EngineConfig,
    /// A GGUF to serve instead of the default chat model.
    pub chat_model: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            model_dir: pull::model_dir(),
            engine: EngineConfig::default(),
            chat_model: None,
        }
    }
}

pub struct Runtime {
    pub config: RuntimeConfig,
    chat: OnceCell<Arc<ChatModel>>,
    embed: OnceCell<Arc<EmbeddingModel>>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Self {
        Runtime {
            config,
            chat: OnceCell::new(),
            embed: OnceCell::new(),
        }
    }

    pub fn chat_path(&self) -> PathBuf {
        self.config
            .chat_model
            .clone()
            .unwrap_or_else(|| self.config.model_dir.join(pull::DEFAULT_CHAT))
    }

    /// Whether the chat model is loaded (it loads on the first request).
    pub fn chat_loaded(&self) -> bool {
        self.chat.initialized()
    }

    /// The chat model serving `model_id`.
    pub async fn chat_for(&self, model_id: &str) -> Result<Arc<ChatModel>, AwsError> {
        debug_assert!(catalog::is_text_model(model_id));
        let model = self
            .chat
            .get_or_try_init(|| async {
                let path = self.chat_path();
                if !path.exists() {
                    return Err(AwsError::new(
                        429,
                        "ModelNotReadyException",
                        format!("The local model for {model_id} is not installed ({}). Run `basalt models pull`.", path.display()),
                    ));
                }
                let config = self.config.engine.clone();
                let loaded = tokio::task::spawn_blocking(move || ChatModel::load(&path, config))
                    .await
                    .map_err(|e| AwsError::internal(e.to_string()))?
                    .map_err(|e| AwsError::new(424, "ModelErrorException", e.to_string()))?;
                tracing::info!(model = %loaded.name, "chat model loaded");
                Ok(Arc::new(loaded))
            })
            .await?;
        Ok(model.clone())
    }

    /// The embedding model serving `model_id`.
    pub async fn embedding_for(&self, model_id: &str) -> Result<Arc<EmbeddingModel>, AwsError> {
        let model = self
            .embed
            .get_or_try_init(|| async {
                let dir = self.config.model_dir.join(pull::DEFAULT_EMBEDDING);
                if !dir.join("model.safetensors").exists() {
                    return Err(AwsError::new(
                        429,
                        "ModelNotReadyException",
                        format!("The local model for {model_id} is not installed ({}). Run `basalt models pull`.", dir.display()),
                    ));
                }
                let loaded = tokio::task::spawn_blocking(move || EmbeddingModel::load(&dir))
                    .await
                    .map_err(|e| AwsError::internal(e.to_string()))?
                    .map_err(|e| AwsError::new(424, "ModelErrorException", e.to_string()))?;
                tracing::info!(model = %loaded.name, "embedding model loaded");
                Ok(Arc::new(loaded))
            })
            .await?;
        Ok(model.clone())
    }
}
