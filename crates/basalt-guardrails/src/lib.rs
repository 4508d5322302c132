//! Amazon Bedrock Guardrails as a library: a guardrail's [`config::Policies`], and their
//! evaluation on text as ApplyGuardrail reports it.
//!
//! Nothing here does I/O. Denied topics, content filters and grounding judge meaning from
//! sentence embeddings (all-MiniLM-L6-v2, unit length), which the caller computes: a
//! [`Guardrail`] says which texts it needs embedded ([`Guardrail::anchor_texts`] once per
//! guardrail version, [`Guardrail::request_texts`] per request), and [`Guardrail::assess`]
//! takes the vectors back. Words, PII and regexes are matched on the text itself.

pub mod classify;
pub mod config;
pub mod grounding;
pub mod pii;
pub mod text;
pub mod topics;
pub mod words;

use config::{Action, PiiAction, Policies, Strength};
use serde_json::{Map, Value, json};

/// A policy that cannot be saved, with the message Bedrock's ValidationException carries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Which side of a model call a text is: the user's prompt or the model's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Input,
    Output,
}

/// One text block of a request, with ApplyGuardrail's qualifiers.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub text: String,
    /// The reference the answer must be grounded in (`grounding_source`).
    pub grounding_source: bool,
    /// The user's question the answer must be relevant to (`query`).
    pub query: bool,
}

impl Block {
    pub fn text(text: impl Into<String>) -> Block {
        Block {
            text: text.into(),
            ..Block::default()
        }
    }

    /// Blocks checked by every policy: not the grounding source nor the query, which only
    /// feed the contextual grounding check.
    pub fn guarded(&self) -> bool {
        !self.grounding_source && !self.query
    }
}

/// How a request is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Report every policy's verdict, detected or not (ApplyGuardrail's `outputScope` FULL).
    pub full: bool,
    /// Apply the PROMPT_ATTACK filter. Bedrock applies it to ApplyGuardrail's input and to
    /// user input marked with input tags (InvokeModel) or `guardContent` (Converse) only:
    /// a developer's system prompt looks like a prompt attack and must not be judged as one.
    pub prompt_attack: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            full: false,
            prompt_attack: true,
        }
    }
}

/// Bedrock's billing units: one per started 1,000 characters of each guarded text, per
/// policy configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub topic: u64,
    pub content: u64,
    pub word: u64,
    pub sensitive: u64,
    pub sensitive_free: u64,
    pub grounding: u64,
}

impl Usage {
    pub fn to_json(&self) -> Value {
        json!({
            "topicPolicyUnits": self.topic,
            "contentPolicyUnits": self.content,
            "wordPolicyUnits": self.word,
            "sensitiveInformationPolicyUnits": self.sensitive,
            "sensitiveInformationPolicyFreeUnits": self.sensitive_free,
            "contextualGroundingPolicyUnits": self.grounding,
        })
    }

    pub fn total(&self) -> u64 {
        self.topic
            + self.content
            + self.word
            + self.sensitive
            + self.sensitive_free
            + self.grounding
    }
}

/// What a guardrail decided about one request.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// True when a policy blocked or masked something (`GUARDRAIL_INTERVENED`).
    pub intervened: bool,
    /// True when the text must not be used at all (a BLOCK action fired), false when only
    /// PII was masked.
    pub blocked: bool,
    /// ApplyGuardrail's `outputs`: the blocked message, or each guarded block with its
    /// PII masked; empty when the guardrail did not intervene.
    pub outputs: Vec<String>,
    /// One `GuardrailAssessment` (without `invocationMetrics`, which the caller times).
    pub assessment: Value,
    /// The policy types that intervened (`GuardrailPolicyType` dimension values).
    pub policies_intervened: Vec<&'static str>,
    pub usage: Usage,
    /// Characters checked by the policies, and characters in the request.
    pub guarded_chars: usize,
    pub total_chars: usize,
}

impl Outcome {
    /// ApplyGuardrail's `actionReason`.
    pub fn action_reason(&self) -> String {
        match (self.intervened, self.blocked) {
            (true, true) => "Guardrail blocked.",
            (true, false) => "Guardrail masked.",
            _ => "No action.",
        }
        .to_owned()
    }
}

