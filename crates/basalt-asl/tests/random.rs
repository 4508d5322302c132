//! No panics: 20,000 random definitions and inputs, parsed, validated and (when valid) run
//! to completion with random task outcomes.

use basalt_asl::{Context, Effect, Event, Run, parse, test_state, validate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

fn ctx() -> Context {
    Context {
        execution_id: "arn:aws:states:us-east-1:1:execution:M:e".into(),
        execution_name: "e".into(),
        start_time: "2024-05-01T10:00:00.000Z".into(),
        role_arn: "r".into(),
        state_machine_id: "arn:aws:states:us-east-1:1:stateMachine:M".into(),
        state_machine_name: "M".into(),
        redrive_count: 0,
    }
}

const PATHS: &[&str] = &[
    "$",
    "$.a",
    "$.a.b",
    "$.list[0]",
    "$.list[*]",
    "$..b",
    "$.list[?(@ > 1)]",
    "$$.Execution.Input",
    "$$.Map.Item.Value",
    "$v",
    "$.missing",
    "$['a']",
    "$.list[1:]",
];
const INTRINSICS: &[&str] = &[
    "States.Format('x{}', $.a)",
    "States.ArrayLength($.list)",
    "States.MathAdd($.n, 1)",
    "States.StringToJson($.s)",
    "States.Array($.a, 1, 'x')",
    "States.ArrayPartition($.list, 2)",
    "States.Hash($.s, 'SHA-256')",
    "States.UUID()",
    "States.MathRandom(0, 5)",
    "States.Base64Decode($.s)",
];

fn value(r: &mut StdRng, depth: u32) -> Value {
    match r.gen_range(0..if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(r.gen_bool(0.5)),
        2 => json!(r.gen_range(-3..10)),
        3 => json!(["x", "{\"k\":1}", "2024-01-01T00:00:00Z", "", "a,b"][r.gen_range(0..5)]),
        4 => json!(r.gen_range(0.0..3.0)),
        5 => Value::Array(
            (0..r.gen_range(0..4))
                .map(|_| value(r, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = serde_json::Map::new();
            for k in ["a", "b", "list", "n", "s"] {
                if r.gen_bool(0.5) {
                    m.insert(k.into(), value(r, depth + 1));
                }
            }
            Value::Object(m)
        }
    }
}

fn pick<'a>(r: &mut StdRng, xs: &[&'a str]) -> &'a str {
    xs[r.gen_range(0..xs.len())]
}

fn template(r: &mut StdRng) -> Value {
    let mut m = serde_json::Map::new();
    for i in 0..r.gen_range(0..3) {
        if r.gen_bool(0.5) {
            m.insert(
                format!("k{i}.$"),
                json!(if r.gen_bool(0.5) {
                    pick(r, PATHS)
                } else {
                    pick(r, INTRINSICS)
                }),
            );
        } else {
            m.insert(format!("k{i}"), value(r, 2));
        }
    }
    Value::Object(m)
}

