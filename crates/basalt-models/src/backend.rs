//! A chat model wherever it runs: in-process (llama.cpp) or on an OpenAI-compatible server.

use crate::chat::{ChatError, ChatEvent, ChatModel};
use crate::remote::RemoteChat;
use basalt_chat::{ChatRequest, ChatResponse};
use tokio::sync::mpsc;

pub enum ChatBackend {
    Local(ChatModel),
    Remote(RemoteChat),
}

impl ChatBackend {
    pub fn name(&self) -> String {
        match self {
            ChatBackend::Local(m) => m.name.clone(),
            ChatBackend::Remote(r) => format!("{} at {}", r.model, r.base_url),
        }
    }

    pub async fn count_tokens(&self, req: &ChatRequest) -> Result<usize, ChatError> {
        match self {
            ChatBackend::Local(m) => m.count_tokens(req),
            ChatBackend::Remote(r) => r.count_tokens(req).await,
        }
    }

    pub fn stream(
        &self,
        req: &ChatRequest,
    ) -> Result<mpsc::UnboundedReceiver<Result<ChatEvent, ChatError>>, ChatError> {
        match self {
            ChatBackend::Local(m) => m.stream(req),
            ChatBackend::Remote(r) => r.stream(req),
        }
    }

    pub async fn complete(&self, req: &ChatRequest) -> Result<ChatResponse, ChatError> {
        match self {
            ChatBackend::Local(m) => m.complete(req).await,
            ChatBackend::Remote(r) => r.complete(req).await,
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
