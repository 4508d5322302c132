//! Denied topics by meaning: a text is on a topic when one of its segments lies close, in
//! sentence-embedding space, to the topic's anchors (its definition, its name with its
//! definition, and its examples).

use crate::Source;
use crate::config::{Action, Topic};

/// Cosine similarity from which a segment is on a topic. Calibrated on the training split
/// of `bench/guardrails/data/topics.jsonl` (four topics, scored with definitions only and
/// with two examples each): 0.35 is the lowest threshold at which, in both set-ups, texts off
/// every topic and the benign texts of `content.jsonl` are blocked less than 5% of the time
/// (train: 1.6% without examples, 3.6% with) at precision >= 0.9; 0.40 lost half the recall.
/// Definitions alone give low recall (0.32 on train): examples are what make a topic work.
pub const THRESHOLD: f32 = 0.35;

/// A topic's name as words: `FinancialAdvice` and `financial_advice` read `Financial Advice`.
fn name_words(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    input: Option<Action>,
    output: Option<Action>,
    /// Indices of this topic's anchors in the anchor list.
    anchors: std::ops::Range<usize>,
}

/// One topic's verdict on a request.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicVerdict {
    pub name: String,
    pub detected: bool,
    pub action: Action,
    /// The highest similarity of a segment to the topic.
    pub score: f32,
}

#[derive(Debug, Default)]
pub struct TopicMatcher {
    entries: Vec<Entry>,
    anchor_texts: Vec<String>,
    anchors: Vec<Vec<f32>>,
}

impl TopicMatcher {
    pub fn new(topics: &[Topic]) -> TopicMatcher {
        let mut entries = Vec::new();
        let mut anchor_texts = Vec::new();
        for t in topics {
            let start = anchor_texts.len();
            anchor_texts.push(t.definition.clone());
            anchor_texts.push(format!("{}: {}", name_words(&t.name), t.definition));
            anchor_texts.extend(t.examples.iter().cloned());
            entries.push(Entry {
                name: t.name.clone(),
                input: t.input_enabled.then_some(t.input_action),
                output: t.output_enabled.then_some(t.output_action),
                anchors: start..anchor_texts.len(),
            });
        }
        TopicMatcher {
            entries,
            anchor_texts,
            anchors: Vec::new(),
        }
    }

    pub fn anchor_texts(&self) -> Vec<String> {
        self.anchor_texts.clone()
    }

    pub fn set_anchor_embeddings(&mut self, vectors: Vec<Vec<f32>>) {
        self.anchors = vectors;
    }

    pub fn enabled_for(&self, source: Source) -> bool {
        self.entries.iter().any(|e| match source {
            Source::Input => e.input.is_some(),
            Source::Output => e.output.is_some(),
        })
    }

    /// The verdict of every topic enabled for `source` on the segments' embeddings.
    pub fn judge(&self, source: Source, segments: &[&Vec<f32>]) -> Vec<TopicVerdict> {
        let mut out = Vec::new();
        for e in &self.entries {
            let action = match source {
                Source::Input => e.input,
                Source::Output => e.output,
            };
            let Some(action) = action else { continue };
            let anchors = self.anchors.get(e.anchors.clone()).unwrap_or_default();
            let score = segments
                .iter()
                .flat_map(|s| anchors.iter().map(move |a| cosine(s, a)))
                .fold(f32::MIN, f32::max)
                .max(0.0);
            out.push(TopicVerdict {
                name: e.name.clone(),
                detected: score >= THRESHOLD,
                action,
                score,
            });
        }
        out
    }
}

/// Cosine similarity of two unit-length vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_words() {
        assert_eq!(name_words("FinancialAdvice"), "Financial Advice");
        assert_eq!(name_words("medical_advice"), "medical advice");
        assert_eq!(name_words("Violence"), "Violence");
        assert_eq!(name_words("US-Politics 2024"), "US Politics 2024");
    }

    #[test]
    fn a_segment_near_an_anchor_is_on_the_topic() {
        let topic = Topic {
            name: "T".into(),
            definition: "d".into(),
            examples: vec![],
            kind: crate::config::TopicType::Deny,
            input_action: Action::Block,
            output_action: Action::None,
            input_enabled: true,
            output_enabled: false,
        };
        let mut m = TopicMatcher::new(&[topic]);
        assert_eq!(m.anchor_texts().len(), 2);
        m.set_anchor_embeddings(vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        let near = vec![0.9f32, 0.436];
        let far = vec![-0.6f32, -0.8];
        let v = m.judge(Source::Input, &[&far, &near]);
        assert!(v[0].detected && v[0].action == Action::Block);
        assert!(!m.judge(Source::Input, &[&far])[0].detected);
        assert!(m.judge(Source::Output, &[&near]).is_empty());
    }
}
