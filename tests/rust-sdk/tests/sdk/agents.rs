//! The AWS SDK for Rust parsing Basalt's agent streams: InvokeAgent (trace, returnControl
//! and chunk events) and InvokeInlineAgent (a routing supervisor and its collaborator
//! too), on the real local agent model. Skipped when the
//! server binary or the agent model is absent.

use crate::common;
use aws_sdk_bedrockagentruntime::types::{
    ContentBody, FunctionResult, InvocationInputMember, InvocationResultMember, ResponseStream,
    SessionState,
};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const INSTRUCTION: &str = "You are a helpful assistant that answers questions about the weather using the tools you have.";

fn start() -> Option<common::Server> {
    if !common::model_installed("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "the agent model") {
        return None;
    }
    common::start(common::Data::Memory, &[])
}

macro_rules! client {
    ($sdk:ident, $endpoint:expr) => {{
        let conf = $sdk::Config::builder()
            .endpoint_url($endpoint)
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "test", "test", None, None, "static",
            ))
            .build();
        $sdk::Client::from_conf(conf)
    }};
}

/// A bedrock-agent control-plane call as plain HTTP (a Bedrock API key routes it), so that
/// only the runtime's SDK is built for this test.
fn control(endpoint: &str, method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let body = body.to_string();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let (head, mut payload) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 2"), "{method} {path}: {raw}");
    let decoded;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = payload;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        decoded = out;
        payload = &decoded;
    }
    serde_json::from_str(payload).unwrap()
}

/// Everything a stream sent: traces, the calls handed back, the answer, the errors.
#[derive(Default, Debug)]
struct Events {
    traces: usize,
    returned: Vec<(String, String, String)>,
    invocation_id: Option<String>,
    text: String,
    errors: Vec<String>,
}

