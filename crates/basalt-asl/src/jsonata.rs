//! The bridge to a JSONata engine for JSONata states: `$states` and the workflow variables
//! as bindings, and the functions AWS adds (`$partition`, `$range`, `$hash`, `$random`,
//! `$uuid`, `$parse`).
//!
//! Until the `basalt-jsonata` crate lands in the workspace this bridge has no engine: every
//! expression fails with `States.QueryEvaluationError`, so JSONata machines parse, validate
//! and run their literal parts, and fail visibly at the first expression.

use serde_json::{Map, Value};

/// Evaluate `expr` with `$states` bound to `states` and each variable bound by name.
/// `Ok(None)` is JSONata's undefined.
pub(crate) fn evaluate(expr: &str, states: &Value, vars: &Map<String, Value>, rand: &mut dyn FnMut() -> u64) -> Result<Option<Value>, (String, String)> {
    let _ = (states, vars, rand);
    Err((
        "States.QueryEvaluationError".into(),
        format!("JSONata is not available in this build: cannot evaluate '{expr}'"),
    ))
}
