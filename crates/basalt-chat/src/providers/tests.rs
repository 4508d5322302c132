use super::*;
use crate::{ContentBlock, EmbeddingType, Role, ToolChoice, ToolResultContent};

fn resp(text: &str, stop: StopReason) -> ChatResponse {
    ChatResponse {
        content: vec![ContentBlock::Text(text.to_owned())],
        stop_reason: stop,
        usage: Usage {
            input_tokens: 11,
            output_tokens: 3,
            ..Default::default()
        },
        latency_ms: 120,
        first_token_ms: 40,
    }
}

fn stream(family: Family, model: &str) -> Vec<Value> {
    let req = ChatRequest::default();
    let mut enc = StreamEncoder::new(family, model, &req, 11);
    let mut out = enc.start();
    out.extend(enc.delta(&Delta::Text {
        index: 0,
        text: "Hel".into(),
    }));
    out.extend(enc.delta(&Delta::Text {
        index: 0,
        text: "lo".into(),
    }));
    out.extend(enc.delta(&Delta::BlockStop { index: 0 }));
    out.extend(enc.finish(
        &StopReason::EndTurn,
        &Usage {
            input_tokens: 11,
            output_tokens: 2,
            ..Default::default()
        },
        120,
        40,
    ));
    out
}

fn metrics_on_last_only(chunks: &[Value]) {
    let key = "amazon-bedrock-invocationMetrics";
    let last = chunks.last().expect("chunks");
    assert_eq!(last[key]["inputTokenCount"], 11);
    assert_eq!(last[key]["outputTokenCount"], 2);
    assert_eq!(last[key]["invocationLatency"], 120);
    assert_eq!(last[key]["firstByteLatency"], 40);
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.get(key).is_none())
    );
}

const SONNET: &str = "anthropic.claude-3-sonnet-20240229-v1:0";

#[test]
fn family_of_ids_profiles_and_arns() {
    assert_eq!(family_of(SONNET), Some(Family::Anthropic));
    assert_eq!(
        family_of("us.anthropic.claude-3-5-sonnet-20241022-v2:0"),
        Some(Family::Anthropic)
    );
    assert_eq!(
        family_of("global.anthropic.claude-sonnet-4-20250514-v1:0"),
        Some(Family::Anthropic)
    );
    assert_eq!(
        family_of(
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-sonnet-20240229-v1:0"
        ),
        Some(Family::Anthropic)
    );
    assert_eq!(
        family_of(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.meta.llama3-2-1b-instruct-v1:0"
        ),
        Some(Family::Llama)
    );
    assert_eq!(
        family_of("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"),
        None
    );
    assert_eq!(
        family_of("amazon.titan-text-express-v1"),
        Some(Family::TitanText)
    );
    assert_eq!(
        family_of("amazon.titan-embed-text-v1"),
        Some(Family::TitanEmbedV1)
    );
    assert_eq!(
        family_of("amazon.titan-embed-text-v2:0"),
        Some(Family::TitanEmbedV2)
    );
    assert_eq!(
        family_of("amazon.titan-embed-image-v1"),
        Some(Family::TitanEmbedImage)
    );
    assert_eq!(family_of("us.amazon.nova-lite-v1:0"), Some(Family::Nova));
    assert_eq!(family_of("amazon.nova-canvas-v1:0"), None);
    assert_eq!(
        family_of("mistral.mistral-7b-instruct-v0:2"),
        Some(Family::Mistral)
    );
    assert_eq!(
        family_of("cohere.command-r-plus-v1:0"),
        Some(Family::CohereCommandR)
    );
    assert_eq!(
        family_of("cohere.embed-english-v3"),
        Some(Family::CohereEmbed)
    );
    assert_eq!(
        family_of("ai21.jamba-1-5-mini-v1:0"),
        Some(Family::Ai21Jamba)
    );
    assert_eq!(family_of("us.deepseek.r1-v1:0"), Some(Family::DeepSeek));
    assert_eq!(
        family_of("openai.gpt-oss-20b-1:0"),
        Some(Family::OpenAiGptOss)
    );
    assert_eq!(family_of("stability.sd3-large-v1:0"), None);
    assert_eq!(family_of(""), None);
    assert_eq!(family_of("arn:"), None);
}

