//! Precision and recall of the PII recognizers over `data/pii_eval.jsonl`, a labelled corpus
//! written for Basalt (synthetic values only; no real person's data): PII in many formats
//! and in prose, and look-alikes that must not match.
//!
//! A prediction counts when its type and matched text equal a label of the same line.
//! Structured types (all but NAME, ADDRESS, AGE, USERNAME, PASSWORD) must each reach F1 0.9;
//! the free-form ones, which rules only approximate, must stay precise.

use std::collections::{BTreeMap, HashSet};

use basalt_guardrails::Source;
use basalt_guardrails::config::{PiiAction, PiiEntity, PiiType, SensitiveInformationPolicy};
use basalt_guardrails::pii::{PiiFilter, PiiKind};
use serde_json::Value;

const CORPUS: &str = include_str!("../data/pii_eval.jsonl");

const FREE_FORM: [&str; 5] = ["NAME", "ADDRESS", "AGE", "USERNAME", "PASSWORD"];

fn all_types() -> Vec<PiiType> {
    // Every wire name round-trips through serde: the corpus must cover what config.rs accepts.
    PiiType::ALL
        .iter()
        .map(|t| {
            let back: PiiType =
                serde_json::from_value(Value::String(t.as_str().to_owned())).expect("type name");
            assert_eq!(back, *t);
            back
        })
        .collect()
}

#[derive(Default, Debug)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[test]
fn corpus_precision_and_recall() {
    let types = all_types();
    assert_eq!(types.len(), 31);
    let filter = PiiFilter::new(&SensitiveInformationPolicy {
        pii_entities: types
            .iter()
            .map(|t| PiiEntity {
                kind: *t,
                action: PiiAction::Anonymize,
                input_action: PiiAction::Anonymize,
                output_action: PiiAction::Anonymize,
                input_enabled: true,
                output_enabled: true,
            })
            .collect(),
        regexes: Vec::new(),
    })
    .expect("policy");

    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut lines = 0;
    let mut mistakes = Vec::new();
    for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let Some(text) = v["text"].as_str() else {
            continue;
        };
        lines += 1;
        let gold: HashSet<(String, String)> = v["entities"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let (t, val) = (
                    e["type"].as_str().unwrap_or(""),
                    e["value"].as_str().unwrap_or(""),
                );
                assert!(text.contains(val), "label {val:?} not in {text:?}");
                (t.to_owned(), val.to_owned())
            })
            .collect();
        let predicted: HashSet<(String, String)> = filter
            .find(text, Source::Input)
            .into_iter()
            .filter_map(|h| match h.kind {
                PiiKind::Entity(t) => Some((t.as_str().to_owned(), h.matched)),
                PiiKind::Regex(_) => None,
            })
            .collect();
        for p in &predicted {
            let c = counts.entry(p.0.clone()).or_default();
            if gold.contains(p) {
                c.tp += 1;
            } else {
                c.fp += 1;
                mistakes.push(format!("FP {} {:?} in {text:?}", p.0, p.1));
            }
        }
        for g in gold.difference(&predicted) {
            counts.entry(g.0.clone()).or_default().fn_ += 1;
            mistakes.push(format!("FN {} {:?} in {text:?}", g.0, g.1));
        }
    }
    assert!(lines >= 150, "the corpus has {lines} texts");

    println!("{lines} texts");
    println!(
        "{:<42} {:>4} {:>4} {:>4} {:>9} {:>7} {:>6}",
        "type", "tp", "fp", "fn", "precision", "recall", "f1"
    );
    let mut structured = Counts::default();
    for (t, c) in &counts {
        println!(
            "{t:<42} {:>4} {:>4} {:>4} {:>9.3} {:>7.3} {:>6.3}",
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall(),
            c.f1()
        );
        if !FREE_FORM.contains(&t.as_str()) {
            structured.tp += c.tp;
            structured.fp += c.fp;
            structured.fn_ += c.fn_;
        }
    }
    println!(
        "structured overall: precision {:.3} recall {:.3} f1 {:.3}",
        structured.precision(),
        structured.recall(),
        structured.f1()
    );
    for m in &mistakes {
        println!("{m}");
    }

    for t in &types {
        assert!(
            counts.contains_key(t.as_str()),
            "no label or prediction of {}",
            t.as_str()
        );
    }
    for (t, c) in &counts {
        if FREE_FORM.contains(&t.as_str()) {
            assert!(c.precision() >= 0.85, "{t} precision {:.3}", c.precision());
            assert!(c.recall() >= 0.6, "{t} recall {:.3}", c.recall());
        } else {
            assert!(c.f1() >= 0.9, "{t} F1 {:.3}: {c:?}", c.f1());
        }
    }
    assert!(
        structured.f1() >= 0.95,
        "structured F1 {:.3}",
        structured.f1()
    );
}
