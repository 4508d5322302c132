//! The steps of a turn around the orchestration loop: the guardrail on the input and the
//! answer, PRE_PROCESSING, POST_PROCESSING, the answer forced when the loop runs out, and
//! MEMORY_SUMMARIZATION when a session ends.

use super::checks::text_of;
use super::orchestrate::Run;
use super::parser::{dependency_failed, parser_of};
use super::prompts::{self, fill};
use super::sessions::SessionRec;
use basalt_core::AwsError;
use serde_json::{Value, json};

impl Run {
    /// MEMORY_SUMMARIZATION: keeps a summary of `session` under its memory id, when the
    /// agent keeps memory.
    pub(super) async fn summarize(&self, session: &SessionRec) -> Result<(), AwsError> {
        let Some(memory_id) = &session.memory_id else {
            return Ok(());
        };
        if self.agent.memory.is_null() || session.turns.is_empty() {
            return Ok(());
        }
        let prompt = fill(
            &prompts::template(&self.agent.prompts, prompts::MEMORY_SUMMARIZATION),
            &[
                ("past_conversation_summary", ""),
                ("conversation", &session.transcript()),
            ],
        );
        let (summary, _) = self.ask(prompts::MEMORY_SUMMARIZATION, prompt).await?;
        let now = self.k.now_ms();
        super::sessions::save_memory(
            &self.k,
            &self.ctx,
            &self.agent.id,
            &super::sessions::MemoryRec {
                memory_id: memory_id.clone(),
                session_id: self.session_id.clone(),
                started_ms: session.started_ms,
                expiry_ms: super::sessions::expiry(&self.agent.memory, now),
                summary,
            },
        )
    }

    /// `endSession`: the session is summarized (with memory on) and forgotten.
    pub(super) async fn end(&mut self) -> Result<(), AwsError> {
        let session = std::mem::take(&mut self.session);
        self.summarize(&session).await?;
        self.k
            .state
            .delete(super::model::AGENT_SESSIONS, &self.session_key)?;
        Ok(())
    }

    pub(super) async fn guard(&self, source: &str, text: &str) -> Result<Option<String>, AwsError> {
        let g = &self.agent.guardrail;
        let Some(id) = g["guardrailIdentifier"].as_str() else {
            return Ok(None);
        };
        let out = self
            .k
            .registry()?
            .call(
                &self.ctx,
                "bedrock-runtime",
                "ApplyGuardrail",
                json!({
                    "guardrailIdentifier": id,
                    "guardrailVersion": g["guardrailVersion"].as_str().unwrap_or("DRAFT"),
                    "source": source,
                    "content": [{"text": {"text": text}}],
                }),
            )
            .await?
            .body;
        let intervened = out["action"] == "GUARDRAIL_INTERVENED";
        let assessments = out["assessments"].clone();
        let mut trace = json!({
            "traceId": format!("{}-guardrail-{}", self.trace_id, source.to_lowercase()),
            "action": if intervened { "INTERVENED" } else { "NONE" },
        });
        let member = if source == "INPUT" {
            "inputAssessments"
        } else {
            "outputAssessments"
        };
        trace[member] = if assessments.is_array() {
            assessments
        } else {
            json!([])
        };
        self.trace_step(json!({"guardrailTrace": trace}));
        Ok(intervened.then(|| text_of(out["outputs"].as_array().map_or(&[][..], |v| v))))
    }

