//! Records and keys. A bus is `{account}/{region}/{bus}` in [`BUSES`]; a rule
//! `{account}/{region}/{bus}/{rule}` in [`RULES`], holding its targets (bus names cannot hold
//! `/`, so one bus's rules are one prefix). Every change to a bus's rules gives the bus record
//! a new `generation` in the same transaction, so that each node's compiled matcher for the
//! bus knows when it is stale (see `ingest.rs`); a generation is never reused, even by a bus
//! deleted and created again.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const BUSES: &str = "events.buses";
pub const RULES: &str = "events.rules";
pub const DEFAULT_BUS: &str = "default";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct BusRec {
    pub name: String,
    /// Epoch seconds.
    pub created: i64,
    pub modified: i64,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub policy: Option<Value>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub dead_letter: Option<Value>,
    #[serde(default)]
    pub kms_key: Option<String>,
    /// New with every change to the bus's rules or targets.
    #[serde(default)]
    pub generation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RuleRec {
    pub name: String,
    pub bus: String,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
    /// `ENABLED`, `DISABLED` or `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`.
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Targets as PutTargets gave them (every member kept for ListTargetsByRule), by id.
    #[serde(default)]
    pub targets: Vec<Value>,
    /// Epoch milliseconds: anchors `rate()` schedules.
    #[serde(default)]
    pub created_ms: i64,
    /// The AWS principal that manages the rule (an archive's rule); users cannot change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    /// The archive (its incarnation id) that stores what this rule matches, instead of
    /// targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
}

impl RuleRec {
    pub fn enabled(&self) -> bool {
        self.state.starts_with("ENABLED")
    }
}

pub fn bus_key(account: &str, region: &str, bus: &str) -> String {
    format!("{account}/{region}/{bus}")
}

pub fn rule_key(account: &str, region: &str, bus: &str, rule: &str) -> String {
    format!("{account}/{region}/{bus}/{rule}")
}

pub fn bus_arn(account: &str, region: &str, bus: &str) -> String {
    format!("arn:aws:events:{region}:{account}:event-bus/{bus}")
}

/// Rules of the default bus are `rule/{name}`; of other buses `rule/{bus}/{name}`.
pub fn rule_arn(account: &str, region: &str, bus: &str, rule: &str) -> String {
    if bus == DEFAULT_BUS {
        format!("arn:aws:events:{region}:{account}:rule/{rule}")
    } else {
        format!("arn:aws:events:{region}:{account}:rule/{bus}/{rule}")
    }
}

/// A bus named by name or ARN, as every `EventBusName` parameter accepts.
pub fn bus_name(given: Option<&str>) -> String {
    match given {
        None | Some("") => DEFAULT_BUS.to_owned(),
        Some(g) => match g.split_once(":event-bus/") {
            Some((_, name)) => name.to_owned(),
            None => g.to_owned(),
        },
    }
}

/// One delivery: an event for one target of one rule. The payload of a work item of
/// [`crate::deliver::QUEUE`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub account: String,
    pub region: String,
    pub rule_arn: String,
    pub rule_name: String,
    pub target: Value,
    pub event: Value,
    /// Epoch milliseconds the event was accepted (its age bounds the retries).
    pub accepted_ms: i64,
}