#[test]
fn anthropic_parse_seed_body() {
    let body = json!({
        "anthropic_version": "bedrock-2023-05-31", "max_tokens": 30,
        "system": "Answer with a single word.",
        "messages": [
            {"role": "user", "content": "My favourite colour is teal."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": [{"type": "text", "text": "What is it?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
        ],
        "tools": [{"name": "get", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "get"},
        "temperature": 0.0, "stop_sequences": ["\n\n"],
    });
    let req = parse_chat(Family::Anthropic, SONNET, &body).unwrap();
    assert_eq!(req.system, vec!["Answer with a single word."]);
    assert_eq!(req.messages.len(), 3);
    assert_eq!(req.messages[1].role, Role::Assistant);
    assert!(
        matches!(&req.messages[2].content[1], ContentBlock::Image { format, .. } if format == "png")
    );
    assert_eq!(req.sampling.max_tokens, 30);
    assert_eq!(req.sampling.temperature, Some(0.0));
    assert_eq!(req.tool_choice, ToolChoice::Tool("get".into()));
    assert_eq!(req.tools[0].name, "get");
}

#[test]
fn anthropic_validation_messages() {
    let err = parse_chat(
        Family::Anthropic,
        SONNET,
        &json!({"messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap_err();
    assert_eq!(err.code, "ValidationException");
    assert_eq!(
        err.message,
        "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again."
    );
    let err = parse_chat(
        Family::Anthropic,
        SONNET,
        &json!({"anthropic_version": "bedrock-2023-05-31", "messages": []}),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "Malformed input request: #: required key [max_tokens] not found, please reformat your input and try again."
    );
    let base = |mt: Value| json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": mt, "messages": [{"role": "user", "content": "x"}]});
    let err = parse_chat(Family::Anthropic, SONNET, &base(json!("200"))).unwrap_err();
    assert!(
        err.message
            .contains("#/max_tokens: expected type: Integer, found: String"),
        "{}",
        err.message
    );
    let err = parse_chat(Family::Anthropic, SONNET, &base(json!(0))).unwrap_err();
    assert!(
        err.message.contains("0 is not greater or equal to 1"),
        "{}",
        err.message
    );
    let err = parse_chat(Family::Anthropic, SONNET, &base(json!(5000))).unwrap_err();
    assert_eq!(
        err.message,
        "max_tokens: 5000 > 4096, which is the maximum allowed number of output tokens for claude-3-sonnet-20240229"
    );
    let mut extra = base(json!(10));
    extra["model"] = json!("x");
    assert!(
        parse_chat(Family::Anthropic, SONNET, &extra)
            .unwrap_err()
            .message
            .contains("extraneous key [model]")
    );
    for hostile in [
        json!(null),
        json!([1]),
        json!("s"),
        json!({"anthropic_version": 5}),
        json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [7]}),
        json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]}),
        json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1e300, "messages": []}),
        json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": u64::MAX, "messages": []}),
    ] {
        assert_eq!(
            parse_chat(Family::Anthropic, SONNET, &hostile)
                .unwrap_err()
                .code,
            "ValidationException"
        );
    }
}

#[test]
fn anthropic_response_and_stream() {
    let mut r = resp("Paris", StopReason::EndTurn);
    r.content.push(ContentBlock::ToolUse {
        id: String::new(),
        name: "f".into(),
        input: json!({"a": 1}),
    });
    let body = chat_response_body(Family::Anthropic, SONNET, &ChatRequest::default(), &r);
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert!(body["id"].as_str().unwrap().starts_with("msg_bdrk_"));
    assert_eq!(body["content"][0], json!({"type": "text", "text": "Paris"}));
    assert!(
        body["content"][1]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_bdrk_")
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 11, "output_tokens": 3})
    );
    let s = chat_response_body(
        Family::Anthropic,
        SONNET,
        &ChatRequest::default(),
        &resp("x", StopReason::StopSequence("END".into())),
    );
    assert_eq!(
        (s["stop_reason"].as_str(), s["stop_sequence"].as_str()),
        (Some("stop_sequence"), Some("END"))
    );

    let chunks = stream(Family::Anthropic, SONNET);
    let types: Vec<&str> = chunks.iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(chunks[0]["message"]["usage"]["input_tokens"], 11);
    assert_eq!(
        chunks[2]["delta"],
        json!({"type": "text_delta", "text": "Hel"})
    );
    assert_eq!(chunks[5]["delta"]["stop_reason"], "end_turn");
    assert_eq!(chunks[5]["usage"]["output_tokens"], 2);
    metrics_on_last_only(&chunks);
}