/// One guardrail version, compiled for evaluation.
#[derive(Debug)]
pub struct Guardrail {
    pub policies: Policies,
    pub blocked_input_messaging: String,
    pub blocked_outputs_messaging: String,
    words: Option<words::WordFilter>,
    pii: Option<pii::PiiFilter>,
    topics: topics::TopicMatcher,
}

impl Guardrail {
    pub fn new(
        policies: Policies,
        blocked_input_messaging: impl Into<String>,
        blocked_outputs_messaging: impl Into<String>,
    ) -> Result<Guardrail, ConfigError> {
        let words = policies.word_policy.as_ref().map(words::WordFilter::new);
        let pii = policies
            .sensitive_information_policy
            .as_ref()
            .map(pii::PiiFilter::new)
            .transpose()?;
        let topics = topics::TopicMatcher::new(
            policies
                .topic_policy
                .as_ref()
                .map(|t| t.topics.as_slice())
                .unwrap_or_default(),
        );
        Ok(Guardrail {
            policies,
            blocked_input_messaging: blocked_input_messaging.into(),
            blocked_outputs_messaging: blocked_outputs_messaging.into(),
            words,
            pii,
            topics,
        })
    }

    /// Texts to embed once for this guardrail (its topics' definitions and examples); hand
    /// the vectors to [`Guardrail::set_anchor_embeddings`] before assessing.
    pub fn anchor_texts(&self) -> Vec<String> {
        self.topics.anchor_texts()
    }

    pub fn set_anchor_embeddings(&mut self, vectors: Vec<Vec<f32>>) {
        self.topics.set_anchor_embeddings(vectors);
    }

    /// Whether any policy judges meaning (and so needs embeddings) for `source`.
    fn needs_embeddings(&self, source: Source) -> bool {
        self.topics.enabled_for(source)
            || self.content_filters(source).next().is_some()
            || self.grounding_filters().next().is_some()
    }

    fn content_filters(&self, source: Source) -> impl Iterator<Item = &config::ContentFilter> {
        self.policies
            .content_policy
            .iter()
            .flat_map(|c| c.filters.iter())
            .filter(move |f| match source {
                Source::Input => f.input_enabled && f.input_strength != Strength::None,
                Source::Output => f.output_enabled && f.output_strength != Strength::None,
            })
    }

    fn grounding_filters(&self) -> impl Iterator<Item = &config::GroundingFilter> {
        self.policies
            .contextual_grounding_policy
            .iter()
            .flat_map(|g| g.filters.iter())
            .filter(|f| f.enabled)
    }

    /// The texts of `blocks` to embed for [`Guardrail::assess`], in the order it expects:
    /// for each guarded block its pieces ([`text::pieces`]), then the grounding sources'
    /// pieces, then the queries.
    pub fn request_texts(&self, source: Source, blocks: &[Block]) -> Vec<String> {
        if !self.needs_embeddings(source) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for b in blocks.iter().filter(|b| b.guarded()) {
            out.extend(text::pieces(&b.text));
        }
        if self.grounding_filters().next().is_some() && source == Source::Output {
            for b in blocks.iter().filter(|b| b.grounding_source) {
                out.extend(text::pieces(&b.text));
            }
            for b in blocks.iter().filter(|b| b.query) {
                out.push(b.text.clone());
            }
        }
        out
    }

