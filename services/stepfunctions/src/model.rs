//! Records and where they live in the state store.
//!
//! * A state machine is `{account}/{region}/{name}` in [`MACHINES`]; its versions
//!   `{machine arn}/{number}` in [`VERSIONS`], its aliases `{machine arn}/{alias}` in
//!   [`ALIASES`].
//! * An execution is its ARN in [`EXECUTIONS`]: the definition it runs (a snapshot), its
//!   status and the interpreter's [`Run`], which the driver rewrites after every step under a
//!   precondition on the record as read. Its history is `{execution arn}/{event id}` in
//!   [`HISTORY`]; [`BY_MACHINE`] lists executions newest first; [`MAP_RUNS`] finds the
//!   execution of a distributed Map's run (whose counts live in the [`Run`]).
//! * Work runs on the store's leases: [`EVENTS`] (what an execution waits for: task results,
//!   timers, its start), [`TASKS`] (tasks to perform) and one queue per activity.

use basalt_asl::Run;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const MACHINES: &str = "states.machines";
pub const VERSIONS: &str = "states.versions";
pub const ALIASES: &str = "states.aliases";
pub const EXECUTIONS: &str = "states.executions";
pub const BY_MACHINE: &str = "states.by-machine";
pub const HISTORY: &str = "states.history";
/// Map Run ARN → the ARN of the execution whose distributed Map runs it.
pub const MAP_RUNS: &str = "states.map-runs";
/// Task tokens handed out (waitForTaskToken, activities): token → [`TokenRec`].
pub const TOKENS: &str = "states.tokens";
pub const ACTIVITIES: &str = "states.activities";

/// Lease queue of execution events.
pub const EVENTS: &str = "states.events";
/// Lease queue of tasks to perform.
pub const TASKS: &str = "states.tasks";

pub fn activity_queue(activity_arn: &str) -> String {
    format!("states.activity/{activity_arn}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineRec {
    pub name: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub definition: String,
    pub role_arn: String,
    /// STANDARD or EXPRESS.
    pub kind: String,
    /// Epoch seconds.
    pub created: f64,
    pub updated: Option<f64>,
    pub revision_id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub logging: Option<Value>,
    #[serde(default)]
    pub tracing: Option<Value>,
    #[serde(default)]
    pub encryption: Option<Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The number the next published version gets.
    #[serde(default = "one")]
    pub next_version: u64,
}

fn one() -> u64 {
    1
}

impl MachineRec {
    pub fn key(account: &str, region: &str, name: &str) -> String {
        format!("{account}/{region}/{name}")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRec {
    pub arn: String,
    pub machine_arn: String,
    pub number: u64,
    pub definition: String,
    pub role_arn: String,
    pub revision_id: String,
    pub description: Option<String>,
    pub created: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AliasRec {
    pub arn: String,
    pub name: String,
    pub machine_arn: String,
    pub description: Option<String>,
    /// (version ARN, weight).
    pub routing: Vec<(String, u64)>,
    pub created: f64,
    pub updated: f64,
}

/// Who waits for an execution started by `states:startExecution.sync`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Parent {
    pub execution: String,
    pub task: String,
    /// `sync` (Output as a string) or `sync:2` (Output as JSON).
    pub mode: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionRec {
    pub arn: String,
    pub name: String,
    pub machine_arn: String,
    #[serde(default)]
    pub version_arn: Option<String>,
    #[serde(default)]
    pub alias_arn: Option<String>,
    pub account: String,
    pub region: String,
    /// STANDARD or EXPRESS.
    pub kind: String,
    pub definition: String,
    pub role_arn: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: String,
    pub start_ms: i64,
    #[serde(default)]
    pub stop_ms: Option<i64>,
    pub input: String,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    /// None until the driver took the start event.
    #[serde(default)]
    pub run: Option<Run>,
    #[serde(default)]
    pub parent: Option<Parent>,
    #[serde(default)]
    pub redrive_count: u32,
    /// When it was last redriven, and the client token of that RedriveExecution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redrive_token: Option<String>,
    /// The machine's `loggingConfiguration` when the execution started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Value>,
    #[serde(default)]
    pub trace_header: Option<String>,
    /// The mock configuration's test case this execution runs (`stateMachine:Name#Case`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case: Option<String>,
    /// Invocations of each mocked state so far: the index of its next mocked response.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mock_invocations: BTreeMap<String, u64>,
    /// The record's bytes as loaded (every rewrite checks them).
    #[serde(skip)]
    pub stored: Vec<u8>,
}

impl ExecutionRec {
    pub fn by_machine_key(&self) -> String {
        by_machine_key(&self.machine_arn, self.start_ms, &self.name)
    }
}

/// Newest first: the start time inverted.
pub fn by_machine_key(machine_arn: &str, start_ms: i64, name: &str) -> String {
    format!("{machine_arn}/{:020}/{name}", i64::MAX - start_ms.max(0))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRec {
    pub execution: String,
    pub task: String,
    /// The heartbeat timer to push back on SendTaskHeartbeat, with its period.
    #[serde(default)]
    pub heartbeat_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityRec {
    pub arn: String,
    pub name: String,
    pub created: f64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub encryption: Option<Value>,
}

/// A work item of [`EVENTS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventItem {
    pub execution: String,
    /// None: the execution's start.
    pub event: Option<basalt_asl::Event>,
}

/// A work item of [`TASKS`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskItem {
    pub execution: String,
    pub effect: basalt_asl::Effect,
    /// The answer of a mocked state, chosen when the task was scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<crate::mocks::Mocked>,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// ISO 8601 with milliseconds and `Z` (`$$.Execution.StartTime`).
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}
