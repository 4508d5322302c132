//! Step scaling: a CloudWatch alarm whose action is a StepScaling policy's ARN runs the
//! policy when it goes to ALARM. The step adjustment applies whose interval holds the
//! breach (the newest evaluated datapoint minus the alarm's threshold, from the alarm's
//! reasonData), by the policy's AdjustmentType, within MinCapacity and MaxCapacity, after
//! the policy's Cooldown. CloudWatch reaches this through the in-process registry with
//! [`EXECUTE`], an operation no client can call (the gateway only routes modeled ones).
//! As Basalt's alarms act on state changes, a policy runs once per transition to ALARM,
//! where AWS's alarms also run it again each period they stay in ALARM.

use crate::{AutoScaling, POLICIES, TARGETS};
use basalt_core::{AwsError, RequestContext};
use serde_json::{Value, json};

/// The internal operation CloudWatch's alarm actions call.
pub const EXECUTE: &str = "ExecuteScalingPolicyFromAlarm";

/// The step adjustment of `config` whose interval holds `breach`: above the threshold
/// the lower bound is inclusive and the upper exclusive, below it the other way round.
fn step_for(config: &Value, breach: f64) -> Option<i64> {
    config["StepAdjustments"]
        .as_array()?
        .iter()
        .find(|s| {
            let lower = s["MetricIntervalLowerBound"].as_f64();
            let upper = s["MetricIntervalUpperBound"].as_f64();
            let above = lower.is_none_or(|l| breach >= l) && upper.is_none_or(|u| breach < u);
            let below = lower.is_none_or(|l| breach > l) && upper.is_none_or(|u| breach <= u);
            // At the threshold itself either reading holds (an alarm on
            // LessThanOrEqualToThreshold breaches at zero with an upper bound of zero).
            if breach > 0.0 {
                above
            } else if breach < 0.0 {
                below
            } else {
                above || below
            }
        })
        .and_then(|s| s["ScalingAdjustment"].as_i64())
}

/// The capacity a step policy sets from `current` for `breach`, within `min` and `max`.
pub(crate) fn step_capacity(
    config: &Value,
    current: i64,
    breach: f64,
    min: i64,
    max: i64,
) -> Option<i64> {
    let adjustment = step_for(config, breach)?;
    let wanted = match config["AdjustmentType"].as_str() {
        Some("ExactCapacity") => adjustment,
        Some("PercentChangeInCapacity") => {
            let raw = current as f64 * adjustment as f64 / 100.0;
            // Application Auto Scaling's rounding: a fraction of one instance is one, a
            // larger change rounds toward zero.
            let mut delta = if raw > 0.0 && raw < 1.0 {
                1
            } else if raw < 0.0 && raw > -1.0 {
                -1
            } else {
                raw.trunc() as i64
            };
            let floor = config["MinAdjustmentMagnitude"].as_i64().unwrap_or(0);
            if delta != 0 && delta.abs() < floor {
                delta = floor * delta.signum();
            }
            current + delta
        }
        _ => current + adjustment,
    };
    Some(wanted.clamp(min, max.max(min)))
}

/// The breach the alarm event reports: its datapoints aggregated as the policy's
/// MetricAggregationType says (Average by default), minus its threshold.
fn breach_of(alarm_event: &Value, aggregation: Option<&str>) -> Option<f64> {
    let raw = alarm_event["alarmData"]["state"]["reasonData"].as_str()?;
    let data: Value = serde_json::from_str(raw).ok()?;
    let points: Vec<f64> = data["recentDatapoints"]
        .as_array()?
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    if points.is_empty() {
        return None;
    }
    let value = match aggregation {
        Some("Minimum") => points.iter().copied().fold(f64::INFINITY, f64::min),
        Some("Maximum") => points.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => points.iter().sum::<f64>() / points.len() as f64,
    };
    Some(value - data["threshold"].as_f64()?)
}

