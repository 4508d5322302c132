//! Custom parser Lambda functions (`parserMode` OVERRIDDEN with the prompt override's
//! `overrideLambda`): the model's raw output of a step goes to the function, and what it
//! answers decides the step, as Bedrock documents in "Write a custom parser Lambda
//! function". Under a parser the orchestration step is plain text generation (the
//! template tells the model how to write its calls, the parser reads them); the actions
//! run as in the native loop, and their results go back to the model as text.

use super::checks::text_of;
use super::orchestrate::{MAX_STEPS, Run};
use super::prompts;
use super::schema::{Action, Tool};
use basalt_core::AwsError;
use serde_json::{Map, Value, json};

/// The parser Lambda function of `step`, when its parser is overridden.
pub fn parser_of(overrides: &Value, step: &str) -> Option<String> {
    let c = prompts::override_of(overrides, step)?;
    (c["parserMode"] == "OVERRIDDEN")
        .then(|| overrides["overrideLambda"].as_str().map(str::to_owned))
        .flatten()
}

/// The steps whose raw output Basalt hands to a parser function.
const PARSED_STEPS: [&str; 3] = [
    prompts::PRE_PROCESSING,
    prompts::ORCHESTRATION,
    prompts::POST_PROCESSING,
];

/// What is wrong with the parser overrides: an overridden parser without a function to
/// run it, or on a step Basalt runs no parser for.
pub fn parser_problems(overrides: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for c in overrides["promptConfigurations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if c["parserMode"] != "OVERRIDDEN" {
            continue;
        }
        let step = c["promptType"].as_str().unwrap_or("?");
        if !PARSED_STEPS.contains(&step) {
            out.push(format!(
                "Basalt runs parser Lambda functions for the PRE_PROCESSING, ORCHESTRATION and POST_PROCESSING prompts; the {step} prompt's parserMode must be DEFAULT."
            ));
        } else if overrides["overrideLambda"].as_str().is_none() {
            out.push(format!(
                "The {step} prompt's parserMode is OVERRIDDEN, but promptOverrideConfiguration has no overrideLambda."
            ));
        }
    }
    out
}

pub(super) fn dependency_failed(arn: &str, why: &str) -> AwsError {
    let mut e = AwsError::new(
        424,
        "DependencyFailedException",
        format!("The parser Lambda function {arn} {why}"),
    );
    e.fields.insert("resourceName".into(), "Lambda".into());
    e
}

/// The parameters of an `actionGroupInput` (`{name: {value}}`) as tool arguments, typed
/// as the tool's schema says where the text parses.
fn arguments(input: &Value, tool: &Tool) -> Value {
    let mut args = Map::new();
    for (name, v) in input.as_object().into_iter().flatten() {
        let text = match &v["value"] {
            Value::String(s) => s.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        let ty = tool.schema["properties"][name]["type"].as_str();
        let typed = match ty {
            Some("integer") => text.trim().parse::<i64>().ok().map(Value::from),
            Some("number") => text.trim().parse::<f64>().ok().map(Value::from),
            Some("boolean") => text.trim().parse::<bool>().ok().map(Value::from),
            _ => None,
        };
        args.insert(name.clone(), typed.unwrap_or(Value::String(text)));
    }
    Value::Object(args)
}

/// The tool an `actionGroupInvocation` names: a function of the group (`functionName`
/// or `apiName`), or an operation of the group by path (`apiName`) and `verb`.
fn action_tool<'a>(tools: &'a [Tool], inv: &Value) -> Option<&'a Tool> {
    let group = inv["actionGroupName"].as_str()?;
    let name = inv["functionName"]
        .as_str()
        .or_else(|| inv["apiName"].as_str())?;
    tools.iter().find(|t| match &t.action {
        Action::Function {
            group: g, function, ..
        } => g == group && function == name,
        Action::Api {
            group: g,
            path,
            method,
            ..
        } => {
            g == group
                && path == name
                && inv["verb"]
                    .as_str()
                    .is_none_or(|v| v.eq_ignore_ascii_case(method))
        }
        _ => false,
    })
}

impl Run {
    /// Runs the parser Lambda function `arn` on the raw output of `step`.
    pub(super) async fn parse_output(
        &self,
        arn: &str,
        step: &str,
        raw: &str,
    ) -> Result<Value, AwsError> {
        let event = json!({
            "messageVersion": "1.0",
            "agent": {
                "name": self.agent.name, "id": self.agent.id,
                "alias": self.agent.alias, "version": self.agent.version,
            },
            "invokeModelRawResponse": raw,
            "promptType": step,
            "overrideType": "OUTPUT_PARSER",
        });
        let raw = self.invoke_lambda(arn, &event).await?;
        let parsed: Value = serde_json::from_slice(&raw)
            .map_err(|_| dependency_failed(arn, "did not answer with a JSON object."))?;
        if !parsed.is_object() {
            return Err(dependency_failed(arn, "did not answer with a JSON object."));
        }
        Ok(parsed)
    }