#[test]
fn anthropic_stream_tool_use_and_unclosed_blocks() {
    let mut enc = StreamEncoder::new(Family::Anthropic, SONNET, &ChatRequest::default(), 5);
    let mut out = enc.start();
    out.extend(enc.delta(&Delta::ToolUseStart {
        index: 0,
        id: "toolu_1".into(),
        name: "f".into(),
    }));
    out.extend(enc.delta(&Delta::ToolInput {
        index: 0,
        json: "{\"a\":".into(),
    }));
    out.extend(enc.finish(&StopReason::ToolUse, &Usage::default(), 1, 1));
    assert_eq!(out[1]["content_block"]["type"], "tool_use");
    assert_eq!(out[2]["delta"]["type"], "input_json_delta");
    assert_eq!(out[3]["type"], "content_block_stop");
    assert_eq!(out[4]["delta"]["stop_reason"], "tool_use");
    assert!(
        enc.finish(&StopReason::EndTurn, &Usage::default(), 1, 1)
            .is_empty()
    );
}

#[test]
fn anthropic_legacy_text_completion() {
    let body = json!({"prompt": "\n\nHuman: Hi there\n\nAssistant:", "max_tokens_to_sample": 50});
    assert_eq!(Family::Anthropic.for_body(&body), Family::AnthropicText);
    let req = parse_chat(Family::Anthropic, "anthropic.claude-v2", &body).unwrap();
    assert_eq!(req.messages.len(), 1);
    assert_eq!(req.raw_prompt, None);
    let out = chat_response_body(
        Family::AnthropicText,
        "anthropic.claude-v2",
        &req,
        &resp("Hello", StopReason::MaxTokens),
    );
    assert_eq!(out["completion"], "Hello");
    assert_eq!(out["stop_reason"], "max_tokens");
    let err = parse_chat(
        Family::AnthropicText,
        "anthropic.claude-v2:1",
        &json!({"prompt": "\n\nHuman: Hi\n\nAssistant:", "max_tokens_to_sample": 8192}),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "Malformed input request: #/max_tokens_to_sample: 8192 is not less or equal to 8191, please reformat your input and try again."
    );
}

#[test]
fn titan_text_parse_response_stream() {
    let body = json!({"inputText": "User: Say hi\nBot:", "textGenerationConfig": {"maxTokenCount": 64, "temperature": 0.2, "stopSequences": ["User:"]}});
    let req = parse_chat(Family::TitanText, "amazon.titan-text-express-v1", &body).unwrap();
    assert_eq!(req.sampling.max_tokens, 64);
    assert_eq!(
        req.messages[0].content,
        vec![ContentBlock::Text("Say hi".into())]
    );
    let plain = parse_chat(
        Family::TitanText,
        "amazon.titan-text-express-v1",
        &json!({"inputText": "Once upon"}),
    )
    .unwrap();
    assert_eq!(plain.raw_prompt.as_deref(), Some("Once upon"));
    assert_eq!(plain.sampling.max_tokens, 512);
    let err = parse_chat(
        Family::TitanText,
        "amazon.titan-text-lite-v1",
        &json!({"inputText": "x", "textGenerationConfig": {"maxTokenCount": 5000}}),
    )
    .unwrap_err();
    assert!(
        err.message
            .contains("#/textGenerationConfig/maxTokenCount: 5000 is not less or equal to 4096"),
        "{}",
        err.message
    );
    assert!(
        parse_chat(Family::TitanText, "t", &json!({}))
            .unwrap_err()
            .message
            .contains("required key [inputText]")
    );
    let out = chat_response_body(
        Family::TitanText,
        "t",
        &req,
        &resp("hi", StopReason::MaxTokens),
    );
    assert_eq!(
        out,
        json!({"inputTextTokenCount": 11, "results": [{"tokenCount": 3, "outputText": "hi", "completionReason": "LENGTH"}]})
    );
    let chunks = stream(Family::TitanText, "amazon.titan-text-express-v1");
    assert_eq!(chunks[0]["outputText"], "Hel");
    assert_eq!(chunks[0]["inputTextTokenCount"], 11);
    assert_eq!(chunks[1]["inputTextTokenCount"], Value::Null);
    assert_eq!(chunks[1]["totalOutputTextTokenCount"], 2);
    assert_eq!(chunks.last().unwrap()["completionReason"], "FINISH");
    metrics_on_last_only(&chunks);
}