/// Runs the step policy `input.PolicyARN` for the alarm event `input.Alarm`.
pub async fn execute(
    a: &AutoScaling,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let arn = input["PolicyARN"].as_str().unwrap_or_default();
    let event = &input["Alarm"];
    if event["alarmData"]["state"]["value"] != "ALARM" {
        return Ok(json!({"Executed": false}));
    }
    // Only this account's and region's policies: an ARN of another account names nothing.
    let found = a
        .state
        .scan(POLICIES, &crate::scope(ctx, "sagemaker"), None, usize::MAX)?
        .into_iter()
        .filter_map(|(key, raw)| Some((key, serde_json::from_slice::<Value>(&raw).ok()?)))
        .find(|(_, p)| p["PolicyARN"] == arn);
    let Some((policy_key, policy)) = found else {
        return Err(crate::object_not_found(format!("No scaling policy {arn}")));
    };
    if policy["PolicyType"] != "StepScaling"
        || policy["ScalableDimension"] != "sagemaker:variant:DesiredInstanceCount"
    {
        return Ok(json!({"Executed": false}));
    }
    let target_key = crate::target_of(&policy_key, &policy).to_owned();
    let Some(target) = a
        .state
        .get(TARGETS, &target_key)?
        .and_then(|r| serde_json::from_slice::<Value>(&r).ok())
    else {
        return Ok(json!({"Executed": false}));
    };
    let config = &policy["StepScalingPolicyConfiguration"];
    let Some(breach) = breach_of(event, config["MetricAggregationType"].as_str()) else {
        return Err(AwsError::validation(format!(
            "The alarm {} reported no datapoints to scale by.",
            event["alarmData"]["alarmName"].as_str().unwrap_or_default()
        )));
    };
    let resource = policy["ResourceId"].as_str().unwrap_or_default();
    let [_, endpoint, _, variant] = resource.split('/').collect::<Vec<_>>()[..] else {
        return Ok(json!({"Executed": false}));
    };
    let registry = a
        .registry
        .get()
        .ok_or_else(|| AwsError::new(503, "ServiceUnavailable", "no registry"))?;
    let described = registry
        .call(
            ctx,
            "sagemaker",
            "DescribeEndpoint",
            json!({"EndpointName": endpoint}),
        )
        .await?
        .body;
    if described["EndpointStatus"] != "InService" {
        return Err(AwsError::validation(format!(
            "The endpoint {endpoint} is {}, not InService; it cannot be scaled now.",
            described["EndpointStatus"].as_str().unwrap_or_default()
        )));
    }
    let Some(current) = described["ProductionVariants"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["VariantName"] == variant)
        .and_then(|v| {
            v["DesiredInstanceCount"]
                .as_i64()
                .or(v["CurrentInstanceCount"].as_i64())
        })
    else {
        return Ok(json!({"Executed": false}));
    };
    let Some(capacity) = step_capacity(
        config,
        current,
        breach,
        target["MinCapacity"].as_i64().unwrap_or(1),
        target["MaxCapacity"].as_i64().unwrap_or(current),
    ) else {
        return Ok(json!({"Executed": false}));
    };
    if capacity == current {
        return Ok(json!({"Executed": false}));
    }
    let out = capacity > current;
    let now = a.state.clock_ms()?;
    if !crate::may_scale(
        a,
        &target_key,
        &target,
        out,
        config["Cooldown"].as_i64().unwrap_or(300),
        now,
    )? {
        return Ok(json!({"Executed": false}));
    }
    let changed = registry
        .call(
            ctx,
            "sagemaker",
            "UpdateEndpointWeightsAndCapacities",
            json!({"EndpointName": endpoint, "DesiredWeightsAndCapacities": [
                {"VariantName": variant, "DesiredInstanceCount": capacity}]}),
        )
        .await
        .map(|_| ());
    let alarm = event["alarmData"]["alarmName"].as_str().unwrap_or_default();
    crate::record_activity(
        a,
        &target_key,
        resource,
        capacity,
        format!(
            "monitor alarm {alarm} in state ALARM triggered policy {} (breach {breach:.2}) to scale {} from {current}",
            policy["PolicyName"].as_str().unwrap_or_default(),
            if out { "out" } else { "in" }
        ),
        out,
        &changed,
        now,
    )?;
    changed?;
    Ok(json!({"Executed": true, "DesiredCapacity": capacity}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(kind: &str) -> Value {
        json!({"AdjustmentType": kind, "MinAdjustmentMagnitude": 2, "StepAdjustments": [
            {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 10.0, "ScalingAdjustment": 1},
            {"MetricIntervalLowerBound": 10.0, "ScalingAdjustment": 3},
            {"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1},
        ]})
    }

    #[test]
    fn the_step_holding_the_breach_applies() {
        let p = policy("ChangeInCapacity");
        assert_eq!(step_capacity(&p, 2, 0.0, 1, 10), Some(3));
        assert_eq!(step_capacity(&p, 2, 9.9, 1, 10), Some(3));
        assert_eq!(step_capacity(&p, 2, 10.0, 1, 10), Some(5));
        assert_eq!(step_capacity(&p, 2, 50.0, 1, 4), Some(4), "clamped to max");
        assert_eq!(step_capacity(&p, 2, -5.0, 1, 10), Some(1));
        assert_eq!(step_capacity(&p, 1, -5.0, 1, 10), Some(1), "clamped to min");
        let exact = policy("ExactCapacity");
        assert_eq!(step_capacity(&exact, 2, 20.0, 1, 10), Some(3));
        assert_eq!(
            step_capacity(&json!({"StepAdjustments": []}), 2, 1.0, 1, 10),
            None
        );
    }

    #[test]
    fn at_the_threshold_either_bound_may_hold_it() {
        let scale_in = json!({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1}]});
        assert_eq!(step_capacity(&scale_in, 3, 0.0, 1, 10), Some(2));
        let scale_out = json!({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}]});
        assert_eq!(step_capacity(&scale_out, 3, 0.0, 1, 10), Some(4));
    }

    #[test]
    fn percent_changes_round_as_application_auto_scaling_does() {
        let p = json!({"AdjustmentType": "PercentChangeInCapacity", "StepAdjustments": [
            {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 50},
            {"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -10}]});
        assert_eq!(
            step_capacity(&p, 5, 1.0, 1, 100),
            Some(7),
            "2.5 rounds to 2"
        );
        assert_eq!(
            step_capacity(&p, 1, 1.0, 1, 100),
            Some(2),
            "0.5 is one instance"
        );
        assert_eq!(
            step_capacity(&p, 5, -1.0, 1, 100),
            Some(4),
            "-0.5 is one instance"
        );
        let mut floor = p.clone();
        floor["MinAdjustmentMagnitude"] = json!(3);
        assert_eq!(
            step_capacity(&floor, 4, 1.0, 1, 100),
            Some(7),
            "2 raised to 3"
        );
    }

    #[test]
    fn the_breach_comes_from_the_alarms_reason_data() {
        let data = json!({"recentDatapoints": [5.0, 42.0], "threshold": 30.0}).to_string();
        let event = json!({"alarmData": {"state": {"value": "ALARM", "reasonData": data}}});
        assert_eq!(breach_of(&event, None), Some(-6.5));
        assert_eq!(breach_of(&event, Some("Maximum")), Some(12.0));
        assert_eq!(breach_of(&event, Some("Minimum")), Some(-25.0));
        assert_eq!(breach_of(&json!({}), None), None);
    }
}