    pub(super) fn tools_text(&self) -> String {
        self.agent
            .tools
            .iter()
            .map(|t| format!("- {}: {} (input: {})", t.name, t.description, t.schema))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// PRE_PROCESSING: whether the input may go on.
    pub(super) async fn preprocess(&self) -> Result<bool, AwsError> {
        let id = format!("{}-pre-0", self.trace_id);
        let prompt = fill(
            &prompts::template(&self.agent.prompts, prompts::PRE_PROCESSING),
            &[
                ("tools", &self.tools_text()),
                ("conversation_history", &self.session.transcript()),
                ("question", &self.input_text),
                ("instruction", &self.agent.instruction),
            ],
        );
        let messages = vec![json!({"role": "user", "content": [{"text": prompt}]})];
        self.trace_step(json!({"preProcessingTrace": {"modelInvocationInput":
            self.model_input_trace(prompts::PRE_PROCESSING, "", &messages, &id)}}));
        let (raw, usage) = self.ask(prompts::PRE_PROCESSING, prompt).await?;
        if let Some(arn) = parser_of(&self.agent.prompts, prompts::PRE_PROCESSING) {
            let parsed = self
                .parse_output(&arn, prompts::PRE_PROCESSING, &raw)
                .await?;
            let p = &parsed["preProcessingParsedResponse"];
            let valid = p["isValidInput"].as_bool().ok_or_else(|| {
                dependency_failed(
                    &arn,
                    "answered a PRE_PROCESSING step without preProcessingParsedResponse.isValidInput.",
                )
            })?;
            self.trace_step(json!({"preProcessingTrace": {"modelInvocationOutput": {
                "traceId": id,
                "parsedResponse": {"isValid": valid, "rationale": p["rationale"].as_str().unwrap_or_default()},
                "rawResponse": {"content": raw},
                "metadata": {"usage": usage},
            }}}));
            return Ok(valid);
        }
        let category = raw
            .split("<category>")
            .nth(1)
            .and_then(|s| s.trim_start().chars().next())
            .or_else(|| {
                raw.trim()
                    .chars()
                    .next()
                    .filter(|c| ('A'..='E').contains(c))
            });
        let valid = !matches!(category, Some('A' | 'B' | 'C'));
        self.trace_step(json!({"preProcessingTrace": {"modelInvocationOutput": {
            "traceId": id,
            "parsedResponse": {"isValid": valid, "rationale": raw},
            "rawResponse": {"content": raw},
            "metadata": {"usage": usage},
        }}}));
        Ok(valid)
    }

    /// The answer when the loop ran out of steps or went round in circles: the model
    /// answers from the results so far, with no tools; when no action `ran`, it asks the
    /// user for what it needs instead (an answer "from the results" would be made up).
    pub(super) async fn wrap_up(
        &self,
        system: &str,
        messages: &[Value],
        ran: bool,
    ) -> Result<String, AwsError> {
        // Calls the loop refused for a made-up value are left out: a small model repeats
        // the refusal to the user instead of answering.
        let refused: Vec<&str> = messages
            .iter()
            .flat_map(|m| m["content"].as_array().into_iter().flatten())
            .filter_map(|b| b.get("toolResult"))
            .filter(|r| {
                text_of(r["content"].as_array().map_or(&[][..], |v| v))
                    .contains(super::checks::INVENTED_MARK)
            })
            .filter_map(|r| r["toolUseId"].as_str())
            .collect();
        let mut notes = String::new();
        for m in messages {
            for b in m["content"].as_array().into_iter().flatten() {
                let use_id = b
                    .get("toolUse")
                    .or_else(|| b.get("toolResult"))
                    .and_then(|u| u["toolUseId"].as_str());
                if use_id.is_some_and(|id| refused.contains(&id)) {
                    continue;
                }
                if let Some(t) = b["text"].as_str() {
                    notes.push_str(&format!(
                        "{}: {t}\n",
                        m["role"].as_str().unwrap_or_default()
                    ));
                } else if let Some(u) = b.get("toolUse") {
                    notes.push_str(&format!(
                        "called {} with {}\n",
                        u["name"].as_str().unwrap_or_default(),
                        u["input"]
                    ));
                } else if let Some(r) = b.get("toolResult") {
                    notes.push_str(&format!(
                        "result: {}\n",
                        text_of(r["content"].as_array().map_or(&[][..], |v| v))
                    ));
                }
            }
        }
        let prompt = if ran {
            format!(
                "{notes}\nAnswer the user's request now from these results, without calling anything else."
            )
        } else {
            format!(
                "{notes}\nNothing has been done for this request yet. Ask the user, in one question, for the information you need to do it."
            )
        };
        let reply = self
            .converse(
                system,
                &[json!({"role": "user", "content": [{"text": prompt}]})],
                &[],
                prompts::ORCHESTRATION,
                None,
            )
            .await?;
        Ok(text_of(&reply.content))
    }

    /// POST_PROCESSING: the answer rewritten for the user.
    pub(super) async fn postprocess(
        &self,
        answer: &str,
        messages: &[Value],
    ) -> Result<String, AwsError> {
        let id = format!("{}-post-0", self.trace_id);
        let responses: String = messages
            .iter()
            .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
            .filter_map(|b| {
                b.get("toolResult")
                    .map(|r| text_of(r["content"].as_array().map_or(&[][..], |v| v)))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let prompt = fill(
            &prompts::template(&self.agent.prompts, prompts::POST_PROCESSING),
            &[
                ("question", &self.input_text),
                ("responses", &responses),
                ("latest_response", answer),
            ],
        );
        let msgs = vec![json!({"role": "user", "content": [{"text": prompt.clone()}]})];
        self.trace_step(json!({"postProcessingTrace": {"modelInvocationInput":
            self.model_input_trace(prompts::POST_PROCESSING, "", &msgs, &id)}}));
        let (raw, usage) = self.ask(prompts::POST_PROCESSING, prompt).await?;
        let text = match parser_of(&self.agent.prompts, prompts::POST_PROCESSING) {
            Some(arn) => self
                .parse_output(&arn, prompts::POST_PROCESSING, &raw)
                .await?["postProcessingParsedResponse"]["responseText"]
                .as_str()
                .ok_or_else(|| {
                    dependency_failed(
                        &arn,
                        "answered a POST_PROCESSING step without postProcessingParsedResponse.responseText.",
                    )
                })?
                .to_owned(),
            None => raw
                .split("<final_response>")
                .nth(1)
                .map(|s| s.split("</final_response>").next().unwrap_or(s))
                .unwrap_or(&raw)
                .trim()
                .to_owned(),
        };
        self.trace_step(json!({"postProcessingTrace": {"modelInvocationOutput": {
            "traceId": id, "parsedResponse": {"text": text},
            "rawResponse": {"content": raw}, "metadata": {"usage": usage},
        }}}));
        Ok(if text.is_empty() {
            answer.to_owned()
        } else {
            text
        })
    }
}
