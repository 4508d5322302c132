//! Which model ids exist, and what serves them. Every text model id resolves to the local chat
//! model and every embedding id to the local embedding model unless configured otherwise;
//! `ListFoundationModels` reports exactly that.

use basalt_chat::providers::{self, Family};

/// A foundation model Basalt answers for.
#[derive(Debug, Clone, Copy)]
pub struct Foundation {
    pub id: &'static str,
    pub name: &'static str,
    pub provider: &'static str,
    pub input: &'static [&'static str],
    pub output: &'static [&'static str],
    pub streaming: bool,
}

const TEXT: &[&str] = &["TEXT"];
const TEXT_IMAGE: &[&str] = &["TEXT", "IMAGE"];
const EMBEDDING: &[&str] = &["EMBEDDING"];

macro_rules! fm {
    ($id:literal, $name:literal, $provider:literal, $input:expr, $output:expr, $stream:literal) => {
        Foundation {
            id: $id,
            name: $name,
            provider: $provider,
            input: $input,
            output: $output,
            streaming: $stream,
        }
    };
}

pub const FOUNDATION_MODELS: &[Foundation] = &[
    fm!(
        "anthropic.claude-3-haiku-20240307-v1:0",
        "Claude 3 Haiku",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-3-sonnet-20240229-v1:0",
        "Claude 3 Sonnet",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-3-opus-20240229-v1:0",
        "Claude 3 Opus",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "Claude 3.5 Haiku",
        "Anthropic",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "Claude 3.5 Sonnet",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "Claude 3.5 Sonnet v2",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        "Claude 3.7 Sonnet",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "Claude Sonnet 4",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-v2:1",
        "Claude",
        "Anthropic",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-instant-v1",
        "Claude Instant",
        "Anthropic",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "amazon.titan-text-express-v1",
        "Titan Text G1 - Express",
        "Amazon",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "amazon.titan-text-lite-v1",
        "Titan Text G1 - Lite",
        "Amazon",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "amazon.titan-text-premier-v1:0",
        "Titan Text G1 - Premier",
        "Amazon",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "amazon.nova-micro-v1:0",
        "Nova Micro",
        "Amazon",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "amazon.nova-lite-v1:0",
        "Nova Lite",
        "Amazon",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "amazon.nova-pro-v1:0",
        "Nova Pro",
        "Amazon",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "meta.llama3-8b-instruct-v1:0",
        "Llama 3 8B Instruct",
        "Meta",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "meta.llama3-70b-instruct-v1:0",
        "Llama 3 70B Instruct",
        "Meta",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "meta.llama3-1-8b-instruct-v1:0",
        "Llama 3.1 8B Instruct",
        "Meta",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "meta.llama3-1-70b-instruct-v1:0",
        "Llama 3.1 70B Instruct",
        "Meta",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "mistral.mistral-7b-instruct-v0:2",
        "Mistral 7B Instruct",
        "Mistral AI",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "mistral.mixtral-8x7b-instruct-v0:1",
        "Mixtral 8x7B Instruct",
        "Mistral AI",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "mistral.mistral-large-2402-v1:0",
        "Mistral Large (24.02)",
        "Mistral AI",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "cohere.command-r-v1:0",
        "Command R",
        "Cohere",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "cohere.command-r-plus-v1:0",
        "Command R+",
        "Cohere",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "ai21.jamba-1-5-mini-v1:0",
        "Jamba 1.5 Mini",
        "AI21 Labs",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "deepseek.r1-v1:0",
        "DeepSeek-R1",
        "DeepSeek",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-opus-4-20250514-v1:0",
        "Claude Opus 4",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-opus-4-1-20250805-v1:0",
        "Claude Opus 4.1",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "Claude Sonnet 4.5",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "Claude Haiku 4.5",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-opus-4-5-20251101-v1:0",
        "Claude Opus 4.5",
        "Anthropic",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "anthropic.claude-v2",
        "Claude",
        "Anthropic",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "amazon.nova-premier-v1:0",
        "Nova Premier",
        "Amazon",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "meta.llama3-2-1b-instruct-v1:0",
        "Llama 3.2 1B Instruct",
        "Meta",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "meta.llama3-2-3b-instruct-v1:0",
        "Llama 3.2 3B Instruct",
        "Meta",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "meta.llama3-3-70b-instruct-v1:0",
        "Llama 3.3 70B Instruct",
        "Meta",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "meta.llama4-scout-17b-instruct-v1:0",
        "Llama 4 Scout 17B Instruct",
        "Meta",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "meta.llama4-maverick-17b-instruct-v1:0",
        "Llama 4 Maverick 17B Instruct",
        "Meta",
        TEXT_IMAGE,
        TEXT,
        true
    ),
    fm!(
        "mistral.mistral-large-2407-v1:0",
        "Mistral Large (24.07)",
        "Mistral AI",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "mistral.mistral-small-2402-v1:0",
        "Mistral Small (24.02)",
        "Mistral AI",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "ai21.jamba-1-5-large-v1:0",
        "Jamba 1.5 Large",
        "AI21 Labs",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "openai.gpt-oss-20b-1:0",
        "gpt-oss-20b",
        "OpenAI",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "openai.gpt-oss-120b-1:0",
        "gpt-oss-120b",
        "OpenAI",
        TEXT,
        TEXT,
        true
    ),
    fm!(
        "amazon.titan-embed-text-v1",
        "Titan Embeddings G1 - Text",
        "Amazon",
        TEXT,
        EMBEDDING,
        false
    ),
    fm!(
        "amazon.titan-embed-text-v2:0",
        "Titan Text Embeddings V2",
        "Amazon",
        TEXT,
        EMBEDDING,
        false
    ),
    fm!(
        "amazon.titan-embed-image-v1",
        "Titan Multimodal Embeddings G1",
        "Amazon",
        TEXT_IMAGE,
        EMBEDDING,
        false
    ),
    fm!(
        "cohere.embed-english-v3",
        "Embed English",
        "Cohere",
        TEXT,
        EMBEDDING,
        false
    ),
    fm!(
        "cohere.embed-multilingual-v3",
        "Embed Multilingual",
        "Cohere",
        TEXT,
        EMBEDDING,
        false
    ),
];

/// Whether `model_id` (a bare id, a cross-region profile id or an ARN) names a model Basalt
/// serves: ids Bedrock does not have fail as Bedrock fails.
pub fn is_known(model_id: &str) -> bool {
    find(model_id).is_some() && providers::family_of(model_id).is_some()
}

pub fn is_text_model(model_id: &str) -> bool {
    providers::family_of(model_id).is_some_and(|f| !f.is_embedding())
}

pub fn family(model_id: &str) -> Option<Family> {
    providers::family_of(model_id)
}

pub fn find(model_id: &str) -> Option<&'static Foundation> {
    let base = providers::base_model_id(model_id)?;
    FOUNDATION_MODELS.iter().find(|f| f.id == base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_model_has_a_family() {
        for f in FOUNDATION_MODELS {
            let fam = family(f.id).unwrap_or_else(|| panic!("{}", f.id));
            assert_eq!(fam.is_embedding(), f.output == EMBEDDING, "{}", f.id);
        }
        assert!(find("us.anthropic.claude-3-haiku-20240307-v1:0").is_some());
        assert!(is_known("anthropic.claude-3-sonnet-20240229-v1:0"));
        assert!(!is_known("anthropic.claude-does-not-exist-v9:0"));
        assert!(
            find("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0")
                .is_some()
        );
    }
}
