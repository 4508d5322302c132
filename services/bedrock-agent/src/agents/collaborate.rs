//! Multi-agent collaboration at run time. A supervisor calls each collaborator as a tool
//! whose one argument is the message for it; the collaborator runs a whole turn of its own
//! (its own session under the same session id, its own tools, guardrail and traces, which
//! reach the caller's stream tagged with the collaborator's name and the chain of callers)
//! and its answer is the supervisor's observation. A SUPERVISOR_ROUTER agent first asks
//! the model which one collaborator the request belongs to, and hands it over whole; when
//! none fits, it orchestrates as a supervisor.

use super::orchestrate::{Agent, Run};
use super::prompts::{self, fill};
use super::schema::{Action, Tool};
use super::sessions::{SessionRec, load_session, session_key};
use crate::model::str_of;
use basalt_core::AwsError;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Agents in a chain of callers, the first supervisor included: a collaborator may itself
/// supervise, but a cycle of aliases must end.
pub const MAX_CHAIN: usize = 4;
/// The router's answer when no single collaborator fits the request.
const UNDECIDABLE: &str = "undecidable";

/// Where a collaborator runs.
#[derive(Debug, Clone)]
pub enum Target {
    /// A stored agent, at the version its alias routes to.
    Alias { agent: String, alias: String },
    /// An agent defined in an InvokeInlineAgent request.
    Inline(Box<Agent>),
}

#[derive(Debug, Clone)]
pub struct Collaborator {
    pub name: String,
    pub instruction: String,
    /// The alias ARN the traces name (empty for an inline definition).
    pub alias_arn: String,
    /// relayConversationHistory TO_COLLABORATOR: the supervisor's conversation goes along.
    pub relay: bool,
    pub target: Target,
}

/// The collaborators as tools, after the agent's own `tools` (whose names they avoid).
pub fn tools(collaborators: &[Collaborator], tools: &[Tool]) -> Vec<Tool> {
    let mut out: Vec<Tool> = Vec::new();
    for (index, c) in collaborators.iter().enumerate() {
        let mut name = super::schema::tool_name(&c.name);
        while tools.iter().chain(&out).any(|t| t.name == name) {
            name.push('_');
        }
        out.push(Tool {
            name,
            description: format!(
                "Send a message to the agent {}, which works for you: {}",
                c.name, c.instruction
            ),
            schema: json!({"type": "object", "properties": {"message": {"type": "string",
                "description": "What you ask of this agent, with every detail it needs"}},
                "required": ["message"]}),
            action: Action::Collaborator { index },
        });
    }
    out
}

impl Run {
    pub(super) fn collaborator_input(&self, c: &Collaborator, id: &str, text: &str) -> Value {
        json!({"traceId": id, "invocationType": "AGENT_COLLABORATOR",
        "agentCollaboratorInvocationInput": {
            "agentCollaboratorName": c.name,
            "agentCollaboratorAliasArn": c.alias_arn,
            "input": {"type": "TEXT", "text": text},
        }})
    }

    fn collaborator_output(&self, c: &Collaborator, id: &str, text: &str) -> Value {
        json!({"traceId": id, "type": "AGENT_COLLABORATOR",
        "agentCollaboratorInvocationOutput": {
            "agentCollaboratorName": c.name,
            "agentCollaboratorAliasArn": c.alias_arn,
            "output": {"type": "TEXT", "text": text},
        }})
    }

