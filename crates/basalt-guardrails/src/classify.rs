//! Content-filter classifiers (HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT, PROMPT_ATTACK) over
//! unit-length all-MiniLM-L6-v2 sentence embeddings.
//!
//! Each category is a small head trained by `bench/guardrails/train.py` on the training split
//! of Basalt's labelled set (`bench/guardrails/data/`, sources and licences in its
//! `SOURCES.md`): dense layers with ReLU between them and a sigmoid at the end (a logistic
//! regression is the one-layer case). PROMPT_ATTACK also averages in the jailguard MLP
//! (384→256→128→1, MIT OR Apache-2.0, vendored in `models/` with its attribution) where the
//! validation folds said the mix beats either alone. `models/content.json` holds the weights,
//! the three confidence thresholds of each head (chosen on validation folds inside the
//! training split: LOW keeps recall ≥ 0.85, MEDIUM precision ≥ 0.90, HIGH ≥ 0.95), the
//! training command and a hash of the data.

use crate::config::{ContentType, Strength};
use serde::Deserialize;
use std::collections::HashMap;

const CONTENT_JSON: &str = include_str!("../models/content.json");
const JAILGUARD_JSON: &str = include_str!("../models/jailguard_neural_binary_200k.json");

/// Embedding width the heads take (all-MiniLM-L6-v2).
pub const DIMENSIONS: usize = 384;

/// One dense layer, row-major: `out` rows of `inp` weights.
#[derive(Debug, Clone)]
struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
}

impl Dense {
    fn new(rows: Vec<Vec<f32>>, b: Vec<f32>) -> Dense {
        let inp = rows.first().map_or(0, Vec::len);
        assert!(rows.iter().all(|r| r.len() == inp), "ragged weight matrix");
        assert_eq!(rows.len(), b.len(), "one bias per output");
        Dense {
            w: rows.into_iter().flatten().collect(),
            b,
            inp,
        }
    }

    fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for (row, bias) in self.w.chunks_exact(self.inp).zip(&self.b) {
            let dot: f32 = row.iter().zip(x).map(|(w, v)| w * v).sum();
            out.push(dot + bias);
        }
    }
}

/// Dense layers, ReLU between them, sigmoid on the single output.
#[derive(Debug, Clone)]
struct Mlp {
    layers: Vec<Dense>,
}

