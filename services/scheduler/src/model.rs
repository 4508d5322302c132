//! Records and keys. A group is `{account}/{region}/{group}` in [`GROUPS`]; a schedule
//! `{account}/{region}/{group}/{name}` in [`SCHEDULES`] (names cannot hold `/`, so one group's
//! schedules are one prefix). The `default` group always exists and is stored only once it
//! was tagged.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const GROUPS: &str = "scheduler.groups";
pub const SCHEDULES: &str = "scheduler.schedules";
pub const DEFAULT_GROUP: &str = "default";

/// The current version of the stored records.
pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct GroupRec {
    #[serde(default)]
    pub v: u32,
    pub name: String,
    /// Epoch seconds; None for the default group, which nobody created.
    #[serde(default)]
    pub created: Option<f64>,
    #[serde(default)]
    pub modified: Option<f64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ScheduleRec {
    #[serde(default)]
    pub v: u32,
    pub name: String,
    pub group: String,
    pub expression: String,
    /// As given; `UTC` when not.
    pub timezone: String,
    /// Epoch seconds.
    #[serde(default)]
    pub start_date: Option<f64>,
    #[serde(default)]
    pub end_date: Option<f64>,
    #[serde(default)]
    pub description: Option<String>,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
    #[serde(default)]
    pub kms_key_arn: Option<String>,
    /// The Target as given, with the default RetryPolicy filled in.
    pub target: Value,
    pub flexible_time_window: Value,
    /// `NONE` or `DELETE`.
    pub action_after_completion: String,
    pub created: f64,
    pub modified: f64,
    /// New with every change: a fire armed before the change is stale.
    pub generation: String,
    /// Epoch milliseconds a `rate()` counts from when there is no StartDate (the last change).
    pub anchor_ms: i64,
    /// The ClientToken of the CreateSchedule that made it: the same create retried succeeds.
    #[serde(default)]
    pub client_token: Option<String>,
}

impl ScheduleRec {
    pub fn enabled(&self) -> bool {
        self.state == "ENABLED"
    }

    /// Length of the flexible time window in minutes (0 when the mode is OFF).
    pub fn window_minutes(&self) -> i64 {
        if self
            .flexible_time_window
            .get("Mode")
            .and_then(Value::as_str)
            == Some("FLEXIBLE")
        {
            self.flexible_time_window
                .get("MaximumWindowInMinutes")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        } else {
            0
        }
    }
}

pub fn group_key(account: &str, region: &str, group: &str) -> String {
    format!("{account}/{region}/{group}")
}

pub fn schedule_key(account: &str, region: &str, group: &str, name: &str) -> String {
    format!("{account}/{region}/{group}/{name}")
}

pub fn group_arn(account: &str, region: &str, group: &str) -> String {
    format!("arn:aws:scheduler:{region}:{account}:schedule-group/{group}")
}

pub fn schedule_arn(account: &str, region: &str, group: &str, name: &str) -> String {
    format!("arn:aws:scheduler:{region}:{account}:schedule/{group}/{name}")
}

/// The group a `GroupName` parameter names (the default group when absent).
pub fn group_name(given: Option<&str>) -> &str {
    match given {
        None | Some("") => DEFAULT_GROUP,
        Some(g) => g,
    }
}

/// A fire of one schedule: the payload of a work item of [`crate::fire::QUEUE`], due at the
/// fire time (the nominal time plus the flexible window's offset).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Armed {
    pub account: String,
    pub region: String,
    pub group: String,
    pub name: String,
    /// The schedule's generation when armed.
    pub generation: String,
    /// The time the expression names, before the flexible window's offset.
    pub nominal_ms: i64,
}

/// One invocation of a target: the payload of a work item of [`crate::invoke::QUEUE`]. It
/// carries its own copy of the target, so a schedule deleted after it fired (by
/// ActionAfterCompletion) still has its invocation delivered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    pub account: String,
    pub region: String,
    pub schedule_arn: String,
    pub target: Value,
    /// The nominal fire time, epoch milliseconds (`<aws.scheduler.scheduled-time>`).
    pub scheduled_ms: i64,
    pub execution_id: String,
    /// When it fired: its age bounds the retries.
    pub fired_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arns_and_keys() {
        assert_eq!(
            schedule_arn("123456789012", "us-east-1", "default", "s1"),
            "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s1"
        );
        assert_eq!(
            group_arn("123456789012", "eu-west-1", "g"),
            "arn:aws:scheduler:eu-west-1:123456789012:schedule-group/g"
        );
        assert_eq!(group_name(None), "default");
        assert_eq!(group_name(Some("")), "default");
        assert_eq!(group_name(Some("g")), "g");
        assert!(schedule_key("a", "r", "g", "n").starts_with(&group_key("a", "r", "g")));
    }

    #[test]
    fn window_is_zero_unless_flexible() {
        let mut rec = ScheduleRec {
            flexible_time_window: json!({"Mode": "OFF"}),
            ..Default::default()
        };
        assert_eq!(rec.window_minutes(), 0);
        rec.flexible_time_window = json!({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15});
        assert_eq!(rec.window_minutes(), 15);
    }
}
