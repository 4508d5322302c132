//! The parsed state machine: every nested machine (Parallel branches, Map processors) is
//! flattened into one list so a running branch names its machine by index.

use crate::template::Template;
use serde_json::Value;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum QueryLanguage {
    JSONPath,
    JSONata,
}

impl QueryLanguage {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLanguage::JSONPath => "JSONPath",
            QueryLanguage::JSONata => "JSONata",
        }
    }
}

/// A validated state machine.
#[derive(Clone, Debug)]
pub struct Definition {
    pub(crate) machines: Vec<Machine>,
    pub(crate) query_language: QueryLanguage,
    pub(crate) timeout_seconds: Option<u64>,
    pub(crate) comment: Option<String>,
}

impl Definition {
    pub fn start_at(&self) -> &str {
        &self.machines[0].start_at
    }
    pub fn query_language(&self) -> QueryLanguage {
        self.query_language
    }
    pub fn timeout_seconds(&self) -> Option<u64> {
        self.timeout_seconds
    }
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }
    /// Names of the top-level states in definition order.
    pub fn state_names(&self) -> Vec<&str> {
        self.machines[0].order.iter().map(String::as_str).collect()
    }
    pub(crate) fn state(&self, machine: usize, name: &str) -> &State {
        &self.machines[machine].states[name]
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Machine {
    pub start_at: String,
    pub states: HashMap<String, State>,
    pub order: Vec<String>,
}

/// InputPath / OutputPath / ResultPath: absent (default `$`), `null`, or a path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PathField {
    Default,
    Null,
    Path(crate::path::Path),
}

#[derive(Clone, Debug)]
pub(crate) struct State {
    pub name: String,
    pub kind: Kind,
    pub ql: QueryLanguage,
    pub next: Option<String>,
    pub end: bool,
    pub input_path: PathField,
    pub output_path: PathField,
    pub result_path: PathField,
    /// Parameters (JSONPath) or Arguments (JSONata).
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    /// JSONata `Output`.
    pub output: Option<Template>,
    pub assign: Option<Template>,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// Whether anything in the state reads the context object (`$$`, `$states.context`,
    /// JSONata's clock): building it copies the execution input, so states that never read
    /// it skip that.
    pub uses_ctx: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Retrier {
    pub errors: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub jitter_full: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Catcher {
    pub errors: Vec<String>,
    pub next: String,
    pub result_path: PathField,
    pub output: Option<Template>,
    pub assign: Option<Template>,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Pass {
        result: Option<Value>,
    },
    Task {
        resource: String,
        timeout: Option<Template>,
        heartbeat: Option<Template>,
        credentials: Option<Template>,
    },
    Choice {
        choices: Vec<ChoiceBranch>,
        default: Option<String>,
    },
    Wait(WaitSpec),
    Succeed,
    Fail {
        error: Option<Template>,
        cause: Option<Template>,
    },
    Parallel {
        branches: Vec<usize>,
    },
    Map(Box<MapSpec>),
}

#[derive(Clone, Debug)]
pub(crate) struct MapSpec {
    pub processor: usize,
    pub items_path: PathField,
    /// JSONata `Items` (an array or an expression).
    pub items: Option<Template>,
    pub item_selector: Option<Template>,
    pub max_concurrency: Option<Template>,
    pub distributed: bool,
    pub item_reader: Option<Io>,
    pub batcher: Option<Batcher>,
    pub result_writer: Option<Io>,
    pub tolerated_count: Option<Template>,
    pub tolerated_percentage: Option<Template>,
    pub label: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct ChoiceBranch {
    pub rule: crate::choice::Rule,
    pub next: String,
    pub output: Option<Template>,
    pub assign: Option<Template>,
}

/// Seconds / SecondsPath (a number) or Timestamp / TimestampPath (RFC 3339).
#[derive(Clone, Debug)]
pub(crate) enum WaitSpec {
    Seconds(Template),
    Timestamp(Template),
}

/// ItemReader / ResultWriter: a resource the host calls, with its configuration.
#[derive(Clone, Debug)]
pub(crate) struct Io {
    pub resource: String,
    pub config: Value,
    pub parameters: Option<Template>,
}

#[derive(Clone, Debug)]
pub(crate) struct Batcher {
    pub max_items: Option<Template>,
    pub max_bytes: Option<Template>,
    pub batch_input: Option<Template>,
}