#[test]
fn nova_parse_response_stream() {
    let body = json!({"schemaVersion": "messages-v1", "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"maxTokens": 100, "topP": 0.9, "stopSequences": ["x"]},
        "toolConfig": {"tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {"type": "object"}}}}], "toolChoice": {"any": {}}}});
    let req = parse_chat(Family::Nova, "amazon.nova-lite-v1:0", &body).unwrap();
    assert_eq!(req.system, vec!["Be brief."]);
    assert_eq!(req.sampling.max_tokens, 100);
    assert_eq!(req.tool_choice, ToolChoice::Any);
    let legacy = json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "inferenceConfig": {"max_new_tokens": 7}});
    assert_eq!(
        parse_chat(Family::Nova, "n", &legacy)
            .unwrap()
            .sampling
            .max_tokens,
        7
    );
    assert!(
        parse_chat(Family::Nova, "n", &json!({"messages": "x"}))
            .unwrap_err()
            .message
            .contains("expected type: JSONArray")
    );
    let out = chat_response_body(Family::Nova, "n", &req, &resp("Hello", StopReason::EndTurn));
    assert_eq!(out["output"]["message"]["content"][0]["text"], "Hello");
    assert_eq!(out["stopReason"], "end_turn");
    assert_eq!(out["usage"]["totalTokens"], 14);
    let chunks = stream(Family::Nova, "amazon.nova-lite-v1:0");
    assert!(chunks[0].get("messageStart").is_some());
    assert_eq!(chunks[1]["contentBlockDelta"]["delta"]["text"], "Hel");
    assert!(chunks[3].get("contentBlockStop").is_some());
    assert_eq!(chunks[4]["messageStop"]["stopReason"], "end_turn");
    assert_eq!(chunks[5]["metadata"]["usage"]["outputTokens"], 2);
    metrics_on_last_only(&chunks);
}

#[test]
fn llama_parse_template_response_stream() {
    let prompt = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe nice.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    let req = parse_chat(
        Family::Llama,
        "meta.llama3-8b-instruct-v1:0",
        &json!({"prompt": prompt, "max_gen_len": 64}),
    )
    .unwrap();
    assert_eq!(req.system, vec!["Be nice."]);
    assert_eq!(req.messages.len(), 1);
    assert_eq!(
        req.messages[0].content,
        vec![ContentBlock::Text("Hi!".into())]
    );
    assert_eq!(req.sampling.max_tokens, 64);
    let inst = parse_chat(
        Family::Llama,
        "m",
        &json!({"prompt": "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nQ [/INST]"}),
    )
    .unwrap();
    assert_eq!(inst.system, vec!["S"]);
    assert_eq!(
        inst.messages[0].content,
        vec![ContentBlock::Text("Q".into())]
    );
    assert!(
        parse_chat(Family::Llama, "m", &json!({"prompt": 3}))
            .unwrap_err()
            .message
            .contains("#/prompt: expected type: String, found: Integer")
    );
    let out = chat_response_body(Family::Llama, "m", &req, &resp("Yo", StopReason::MaxTokens));
    assert_eq!(
        out,
        json!({"generation": "Yo", "prompt_token_count": 11, "generation_token_count": 3, "stop_reason": "length"})
    );
    let chunks = stream(Family::Llama, "m");
    assert_eq!(chunks[0]["prompt_token_count"], 11);
    assert_eq!(chunks[1]["prompt_token_count"], Value::Null);
    assert_eq!(chunks.last().unwrap()["stop_reason"], "stop");
    metrics_on_last_only(&chunks);
}

#[test]
fn mistral_text_and_chat() {
    let req = parse_chat(
        Family::Mistral,
        "mistral.mistral-7b-instruct-v0:2",
        &json!({"prompt": "<s>[INST] Hi [/INST]", "max_tokens": 20, "top_k": 50, "stop": ["x"]}),
    )
    .unwrap();
    assert_eq!(req.sampling.top_k, Some(50));
    let out = chat_response_body(
        Family::Mistral,
        "m",
        &req,
        &resp("Hello", StopReason::EndTurn),
    );
    assert_eq!(
        out,
        json!({"outputs": [{"text": "Hello", "stop_reason": "stop"}]})
    );
    let chunks = stream(Family::Mistral, "m");
    assert_eq!(chunks[0]["outputs"][0]["text"], "Hel");
    assert_eq!(chunks.last().unwrap()["outputs"][0]["stop_reason"], "stop");
    metrics_on_last_only(&chunks);

    let chat = json!({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}], "max_tokens": 9});
    let fam = Family::Mistral.for_body(&chat);
    assert_eq!(fam, Family::MistralChat);
    let req = parse_chat(fam, "mistral.mistral-large-2407-v1:0", &chat).unwrap();
    assert_eq!(req.system, vec!["S"]);
    let out = chat_response_body(fam, "m", &req, &resp("Hello", StopReason::EndTurn));
    assert_eq!(out["choices"][0]["message"]["content"], "Hello");
    assert_eq!(out["choices"][0]["stop_reason"], "stop");
    metrics_on_last_only(&stream(Family::MistralChat, "m"));
}

