//! A model wherever it runs: in a supervised worker process (the server's default), in this
//! process (library users, tests), or on an OpenAI-compatible server.

use crate::chat::{ChatError, ChatEvent, ChatModel};
use crate::embed::EmbeddingModel;
use crate::remote::RemoteChat;
use crate::worker::{WorkerChat, WorkerEmbed, WorkerStatus};
use basalt_chat::{ChatRequest, ChatResponse};
use std::sync::Arc;
use tokio::sync::mpsc;

pub enum ChatBackend {
    Local(ChatModel),
    Worker(WorkerChat),
    Remote(RemoteChat),
}

impl ChatBackend {
    pub fn name(&self) -> String {
        match self {
            ChatBackend::Local(m) => m.name.clone(),
            ChatBackend::Worker(w) => w.name.clone(),
            ChatBackend::Remote(r) => format!("{} at {}", r.model, r.base_url),
        }
    }

    /// The worker's state, for a model in a worker process.
    pub fn worker_status(&self) -> Option<WorkerStatus> {
        match self {
            ChatBackend::Worker(w) => Some(w.status()),
            _ => None,
        }
    }

    /// Requests a worker process is serving (streams outlive the handler that started them:
    /// an idle unload must not cut them off). In-process and remote models finish what they
    /// started after an unload, so they report none.
    pub fn in_flight(&self) -> usize {
        match self {
            ChatBackend::Worker(w) => w.in_flight(),
            _ => 0,
        }
    }

    pub async fn count_tokens(&self, req: &ChatRequest) -> Result<usize, ChatError> {
        match self {
            ChatBackend::Local(m) => m.count_tokens(req),
            ChatBackend::Worker(w) => w.count_tokens(req).await,
            ChatBackend::Remote(r) => r.count_tokens(req).await,
        }
    }

    pub async fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<mpsc::UnboundedReceiver<Result<ChatEvent, ChatError>>, ChatError> {
        match self {
            ChatBackend::Local(m) => m.stream(req),
            ChatBackend::Worker(w) => w.stream(req).await,
            ChatBackend::Remote(r) => r.stream(req),
        }
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ChatError> {
        match self {
            ChatBackend::Local(m) => return m.complete(req).await,
            ChatBackend::Remote(r) => return r.complete(req).await,
            ChatBackend::Worker(_) => {}
        }
        let mut rx = self.stream(req).await?;
        while let Some(ev) = rx.recv().await {
            if let ChatEvent::Done(resp) = ev? {
                return Ok(resp);
            }
        }
        Err(ChatError::Engine("the inference worker stopped".into()))
    }
}

/// An embedding model in a worker process or in this process.
pub enum EmbedBackend {
    Local(Arc<EmbeddingModel>),
    Worker(WorkerEmbed),
}

impl EmbedBackend {
    pub fn worker_status(&self) -> Option<WorkerStatus> {
        match self {
            EmbedBackend::Worker(w) => Some(w.status()),
            EmbedBackend::Local(_) => None,
        }
    }

    pub fn in_flight(&self) -> usize {
        match self {
            EmbedBackend::Worker(w) => w.in_flight(),
            EmbedBackend::Local(_) => 0,
        }
    }

    /// Unit-length embeddings of `texts`, in order, and the token count of each.
    pub async fn embed(
        &self,
        texts: Vec<String>,
    ) -> Result<(Vec<Vec<f32>>, Vec<usize>), ChatError> {
        match self {
            EmbedBackend::Local(m) => {
                let m = m.clone();
                tokio::task::spawn_blocking(move || m.embed(&texts))
                    .await
                    .map_err(|e| ChatError::Engine(e.to_string()))?
                    .map_err(|e| ChatError::Engine(e.to_string()))
            }
            EmbedBackend::Worker(w) => w.embed(texts).await,
        }
    }
}

/// Routes model ids matching `pattern` (`*` wildcards) to a remote server.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRoute {
    pub pattern: String,
    pub url: String,
    pub model: String,
}

impl ModelRoute {
    /// Parses `PATTERN=URL#MODEL` (the `--model-route` flag).
    pub fn parse(spec: &str) -> Result<ModelRoute, String> {
        let (pattern, rest) = spec
            .split_once('=')
            .ok_or_else(|| format!("model route {spec:?} must be PATTERN=URL#MODEL"))?;
        let (url, model) = rest
            .rsplit_once('#')
            .ok_or_else(|| format!("model route {spec:?} must be PATTERN=URL#MODEL"))?;
        if !url.starts_with("http://") {
            return Err(format!("model route URL {url:?} must start with http://"));
        }
        Ok(ModelRoute {
            pattern: pattern.to_owned(),
            url: url.to_owned(),
            model: model.to_owned(),
        })
    }

    pub fn matches(&self, model_id: &str) -> bool {
        glob(&self.pattern, model_id)
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| {
                    text.is_char_boundary(head.len() + i) && glob(tail, &text[head.len() + i..])
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_match() {
        let r =
            ModelRoute::parse("anthropic.claude-3-5-*=http://gpu:8000#Qwen/Qwen2.5-7B-Instruct")
                .unwrap();
        assert_eq!(r.url, "http://gpu:8000");
        assert_eq!(r.model, "Qwen/Qwen2.5-7B-Instruct");
        assert!(r.matches("anthropic.claude-3-5-sonnet-20240620-v1:0"));
        assert!(!r.matches("anthropic.claude-3-haiku-20240307-v1:0"));
        assert!(ModelRoute::parse("x=https://a#m").is_err());
        assert!(ModelRoute::parse("no-separator").is_err());
        assert!(glob("*", "anything") && glob("a*b*c", "aXbYc") && !glob("a*b", "ac"));
    }
}