    /// The orchestration loop under a parser Lambda function. `messages` ends with a user
    /// message.
    pub(super) async fn orchestrate_parsed(
        &mut self,
        arn: &str,
        mut messages: Vec<Value>,
        mut step: u32,
        mut references: Vec<Value>,
    ) -> Result<(String, Vec<Value>), AwsError> {
        let system = self.system_prompt();
        let mut ran = false;
        while step < MAX_STEPS {
            let id = self.step_id(step);
            step += 1;
            self.trace_step(json!({"orchestrationTrace": {"modelInvocationInput":
                self.model_input_trace(prompts::ORCHESTRATION, &system, &messages, &id)}}));
            let reply = self
                .converse(&system, &messages, &[], prompts::ORCHESTRATION, None)
                .await?;
            let raw = text_of(&reply.content);
            self.trace_step(json!({"orchestrationTrace": {"modelInvocationOutput": {
                "traceId": id, "rawResponse": {"content": raw}, "metadata": {"usage": reply.usage},
            }}}));
            let parsed = self.parse_output(arn, prompts::ORCHESTRATION, &raw).await?;
            let o = &parsed["orchestrationParsedResponse"];
            if let Some(r) = o["rationale"].as_str().filter(|r| !r.is_empty()) {
                self.trace_step(
                    json!({"orchestrationTrace": {"rationale": {"traceId": id, "text": r}}}),
                );
            }
            messages.push(json!({"role": "assistant", "content": [{"text": raw}]}));
            let observation = if let Some(reprompt) =
                o["parsingErrorDetails"]["repromptResponse"].as_str()
            {
                self.trace_step(json!({"orchestrationTrace": {"observation": {
                    "traceId": id, "type": "REPROMPT", "repromptResponse": {"text": reprompt, "source": "PARSER"},
                }}}));
                reprompt.to_owned()
            } else {
                let d = &o["responseDetails"];
                match d["invocationType"].as_str() {
                    Some("FINISH") => {
                        let text = d["agentFinalResponse"]["responseText"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        self.trace_step(json!({"orchestrationTrace": {"observation": {
                            "traceId": id, "type": "FINISH", "finalResponse": {"text": text},
                        }}}));
                        return Ok((text, references));
                    }
                    Some("ASK_USER") => {
                        let text = d["agentAskUser"]["responseText"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        self.trace_step(json!({"orchestrationTrace": {"observation": {
                            "traceId": id, "type": "ASK_USER", "finalResponse": {"text": text},
                        }}}));
                        return Ok((text, references));
                    }
                    Some("KNOWLEDGE_BASE") => {
                        let kb = &d["agentKnowledgeBase"];
                        let kb_id = kb["knowledgeBaseId"].as_str().unwrap_or_default();
                        let query = kb["searchQuery"]["value"]
                            .as_str()
                            .or_else(|| kb["searchQuery"].as_str())
                            .unwrap_or_default();
                        let retrieval = self
                            .agent
                            .tools
                            .iter()
                            .find_map(|t| match &t.action {
                                Action::KnowledgeBase { id, retrieval } if id == kb_id => {
                                    Some(retrieval.clone())
                                }
                                _ => None,
                            })
                            .ok_or_else(|| {
                                dependency_failed(
                                    arn,
                                    &format!(
                                        "named knowledge base {kb_id}, which is not associated with the agent."
                                    ),
                                )
                            })?;
                        let tool = Tool {
                            name: String::new(),
                            description: String::new(),
                            schema: Value::Null,
                            action: Action::KnowledgeBase {
                                id: kb_id.to_owned(),
                                retrieval,
                            },
                        };
                        ran = true;
                        self.run_action(&id, &tool, &json!({"searchQuery": query}), &mut references)
                            .await?
                    }
                    Some("ACTION_GROUP") => {
                        let inv = &d["actionGroupInvocation"];
                        let tool = action_tool(&self.agent.tools, inv).cloned().ok_or_else(|| {
                            dependency_failed(
                                arn,
                                &format!(
                                    "named {} of action group {}, which the agent does not have.",
                                    inv["functionName"].as_str().or_else(|| inv["apiName"].as_str()).unwrap_or_default(),
                                    inv["actionGroupName"].as_str().unwrap_or_default()
                                ),
                            )
                        })?;
                        let args = arguments(&inv["actionGroupInput"], &tool);
                        ran = true;
                        self.run_action(&id, &tool, &args, &mut references).await?
                    }
                    Some("AGENT_COLLABORATOR") => {
                        let inv = &d["agentCollaboratorInvocation"];
                        let name = inv["agentCollaboratorName"].as_str().unwrap_or_default();
                        let index = self
                            .agent
                            .collaborators
                            .iter()
                            .position(|c| c.name == name)
                            .ok_or_else(|| {
                                dependency_failed(
                                    arn,
                                    &format!(
                                        "named collaborator {name}, which the agent does not have."
                                    ),
                                )
                            })?;
                        let text = inv["input"]["text"].as_str().unwrap_or_default();
                        let (answer, found) = self
                            .collaborate(index, text, &id, "orchestrationTrace")
                            .await?;
                        ran = true;
                        references.extend(found);
                        answer
                    }
                    other => {
                        return Err(dependency_failed(
                            arn,
                            &format!(
                                "answered an orchestration step with neither parsingErrorDetails nor a known responseDetails.invocationType ({}).",
                                other.unwrap_or("none")
                            ),
                        ));
                    }
                }
            };
            messages.push(json!({"role": "user", "content": [{"text": observation}]}));
        }
        let answer = self.wrap_up(&system, &messages, ran).await?;
        Ok((answer, references))
    }
}
