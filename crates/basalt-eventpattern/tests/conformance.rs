//! Every example of the EventBridge event-pattern pages and the SNS filter-policy pages, as a
//! table (`tests/conformance/*.json`, each case citing its page), plus the `Matcher` checked
//! against `Pattern::matches` on seeded random rule sets.

use basalt_eventpattern::{FilterPolicy, FilterPolicyScope, Matcher, Pattern};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/conformance/{name}", env!("CARGO_MANIFEST_DIR"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// Patterns are stored as JSON, or as text where the text matters (a repeated key).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn eventbridge_docs() {
    let cases = load("eventbridge.json");
    assert!(cases.len() >= 100);
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let parsed = Pattern::parse(&text(&c["pattern"]));
        match (&parsed, c.get("error")) {
            (Err(e), Some(want)) if e.to_string() == want.as_str().unwrap() => {}
            (Ok(p), None) => {
                let got = p.matches(&c["event"]);
                if got != c["match"].as_bool().unwrap() {
                    failures.push(format!("{name}: matched {got}"));
                }
                // The same answer through the text entry point and through a Matcher.
                assert_eq!(
                    p.matches_str(&c["event"].to_string()).unwrap(),
                    got,
                    "{name}"
                );
                let mut m = Matcher::new();
                m.insert(0u8, p);
                assert_eq!(m.matches(&c["event"]) == vec![0], got, "{name} via Matcher");
            }
            (other, want) => failures.push(format!("{name}: got {other:?}, want error {want:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn sns_docs() {
    let cases = load("sns.json");
    assert!(cases.len() >= 50);
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let scope = match c.get("scope").and_then(Value::as_str) {
            Some("MessageBody") => Some(FilterPolicyScope::MessageBody),
            Some(_) => Some(FilterPolicyScope::MessageAttributes),
            None => None,
        };
        let policy = text(&c["policy"]);
        let parsed = match scope {
            Some(s) => FilterPolicy::parse_scoped(&policy, s),
            None => FilterPolicy::parse(&policy),
        };
        match (&parsed, c.get("error")) {
            (Err(e), Some(want)) if e.to_string() == want.as_str().unwrap() => {}
            (Ok(p), None) => {
                let got = p.matches(&c["doc"]);
                if got != c["match"].as_bool().unwrap() {
                    failures.push(format!("{name}: matched {got}"));
                }
            }
            (other, want) => failures.push(format!("{name}: got {other:?}, want error {want:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_event_text_is_an_error() {
    let p = Pattern::parse(r#"{"a": ["x"]}"#).unwrap();
    let e = p.matches_str("{not json").unwrap_err();
    assert_eq!(e.to_string(), "Parameter Event is not valid.");
    assert_eq!(e.kind(), basalt_eventpattern::ErrorKind::InvalidEvent);
}

// ---- Matcher against Pattern::matches on random rule sets ----

const KEYS: &[&str] = &["a", "b", "c"];
const STRS: &[&str] = &["x", "y", "xy", "yx", "", "10.0.0.1"];

fn rand_scalar(r: &mut StdRng) -> Value {
    match r.gen_range(0..6) {
        0..=2 => json!(STRS[r.gen_range(0..STRS.len())]),
        3 => json!(r.gen_range(0..4)),
        4 => json!(r.gen_range(0..4) as f64 + 0.5),
        _ => [json!(true), json!(null)][r.gen_range(0..2)].clone(),
    }
}

fn rand_matcher(r: &mut StdRng) -> Value {
    match r.gen_range(0..12) {
        0..=5 => rand_scalar(r),
        6 => json!({"prefix": STRS[r.gen_range(0..4)]}),
        7 => json!({"anything-but": STRS[r.gen_range(0..4)]}),
        8 => json!({"numeric": [">=", r.gen_range(0..3), "<", 3]}),
        9 => json!({"exists": r.gen_bool(0.5)}),
        10 => json!({"wildcard": "*y"}),
        _ => json!({"equals-ignore-case": "X"}),
    }
}

fn rand_pattern(r: &mut StdRng, depth: u32) -> Value {
    let mut m = Map::new();
    for _ in 0..r.gen_range(1..=2) {
        let k = KEYS[r.gen_range(0..KEYS.len())];
        let v = if depth < 2 && r.gen_bool(0.3) {
            rand_pattern(r, depth + 1)
        } else {
            Value::Array((0..r.gen_range(1..=2)).map(|_| rand_matcher(r)).collect())
        };
        m.insert(k.into(), v);
    }
    if r.gen_bool(0.15) {
        m.insert(
            "$or".into(),
            json!([rand_pattern(r, depth + 1), rand_pattern(r, depth + 1)]),
        );
    }
    Value::Object(m)
}

fn rand_event(r: &mut StdRng, depth: u32) -> Value {
    let mut m = Map::new();
    for k in KEYS {
        if r.gen_bool(0.6) {
            let v = match r.gen_range(0..6) {
                0 if depth < 2 => rand_event(r, depth + 1),
                1 if depth < 2 => Value::Array(
                    (0..r.gen_range(0..3))
                        .map(|_| rand_event(r, depth + 1))
                        .collect(),
                ),
                2 => Value::Array((0..r.gen_range(0..3)).map(|_| rand_scalar(r)).collect()),
                _ => rand_scalar(r),
            };
            m.insert((*k).into(), v);
        }
    }
    Value::Object(m)
}

#[test]
fn matcher_agrees_with_pattern_on_random_rule_sets() {
    for seed in 0..40u64 {
        let mut r = StdRng::seed_from_u64(seed);
        let mut matcher = Matcher::new();
        let mut rules: Vec<(u32, Pattern)> = Vec::new();
        for id in 0..r.gen_range(1..120) {
            // Invalid random patterns (an empty $or branch, say) are simply skipped.
            if let Ok(p) = Pattern::from_value(&rand_pattern(&mut r, 0)) {
                matcher.insert(id, &p);
                rules.push((id, p));
            }
        }
        // Remove a few and re-add one under an old key, to exercise the index upkeep.
        for _ in 0..r.gen_range(0..5) {
            if rules.is_empty() {
                break;
            }
            let (id, _) = rules.swap_remove(r.gen_range(0..rules.len()));
            matcher.remove(&id);
        }
        assert_eq!(matcher.len(), rules.len());
        for _ in 0..200 {
            let event = rand_event(&mut r, 0);
            let mut got = matcher.matches(&event);
            got.sort_unstable();
            let mut want: Vec<u32> = rules
                .iter()
                .filter(|(_, p)| p.matches(&event))
                .map(|(id, _)| *id)
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "seed {seed}, event {event}");
        }
    }
}