#[test]
fn cohere_command_r() {
    let body = json!({"message": "And now?", "preamble": "Be brief.", "max_tokens": 40,
        "chat_history": [{"role": "USER", "message": "Hi"}, {"role": "CHATBOT", "message": "Hello"}],
        "documents": [{"title": "t", "snippet": "s"}]});
    let req = parse_chat(Family::CohereCommandR, "cohere.command-r-v1:0", &body).unwrap();
    assert_eq!(req.messages.len(), 3);
    assert_eq!(req.system.len(), 2);
    let out = chat_response_body(
        Family::CohereCommandR,
        "c",
        &req,
        &resp("Now.", StopReason::MaxTokens),
    );
    assert_eq!(out["text"], "Now.");
    assert_eq!(out["finish_reason"], "MAX_TOKENS");
    assert_eq!(out["chat_history"].as_array().unwrap().len(), 4);
    assert_eq!(
        out["chat_history"][3],
        json!({"role": "CHATBOT", "message": "Now."})
    );
    assert!(
        parse_chat(Family::CohereCommandR, "c", &json!({"chat_history": []}))
            .unwrap_err()
            .message
            .contains("required key [message]")
    );
    let chunks = stream(Family::CohereCommandR, "c");
    assert_eq!(chunks[0]["event_type"], "stream-start");
    assert_eq!(chunks[1]["event_type"], "text-generation");
    let end = chunks.last().unwrap();
    assert_eq!(end["event_type"], "stream-end");
    assert_eq!(end["is_finished"], true);
    assert_eq!(end["response"]["text"], "Hello");
    metrics_on_last_only(&chunks);
}