async fn drain(
    mut stream: aws_sdk_bedrockagentruntime::primitives::event_stream::EventReceiver<
        ResponseStream,
        aws_sdk_bedrockagentruntime::types::error::ResponseStreamError,
    >,
) -> Events {
    let mut out = Events::default();
    loop {
        match stream.recv().await {
            Ok(Some(ResponseStream::Trace(t))) => {
                assert!(t.trace().is_some());
                out.traces += 1;
            }
            Ok(Some(ResponseStream::ReturnControl(rc))) => {
                out.invocation_id = rc.invocation_id().map(str::to_owned);
                for input in rc.invocation_inputs() {
                    if let InvocationInputMember::FunctionInvocationInput(f) = input {
                        let value = f
                            .parameters()
                            .first()
                            .and_then(|p| p.value())
                            .unwrap_or_default();
                        out.returned.push((
                            f.action_group().to_owned(),
                            f.function().unwrap_or_default().to_owned(),
                            value.to_owned(),
                        ));
                    }
                }
            }
            Ok(Some(ResponseStream::Chunk(c))) => {
                out.text
                    .push_str(&String::from_utf8_lossy(c.bytes().unwrap().as_ref()));
            }
            Ok(Some(other)) => out.errors.push(format!("{other:?}")),
            Ok(None) => return out,
            Err(e) => {
                out.errors.push(format!("{e:?}"));
                return out;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_streams_parse_in_the_rust_sdk() {
    let Some(server) = start() else { return };
    let bar = client!(aws_sdk_bedrockagentruntime, &server.endpoint);
    let e = server.endpoint.as_str();
    let agent = control(
        e,
        "PUT",
        "/agents/",
        serde_json::json!({
            "agentName": "rust-sdk-weather", "foundationModel": MODEL, "instruction": INSTRUCTION,
            "agentResourceRoleArn": "arn:aws:iam::000000000000:role/AgentRole",
        }),
    );
    let agent_id = agent["agent"]["agentId"].as_str().unwrap().to_owned();
    assert_eq!(agent_id.len(), 10);
    control(
        e,
        "PUT",
        &format!("/agents/{agent_id}/agentversions/DRAFT/actiongroups/"),
        serde_json::json!({
            "actionGroupName": "weather",
            "actionGroupExecutor": {"customControl": "RETURN_CONTROL"},
            "functionSchema": {"functions": [{
                "name": "get_weather", "description": "Get the current weather of a city.",
                "parameters": {"city": {"type": "string", "description": "The city, e.g. Paris", "required": true}},
            }]},
        }),
    );
    let prepared = control(
        e,
        "POST",
        &format!("/agents/{agent_id}/"),
        serde_json::json!({}),
    );
    assert_eq!(prepared["agentVersion"], "DRAFT");

    let out = bar
        .invoke_agent()
        .agent_id(&agent_id)
        .agent_alias_id("TSTALIASID")
        .session_id("rust-1")
        .enable_trace(true)
        .input_text("What is the weather in Paris right now?")
        .send()
        .await
        .unwrap();
    assert_eq!(out.session_id(), "rust-1");
    assert_eq!(out.content_type(), "application/json");
    let first = drain(out.completion).await;
    assert!(first.errors.is_empty(), "{first:?}");
    assert!(first.traces >= 3, "{first:?}");
    assert_eq!(first.returned.len(), 1, "{first:?}");
    let (group, function, city) = &first.returned[0];
    assert_eq!(
        (group.as_str(), function.as_str()),
        ("weather", "get_weather")
    );
    assert!(city.to_lowercase().contains("paris"), "{first:?}");

    let result = InvocationResultMember::FunctionResult(
        FunctionResult::builder()
            .action_group("weather")
            .function("get_weather")
            .response_body(
                "TEXT",
                ContentBody::builder()
                    .body("Paris: 18 degrees Celsius and sunny.")
                    .build(),
            )
            .build()
            .unwrap(),
    );
    let out = bar
        .invoke_agent()
        .agent_id(&agent_id)
        .agent_alias_id("TSTALIASID")
        .session_id("rust-1")
        .session_state(
            SessionState::builder()
                .set_invocation_id(first.invocation_id.clone())
                .return_control_invocation_results(result)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let second = drain(out.completion).await;
    assert!(second.errors.is_empty(), "{second:?}");
    assert!(second.text.contains("18"), "{second:?}");

    // InvokeInlineAgent's stream (another union) parses too.
    let out =
        bar.invoke_inline_agent()
            .session_id("rust-inline-1")
            .foundation_model(MODEL)
            .instruction(INSTRUCTION)
            .input_text("What is the weather in Rome?")
            .action_groups(
                aws_sdk_bedrockagentruntime::types::AgentActionGroup::builder()
                    .action_group_name("weather")
                    .action_group_executor(
                        aws_sdk_bedrockagentruntime::types::ActionGroupExecutor::CustomControl(
                            aws_sdk_bedrockagentruntime::types::CustomControlMethod::ReturnControl,
                        ),
                    )
                    .function_schema(
                        aws_sdk_bedrockagentruntime::types::FunctionSchema::Functions(
                            vec![aws_sdk_bedrockagentruntime::types::FunctionDefinition::builder()
                        .name("get_weather")
                        .description("Get the current weather of a city.")
                        .parameters(
                            "city",
                            aws_sdk_bedrockagentruntime::types::ParameterDetail::builder()
                                .r#type(aws_sdk_bedrockagentruntime::types::ParameterType::String)
                                .required(true)
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap()],
                        ),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    let mut stream = out.completion;
    let mut returned = false;
    while let Some(ev) = stream.recv().await.unwrap() {
        if let aws_sdk_bedrockagentruntime::types::InlineAgentResponseStream::ReturnControl(rc) = ev
        {
            returned = !rc.invocation_inputs().is_empty();
        }
    }
    assert!(returned);

    // A routing supervisor's stream: its routing classifier's traces and its collaborator's
    // traces, tagged with the collaborator's name.
    use aws_sdk_bedrockagentruntime::types::{
        AgentCollaboration, Collaborator, CollaboratorConfiguration, InlineAgentResponseStream,
        Trace,
    };
    let out = bar
        .invoke_inline_agent()
        .session_id("rust-team-1")
        .foundation_model(MODEL)
        .instruction("You are the front desk of a travel company; your team answers the customers.")
        .agent_collaboration(AgentCollaboration::SupervisorRouter)
        .collaborator_configurations(
            CollaboratorConfiguration::builder()
                .collaborator_name("forecaster")
                .collaborator_instruction("Answers every question about the weather.")
                .build()
                .unwrap(),
        )
        .collaborators(
            Collaborator::builder()
                .agent_name("forecaster")
                .foundation_model(MODEL)
                .instruction("You are a weather assistant. The weather is sunny and 21 degrees in every city today.")
                .build()
                .unwrap(),
        )
        .enable_trace(true)
        .input_text("What is the weather in Rome?")
        .send()
        .await
        .unwrap();
    let mut stream = out.completion;
    let (mut routed, mut tagged, mut text) = (false, false, String::new());
    while let Some(ev) = stream.recv().await.unwrap() {
        match ev {
            InlineAgentResponseStream::Trace(t) => {
                routed |= matches!(t.trace(), Some(Trace::RoutingClassifierTrace(_)));
                tagged |= t.collaborator_name() == Some("forecaster");
            }
            InlineAgentResponseStream::Chunk(c) => {
                text.push_str(&String::from_utf8_lossy(c.bytes().unwrap().as_ref()))
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(
        routed && tagged && !text.is_empty(),
        "{routed} {tagged} {text:?}"
    );

    // An unknown agent is an error before the stream.
    let err = bar
        .invoke_agent()
        .agent_id("NOSUCHAGNT")
        .agent_alias_id("TSTALIASID")
        .session_id("rust-2")
        .input_text("hi")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.into_service_error().is_resource_not_found_exception(),
        "not a ResourceNotFoundException"
    );
}