impl Mlp {
    fn forward(&self, x: &[f32]) -> f32 {
        let mut cur: Vec<f32> = x.to_vec();
        let mut next = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            layer.apply(&cur, &mut next);
            if i + 1 < self.layers.len() {
                next.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            std::mem::swap(&mut cur, &mut next);
        }
        sigmoid(cur.first().copied().unwrap_or(0.0))
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[derive(Deserialize)]
struct LayerDoc {
    w: Vec<Vec<f32>>,
    b: Vec<f32>,
}

#[derive(Deserialize, Debug, Clone, Copy)]
struct Thresholds {
    low: f32,
    medium: f32,
    high: f32,
}

#[derive(Deserialize)]
struct HeadDoc {
    layers: Vec<LayerDoc>,
    #[serde(default)]
    jailguard_weight: f32,
    thresholds: Thresholds,
}

#[derive(Deserialize)]
struct ContentDoc {
    categories: HashMap<String, HeadDoc>,
}

#[derive(Deserialize)]
struct JailguardDoc {
    w_h1: Vec<Vec<f32>>,
    b_h1: Vec<f32>,
    w_h2: Vec<Vec<f32>>,
    b_h2: Vec<f32>,
    w_out: Vec<Vec<f32>>,
    b_out: Vec<f32>,
}

#[derive(Debug)]
struct Head {
    mlp: Mlp,
    jailguard_weight: f32,
    thresholds: Thresholds,
}

/// The trained heads, loaded once.
#[derive(Debug, Default)]
pub struct Classifiers {
    heads: HashMap<ContentType, Head>,
    jailguard: Option<Mlp>,
}

impl Classifiers {
    /// The heads shipped with Basalt.
    pub fn shared() -> &'static Classifiers {
        static SHARED: std::sync::OnceLock<Classifiers> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            Classifiers::from_json(CONTENT_JSON, JAILGUARD_JSON)
                .expect("models/content.json is built into the crate and parses")
        })
    }

    fn from_json(content: &str, jailguard: &str) -> Result<Classifiers, String> {
        let doc: ContentDoc = serde_json::from_str(content).map_err(|e| e.to_string())?;
        let mut heads = HashMap::new();
        let mut wants_jailguard = false;
        for kind in ContentType::ALL {
            let h = doc
                .categories
                .get(kind.as_str())
                .ok_or_else(|| format!("no head for {}", kind.as_str()))?;
            let layers: Vec<Dense> = h
                .layers
                .iter()
                .map(|l| Dense::new(l.w.clone(), l.b.clone()))
                .collect();
            if layers.first().map(|l| l.inp) != Some(DIMENSIONS) {
                return Err(format!(
                    "{}: the head does not take {DIMENSIONS} inputs",
                    kind.as_str()
                ));
            }
            let t = h.thresholds;
            if !(t.low <= t.medium && t.medium <= t.high) {
                return Err(format!("{}: thresholds out of order", kind.as_str()));
            }
            wants_jailguard |= h.jailguard_weight > 0.0;
            heads.insert(
                kind,
                Head {
                    mlp: Mlp { layers },
                    jailguard_weight: h.jailguard_weight.clamp(0.0, 1.0),
                    thresholds: t,
                },
            );
        }
        let jailguard = if wants_jailguard {
            let j: JailguardDoc = serde_json::from_str(jailguard).map_err(|e| e.to_string())?;
            Some(Mlp {
                layers: vec![
                    Dense::new(j.w_h1, j.b_h1),
                    Dense::new(j.w_h2, j.b_h2),
                    Dense::new(j.w_out, j.b_out),
                ],
            })
        } else {
            None
        };
        Ok(Classifiers { heads, jailguard })
    }

    /// Probability in [0, 1] that the text behind `embedding` belongs to `kind`. An
    /// embedding of the wrong width scores 0.
    pub fn score(&self, kind: ContentType, embedding: &[f32]) -> f32 {
        let Some(head) = self.heads.get(&kind) else {
            return 0.0;
        };
        if embedding.len() != DIMENSIONS {
            return 0.0;
        }
        let own = head.mlp.forward(embedding);
        let s = match (&self.jailguard, head.jailguard_weight) {
            (Some(j), w) if w > 0.0 => (1.0 - w) * own + w * j.forward(embedding),
            _ => own,
        };
        if s.is_finite() {
            s.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The confidence Bedrock would report for a score: NONE, LOW, MEDIUM or HIGH.
    pub fn confidence(&self, kind: ContentType, score: f32) -> Strength {
        let Some(head) = self.heads.get(&kind) else {
            return Strength::None;
        };
        let t = head.thresholds;
        if score >= t.high {
            Strength::High
        } else if score >= t.medium {
            Strength::Medium
        } else if score >= t.low {
            Strength::Low
        } else {
            Strength::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Action, Topic, TopicType};
    use crate::topics::TopicMatcher;

    /// Written by bench/guardrails/train.py with the weights it exports: MiniLM vectors (numpy
    /// implementation, checked against Basalt's own) of the seed's cases, each text's
    /// segments, and the scores and confidences train.py computes for them.
    const VECTORS: &str = include_str!("../models/test_vectors.json");

    #[derive(Deserialize)]
    struct Case {
        text: String,
        expect: String,
        segments: Vec<Vec<f32>>,
        scores: HashMap<String, f32>,
        confidences: HashMap<String, String>,
    }

    #[derive(Deserialize)]
    struct Fixture {
        cases: Vec<Case>,
        anchors: HashMap<String, Vec<Vec<f32>>>,
    }

    fn kind(s: &str) -> ContentType {
        ContentType::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap()
    }

    fn conf(s: &str) -> Strength {
        match s {
            "LOW" => Strength::Low,
            "MEDIUM" => Strength::Medium,
            "HIGH" => Strength::High,
            _ => Strength::None,
        }
    }

    fn fixture() -> Fixture {
        serde_json::from_str(VECTORS).unwrap()
    }

    #[test]
    fn forward_pass_matches_train_py() {
        let c = Classifiers::shared();
        for case in fixture().cases {
            for (k, want) in &case.scores {
                let got = case
                    .segments
                    .iter()
                    .map(|v| c.score(kind(k), v))
                    .fold(0.0f32, f32::max);
                assert!(
                    (got - want).abs() < 1e-4,
                    "{k} {}: {got} vs {want}",
                    case.text
                );
                // Confidence is compared away from the thresholds only (float noise).
                let t = c.heads[&kind(k)].thresholds;
                if [t.low, t.medium, t.high]
                    .iter()
                    .all(|x| (x - want).abs() > 1e-4)
                {
                    assert_eq!(
                        c.confidence(kind(k), got),
                        conf(&case.confidences[k]),
                        "{k} {}",
                        case.text
                    );
                }
            }
        }
    }

    /// The seed's guardrail: topics Violence and FinancialAdvice (definitions, no examples),
    /// every content filter at HIGH (which acts on confidence LOW and above).
    #[test]
    fn seed_cases_block_and_pass() {
        let fx = fixture();
        let c = Classifiers::shared();
        let topic = |name: &str, definition: &str| Topic {
            name: name.into(),
            definition: definition.into(),
            examples: vec![],
            kind: TopicType::Deny,
            input_action: Action::Block,
            output_action: Action::Block,
            input_enabled: true,
            output_enabled: true,
        };
        let mut m = TopicMatcher::new(&[
            topic("Violence", "Content related to violence or harm"),
            topic("FinancialAdvice", "Specific financial or investment advice"),
        ]);
        let mut anchors = fx.anchors["Violence"].clone();
        anchors.extend(fx.anchors["FinancialAdvice"].clone());
        assert_eq!(m.anchor_texts().len(), anchors.len());
        m.set_anchor_embeddings(anchors);
        for case in &fx.cases {
            let segs: Vec<&Vec<f32>> = case.segments.iter().collect();
            let topics: Vec<String> = m
                .judge(crate::Source::Input, &segs)
                .into_iter()
                .filter(|v| v.detected)
                .map(|v| v.name)
                .collect();
            let content: Vec<ContentType> = ContentType::ALL
                .into_iter()
                .filter(|&k| {
                    let s = case
                        .segments
                        .iter()
                        .map(|v| c.score(k, v))
                        .fold(0.0f32, f32::max);
                    c.confidence(k, s) >= Strength::Low
                })
                .collect();
            let blocked = !topics.is_empty() || !content.is_empty();
            match case.expect.as_str() {
                "pass" => assert!(!blocked, "{}: {topics:?} {content:?}", case.text),
                "block" => assert!(blocked, "{}", case.text),
                "attack" => {
                    let s = case
                        .segments
                        .iter()
                        .map(|v| c.score(ContentType::PromptAttack, v))
                        .fold(0.0f32, f32::max);
                    assert_eq!(
                        c.confidence(ContentType::PromptAttack, s),
                        Strength::High,
                        "{}",
                        case.text
                    );
                }
                other => panic!("{other}"),
            }
        }
        let stocks = fx.cases.iter().find(|c| c.text.contains("stocks")).unwrap();
        let segs: Vec<&Vec<f32>> = stocks.segments.iter().collect();
        assert!(
            m.judge(crate::Source::Input, &segs)
                .iter()
                .any(|v| v.name == "FinancialAdvice" && v.detected)
        );
    }

    #[test]
    fn odd_inputs_score_zero() {
        let c = Classifiers::shared();
        assert_eq!(c.score(ContentType::Hate, &[0.5; 3]), 0.0);
        assert_eq!(c.confidence(ContentType::Hate, 0.0), Strength::None);
        let zero = vec![0.0f32; DIMENSIONS];
        for k in ContentType::ALL {
            let s = c.score(k, &zero);
            assert!((0.0..=1.0).contains(&s));
        }
    }
}