#[test]
fn jamba_and_gpt_oss() {
    let body = json!({"messages": [{"role": "developer", "content": "S"}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                      "max_completion_tokens": 20, "stop": "END",
                      "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}], "tool_choice": "required"});
    let req = parse_chat(Family::OpenAiGptOss, "openai.gpt-oss-20b-1:0", &body).unwrap();
    assert_eq!(req.system, vec!["S"]);
    assert_eq!(req.sampling.stop_sequences, vec!["END"]);
    assert_eq!(req.tool_choice, ToolChoice::Any);
    let out = chat_response_body(
        Family::OpenAiGptOss,
        "openai.gpt-oss-20b-1:0",
        &req,
        &resp("Hey", StopReason::EndTurn),
    );
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(out["choices"][0]["message"]["content"], "Hey");
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["total_tokens"], 14);
    let jamba = chat_response_body(
        Family::Ai21Jamba,
        "ai21.jamba-1-5-mini-v1:0",
        &req,
        &resp("Hey", StopReason::MaxTokens),
    );
    assert_eq!(jamba["model"], "jamba-1.5-mini");
    assert_eq!(jamba["choices"][0]["finish_reason"], "length");
    assert_eq!(jamba["meta"]["requestDurationMillis"], 120);
    let chunks = stream(Family::OpenAiGptOss, "openai.gpt-oss-20b-1:0");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    metrics_on_last_only(&chunks);
    metrics_on_last_only(&stream(Family::Ai21Jamba, "ai21.jamba-1-5-mini-v1:0"));
    assert!(
        parse_chat(
            Family::Ai21Jamba,
            "a",
            &json!({"messages": [{"role": "user", "content": "x"}], "n": 2})
        )
        .is_err()
    );
}

#[test]
fn deepseek_prompt_and_stream() {
    let req = parse_chat(Family::DeepSeek, "us.deepseek.r1-v1:0", &json!({"prompt": "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><think>\n", "max_tokens": 100})).unwrap();
    assert_eq!(req.messages.len(), 1);
    assert_eq!(req.sampling.max_tokens, 100);
    let out = chat_response_body(
        Family::DeepSeek,
        "d",
        &req,
        &resp("Yo", StopReason::EndTurn),
    );
    assert_eq!(
        out,
        json!({"choices": [{"text": "Yo", "stop_reason": "stop"}]})
    );
    assert!(
        parse_chat(
            Family::DeepSeek,
            "d",
            &json!({"prompt": "x", "max_tokens": 40000})
        )
        .is_err()
    );
    metrics_on_last_only(&stream(Family::DeepSeek, "d"));
}

#[test]
fn titan_embeddings() {
    let v1 = parse_embed(Family::TitanEmbedV1, &json!({"inputText": "hello"})).unwrap();
    assert_eq!(v1.texts, vec!["hello"]);
    assert_eq!(native_dimensions(Family::TitanEmbedV1, None), 1536);
    let body = embed_response_body(Family::TitanEmbedV1, &v1, &[vec![0.5; 1536]], 2);
    assert_eq!(body["embedding"].as_array().unwrap().len(), 1536);
    assert_eq!(body["inputTextTokenCount"], 2);
    assert!(
        parse_embed(
            Family::TitanEmbedV1,
            &json!({"inputText": "x", "dimensions": 256})
        )
        .unwrap_err()
        .message
        .contains("extraneous key [dimensions]")
    );
    assert!(
        parse_embed(Family::TitanEmbedV1, &json!({}))
            .unwrap_err()
            .message
            .contains("required key [inputText]")
    );

    let v2 = parse_embed(Family::TitanEmbedV2, &json!({"inputText": "hello world", "dimensions": 256, "normalize": true, "embeddingTypes": ["float", "binary"]})).unwrap();
    assert_eq!(v2.dimensions, Some(256));
    assert_eq!(
        v2.embedding_types,
        vec![EmbeddingType::Float, EmbeddingType::Binary]
    );
    assert_eq!(native_dimensions(Family::TitanEmbedV2, v2.dimensions), 256);
    assert_eq!(native_dimensions(Family::TitanEmbedV2, None), 1024);
    let body = embed_response_body(Family::TitanEmbedV2, &v2, &[vec![0.5, -0.5]], 3);
    assert_eq!(body["embeddingsByType"]["binary"], json!([1, 0]));
    assert_eq!(body["embedding"], json!([0.5, -0.5]));
    assert!(
        parse_embed(
            Family::TitanEmbedV2,
            &json!({"inputText": "x", "dimensions": 300})
        )
        .unwrap_err()
        .message
        .contains("300 is not a valid enum value")
    );

    let img = parse_embed(
        Family::TitanEmbedImage,
        &json!({"inputText": "cat", "embeddingConfig": {"outputEmbeddingLength": 384}}),
    )
    .unwrap();
    assert_eq!(
        native_dimensions(Family::TitanEmbedImage, img.dimensions),
        384
    );
    let err = parse_embed(Family::TitanEmbedImage, &json!({"inputImage": "AAAA"})).unwrap_err();
    assert!(err.message.contains("not supported"), "{}", err.message);
    assert!(parse_chat(Family::TitanEmbedV1, "e", &json!({})).is_err());
    assert!(parse_embed(Family::Anthropic, &json!({})).is_err());
}

#[test]
fn cohere_embeddings() {
    let req = parse_embed(
        Family::CohereEmbed,
        &json!({"texts": ["a", "b"], "input_type": "search_document"}),
    )
    .unwrap();
    assert_eq!(req.texts.len(), 2);
    assert_eq!(native_dimensions(Family::CohereEmbed, None), 1024);
    let body = embed_response_body(
        Family::CohereEmbed,
        &req,
        &[vec![0.1, 0.2], vec![0.3, 0.4]],
        4,
    );
    assert_eq!(body["response_type"], "embeddings_floats");
    assert_eq!(body["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(body["texts"], json!(["a", "b"]));
    let typed = parse_embed(Family::CohereEmbed, &json!({"texts": ["a"], "input_type": "search_query", "embedding_types": ["float", "int8", "ubinary"]})).unwrap();
    let body = embed_response_body(
        Family::CohereEmbed,
        &typed,
        &[vec![1.0, -1.0, 0.5, 0.0, 1.0, 1.0, 1.0, 1.0]],
        1,
    );
    assert_eq!(body["response_type"], "embeddings_by_type");
    assert_eq!(body["embeddings"]["int8"][0][0], 127);
    assert_eq!(body["embeddings"]["ubinary"][0], json!([0b1010_1111]));
    assert!(
        parse_embed(Family::CohereEmbed, &json!({"texts": ["a"]}))
            .unwrap_err()
            .message
            .contains("required key [input_type]")
    );
    let many: Vec<String> = (0..97).map(|i| i.to_string()).collect();
    assert!(
        parse_embed(
            Family::CohereEmbed,
            &json!({"texts": many, "input_type": "clustering"})
        )
        .unwrap_err()
        .message
        .contains("maximum item count: 96")
    );
}

fn cos(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn fit_dimensions_keeps_cosine_when_padding() {
    let a: Vec<f32> = (0..384)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
        .collect();
    let b: Vec<f32> = (0..384)
        .map(|i| ((i * 53 % 89) as f32 - 44.0) / 3.0)
        .collect();
    let (pa, pb) = (fit_dimensions(&a, 1536), fit_dimensions(&b, 1536));
    assert_eq!(pa.len(), 1536);
    assert!((cos(&a, &b) - cos(&pa, &pb)).abs() < 1e-6);
    let norm: f64 = pa.iter().map(|x| f64::from(*x).powi(2)).sum();
    assert!((norm - 1.0).abs() < 1e-5);
    let t = fit_dimensions(&a, 256);
    assert_eq!(t.len(), 256);
    assert!((t.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() - 1.0).abs() < 1e-5);
    assert_eq!(fit_dimensions(&[0.0; 4], 8), vec![0.0; 8]);
    assert_eq!(fit_dimensions(&[f32::NAN, 1.0], 3), vec![0.0; 3]);
    assert!(fit_dimensions(&[], 0).is_empty());
}

#[test]
fn documents_become_text() {
    let t = super::document_text("csv", "sales (Q1) [v2]", b"a,b\n1,2").unwrap();
    assert_eq!(
        t,
        "<document name=\"sales (Q1) [v2]\" format=\"csv\">\na,b\n1,2\n</document>"
    );
    let e = super::document_text("rtf", "x", b"").unwrap_err();
    assert!(e.message.contains("enum value set"), "{}", e.message);
    assert!(super::document_text("docx", "x", b"PK").is_err());
    assert!(super::document_text("txt", "", b"x").is_err());
}

fn anthropic(messages: Value) -> Value {
    json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": messages})
}

fn anthropic_err(body: &Value) -> String {
    let err = parse_chat(Family::Anthropic, SONNET, body).unwrap_err();
    assert_eq!(err.code, "ValidationException", "{}", err.message);
    err.message
}

#[test]
fn anthropic_conversation_rules() {
    assert_eq!(
        anthropic_err(&anthropic(json!([
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "Hello"},
        ]))),
        "messages: first message must use the \"user\" role"
    );
    assert_eq!(
        anthropic_err(&anthropic(json!([
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ]))),
        "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row"
    );
    assert_eq!(
        anthropic_err(&anthropic(json!([
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "assistant", "content": "c"},
        ]))),
        "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"assistant\" roles in a row"
    );
    assert_eq!(
        anthropic_err(&anthropic(json!([{"role": "user", "content": []}]))),
        "messages.0: all messages must have non-empty content except for the optional final assistant message"
    );
    assert_eq!(
        anthropic_err(&anthropic(json!([
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "b"},
        ]))),
        "messages.1: all messages must have non-empty content except for the optional final assistant message"
    );
    assert_eq!(
        anthropic_err(&anthropic(
            json!([{"role": "user", "content": [{"type": "text", "text": ""}]}])
        )),
        "messages: text content blocks must be non-empty"
    );
    assert_eq!(
        anthropic_err(&anthropic(json!([{"role": "user", "content": "  \n"}]))),
        "messages: text content blocks must contain non-whitespace text"
    );
    assert_eq!(
        anthropic_err(&anthropic(json!([
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "The capital is "},
        ]))),
        "messages: final assistant content cannot end with trailing whitespace"
    );
    // An empty final assistant message and a prefill without trailing space are fine.
    for last in ["", "The capital is"] {
        let req = parse_chat(
            Family::Anthropic,
            SONNET,
            &anthropic(json!([
                {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": last},
            ])),
        )
        .unwrap();
        assert_eq!(req.messages.len(), 2);
    }
    let tool = |name: &str| json!({"name": name, "input_schema": {"type": "object"}});
    let mut dup = anthropic(json!([{"role": "user", "content": "x"}]));
    dup["tools"] = json!([tool("a"), tool("a")]);
    assert_eq!(anthropic_err(&dup), "tools: Tool names must be unique.");
}

fn weather_round_trip(result: Value) -> Value {
    anthropic(json!([
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_bdrk_01A", "name": "get_weather", "input": {"city": "Paris"}},
        ]},
        {"role": "user", "content": [result]},
    ]))
}

