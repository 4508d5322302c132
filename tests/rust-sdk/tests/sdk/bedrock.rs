//! The AWS SDK for Rust parsing Basalt's Bedrock responses and event streams (InvokeModel,
//! InvokeModelWithResponseStream, Converse, ConverseStream) from the real local model.
//! Skipped when the server binary or the default chat model is absent.

use crate::common;
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, ConverseStreamOutput, InferenceConfiguration, Message,
    ResponseStream,
};

/// The server, when the default chat model is installed too.
fn start() -> Option<common::Server> {
    if !common::model_installed(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "the default chat model",
    ) {
        return None;
    }
    common::start(common::Data::Memory, &["--llm-context", "2048"])
}

fn client(endpoint: &str) -> aws_sdk_bedrockruntime::Client {
    let conf = aws_sdk_bedrockruntime::Config::builder()
        .endpoint_url(endpoint)
        .region(aws_sdk_bedrockruntime::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrockruntime::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .build();
    aws_sdk_bedrockruntime::Client::from_conf(conf)
}

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_and_stream_parse_in_the_rust_sdk() {
    let Some(server) = start() else { return };
    let c = client(&server.endpoint);
    let body = serde_json::json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 20,
        "temperature": 0,
        "messages": [{"role": "user", "content": "What is the capital of France? One word."}],
    });
    let out = c
        .invoke_model()
        .model_id(MODEL)
        .body(Blob::new(serde_json::to_vec(&body).unwrap()))
        .send()
        .await
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(out.body().as_ref()).unwrap();
    let text = parsed["content"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.contains("Paris"), "{parsed}");

    let mut stream = c
        .invoke_model_with_response_stream()
        .model_id(MODEL)
        .body(Blob::new(serde_json::to_vec(&body).unwrap()))
        .send()
        .await
        .unwrap();
    let mut types = Vec::new();
    let mut streamed = String::new();
    while let Some(ev) = stream.body.recv().await.unwrap() {
        if let ResponseStream::Chunk(part) = ev {
            let v: serde_json::Value =
                serde_json::from_slice(part.bytes().unwrap().as_ref()).unwrap();
            if let Some(t) = v["delta"]["text"].as_str() {
                streamed.push_str(t);
            }
            types.push(v["type"].as_str().unwrap_or("").to_owned());
            if v.get("amazon-bedrock-invocationMetrics").is_some() {
                assert!(
                    v["amazon-bedrock-invocationMetrics"]["outputTokenCount"]
                        .as_u64()
                        .unwrap()
                        > 0
                );
            }
        }
    }
    assert_eq!(types.first().map(String::as_str), Some("message_start"));
    assert_eq!(types.last().map(String::as_str), Some("message_stop"));
    assert_eq!(
        streamed, text,
        "greedy stream equals the non-streamed answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converse_and_converse_stream_parse_in_the_rust_sdk() {
    let Some(server) = start() else { return };
    let c = client(&server.endpoint);
    let msg = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(
            "What is the capital of Italy? Answer in one word.".into(),
        ))
        .build()
        .unwrap();
    let cfg = InferenceConfiguration::builder()
        .max_tokens(16)
        .temperature(0.0)
        .build();
    let out = c
        .converse()
        .model_id(MODEL)
        .messages(msg.clone())
        .inference_config(cfg.clone())
        .send()
        .await
        .unwrap();
    let answer = out.output().unwrap().as_message().unwrap().content()[0]
        .as_text()
        .unwrap()
        .clone();
    assert!(answer.contains("Rome"), "{answer}");
    assert!(out.usage().unwrap().total_tokens() > 0);

    let mut stream = c
        .converse_stream()
        .model_id(MODEL)
        .messages(msg)
        .inference_config(cfg)
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let (mut started, mut stopped, mut metadata) = (false, false, false);
    while let Some(ev) = stream.stream.recv().await.unwrap() {
        match ev {
            ConverseStreamOutput::MessageStart(_) => started = true,
            ConverseStreamOutput::ContentBlockDelta(d) => {
                if let Some(t) = d.delta().and_then(|d| d.as_text().ok()) {
                    text.push_str(t);
                }
            }
            ConverseStreamOutput::MessageStop(s) => {
                stopped = true;
                assert_eq!(s.stop_reason().as_str(), "end_turn");
            }
            ConverseStreamOutput::Metadata(m) => {
                metadata = true;
                assert!(m.usage().unwrap().output_tokens() > 0);
            }
            _ => {}
        }
    }
    assert!(started && stopped && metadata);
    assert_eq!(text, answer);
}
