//! An Anthropic Messages tool round trip (InvokeModel with `anthropic_version`
//! `bedrock-2023-05-31`), rendered for the model: the tool result must reach the chat template
//! as a `tool` message right after the assistant's tool call, and the prompt must show it inside
//! `<tool_response>` before the assistant's next turn; otherwise a model keeps repeating the call.

use basalt_chat::providers::{self, Family};
use basalt_models::chat::template_messages;
use basalt_models::template::ChatTemplate;
use serde_json::{Value, json};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// Qwen2.5-Instruct's chat template (the default local model's `tokenizer.chat_template`).
const QWEN25: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

fn body(calls: Value, results: Value) -> Value {
    json!({
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "tools": [{"name": "get_weather", "description": "Get the current weather for a city.",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}],
        "messages": [
            {"role": "user", "content": "What is the weather in Paris and Rome?"},
            {"role": "assistant", "content": calls},
            {"role": "user", "content": results},
        ],
    })
}

fn tools_of(req: &basalt_chat::ChatRequest) -> Value {
    Value::Array(
        req.tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
            .collect(),
    )
}

fn render(body: &Value) -> (Value, String) {
    let req = providers::parse_chat(Family::Anthropic, MODEL, body).expect("valid body");
    let messages = template_messages(&req).expect("template messages");
    let template = ChatTemplate::new(QWEN25, "", "<|im_end|>").expect("template");
    let prompt = template
        .render(&messages, Some(&tools_of(&req)), true)
        .expect("rendered");
    (messages, prompt)
}

#[test]
fn tool_result_follows_the_assistant_tool_call() {
    let calls = json!([
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_bdrk_01A", "name": "get_weather", "input": {"city": "Paris"}},
    ]);
    // The three shapes of an Anthropic tool_result's content.
    for results in [
        json!([{"type": "tool_result", "tool_use_id": "toolu_bdrk_01A", "content": "{\"temperature_c\": 23}"}]),
        json!([{"type": "tool_result", "tool_use_id": "toolu_bdrk_01A",
                "content": [{"type": "text", "text": "{\"temperature_c\": 23}"}]}]),
    ] {
        let (messages, prompt) = render(&body(calls.clone(), results));
        let list = messages.as_array().unwrap();
        let roles: Vec<&str> = list.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["user", "assistant", "tool"], "{messages:#}");
        let call = &list[1]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "get_weather");
        // An object, which the template's `tojson` writes as the call's JSON.
        assert_eq!(call["function"]["arguments"], json!({"city": "Paris"}));
        assert_eq!(list[1]["content"], "Let me check.");
        assert_eq!(list[2]["content"], "{\"temperature_c\": 23}");
        let turns = "<|im_start|>user\nWhat is the weather in Paris and Rome?<|im_end|>\n\
            <|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n\
            <|im_start|>user\n<tool_response>\n{\"temperature_c\": 23}\n</tool_response><|im_end|>\n\
            <|im_start|>assistant\n";
        assert!(prompt.ends_with(turns), "{prompt}");
        assert!(
            prompt.contains("\"name\": \"get_weather\""),
            "tools in the system turn"
        );
    }
}

#[test]
fn parallel_calls_and_error_results_render_in_order() {
    let calls = json!([
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}},
    ]);
    let results = json!([
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "is_error": true, "content": "unknown city"},
        {"type": "text", "text": "Answer briefly."},
    ]);
    let (messages, prompt) = render(&body(calls, results));
    let list = messages.as_array().unwrap();
    let roles: Vec<&str> = list.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "tool", "user"],
        "{messages:#}"
    );
    assert_eq!(list[1]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(list[2]["content"], "sunny");
    assert_eq!(list[3]["content"], "Error: unknown city");
    assert!(
        prompt.ends_with(
            "</tool_call><|im_end|>\n\
             <|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\nError: unknown city\n</tool_response><|im_end|>\n\
             <|im_start|>user\nAnswer briefly.<|im_end|>\n\
             <|im_start|>assistant\n"
        ),
        "{prompt}"
    );
}
