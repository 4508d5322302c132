//! One turn of an agent: guardrail on the input, optional pre-processing, the
//! orchestration loop (the model calls tools through Converse, each call decoded under a
//! grammar from the tool's schema; Basalt runs the call and feeds the result back), optional
//! post-processing, guardrail on the answer. Every step can be traced; the events go out
//! as they happen.

use super::checks::{
    INVENTED_MARK, calls_in_text, invented, invented_in_text, text_of, text_of_messages,
};
use super::collaborate::Collaborator;
use super::lambda::{self, Caller};
use super::parser::parser_of;
use super::prompts::{self, fill};
use super::schema::{Action, Tool, parameter_list};
use super::sessions::{Pending, PendingCall, SessionRec, save_session};
use crate::KnowledgeBases;
use basalt_core::{AwsError, RequestContext, StreamEvent};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Steps of one turn before the agent must answer (each step is one model call).
pub const MAX_STEPS: u32 = 10;
/// Passages a knowledge base search returns to the model.
const KB_RESULTS: usize = 5;

/// An agent as it runs: a prepared version behind an alias, or an inline definition.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub alias: String,
    pub version: String,
    pub name: String,
    pub instruction: String,
    pub model: String,
    /// `{guardrailIdentifier, guardrailVersion}`, or null.
    pub guardrail: Value,
    pub prompts: Value,
    /// `memoryConfiguration`, or null when session summaries are off.
    pub memory: Value,
    pub idle_ttl: u64,
    pub tools: Vec<Tool>,
    pub inline: bool,
    /// SUPERVISOR_ROUTER: each request first goes to the one collaborator it belongs to.
    pub router: bool,
    /// A supervisor's team (empty otherwise); `tools` holds one tool for each.
    pub collaborators: Vec<Collaborator>,
}

pub type Events = mpsc::UnboundedSender<Result<StreamEvent, AwsError>>;

/// The agent's error for a Lambda function that could not be invoked, split as Bedrock
/// splits it: the service behind the function failing is a bad gateway (worth a retry), the
/// function or its configuration a failed dependency.
fn not_invoked(arn: &str, e: &AwsError) -> AwsError {
    let (status, code) = if e.status >= 500 {
        (502, "BadGatewayException")
    } else {
        (424, "DependencyFailedException")
    };
    let mut d = AwsError::new(
        status,
        code,
        format!(
            "The Lambda function {arn} could not be invoked: {}",
            e.message
        ),
    );
    d.fields.insert("resourceName".into(), "Lambda".into());
    d
}

/// How a collaborator's turn ended.
pub(super) struct Collaborated {
    pub(super) result: Result<(), AwsError>,
    pub(super) session_attributes: Map<String, Value>,
    pub(super) prompt_session_attributes: Map<String, Value>,
}

pub struct Run {
    pub k: Arc<KnowledgeBases>,
    pub ctx: RequestContext,
    pub agent: Agent,
    pub session_id: String,
    pub session_key: String,
    pub session: SessionRec,
    pub input_text: String,
    pub trace: bool,
    pub end_session: bool,
    /// Results of a returned control, to resume the pending turn with.
    pub results: Option<Vec<Value>>,
    /// Summaries of earlier sessions, newest first.
    pub memory_content: Vec<String>,
    pub events: Events,
    pub trace_id: String,
    /// An earlier session of this id that expired, to summarize into memory first.
    pub expired: Option<SessionRec>,
    /// The alias ARNs of the supervisors above this agent and its own, when it works in a
    /// team (the traces' `callerChain`).
    pub chain: Vec<String>,
    /// The name this agent has as a collaborator of the agent that called it.
    pub collaborator: Option<String>,
    /// `streamingConfigurations.streamFinalResponse`: the answer goes out in chunks of this
    /// many characters (`applyGuardrailInterval`, 50 by default) instead of in one.
    pub stream_chunk: Option<usize>,
}

/// The member of the agent's response stream an error is reported as.
fn error_member(code: &str) -> &'static str {
    match code {
        "ValidationException" => "validationException",
        "ResourceNotFoundException" => "resourceNotFoundException",
        "ThrottlingException" => "throttlingException",
        "ConflictException" => "conflictException",
        "AccessDeniedException" => "accessDeniedException",
        "ServiceQuotaExceededException" => "serviceQuotaExceededException",
        "DependencyFailedException" => "dependencyFailedException",
        "BadGatewayException" => "badGatewayException",
        _ => "internalServerException",
    }
}