#[test]
fn anthropic_tool_pairing_rules() {
    let result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "sunny"});
    assert_eq!(
        anthropic_err(&weather_round_trip(result("toolu_other"))),
        "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_other. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
    );
    assert_eq!(
        anthropic_err(&weather_round_trip(
            json!({"type": "text", "text": "never mind"})
        )),
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_bdrk_01A. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
    );
    let mut late = weather_round_trip(json!({"type": "text", "text": "here:"}));
    late["messages"][2]["content"]
        .as_array_mut()
        .unwrap()
        .push(result("toolu_bdrk_01A"));
    assert_eq!(
        anthropic_err(&late),
        "messages.2: Did not find 1 `tool_result` block(s) at the beginning of this message. Messages following `tool_use` blocks must begin with a matching number of `tool_result` blocks."
    );
    assert!(
        anthropic_err(&anthropic(json!([
            {"role": "user", "content": [result("toolu_x")]},
        ])))
        .starts_with("messages.0.content.0: unexpected `tool_use_id`")
    );
}

#[test]
fn anthropic_tool_round_trip_maps_to_neutral_blocks() {
    // `content` as a string, as a list of text blocks, absent, and an error result.
    let cases = [
        (
            json!({"type": "tool_result", "tool_use_id": "toolu_bdrk_01A", "content": "{\"temperature_c\": 23}"}),
            vec![ToolResultContent::Text("{\"temperature_c\": 23}".into())],
            false,
        ),
        (
            json!({"type": "tool_result", "tool_use_id": "toolu_bdrk_01A", "content": [
                {"type": "text", "text": "23 C"}, {"type": "text", "text": "sunny"}]}),
            vec![
                ToolResultContent::Text("23 C".into()),
                ToolResultContent::Text("sunny".into()),
            ],
            false,
        ),
        (
            json!({"type": "tool_result", "tool_use_id": "toolu_bdrk_01A", "is_error": true,
                   "content": [{"type": "text", "text": "city not found"}]}),
            vec![ToolResultContent::Text("city not found".into())],
            true,
        ),
        (
            json!({"type": "tool_result", "tool_use_id": "toolu_bdrk_01A"}),
            vec![],
            false,
        ),
    ];
    for (result, expected, error) in cases {
        let mut body = weather_round_trip(result);
        body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object",
            "properties": {"city": {"type": "string"}}}}]);
        let req = parse_chat(Family::Anthropic, SONNET, &body).unwrap();
        assert_eq!(req.messages.len(), 3);
        assert_eq!(req.messages[1].role, Role::Assistant);
        assert_eq!(
            req.messages[1].content,
            vec![
                ContentBlock::Text("Let me check.".into()),
                ContentBlock::ToolUse {
                    id: "toolu_bdrk_01A".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Paris"}),
                },
            ]
        );
        assert_eq!(req.messages[2].role, Role::User);
        assert_eq!(
            req.messages[2].content,
            vec![ContentBlock::ToolResult {
                tool_use_id: "toolu_bdrk_01A".into(),
                content: expected,
                is_error: error,
            }]
        );
    }
}