    /// Runs collaborator `index` on `message`; its answer and the references it cited.
    /// `kind` is the trace member the call is reported under (`orchestrationTrace` or
    /// `routingClassifierTrace`).
    pub(super) async fn collaborate(
        &mut self,
        index: usize,
        message: &str,
        id: &str,
        kind: &str,
    ) -> Result<(String, Vec<Value>), AwsError> {
        let c = self
            .agent
            .collaborators
            .get(index)
            .cloned()
            .ok_or_else(|| AwsError::new(500, "InternalServerException", "unknown collaborator"))?;
        if !c.alias_arn.is_empty() && self.chain.contains(&c.alias_arn) {
            return Err(AwsError::validation(format!(
                "The collaborator {} ({}) is already in the chain of agents calling it; a team's collaborators must not lead back to their supervisor.",
                c.name, c.alias_arn
            )));
        }
        if self.chain.len() >= MAX_CHAIN {
            return Err(AwsError::validation(format!(
                "The collaborator {} would make a chain of more than {MAX_CHAIN} agents.",
                c.name
            )));
        }
        self.trace_step(
            json!({ kind: {"invocationInput": self.collaborator_input(&c, id, message)} }),
        );
        // The collaborator's conversation with this supervisor is its own: neither the
        // session a client holds with the collaborator's alias under the same id, nor its
        // conversation with another supervisor.
        let session = format!("{}~{}", self.session_id, self.agent.id);
        let (agent, key) = match &c.target {
            Target::Alias { agent, alias } => (
                super::invoke::agent_of_alias(&self.k, &self.ctx, agent, alias)?,
                session_key(&self.ctx, agent, alias, &session),
            ),
            Target::Inline(a) => (
                (**a).clone(),
                session_key(
                    &self.ctx,
                    "inline",
                    &format!("collaborator-{}", c.name),
                    &session,
                ),
            ),
        };
        let now = self.k.now_ms();
        let mut session = match load_session(&self.k, &key)? {
            Some(s) if !s.expired(now, agent.idle_ttl) => s,
            _ => SessionRec {
                started_ms: now,
                last_ms: now,
                ..Default::default()
            },
        };
        if c.relay {
            session.turns = self.session.turns.clone();
        }
        session.session_attributes = self.session.session_attributes.clone();
        session.prompt_session_attributes = self.session.prompt_session_attributes.clone();
        let mut chain = self.chain.clone();
        chain.push(c.alias_arn.clone());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let child = Run {
            k: self.k.clone(),
            ctx: self.ctx.clone(),
            agent,
            session_id: self.session_id.clone(),
            session_key: key,
            session,
            input_text: message.to_owned(),
            trace: self.trace,
            end_session: false,
            results: None,
            memory_content: Vec::new(),
            events: tx,
            trace_id: uuid::Uuid::new_v4().to_string(),
            expired: None,
            chain,
            collaborator: Some(c.name.clone()),
            stream_chunk: None,
        };
        let events = self.events.clone();
        let forward = async move {
            let mut answer = String::new();
            let mut references = Vec::new();
            while let Some(event) = rx.recv().await {
                let Ok(e) = event else { continue };
                if e.name != "chunk" {
                    // Traces go on to the caller as they happen.
                    let _ = events.send(Ok(e));
                    continue;
                }
                let bytes = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    str_of(&e.value, "bytes").unwrap_or_default(),
                )
                .unwrap_or_default();
                answer.push_str(&String::from_utf8_lossy(&bytes));
                for cite in e.value["attribution"]["citations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    references.extend(
                        cite["retrievedReferences"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
            }
            (answer, references)
        };
        let (done, (answer, references)) = tokio::join!(child.execute_boxed(), forward);
        done.result?;
        self.session.session_attributes = done.session_attributes;
        self.session.prompt_session_attributes = done.prompt_session_attributes;
        self.trace_step(
            json!({ kind: {"observation": self.collaborator_output(&c, id, &answer)} }),
        );
        Ok((answer, references))
    }

    /// SUPERVISOR_ROUTER: the answer of the collaborator the model sends the request to,
    /// with the references it cited; `None` when no single collaborator fits.
    pub(super) async fn route(&mut self) -> Result<Option<(String, Vec<Value>)>, AwsError> {
        let names: Vec<&str> = self
            .agent
            .tools
            .iter()
            .filter(|t| matches!(t.action, Action::Collaborator { .. }))
            .map(|t| t.name.as_str())
            .collect();
        if names.is_empty() {
            return Ok(None);
        }
        let reachable: String = self
            .agent
            .tools
            .iter()
            .filter_map(|t| match t.action {
                Action::Collaborator { index } => Some(format!(
                    "- {}: {}\n",
                    t.name, self.agent.collaborators[index].instruction
                )),
                _ => None,
            })
            .collect();
        let system = fill(
            &prompts::template(&self.agent.prompts, prompts::ROUTING_CLASSIFIER),
            &[
                ("reachable_agents", reachable.trim_end()),
                ("conversation_history", &self.session.transcript()),
                ("question", &self.input_text),
            ],
        );
        let mut choices: Vec<Value> = names.iter().map(|n| Value::from(*n)).collect();
        choices.push(UNDECIDABLE.into());
        let route = Tool {
            name: "route".into(),
            description: "Send the request to one agent of the team.".into(),
            schema: json!({"type": "object", "properties": {"agent": {"type": "string", "enum": choices}}, "required": ["agent"]}),
            action: Action::Answer,
        };
        let messages = vec![json!({"role": "user", "content": [{"text": self.input_text}]})];
        let id = format!("{}-route", self.trace_id);
        self.trace_step(json!({"routingClassifierTrace": {"modelInvocationInput":
            self.model_input_trace(prompts::ROUTING_CLASSIFIER, &system, &messages, &id)}}));
        let reply = self
            .converse(
                &system,
                &messages,
                std::slice::from_ref(&route),
                prompts::ROUTING_CLASSIFIER,
                Some("route"),
            )
            .await?;
        self.trace_step(json!({"routingClassifierTrace": {"modelInvocationOutput": {
            "traceId": id,
            "rawResponse": {"content": Value::Array(reply.content.clone()).to_string()},
            "metadata": {"usage": reply.usage},
        }}}));
        let chosen = reply
            .content
            .iter()
            .find_map(|b| b["toolUse"]["input"]["agent"].as_str())
            .unwrap_or(UNDECIDABLE);
        let Some(index) = self.agent.tools.iter().find_map(|t| match t.action {
            Action::Collaborator { index } if t.name == chosen => Some(index),
            _ => None,
        }) else {
            return Ok(None);
        };
        let input = self.input_text.clone();
        let answered = self
            .collaborate(index, &input, &id, "routingClassifierTrace")
            .await?;
        Ok(Some(answered))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::model::parse_alias_arn;
    use basalt_core::RequestContext;

    fn collaborator(name: &str) -> Collaborator {
        Collaborator {
            name: name.into(),
            instruction: "Knows the weather.".into(),
            alias_arn: String::new(),
            relay: false,
            target: Target::Alias {
                agent: "AAAAAAAAAA".into(),
                alias: "BBBBBBBBBB".into(),
            },
        }
    }

    #[test]
    fn collaborator_tools_avoid_the_agents_own_names() {
        let own = [Tool {
            name: "weather".into(),
            description: String::new(),
            schema: json!({}),
            action: Action::AskUser,
        }];
        let tools = tools(
            &[collaborator("weather"), collaborator("weather ops")],
            &own,
        );
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["weather_", "weather_ops"]);
        assert_eq!(tools[1].action, Action::Collaborator { index: 1 });
        assert!(tools[0].description.contains("Knows the weather."));
        assert_eq!(tools[0].schema["required"], json!(["message"]));
    }

    #[test]
    fn alias_arns_name_an_agent_and_alias_of_this_account() {
        let ctx = RequestContext::internal("123456789012", "eu-west-1", "http://127.0.0.1:4566");
        let arn = format!(
            "arn:aws:bedrock:{}:{}:agent-alias/AGENT12345/ALIAS12345",
            ctx.region, ctx.account_id
        );
        assert_eq!(
            parse_alias_arn(&ctx, &arn),
            Some(("AGENT12345".into(), "ALIAS12345".into()))
        );
        for bad in [
            arn.replace(&ctx.account_id, "999999999999"),
            arn.replace("ALIAS12345", "ALIAS"),
            arn.replace("agent-alias", "agent"),
            format!("{arn}/x"),
        ] {
            assert_eq!(parse_alias_arn(&ctx, &bad), None, "{bad}");
        }
    }
}