fn usage_of(out: &Value) -> Value {
    json!({
        "inputTokens": out["usage"]["inputTokens"],
        "outputTokens": out["usage"]["outputTokens"],
    })
}

/// What one model call returned.
pub(super) struct Reply {
    pub(super) content: Vec<Value>,
    pub(super) usage: Value,
}

/// How a turn ended.
enum Outcome {
    Answer(String),
    /// Control went back to the caller; nothing else is sent.
    Returned,
}

impl Run {
    pub(super) fn send(&self, name: &str, value: Value) {
        let _ = self.events.send(Ok(StreamEvent {
            name: name.into(),
            value,
        }));
    }

    pub(super) fn trace_step(&self, trace: Value) {
        if !self.trace {
            return;
        }
        let mut part = json!({
            "sessionId": self.session_id,
            "eventTime": self.k.now_ms() as f64 / 1000.0,
            "trace": trace,
        });
        if !self.agent.inline {
            part["agentId"] = self.agent.id.clone().into();
            part["agentAliasId"] = self.agent.alias.clone().into();
            part["agentVersion"] = self.agent.version.clone().into();
        }
        // Inline agents have no alias ARN to name.
        let chain: Vec<Value> = self
            .chain
            .iter()
            .filter(|arn| !arn.is_empty())
            .map(|arn| json!({"agentAliasArn": arn}))
            .collect();
        if !chain.is_empty() {
            part["callerChain"] = chain.into();
        }
        if let Some(name) = &self.collaborator {
            part["collaboratorName"] = name.clone().into();
        }
        self.send("trace", part);
    }

    pub(super) fn step_id(&self, step: u32) -> String {
        format!("{}-{step}", self.trace_id)
    }

    pub(super) async fn converse(
        &self,
        system: &str,
        messages: &[Value],
        tools: &[Tool],
        step: &str,
        only: Option<&str>,
    ) -> Result<Reply, AwsError> {
        let mut input = json!({
            "modelId": self.agent.model,
            "system": [{"text": system}],
            "messages": messages,
            "inferenceConfig": prompts::inference(&self.agent.prompts, step, prompts::DEFAULT_MAX_TOKENS),
        });
        input[basalt_bedrock_runtime::LocalChat::MEMBER] = "agent".into();
        if !tools.is_empty() {
            input["toolConfig"] =
                json!({"tools": tools.iter().map(Tool::spec).collect::<Vec<_>>()});
            if let Some(name) = only {
                input["toolConfig"]["toolChoice"] = json!({"tool": {"name": name}});
            } else if tools.iter().any(|t| t.action == Action::Answer) {
                input["toolConfig"]["toolChoice"] = json!({"any": {}});
            }
        }
        let out = self
            .k
            .registry()?
            .call(&self.ctx, "bedrock-runtime", "Converse", input)
            .await?
            .body;
        Ok(Reply {
            content: out["output"]["message"]["content"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            usage: usage_of(&out),
        })
    }

    pub(super) fn model_input_trace(
        &self,
        step: &str,
        system: &str,
        messages: &[Value],
        id: &str,
    ) -> Value {
        let text = json!({"system": system, "messages": messages}).to_string();
        let mut trace = json!({
            "traceId": id,
            "text": text,
            "type": step,
            "foundationModel": self.agent.model,
            "inferenceConfiguration": prompts::trace_inference(&self.agent.prompts, step),
            "promptCreationMode": if prompts::overridden(&self.agent.prompts, step) { "OVERRIDDEN" } else { "DEFAULT" },
        });
        match parser_of(&self.agent.prompts, step) {
            Some(arn) => {
                trace["parserMode"] = "OVERRIDDEN".into();
                trace["overrideLambda"] = arn.into();
            }
            None => trace["parserMode"] = "DEFAULT".into(),
        }
        trace
    }

    /// A single-prompt step (pre- and post-processing, summaries): its text answer.
    pub(super) async fn ask(
        &self,
        step: &str,
        prompt: String,
    ) -> Result<(String, Value), AwsError> {
        let messages = vec![json!({"role": "user", "content": [{"text": prompt}]})];
        let reply = self.converse("", &messages, &[], step, None).await?;
        Ok((text_of(&reply.content), reply.usage))
    }

    /// Runs the turn and reports its failure in the stream, as Bedrock does once the
    /// response has started.
    pub async fn run(mut self) {
        if let Err(e) = self.execute().await {
            let mut value = Map::new();
            value.insert("message".into(), e.message.clone().into());
            value.extend(e.fields.clone());
            let member = error_member(&e.code);
            self.send(member, Value::Object(value));
        }
    }

    async fn execute(&mut self) -> Result<(), AwsError> {
        if let Some(old) = self.expired.take()
            && let Err(e) = self.summarize(&old).await
        {
            tracing::warn!(error = %e.message, "agent session summary failed");
        }
        match self.turn().await {
            Ok(()) if self.end_session => self.end().await,
            other => other,
        }
    }

    /// The turn of a collaborator, whose failure is its supervisor's, and the session
    /// attributes it ended with (its Lambda functions may change them). Boxed: a
    /// supervisor's turn runs its collaborators' turns.
    pub(super) fn execute_boxed(self) -> futures::future::BoxFuture<'static, Collaborated> {
        Box::pin(async move {
            let mut run = self;
            let result = run.execute().await;
            Collaborated {
                result,
                session_attributes: run.session.session_attributes,
                prompt_session_attributes: run.session.prompt_session_attributes,
            }
        })
    }