fn state(r: &mut StdRng, names: &[String], depth: u32) -> Value {
    let next = |r: &mut StdRng| json!(names[r.gen_range(0..names.len())]);
    let mut s = match r.gen_range(0..if depth > 1 { 6 } else { 8 }) {
        0 => json!({"Type": "Pass"}),
        1 => {
            json!({"Type": "Task", "Resource": pick(r, &["arn:aws:states:::lambda:invoke", "arn:aws:lambda:us-east-1:1:function:f", "arn:aws:states:::sqs:sendMessage.waitForTaskToken"])})
        }
        2 => {
            let op = pick(
                r,
                &[
                    "StringEquals",
                    "NumericGreaterThan",
                    "IsPresent",
                    "BooleanEquals",
                    "StringMatches",
                    "IsTimestamp",
                ],
            );
            let mut rule = json!({"Variable": pick(r, PATHS), "Next": next(r)});
            rule[op] = value(r, 3);
            json!({"Type": "Choice", "Choices": [rule], "Default": next(r)})
        }
        3 => {
            let mut w = json!({"Type": "Wait"});
            let field = pick(r, &["Seconds", "SecondsPath", "TimestampPath"]);
            w[field] = if r.gen_bool(0.5) {
                json!(r.gen_range(0..3))
            } else {
                json!(pick(r, PATHS))
            };
            w
        }
        4 => json!({"Type": "Succeed"}),
        5 => json!({"Type": "Fail", "Error": "E", "CausePath": pick(r, PATHS)}),
        6 => json!({"Type": "Parallel", "Branches": [machine(r, depth + 1)]}),
        _ => {
            json!({"Type": "Map", "ItemsPath": pick(r, PATHS), "MaxConcurrency": r.gen_range(0..3), "ItemProcessor": machine(r, depth + 1)})
        }
    };
    let t = s["Type"].as_str().unwrap().to_string();
    if !matches!(t.as_str(), "Choice" | "Succeed" | "Fail") {
        if r.gen_bool(0.6) {
            s["Next"] = next(r);
        } else {
            s["End"] = json!(true);
        }
    }
    for (field, p) in [("InputPath", 0.2), ("OutputPath", 0.2), ("ResultPath", 0.2)] {
        if r.gen_bool(p) && t != "Fail" {
            s[field] = json!(pick(r, PATHS));
        }
    }
    if r.gen_bool(0.3) && matches!(t.as_str(), "Pass" | "Task" | "Parallel") {
        s["Parameters"] = template(r);
    }
    if r.gen_bool(0.2) && matches!(t.as_str(), "Task" | "Parallel" | "Map") {
        s["ResultSelector"] = template(r);
        s["Retry"] = json!([{"ErrorEquals": ["States.ALL"], "MaxAttempts": r.gen_range(0..3)}]);
        s["Catch"] =
            json!([{"ErrorEquals": ["States.ALL"], "Next": next(r), "ResultPath": "$.err"}]);
    }
    if r.gen_bool(0.2) && t != "Fail" && t != "Succeed" {
        s["Assign"] = json!({"v": value(r, 2)});
    }
    s
}

fn machine(r: &mut StdRng, depth: u32) -> Value {
    let n = r.gen_range(1..5);
    let names: Vec<String> = (0..n).map(|i| format!("S{depth}_{i}")).collect();
    let mut states = serde_json::Map::new();
    for name in &names {
        states.insert(name.clone(), state(r, &names, depth));
    }
    json!({"StartAt": names[0], "States": states})
}

#[test]
fn random_definitions_and_inputs_never_panic() {
    let mut r = StdRng::seed_from_u64(12);
    let (mut valid, mut ended) = (0, 0);
    for i in 0..20_000 {
        let def_v = machine(&mut r, 0);
        let text = if i % 50 == 0 {
            def_v.to_string()[..def_v.to_string().len() / 2].to_string()
        } else {
            def_v.to_string()
        };
        let _ = validate(&text);
        let Ok(def) = parse(&text) else { continue };
        valid += 1;
        let input = value(&mut r, 0);
        let (mut run, step) = Run::start(&def, input.clone(), ctx(), 0);
        let mut queue: std::collections::VecDeque<Effect> = step.effects.into();
        let mut steps = 0;
        while !run.is_done() && steps < 200 {
            steps += 1;
            let Some(e) = queue.pop_front() else { break };
            let event = match e {
                Effect::Task {
                    task, parameters, ..
                } => match r.gen_range(0..4) {
                    0 => Event::TaskFailed {
                        task,
                        error: "Boom".into(),
                        cause: "c".into(),
                    },
                    1 => Event::TaskTimedOut { task },
                    _ => Event::TaskSucceeded {
                        task,
                        output: if r.gen_bool(0.5) {
                            parameters
                        } else {
                            value(&mut r, 0)
                        },
                    },
                },
                Effect::Timer { timer, .. } => Event::TimerFired { timer },
                _ => continue,
            };
            let s = run.handle(&def, event, steps);
            queue.extend(s.effects);
        }
        if run.is_done() {
            ended += 1;
        }
        // Every state alone through TestState.
        if let Some(first) = def_v["States"].as_object().and_then(|m| m.values().next()) {
            let _ = test_state(
                &first.to_string(),
                input,
                ctx(),
                Some(Ok(json!({"a": 1}))),
                0,
            );
        }
    }
    assert!(valid > 1_500, "only {valid} valid definitions");
    assert!(ended > 1_000, "only {ended} executions ended");
}
