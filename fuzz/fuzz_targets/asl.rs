#![no_main]
//! The Amazon States Language interpreter on arbitrary input: the bytes are a definition,
//! then (after the first NUL) an execution input. Validation, execution (tasks answered with
//! their parameters, then with a failure; timers fired at once) and TestState of the first
//! state must never panic, whatever either holds.
use basalt_asl::{Context, Effect, Event, Run, parse, test_state, validate};

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

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (def, input) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(def), Ok(input)) = (std::str::from_utf8(def), std::str::from_utf8(input)) else {
        return;
    };
    let input: serde_json::Value = serde_json::from_str(input).unwrap_or(serde_json::Value::Null);
    let _ = validate(def);
    if let Ok(d) = parse(def) {
        let (mut run, step) = Run::start(&d, input.clone(), ctx(), 0);
        let mut queue = step.effects;
        let mut n = 0u32;
        while let Some(e) = queue.pop() {
            n += 1;
            if run.is_done() || n > 500 {
                break;
            }
            let ev = match e {
                Effect::Task { task, parameters, .. } if n % 3 != 0 => Event::TaskSucceeded { task, output: parameters },
                Effect::Task { task, .. } => Event::TaskFailed { task, error: "E".into(), cause: "c".into() },
                Effect::Timer { timer, .. } => Event::TimerFired { timer },
                _ => continue,
            };
            queue.extend(run.handle(&d, ev, n as i64).effects);
        }
        // The run survives persistence.
        let saved = serde_json::to_string(&run).unwrap();
        let _: Run = serde_json::from_str(&saved).unwrap();
    }
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(def) {
        if let Some(first) = m.get("States").and_then(|s| s.as_object()).and_then(|s| s.values().next()) {
            let _ = test_state(&first.to_string(), input, ctx(), Some(Ok(serde_json::json!({}))), 0);
        }
    }
});