    /// Evaluates `blocks` with the embeddings of [`Guardrail::request_texts`].
    pub fn assess(
        &self,
        source: Source,
        blocks: &[Block],
        embeddings: &[Vec<f32>],
        options: Options,
    ) -> Outcome {
        let full = options.full;
        let guarded: Vec<&Block> = blocks.iter().filter(|b| b.guarded()).collect();
        let total_chars: usize = blocks.iter().map(|b| b.text.chars().count()).sum();
        let guarded_chars: usize = guarded.iter().map(|b| b.text.chars().count()).sum();
        let units: u64 = guarded.iter().map(|b| text::units(&b.text)).sum();

        // Embeddings of each guarded block's segments, then the grounding inputs.
        let mut cursor = 0usize;
        let mut segment_vectors: Vec<Vec<Vec<f32>>> = Vec::new();
        if !embeddings.is_empty() {
            for b in &guarded {
                let n = text::pieces(&b.text).len();
                let end = (cursor + n).min(embeddings.len());
                segment_vectors.push(text::segment_vectors(&embeddings[cursor..end]));
                cursor = end;
            }
        }
        let all_vectors: Vec<&Vec<f32>> = segment_vectors.iter().flat_map(|s| s.iter()).collect();

        let mut assessment = Map::new();
        let mut blocked = false;
        let mut masked = false;
        let mut policies: Vec<&'static str> = Vec::new();
        let mut usage = Usage::default();

        // Denied topics.
        if self.topics.enabled_for(source) {
            usage.topic = units;
            let verdicts = self.topics.judge(source, &all_vectors);
            let mut list = Vec::new();
            for v in verdicts {
                if !(v.detected || full) {
                    continue;
                }
                let block = v.detected && v.action == Action::Block;
                blocked |= block;
                if block && !policies.contains(&"TopicPolicy") {
                    policies.push("TopicPolicy");
                }
                list.push(json!({
                    "name": v.name, "type": "DENY",
                    "action": if block { "BLOCKED" } else { "NONE" },
                    "detected": v.detected,
                }));
            }
            if !list.is_empty() {
                assessment.insert("topicPolicy".into(), json!({"topics": list}));
            }
        }

        // Content filters and prompt attacks.
        let filters: Vec<&config::ContentFilter> = self
            .content_filters(source)
            .filter(|f| options.prompt_attack || f.kind != config::ContentType::PromptAttack)
            .collect();
        if !filters.is_empty() {
            usage.content = units;
            let classifiers = classify::Classifiers::shared();
            let mut list = Vec::new();
            for f in filters {
                let (strength, action) = match source {
                    Source::Input => (f.input_strength, f.input_action),
                    Source::Output => (f.output_strength, f.output_action),
                };
                let score = all_vectors
                    .iter()
                    .map(|v| classifiers.score(f.kind, v))
                    .fold(0.0f32, f32::max);
                let confidence = classifiers.confidence(f.kind, score);
                let detected = confidence != Strength::None && confidence >= threshold_of(strength);
                if !(detected || full) {
                    continue;
                }
                let block = detected && action == Action::Block;
                blocked |= block;
                if block && !policies.contains(&"ContentPolicy") {
                    policies.push("ContentPolicy");
                }
                list.push(json!({
                    "type": f.kind.as_str(),
                    "confidence": confidence.as_str(),
                    "filterStrength": strength.as_str(),
                    "action": if block { "BLOCKED" } else { "NONE" },
                    "detected": detected,
                }));
            }
            if !list.is_empty() {
                assessment.insert("contentPolicy".into(), json!({"filters": list}));
            }
        }

        // Words.
        if let Some(words) = &self.words {
            usage.word = units;
            let mut custom = Vec::new();
            let mut managed = Vec::new();
            for b in &guarded {
                for hit in words.find(&b.text, source) {
                    let block = hit.action == Action::Block;
                    blocked |= block;
                    if block && !policies.contains(&"WordPolicy") {
                        policies.push("WordPolicy");
                    }
                    let action = if block { "BLOCKED" } else { "NONE" };
                    if hit.managed {
                        managed.push(json!({"match": hit.matched, "type": "PROFANITY", "action": action, "detected": true}));
                    } else {
                        custom.push(
                            json!({"match": hit.matched, "action": action, "detected": true}),
                        );
                    }
                }
            }
            if !custom.is_empty() || !managed.is_empty() {
                assessment.insert(
                    "wordPolicy".into(),
                    json!({"customWords": custom, "managedWordLists": managed}),
                );
            }
        }

        // PII and regexes: found per block, so that masking rewrites that block.
        let mut masked_texts: Vec<String> = guarded.iter().map(|b| b.text.clone()).collect();
        if let (Some(pii), Some(policy)) = (&self.pii, &self.policies.sensitive_information_policy)
        {
            if !policy.pii_entities.is_empty() {
                usage.sensitive = units;
            }
            if !policy.regexes.is_empty() {
                usage.sensitive_free = units;
            }
            let mut entities = Vec::new();
            let mut regexes = Vec::new();
            for (i, b) in guarded.iter().enumerate() {
                let hits = pii.find(&b.text, source);
                let mut out = String::with_capacity(b.text.len());
                let mut last = 0;
                for hit in &hits {
                    let action = match hit.action {
                        PiiAction::Block => {
                            blocked = true;
                            "BLOCKED"
                        }
                        PiiAction::Anonymize => {
                            masked = true;
                            "ANONYMIZED"
                        }
                        PiiAction::None => "NONE",
                    };
                    if hit.action != PiiAction::None
                        && !policies.contains(&"SensitiveInformationPolicy")
                    {
                        policies.push("SensitiveInformationPolicy");
                    }
                    if hit.action == PiiAction::Anonymize && hit.start >= last {
                        out.push_str(&b.text[last..hit.start]);
                        out.push('{');
                        out.push_str(match &hit.kind {
                            pii::PiiKind::Entity(t) => t.as_str(),
                            pii::PiiKind::Regex(r) => policy.regexes[*r].name.as_str(),
                        });
                        out.push('}');
                        last = hit.end;
                    }
                    match &hit.kind {
                        pii::PiiKind::Entity(t) => entities.push(json!({
                            "match": hit.matched, "type": t.as_str(), "action": action, "detected": true,
                        })),
                        pii::PiiKind::Regex(r) => {
                            let r = &policy.regexes[*r];
                            regexes.push(json!({
                                "name": r.name, "match": hit.matched, "regex": r.pattern,
                                "action": action, "detected": true,
                            }))
                        }
                    }
                }
                out.push_str(&b.text[last..]);
                masked_texts[i] = out;
            }
            if !entities.is_empty() || !regexes.is_empty() {
                assessment.insert(
                    "sensitiveInformationPolicy".into(),
                    json!({"piiEntities": entities, "regexes": regexes}),
                );
            }
        }

        // Contextual grounding: answers (OUTPUT) against their sources and queries.
        let grounding: Vec<&config::GroundingFilter> = self.grounding_filters().collect();
        if !grounding.is_empty() && source == Source::Output && cursor < embeddings.len() {
            let sources_n: usize = blocks
                .iter()
                .filter(|b| b.grounding_source)
                .map(|b| text::pieces(&b.text).len())
                .sum();
            let src_end = (cursor + sources_n).min(embeddings.len());
            let source_vecs: Vec<&Vec<f32>> = embeddings[cursor..src_end].iter().collect();
            let query_vecs: Vec<&Vec<f32>> = embeddings[src_end..].iter().collect();
            usage.grounding = units;
            let mut list = Vec::new();
            for f in grounding {
                let score = match f.kind {
                    config::GroundingType::Grounding => {
                        grounding::grounding_score(&all_vectors, &source_vecs)
                    }
                    config::GroundingType::Relevance => {
                        grounding::relevance_score(&all_vectors, &query_vecs)
                    }
                };
                let Some(score) = score else { continue };
                let detected = score < f.threshold;
                let block = detected && f.action == Action::Block;
                blocked |= block;
                if block && !policies.contains(&"ContextualGroundingPolicy") {
                    policies.push("ContextualGroundingPolicy");
                }
                if detected || full {
                    list.push(json!({
                        "type": match f.kind { config::GroundingType::Grounding => "GROUNDING", config::GroundingType::Relevance => "RELEVANCE" },
                        "threshold": f.threshold,
                        "score": (score * 100.0).round() / 100.0,
                        "action": if block { "BLOCKED" } else { "NONE" },
                        "detected": detected,
                    }));
                }
            }
            if !list.is_empty() {
                assessment.insert("contextualGroundingPolicy".into(), json!({"filters": list}));
            }
        }

        let intervened = blocked || masked;
        let outputs = if blocked {
            vec![match source {
                Source::Input => self.blocked_input_messaging.clone(),
                Source::Output => self.blocked_outputs_messaging.clone(),
            }]
        } else if masked {
            masked_texts
        } else {
            Vec::new()
        };
        Outcome {
            intervened,
            blocked,
            outputs,
            assessment: Value::Object(assessment),
            policies_intervened: policies,
            usage,
            guarded_chars,
            total_chars,
        }
    }
}

/// The lowest confidence a filter of `strength` acts on: HIGH strength catches LOW, MEDIUM
/// and HIGH confidence; MEDIUM catches MEDIUM and HIGH; LOW catches HIGH only (the Bedrock
/// user guide's "Content filters" table).
fn threshold_of(strength: Strength) -> Strength {
    match strength {
        Strength::High => Strength::Low,
        Strength::Medium => Strength::Medium,
        Strength::Low => Strength::High,
        // Never reached: a NONE filter is not evaluated.
        Strength::None => Strength::High,
    }
}