    pub(super) fn system_prompt(&self) -> String {
        let kb_guideline = if self
            .agent
            .tools
            .iter()
            .any(|t| matches!(t.action, Action::KnowledgeBase { .. }))
        {
            "- Search the knowledge base for facts you do not know, and base your answer on the passages it returns.\n"
        } else {
            ""
        };
        let team_guideline = if self.agent.collaborators.is_empty() {
            ""
        } else {
            "- Send each part of the request to the agent of your team it belongs to, with every detail it needs, and answer from their replies.\n"
        };
        let guidelines = format!("{kb_guideline}{team_guideline}");
        let attrs: String = self
            .session
            .prompt_session_attributes
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", super::schema::value_text(v)))
            .collect();
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!("\nFacts about this session:\n{attrs}")
        };
        let memory = if self.memory_content.is_empty() {
            String::new()
        } else {
            format!(
                "\nSummaries of your earlier sessions with this user, newest first:\n{}\n",
                self.memory_content.join("\n")
            )
        };
        fill(
            &prompts::template(&self.agent.prompts, prompts::ORCHESTRATION),
            &[
                ("instruction", &self.agent.instruction),
                ("knowledge_base_guideline", &guidelines),
                ("prompt_session_attributes", &attrs),
                ("memory_content", &memory),
                ("tools", &self.tools_text()),
                ("question", &self.input_text),
                ("conversation_history", &self.session.transcript()),
                ("agent_scratchpad", ""),
            ],
        )
        .trim()
        .to_owned()
    }

    fn caller(&self) -> Caller<'_> {
        Caller {
            agent_name: &self.agent.name,
            agent_id: &self.agent.id,
            alias: &self.agent.alias,
            version: &self.agent.version,
            session_id: &self.session_id,
            input_text: &self.input_text,
            session_attributes: &self.session.session_attributes,
            prompt_session_attributes: &self.session.prompt_session_attributes,
        }
    }

    /// Invokes the Lambda function `arn` with `event`; the bytes it answered. A function
    /// that cannot be invoked or that fails is the agent's dependency failure.
    pub(super) async fn invoke_lambda(
        &self,
        arn: &str,
        event: &Value,
    ) -> Result<Vec<u8>, AwsError> {
        let payload = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            event.to_string(),
        );
        let out = self
            .k
            .registry()?
            .call(
                &self.ctx,
                "lambda",
                "Invoke",
                json!({"FunctionName": arn, "Payload": payload}),
            )
            .await
            .map_err(|e| not_invoked(arn, &e))?
            .body;
        let raw = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            out["Payload"].as_str().unwrap_or_default(),
        )
        .unwrap_or_default();
        if out.get("FunctionError").is_some_and(|v| !v.is_null()) {
            return Err(lambda::function_error(arn, &raw));
        }
        Ok(raw)
    }

    async fn call_lambda(
        &mut self,
        arn: &str,
        action: &Action,
        args: &Value,
    ) -> Result<String, AwsError> {
        let event = lambda::event(&self.caller(), action, args);
        let raw = self.invoke_lambda(arn, &event).await?;
        let answer = lambda::parse_response(arn, &raw)?;
        if let Some(a) = answer.session_attributes {
            self.session.session_attributes = a;
        }
        if let Some(a) = answer.prompt_session_attributes {
            self.session.prompt_session_attributes = a;
        }
        Ok(answer.text)
    }

    /// Runs a knowledge base search or a Lambda action, traced; what it observed.
    pub(super) async fn run_action(
        &mut self,
        id: &str,
        tool: &Tool,
        args: &Value,
        references: &mut Vec<Value>,
    ) -> Result<String, AwsError> {
        self.trace_step(json!({"orchestrationTrace": {"invocationInput": self.invocation_trace(id, tool, args)}}));
        match &tool.action {
            Action::KnowledgeBase { id: kb, retrieval } => {
                let query = args["searchQuery"].as_str().unwrap_or_default().to_owned();
                let found = self.search(kb, retrieval, &query).await?;
                self.trace_step(json!({"orchestrationTrace": {"observation": {
                    "traceId": id, "type": "KNOWLEDGE_BASE",
                    "knowledgeBaseLookupOutput": {"retrievedReferences": found},
                }}}));
                let text = if found.is_empty() {
                    "The search found nothing.".to_owned()
                } else {
                    found
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            format!(
                                "[{}] {}",
                                i + 1,
                                r["content"]["text"].as_str().unwrap_or_default()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                references.extend(found);
                Ok(text)
            }
            Action::Function {
                lambda: Some(arn), ..
            }
            | Action::Api {
                lambda: Some(arn), ..
            } => {
                let arn = arn.clone();
                let text = self.call_lambda(&arn, &tool.action, args).await?;
                self.trace_step(json!({"orchestrationTrace": {"observation": {
                    "traceId": id, "type": "ACTION_GROUP",
                    "actionGroupInvocationOutput": {"text": text},
                }}}));
                Ok(text)
            }
            _ => Err(AwsError::validation(format!(
                "The action {} returns control to the caller, which Basalt does not do under a parser Lambda function.",
                tool.name
            ))),
        }
    }

    fn invocation_trace(&self, id: &str, tool: &Tool, args: &Value) -> Value {
        match &tool.action {
            Action::KnowledgeBase { id: kb, .. } => json!({
                "traceId": id, "invocationType": "KNOWLEDGE_BASE",
                "knowledgeBaseLookupInput": {"knowledgeBaseId": kb, "text": args["searchQuery"]},
            }),
            Action::Function {
                group,
                function,
                params,
                lambda,
            } => json!({
                "traceId": id, "invocationType": "ACTION_GROUP",
                "actionGroupInvocationInput": {
                    "actionGroupName": group, "function": function,
                    "parameters": parameter_list(params, args),
                    "executionType": if lambda.is_some() { "LAMBDA" } else { "RETURN_CONTROL" },
                },
            }),
            Action::Api {
                group,
                path,
                method,
                params,
                lambda,
                ..
            } => {
                let mut input = json!({
                    "actionGroupName": group, "apiPath": path, "verb": method,
                    "parameters": parameter_list(params, args),
                    "executionType": if lambda.is_some() { "LAMBDA" } else { "RETURN_CONTROL" },
                });
                // The trace's request body maps each content type to its parameter list.
                if let Some(b) = lambda::request_body(&tool.action, args) {
                    let content: Map<String, Value> = b["content"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(ctype, media)| (ctype.clone(), media["properties"].clone()))
                        .collect();
                    input["requestBody"] = json!({"content": content});
                }
                json!({"traceId": id, "invocationType": "ACTION_GROUP", "actionGroupInvocationInput": input})
            }
            Action::Collaborator { index } => self.collaborator_input(
                &self.agent.collaborators[*index],
                id,
                args["message"].as_str().unwrap_or_default(),
            ),
            Action::AskUser | Action::Answer => json!({"traceId": id, "invocationType": "FINISH"}),
        }
    }

    async fn search(
        &self,
        kb: &str,
        retrieval: &Value,
        query: &str,
    ) -> Result<Vec<Value>, AwsError> {
        let rec = crate::knowledge_bases::must_load(&self.k, &self.ctx, kb)?;
        let config = &retrieval["vectorSearchConfiguration"];
        let n = config["numberOfResults"]
            .as_u64()
            .map_or(KB_RESULTS, |n| n as usize);
        let found = crate::retrieve::search(&self.k, &self.ctx, &rec, query, config, n).await?;
        Ok(found.iter().map(|f| f.reference()).collect())
    }

    /// The invocation inputs of a return of control for `calls`.
    fn return_control(&self, invocation_id: &str, calls: &[(String, Tool, Value)]) -> Value {
        let inputs: Vec<Value> = calls
            .iter()
            .map(|(_, tool, args)| {
                let mut call = lambda::invocation(&tool.action, args);
                call["actionInvocationType"] = "RESULT".into();
                call["agentId"] = self.agent.id.clone().into();
                let member = match &tool.action {
                    Action::Api { .. } => "apiInvocationInput",
                    _ => "functionInvocationInput",
                };
                json!({ member: call })
            })
            .collect();
        json!({"invocationId": invocation_id, "invocationInputs": inputs})
    }

    /// The tool results of a returned control, matched to the calls that were handed out.
    fn returned_results(pending: &Pending, results: &[Value]) -> Result<Vec<Value>, AwsError> {
        let mut out = pending.done.clone();
        for (i, call) in pending.calls.iter().enumerate() {
            let found = results
                .iter()
                .find(|r| {
                    let r = r.get("functionResult").or_else(|| r.get("apiResult")).unwrap_or(&Value::Null);
                    r["actionGroup"] == call.group.as_str()
                        && (call.function.is_none() || r["function"] == call.function.as_deref().unwrap_or_default())
                        && (call.api_path.is_none() || r["apiPath"] == call.api_path.as_deref().unwrap_or_default())
                })
                .or_else(|| results.get(i))
                .ok_or_else(|| {
                    AwsError::validation(format!(
                        "sessionState.returnControlInvocationResults has no result for the call of {} in action group {}.",
                        call.function.as_deref().or(call.api_path.as_deref()).unwrap_or_default(),
                        call.group
                    ))
                })?;
            let r = found
                .get("functionResult")
                .or_else(|| found.get("apiResult"))
                .unwrap_or(&Value::Null);
            let text = r["responseBody"]
                .as_object()
                .and_then(|m| m.values().next())
                .map(|c| super::schema::value_text(&c["body"]))
                .unwrap_or_default();
            let failed = r["responseState"] == "FAILURE";
            out.push(json!({"toolResult": {
                "toolUseId": call.tool_use_id,
                "content": [{"text": text}],
                "status": if failed { "error" } else { "success" },
            }}));
        }
        Ok(out)
    }

    /// The orchestration loop. `messages` ends with a user message.
    async fn orchestrate(
        &mut self,
        mut messages: Vec<Value>,
        mut step: u32,
        mut references: Vec<Value>,
    ) -> Result<(Outcome, Vec<Value>), AwsError> {
        if let Some(arn) = parser_of(&self.agent.prompts, prompts::ORCHESTRATION) {
            let (answer, references) = self
                .orchestrate_parsed(&arn, messages, step, references)
                .await?;
            return Ok((Outcome::Answer(answer), references));
        }
        let system = self.system_prompt();
        let mut tools = self.agent.tools.clone();
        tools.push(super::schema::answer_tool(&tools));
        // Calls already made in this turn and their results: a small model sometimes asks
        // again for what it has, and the answer is the same.
        let mut made: Vec<(String, Value, String)> = Vec::new();
        let has_kb = tools
            .iter()
            .any(|t| matches!(t.action, Action::KnowledgeBase { .. }));
        // Steps in a row that ran nothing new (repeated or refused calls): after two, the
        // next step must answer.
        let mut idle_steps = 0;
        // Set when a step only repeated calls already made: the next step must answer.
        let mut force_answer = false;
        let mut answer_checked = false;
        let answer_name = tools
            .iter()
            .find(|t| t.action == Action::Answer)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        // What the agent may take values from: its instruction, the conversation, the
        // session's attributes and every result so far.
        // The tools' descriptions and schemas count: a value an enum or a description offers
        // is not made up.
        let mut known = format!(
            "{}\n{}\n{}",
            self.agent.instruction,
            self.tools_text(),
            text_of_messages(&messages)
        );
        for v in self
            .session
            .session_attributes
            .values()
            .chain(self.session.prompt_session_attributes.values())
        {
            known.push_str(&super::schema::value_text(v));
            known.push('\n');
        }
        let mut known = known.to_lowercase();
        while step < MAX_STEPS {
            let id = self.step_id(step);
            step += 1;
            self.trace_step(json!({"orchestrationTrace": {"modelInvocationInput":
                self.model_input_trace(prompts::ORCHESTRATION, &system, &messages, &id)}}));
            let reply = self
                .converse(
                    &system,
                    &messages,
                    &tools,
                    prompts::ORCHESTRATION,
                    force_answer.then_some(answer_name.as_str()),
                )
                .await?;
            self.trace_step(json!({"orchestrationTrace": {"modelInvocationOutput": {
                "traceId": id,
                "rawResponse": {"content": Value::Array(reply.content.clone()).to_string()},
                "metadata": {"usage": reply.usage},
            }}}));
            let mut content = reply.content;
            let mut text = text_of(&content);
            let mut uses: Vec<Value> = content
                .iter()
                .filter_map(|b| b.get("toolUse").cloned())
                .collect();
            if uses.is_empty()
                && let Some(calls) = calls_in_text(&text, &tools)
            {
                // The model wrote its calls as text instead of in its tool-call format
                // (small Qwen models do after a tool result): they are calls all the same.
                content = calls.iter().map(|u| json!({"toolUse": u})).collect();
                uses = calls;
                text = String::new();
            }
            let answering = match uses.as_slice() {
                [] => Some(text.as_str()),
                [only]
                    if tools
                        .iter()
                        .any(|t| t.action == Action::Answer && only["name"] == t.name.as_str()) =>
                {
                    only["input"]["answer"].as_str()
                }
                _ => None,
            };
            if answering.is_some_and(|a| a.contains(INVENTED_MARK)) {
                // The model answered with the loop's own complaint: the answer comes from
                // the results instead.
                break;
            }
            if uses.is_empty() {
                self.trace_step(json!({"orchestrationTrace": {"observation": {
                    "traceId": id, "type": "FINISH", "finalResponse": {"text": text},
                }}}));
                return Ok((Outcome::Answer(text), references));
            }
            if !text.is_empty() {
                self.trace_step(
                    json!({"orchestrationTrace": {"rationale": {"traceId": id, "text": text}}}),
                );
            }
            // The answer, when it is the only call (next to other calls it waits for them).
            if let [only] = uses.as_slice()
                && tools
                    .iter()
                    .any(|t| t.action == Action::Answer && only["name"] == t.name.as_str())
            {
                let answer = only["input"]["answer"].as_str().unwrap_or_default().trim();
                if !answer.is_empty()
                    && !answer_checked
                    && let Some(error) = invented_in_text(answer, &known)
                {
                    // Once per turn: an answer quoting an id or a number that no result
                    // gave goes back to the model.
                    answer_checked = true;
                    force_answer = false;
                    self.trace_step(json!({"orchestrationTrace": {"observation": {
                        "traceId": id, "type": "REPROMPT", "repromptResponse": {"text": error, "source": "PARSER"},
                    }}}));
                    let use_id = only["toolUseId"].as_str().unwrap_or_default();
                    messages.push(json!({"role": "assistant", "content": content}));
                    messages.push(json!({"role": "user", "content": [
                        {"toolResult": {"toolUseId": use_id, "status": "error", "content": [{"text": error}]}},
                    ]}));
                    continue;
                }
                if !answer.is_empty() {
                    self.trace_step(json!({"orchestrationTrace": {"observation": {
                        "traceId": id, "type": "FINISH", "finalResponse": {"text": answer},
                    }}}));
                    return Ok((Outcome::Answer(answer.to_owned()), references));
                }
            }
            messages.push(json!({"role": "assistant", "content": content}));
            let mut results: Vec<Value> = Vec::new();
            let mut handed: Vec<(String, Tool, Value)> = Vec::new();
            let mut fresh = false;
            for u in &uses {
                let use_id = u["toolUseId"].as_str().unwrap_or_default().to_owned();
                let name = u["name"].as_str().unwrap_or_default();
                let args = u["input"].clone();
                let Some(tool) = tools
                    .iter()
                    .find(|t| t.name == name && t.action != Action::Answer)
                    .cloned()
                else {
                    results.push(
                        json!({"toolResult": {"toolUseId": use_id, "status": "error",
                        "content": [{"text": format!("There is no function named {name}.")}]}}),
                    );
                    continue;
                };
                let mut args = args;
                let required = tool.schema["required"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(error) = invented(&mut args, &required, &known, has_kb) {
                    // Not run: a small model fills an id it has not seen yet with a guess
                    // instead of calling the function that returns it (or asking).
                    self.trace_step(json!({"orchestrationTrace": {"observation": {
                        "traceId": id, "type": "REPROMPT", "repromptResponse": {"text": error, "source": "PARSER"},
                    }}}));
                    results.push(json!({"toolResult": {"toolUseId": use_id, "status": "error", "content": [{"text": error}]}}));
                    continue;
                }
                if let Some((_, _, earlier)) = made.iter().find(|(n, a, _)| n == name && *a == args)
                {
                    // The same call again: the same result, without running it again.
                    results.push(json!({"toolResult": {"toolUseId": use_id, "content": [{"text": earlier}]}}));
                    continue;
                }
                fresh = true;
                let observation = match &tool.action {
                    // Filtered out above: an answer next to other calls waits for them.
                    Action::Answer => continue,
                    Action::AskUser => {
                        self.trace_step(json!({"orchestrationTrace": {"invocationInput": self.invocation_trace(&id, &tool, &args)}}));
                        let question = args["question"].as_str().unwrap_or_default().to_owned();
                        self.trace_step(json!({"orchestrationTrace": {"observation": {
                            "traceId": id, "type": "ASK_USER", "finalResponse": {"text": question},
                        }}}));
                        return Ok((Outcome::Answer(question), references));
                    }
                    // collaborate() traces the call under the member its caller names (a
                    // router's call is a routingClassifierTrace).
                    Action::Collaborator { index } => {
                        let message = args["message"].as_str().unwrap_or_default();
                        let (text, found) = self
                            .collaborate(*index, message, &id, "orchestrationTrace")
                            .await?;
                        references.extend(found);
                        text
                    }
                    Action::Function { lambda: None, .. } | Action::Api { lambda: None, .. } => {
                        self.trace_step(json!({"orchestrationTrace": {"invocationInput": self.invocation_trace(&id, &tool, &args)}}));
                        handed.push((use_id.clone(), tool.clone(), args.clone()));
                        continue;
                    }
                    _ => self.run_action(&id, &tool, &args, &mut references).await?,
                };
                known.push_str(&observation.to_lowercase());
                known.push('\n');
                made.push((name.to_owned(), args.clone(), observation.clone()));
                results.push(json!({"toolResult": {"toolUseId": use_id, "content": [{"text": observation}]}}));
            }
            if !handed.is_empty() {
                if let Some(name) = &self.collaborator {
                    // Nothing is saved: the supervisor's turn fails as a whole.
                    return Err(AwsError::validation(format!(
                        "The collaborator {name} called {}, whose action group returns control to its caller; Basalt does not relay a collaborator's return of control through its supervisor.",
                        handed[0].1.name
                    )));
                }
                let invocation_id = uuid::Uuid::new_v4().to_string();
                let payload = self.return_control(&invocation_id, &handed);
                self.session.pending = Some(Pending {
                    invocation_id,
                    input_text: self.input_text.clone(),
                    messages,
                    calls: handed
                        .iter()
                        .map(|(use_id, tool, _)| PendingCall {
                            tool_use_id: use_id.clone(),
                            tool: tool.name.clone(),
                            group: tool.group().unwrap_or_default().to_owned(),
                            function: match &tool.action {
                                Action::Function { function, .. } => Some(function.clone()),
                                _ => None,
                            },
                            api_path: match &tool.action {
                                Action::Api { path, .. } => Some(path.clone()),
                                _ => None,
                            },
                        })
                        .collect(),
                    done: results,
                    steps: step,
                    references,
                });
                self.session.last_ms = self.k.now_ms();
                save_session(&self.k, &self.session_key, &self.session)?;
                self.send("returnControl", payload);
                return Ok((Outcome::Returned, Vec::new()));
            }
            let mut content = results;
            content
                .push(json!({"text": fill(prompts::CONTINUE, &[("question", &self.input_text)])}));
            messages.push(json!({"role": "user", "content": content}));
            if force_answer {
                break;
            }
            idle_steps = if fresh { 0 } else { idle_steps + 1 };
            force_answer = idle_steps >= 2;
        }
        let answer = self.wrap_up(&system, &messages, !made.is_empty()).await?;
        Ok((Outcome::Answer(answer), references))
    }

    async fn turn(&mut self) -> Result<(), AwsError> {
        let (outcome, references, messages) = match (
            self.session.pending.take(),
            self.results.take(),
        ) {
            (Some(pending), Some(results)) => {
                self.input_text = pending.input_text.clone();
                let mut messages = pending.messages.clone();
                messages.push(
                    json!({"role": "user", "content": Self::returned_results(&pending, &results)?}),
                );
                let (o, r) = self
                    .orchestrate(messages.clone(), pending.steps, pending.references.clone())
                    .await?;
                (o, r, messages)
            }
            (_, Some(_)) => {
                return Err(AwsError::validation(
                    "sessionState.returnControlInvocationResults was sent, but the session is not waiting for the results of a returned control.",
                ));
            }
            (_, None) => {
                if let Some(blocked) = self.guard("INPUT", &self.input_text).await? {
                    return self.finish(blocked, Vec::new());
                }
                if prompts::enabled(&self.agent.prompts, prompts::PRE_PROCESSING)
                    && !self.preprocess().await?
                {
                    return self.finish(
                        "Sorry, I am unable to assist you with this request.".into(),
                        Vec::new(),
                    );
                }
                let mut messages = Vec::new();
                for (q, a) in &self.session.turns {
                    messages.push(json!({"role": "user", "content": [{"text": q}]}));
                    messages.push(json!({"role": "assistant", "content": [{"text": a}]}));
                }
                messages.push(json!({"role": "user", "content": [{"text": self.input_text}]}));
                let routed = if self.agent.router {
                    self.route().await?
                } else {
                    None
                };
                let (o, r) = match routed {
                    Some((answer, found)) => (Outcome::Answer(answer), found),
                    None => self.orchestrate(messages.clone(), 0, Vec::new()).await?,
                };
                (o, r, messages)
            }
        };
        let mut answer = match outcome {
            Outcome::Returned => return Ok(()),
            Outcome::Answer(a) => a,
        };
        if prompts::enabled(&self.agent.prompts, prompts::POST_PROCESSING) {
            answer = self.postprocess(&answer, &messages).await?;
        }
        if let Some(blocked) = self.guard("OUTPUT", &answer).await? {
            return self.finish(blocked, Vec::new());
        }
        self.finish(answer, references)
    }

    /// Sends the answer and records the turn.
    fn finish(&mut self, answer: String, references: Vec<Value>) -> Result<(), AwsError> {
        let encode = |s: &str| {
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s.as_bytes())
        };
        let mut chunks: Vec<Value> = match self.stream_chunk {
            Some(n) => split_chars(&answer, n)
                .into_iter()
                .map(|part| json!({"bytes": encode(part)}))
                .collect(),
            None => vec![json!({"bytes": encode(&answer)})],
        };
        if !references.is_empty()
            && let Some(last) = chunks.last_mut()
        {
            last["attribution"] = json!({"citations": [{
                "generatedResponsePart": {"textResponsePart": {
                    "text": answer,
                    "span": {"start": 0, "end": answer.chars().count().saturating_sub(1)},
                }},
                "retrievedReferences": references,
            }]});
        }
        self.session.turns.push((self.input_text.clone(), answer));
        self.session.last_ms = self.k.now_ms();
        self.session.pending = None;
        if !self.end_session {
            save_session(&self.k, &self.session_key, &self.session)?;
        }
        for chunk in chunks {
            self.send("chunk", chunk);
        }
        Ok(())
    }
}

/// `text` in pieces of `n` characters, the last maybe shorter (an empty text is one empty
/// piece, so that an empty answer still sends a chunk).
fn split_chars(text: &str, n: usize) -> Vec<&str> {
    let n = n.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for (count, (i, _)) in text.char_indices().enumerate() {
        if count > 0 && count % n == 0 {
            out.push(&text[start..i]);
            start = i;
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::split_chars;

    #[test]
    fn lambda_failures_split_by_who_failed() {
        use basalt_core::AwsError;
        let service = super::not_invoked("fn", &AwsError::new(500, "ServiceException", "down"));
        assert_eq!(
            (service.status, service.code.as_str()),
            (502, "BadGatewayException")
        );
        let missing = super::not_invoked(
            "fn",
            &AwsError::new(404, "ResourceNotFoundException", "no such function"),
        );
        assert_eq!(missing.code, "DependencyFailedException");
        assert_eq!(missing.fields["resourceName"], "Lambda");
        assert_eq!(super::error_member(&service.code), "badGatewayException");
    }

    #[test]
    fn answers_split_on_character_boundaries() {
        assert_eq!(split_chars("abcdefg", 3), ["abc", "def", "g"]);
        assert_eq!(split_chars("abcdef", 3), ["abc", "def"]);
        assert_eq!(split_chars("", 3), [""]);
        assert_eq!(split_chars("héllo wörld", 4), ["héll", "o wö", "rld"]);
        assert_eq!(split_chars("ab", 0), ["a", "b"]);
    }
}
