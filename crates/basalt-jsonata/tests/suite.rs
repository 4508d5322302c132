//! Runs the official JSONata test suite (tests/suite, copied from jsonata-js) and asserts a
//! floor on the number of passing cases, printing the failures by group. Set
//! `JSONATA_SUITE_FAILURES=<file>` to write every failing case with its outcome.

use basalt_jsonata::{Expression, Functions};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Cases known to pass; raise it as the implementation grows (never lower it).
const PASS_FLOOR: usize = 1684;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite")
}

struct Case {
    name: String,
    group: String,
    case: Value,
    dir: PathBuf,
}

fn load_cases() -> Vec<Case> {
    let mut out = Vec::new();
    let groups = suite_dir().join("groups");
    let mut dirs: Vec<_> = std::fs::read_dir(&groups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let group = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            // A few cases hold lone UTF-16 surrogates, which JSON text in Rust cannot carry.
            let parsed: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) => serde_json::json!({"expr": "", "unloadable": true}),
            };
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            let cases = match parsed {
                Value::Array(items) => items,
                other => vec![other],
            };
            let many = cases.len() > 1;
            for (i, case) in cases.into_iter().enumerate() {
                let name = if many {
                    format!("{group}/{stem}[{i}]")
                } else {
                    format!("{group}/{stem}")
                };
                out.push(Case {
                    name,
                    group: group.clone(),
                    case,
                    dir: dir.clone(),
                });
            }
        }
    }
    out
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || ((x - y).abs() <= 1e-13 * x.abs().max(y.abs()))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| numbers_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| numbers_equal(v, w)))
        }
        _ => a == b,
    }
}

fn unordered_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            let mut rest: Vec<&Value> = y.iter().collect();
            x.len() == y.len()
                && x.iter().all(
                    |item| match rest.iter().position(|c| numbers_equal(item, c)) {
                        Some(i) => {
                            rest.remove(i);
                            true
                        }
                        None => false,
                    },
                )
        }
        _ => numbers_equal(a, b),
    }
}

/// Runs one case; `Err` describes the mismatch.
fn run_case(c: &Case, datasets: &BTreeMap<String, Value>) -> Result<(), String> {
    let case = &c.case;
    let expr = match (case.get("expr"), case.get("expr-file")) {
        (Some(Value::String(e)), _) => e.clone(),
        (_, Some(Value::String(f))) => {
            std::fs::read_to_string(c.dir.join(f)).map_err(|e| e.to_string())?
        }
        _ => return Err("no expression".into()),
    };
    let input: Option<Value> = match (case.get("data"), case.get("dataset")) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(Value::String(name))) => {
            Some(datasets.get(name).cloned().ok_or("missing dataset")?)
        }
        _ => None,
    };
    let bindings: Map<String, Value> = case
        .get("bindings")
        .and_then(|b| b.as_object().cloned())
        .unwrap_or_default();
    let expected_code = case.get("code").and_then(Value::as_str).or_else(|| {
        case.get("error")
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
    });
    // The suite's timebox: runaway evaluations must stop (jsonata-js's runner reports U1001).
    let mut functions = Functions::default();
    functions.timeout(std::time::Duration::from_millis(
        case.get("timelimit")
            .and_then(Value::as_u64)
            .unwrap_or(5000),
    ));
    if let Some(depth) = case.get("depth").and_then(Value::as_u64) {
        functions.max_depth(depth as usize);
    }
    let outcome = Expression::parse(&expr).and_then(|e| match &input {
        Some(i) => e.evaluate_with(i, &bindings, &functions),
        None => e.evaluate_without_input(&bindings, &functions),
    });
    if let Some(code) = expected_code {
        return match outcome {
            Err(e) if e.code == code => Ok(()),
            Err(e) if code == "U1001" && (e.code == "D1011" || e.code == "D1012") => Ok(()),
            other => Err(format!("expected error {code}, got {other:?}")),
        };
    }
    if case
        .get("undefinedResult")
        .is_some_and(|v| v == &Value::Bool(true))
    {
        return match outcome {
            Ok(None) => Ok(()),
            other => Err(format!("expected undefined, got {other:?}")),
        };
    }
    let Some(expected) = case.get("result") else {
        return Err("case has no expectation".into());
    };
    let unordered = case
        .get("unordered")
        .is_some_and(|v| v == &Value::Bool(true));
    match outcome {
        Ok(Some(actual))
            if (if unordered {
                unordered_equal(&actual, expected)
            } else {
                numbers_equal(&actual, expected)
            }) =>
        {
            Ok(())
        }
        other => Err(format!("expected {expected}, got {other:?}")),
    }
}

#[test]
fn official_suite() {
    // Deeply recursive cases need more stack than the default test thread has.
    let handle = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(run_suite)
        .unwrap();
    handle.join().unwrap();
}

fn run_suite() {
    let mut datasets = BTreeMap::new();
    for entry in std::fs::read_dir(suite_dir().join("datasets")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        datasets.insert(
            name,
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap(),
        );
    }
    let cases = load_cases();
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut report = String::new();
    let mut passed = 0;
    for c in &cases {
        if std::env::var("JSONATA_SUITE_TRACE").is_ok() {
            eprintln!("case {}", c.name);
        }
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(c, &datasets)));
        match result {
            Ok(Ok(())) => passed += 1,
            Ok(Err(msg)) => {
                failures
                    .entry(c.group.clone())
                    .or_default()
                    .push(c.name.clone());
                report.push_str(&format!(
                    "{}\n  expr: {}\n  {}\n",
                    c.name,
                    c.case.get("expr").unwrap_or(&Value::Null),
                    msg
                ));
            }
            Err(_) => {
                failures
                    .entry(c.group.clone())
                    .or_default()
                    .push(c.name.clone());
                report.push_str(&format!("{}\n  PANIC\n", c.name));
            }
        }
    }
    if let Ok(path) = std::env::var("JSONATA_SUITE_FAILURES") {
        std::fs::write(path, &report).unwrap();
    }
    for (group, names) in &failures {
        println!("{group}: {} failing", names.len());
    }
    println!("JSONata suite: {passed}/{} cases pass", cases.len());
    assert!(!report.contains("PANIC"), "a case panicked");
    assert!(
        passed >= PASS_FLOOR,
        "{passed} cases pass, below the floor of {PASS_FLOOR}"
    );
}
