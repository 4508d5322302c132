//! State transitions per second of the interpreter alone (the host loop in the bench, no
//! I/O): a 1,000-state Pass chain and an inline Map over 10,000 items.
//!
//!     cargo bench -p basalt-asl --bench transitions

use basalt_asl::{Context, Effect, Event, Run, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

fn ctx() -> Context {
    Context {
        execution_id: "arn:aws:states:us-east-1:123456789012:execution:Bench:e".into(),
        execution_name: "e".into(),
        start_time: "2024-05-01T10:00:00.000Z".into(),
        role_arn: "arn:aws:iam::123456789012:role/R".into(),
        state_machine_id: "arn:aws:states:us-east-1:123456789012:stateMachine:Bench".into(),
        state_machine_name: "Bench".into(),
        redrive_count: 0,
    }
}

fn pass_chain(n: usize) -> String {
    let mut states = serde_json::Map::new();
    for i in 0..n {
        let mut s = json!({"Type": "Pass", "Result": i, "ResultPath": "$.last"});
        if i + 1 < n {
            s["Next"] = json!(format!("S{}", i + 1));
        } else {
            s["End"] = json!(true);
        }
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S0", "States": states}).to_string()
}

/// Run to completion, answering tasks with their parameters and firing timers at once.
fn run_to_end(def: &basalt_asl::Definition, input: Value) -> usize {
    let (mut run, step) = Run::start_with_limit(def, input, ctx(), 0, None);
    let mut events = step.history.len();
    let mut queue = step.effects;
    while let Some(e) = queue.pop() {
        let ev = match e {
            Effect::Task {
                task, parameters, ..
            } => Event::TaskSucceeded {
                task,
                output: parameters,
            },
            Effect::Timer { timer, .. } => Event::TimerFired { timer },
            _ => continue,
        };
        let s = run.handle(def, ev, 0);
        events += s.history.len();
        queue.extend(s.effects);
    }
    assert!(run.is_done());
    events
}

fn benches(c: &mut Criterion) {
    let chain = parse(&pass_chain(1000)).unwrap();
    let mut g = c.benchmark_group("transitions");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("pass_chain_1000", |b| {
        b.iter(|| run_to_end(&chain, json!({"x": 1})))
    });
    let map = parse(r#"{"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$"}, "End": true}}}, "End": true}}}"#).unwrap();
    let items: Vec<Value> = (0..10_000).map(|i| json!(i)).collect();
    let input = json!({"items": items});
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(20);
    g.bench_function("inline_map_10000", |b| {
        b.iter(|| run_to_end(&map, input.clone()))
    });
    g.finish();
}

criterion_group!(transitions, benches);
criterion_main!(transitions);