#[test]
fn output_token_limits_per_model() {
    for (id, limit) in [
        ("anthropic.claude-3-haiku-20240307-v1:0", Some(4096)),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", Some(8192)),
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", Some(64_000)),
        ("anthropic.claude-opus-4-1-20250805-v1:0", Some(32_000)),
        ("amazon.titan-text-premier-v1:0", Some(3072)),
        ("meta.llama3-1-70b-instruct-v1:0", Some(2048)),
        ("mistral.mixtral-8x7b-instruct-v0:1", Some(4096)),
        ("mistral.mistral-large-2407-v1:0", Some(8192)),
        ("cohere.command-r-plus-v1:0", Some(4000)),
        ("ai21.jamba-1-5-large-v1:0", Some(4096)),
        ("deepseek.r1-v1:0", Some(32_768)),
        ("amazon.nova-pro-v1:0", None),
        ("amazon.titan-embed-text-v2:0", None),
        ("foo.bar", None),
    ] {
        assert_eq!(max_output_tokens(id), limit, "{id}");
    }
    // The provider bodies' own token-count fields are bounded by the same limits.
    let llama = parse_chat(
        Family::Llama,
        "meta.llama3-8b-instruct-v1:0",
        &json!({"prompt": "x", "max_gen_len": 2049}),
    )
    .unwrap_err();
    assert_eq!(
        llama.message,
        "Malformed input request: #/max_gen_len: 2049 is not less or equal to 2048, please reformat your input and try again."
    );
    let mixtral = parse_chat(
        Family::Mistral,
        "mistral.mixtral-8x7b-instruct-v0:1",
        &json!({"prompt": "x", "max_tokens": 4097}),
    )
    .unwrap_err();
    assert!(
        mixtral
            .message
            .contains("4097 is not less or equal to 4096")
    );
    let jamba = parse_chat(
        Family::Ai21Jamba,
        "ai21.jamba-1-5-mini-v1:0",
        &json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 4097}),
    )
    .unwrap_err();
    assert!(jamba.message.contains("4097 is not less or equal to 4096"));
}

#[test]
fn nova_conversation_rules() {
    let body = |messages: Value| json!({"messages": messages});
    let err = parse_chat(
        Family::Nova,
        "amazon.nova-lite-v1:0",
        &body(json!([{"role": "assistant", "content": [{"text": "Hi"}]}])),
    )
    .unwrap_err();
    assert_eq!(err.message, conversation::MUST_START_WITH_USER);
    let err = parse_chat(
        Family::Nova,
        "amazon.nova-lite-v1:0",
        &body(json!([{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}])),
    )
    .unwrap_err();
    assert_eq!(err.message, conversation::MUST_ALTERNATE);
}
