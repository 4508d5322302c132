//! Amazon States Language: parse and validate a state machine definition
//! ([`parse`], [`validate`]) and run it ([`Run`]) as a pure function from (definition,
//! persisted run state, event) to (new run state, [`Effect`]s, [`HistoryEvent`]s). No I/O,
//! no clocks, no threads: the host performs every task and timer and reports back.
//!
//! ```
//! use basalt_asl::{parse, Context, Effect, Event, Run};
//! use serde_json::json;
//!
//! let def = parse(r#"{"StartAt": "Call", "States": {
//!     "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
//!              "Parameters": {"Payload.$": "$"}, "ResultSelector": {"r.$": "$.Payload"}, "End": true}}}"#).unwrap();
//! let ctx = Context {
//!     execution_id: "arn:aws:states:us-east-1:123456789012:execution:m:e".into(),
//!     execution_name: "e".into(), start_time: "2024-01-01T00:00:00.000Z".into(),
//!     role_arn: "arn:aws:iam::123456789012:role/r".into(),
//!     state_machine_id: "arn:aws:states:us-east-1:123456789012:stateMachine:m".into(),
//!     state_machine_name: "m".into(), redrive_count: 0,
//! };
//! let (mut run, step) = Run::start(&def, json!({"x": 1}), ctx, 0);
//! let Effect::Task { task, parameters, .. } = &step.effects[0] else { panic!() };
//! assert_eq!(parameters, &json!({"Payload": {"x": 1}}));
//! let step = run.handle(&def, Event::TaskSucceeded { task: task.clone(), output: json!({"Payload": 7}) }, 5);
//! assert_eq!(step.effects, vec![Effect::Succeeded { output: json!({"r": 7}) }]);
//! ```
//!
//! Host contract:
//! - persist the [`Run`] (serde) after every call, then perform the effects; after a crash,
//!   reload the Run and re-deliver what is still outstanding ([`Run::pending_tasks`]; timers
//!   by id). Stale or repeated events are ignored. Randomness (States.UUID, MathRandom,
//!   jitter, task tokens) comes from a seed and a counter kept in the Run, so a step re-run
//!   from the persisted Run repeats itself exactly.
//! - [`Effect::Task`] with `timeout_seconds`/`heartbeat_seconds`: when they run out, report
//!   [`Event::TaskTimedOut`] / [`Event::TaskHeartbeatTimedOut`].
//! - Distributed Map: the ItemReader and ResultWriter are Task effects too; see [`reader`]
//!   for what the host returns for a reader, and the Map docs in `states.rs` for the writer
//!   (parameters carry `Results`, `FailedSlots`, `MapRunArn` and `WriterConfig`; its output becomes the
//!   state's result, e.g. `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`).
//! - The final status is [`Run::status`]: `Effect::Failed` ends both a failed and a timed-out
//!   execution; a stopped one ends with no end effect (the host asked for it).
//!
//! JSONata (QueryLanguage at the top or per state): `Arguments`, `Output`, `Assign`, `Items`,
//! `ItemSelector`, `Condition`, `{% %}` anywhere in values, `$states` (input, result,
//! errorOutput, context) and the functions AWS adds, evaluated by `basalt-jsonata`;
//! expressions are parsed at validation (`INVALID_JSONATA_EXPRESSION`) and fail at run time
//! with `States.QueryEvaluationError`. Variables follow AWS's scoping: assigned after Output
//! is evaluated, visible to later states and inside Map iterations and Parallel branches,
//! never leaking out of them.

mod children;
mod choice;
mod diag;
mod errors;
mod history;
mod intrinsics;
mod jsonata;
mod map_runs;
mod model;
mod parse;
mod path;
pub mod reader;
mod rng;
mod run;
mod scope;
mod states;
mod tasks;
mod template;
mod test_state;

pub use diag::{Diagnostic, invalid_definition_message};
pub use history::HistoryEvent;
pub use map_runs::{
    ChildChange, ChildOf, Counts as MapRunCounts, MapRun, MapRunStatus, UpdateMapRunError,
};
pub use model::{Definition, QueryLanguage};
pub use parse::{parse, validate};
pub use run::{Context, Effect, Event, Run, Status, Step};
pub use test_state::{TestStateOutcome, test_state, test_state_named};
