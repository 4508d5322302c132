//! Target tracking, evaluated: a recurring work item of the store's leases (one node at a
//! time) looks at every target tracking policy on a SageMaker variant's
//! `DesiredInstanceCount` each period, reads the tracked metric from the `AWS/SageMaker`
//! points SageMaker records (SageMakerVariantInvocationsPerInstance, or a customized metric
//! of that namespace), and sets the variant's instance count to what keeps the metric at its
//! target, `ceil(current * value / target)` within MinCapacity and MaxCapacity, after the
//! policy's cooldowns and unless scale-in is disabled or suspended. It changes the endpoint
//! through UpdateEndpointWeightsAndCapacities (so SageMaker starts or stops workers) and
//! records each change as a scaling activity.
//!
//! The metric is the sum over the last period (per minute, as the predefined metric is a
//! per-minute sum), where AWS's alarms want three such minutes above the target to scale out
//! and fifteen below it to scale in: one period decides here. A period without data changes
//! nothing (an endpoint that gets no requests does not scale in, as on AWS).
//! `BASALT_AUTOSCALING_PERIOD_SECS` (default 60) sets the period. Step scaling runs when
//! a CloudWatch alarm acts on it (`step.rs`).

use crate::{AutoScaling, POLICIES, TARGETS};
use basalt_core::RequestContext;
use basalt_store::{Claim, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;

const QUEUE: &str = "autoscaling.evaluate";
const ID: &str = "target-tracking";
const LEASE_MS: i64 = 60_000;

pub(crate) fn period_ms() -> i64 {
    basalt_store::ms_from_secs_env("BASALT_AUTOSCALING_PERIOD_SECS", 60_000).max(500)
}

pub fn start_worker(a: Arc<AutoScaling>) {
    let state = a.state.clone();
    basalt_store::leases::spawn_recurring(state, QUEUE, ID, LEASE_MS, period_ms, move |claim| {
        sweep(&a, claim)
    });
}

/// What a policy decided, for one target.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    Keep,
    Set { capacity: i64, cause: String },
}

/// Target tracking's arithmetic: the capacity that brings `value` (per instance) to `target`.
pub(crate) fn decide(
    current: i64,
    value: f64,
    target: f64,
    min: i64,
    max: i64,
    scale_in: bool,
) -> Decision {
    if target <= 0.0 || current <= 0 {
        return Decision::Keep;
    }
    let wanted = ((current as f64) * value / target).ceil() as i64;
    let capacity = wanted.clamp(min, max.max(min));
    if capacity > current || (scale_in && capacity < current) {
        Decision::Set {
            capacity,
            cause: format!("the metric is {value:.2} per instance against a target of {target:.2}"),
        }
    } else {
        Decision::Keep
    }
}

fn sweep(a: &AutoScaling, claim: &Claim) -> Result<(), StoreError> {
    let policies = a.state.scan(POLICIES, "", None, usize::MAX)?;
    for (key, raw) in policies {
        let Ok(policy) = serde_json::from_slice::<Value>(&raw) else {
            continue;
        };
        if policy["PolicyType"] != "TargetTrackingScaling"
            || policy["ScalableDimension"] != "sagemaker:variant:DesiredInstanceCount"
        {
            continue;
        }
        // `{account}/{region}/{namespace}/{dimension}/{resource}/{policy}`
        let parts: Vec<&str> = key.splitn(3, '/').collect();
        let [account, region, _] = parts[..] else {
            continue;
        };
        let target_key = crate::target_of(&key, &policy);
        if let Err(e) = evaluate(a, account, region, target_key, &policy) {
            tracing::warn!(policy = %policy["PolicyName"], "target tracking: {e}");
        }
        a.state.renew(claim, a.state.clock_ms()?, LEASE_MS)?;
    }
    Ok(())
}

fn evaluate(
    a: &AutoScaling,
    account: &str,
    region: &str,
    target_key: &str,
    policy: &Value,
) -> Result<(), String> {
    let Some(target) = a
        .state
        .get(TARGETS, target_key)
        .map_err(|e| e.to_string())?
        .and_then(|r| serde_json::from_slice::<Value>(&r).ok())
    else {
        return Ok(());
    };
    let resource = policy["ResourceId"].as_str().unwrap_or_default();
    let [_, endpoint, _, variant] = resource.split('/').collect::<Vec<_>>()[..] else {
        return Ok(());
    };
    let config = &policy["TargetTrackingScalingPolicyConfiguration"];
    let metric = match (
        config["PredefinedMetricSpecification"]["PredefinedMetricType"].as_str(),
        &config["CustomizedMetricSpecification"],
    ) {
        (Some("SageMakerVariantInvocationsPerInstance"), _) => "InvocationsPerInstance",
        (None, c) if c["Namespace"] == "AWS/SageMaker" => {
            c["MetricName"].as_str().unwrap_or_default()
        }
        // Other metrics (CPU and the like) are not measured for local workers.
        _ => return Ok(()),
    };
    let now = a.state.clock_ms().map_err(|e| e.to_string())?;
    let period = period_ms();
    let points = a
        .metrics
        .points_between(
            account,
            region,
            "AWS/SageMaker",
            metric,
            now - period,
            now + 1,
        )
        .map_err(|e| e.to_string())?;
    let points: Vec<_> = points
        .iter()
        .filter(|p| {
            p.point.dimensions.get("EndpointName").map(String::as_str) == Some(endpoint)
                && p.point.dimensions.get("VariantName").map(String::as_str) == Some(variant)
        })
        .collect();
    // No data is not zero: as AWS's alarms stay in INSUFFICIENT_DATA without invocations, an
    // endpoint nobody calls is left as it is (it does not scale in).
    if points.is_empty() {
        return Ok(());
    }
    let sum: f64 = points
        .iter()
        .map(|p| p.stats.map_or(p.point.value, |s| s.sum))
        .sum();
    let per_minute = sum * 60_000.0 / period as f64;
    let ctx = RequestContext::internal(account, region, "http://localhost");
    let Some(registry) = a.registry.get() else {
        return Ok(());
    };
    let rt = tokio::runtime::Handle::current();
    let described = rt
        .block_on(registry.call(
            &ctx,
            "sagemaker",
            "DescribeEndpoint",
            json!({"EndpointName": endpoint}),
        ))
        .map_err(|e| e.message)?
        .body;
    if described["EndpointStatus"] != "InService" {
        return Ok(());
    }
    let Some(current) = (described["ProductionVariants"]
        .as_array()
        .into_iter()
        .flatten())
    .find(|v| v["VariantName"] == variant)
    .and_then(|v| {
        v["DesiredInstanceCount"]
            .as_i64()
            .or(v["CurrentInstanceCount"].as_i64())
    }) else {
        return Ok(());
    };
    let scale_in = !config["DisableScaleIn"].as_bool().unwrap_or(false);
    let decision = decide(
        current,
        per_minute,
        config["TargetValue"].as_f64().unwrap_or(0.0),
        target["MinCapacity"].as_i64().unwrap_or(1),
        target["MaxCapacity"].as_i64().unwrap_or(current),
        scale_in,
    );
    let Decision::Set { capacity, cause } = decision else {
        return Ok(());
    };
    let out = capacity > current;
    let cooldown_s = config[if out {
        "ScaleOutCooldown"
    } else {
        "ScaleInCooldown"
    }]
    .as_i64()
    .unwrap_or(300);
    if !crate::may_scale(a, target_key, &target, out, cooldown_s, now).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let changed = rt
        .block_on(registry.call(
            &ctx,
            "sagemaker",
            "UpdateEndpointWeightsAndCapacities",
            json!({"EndpointName": endpoint, "DesiredWeightsAndCapacities": [
                {"VariantName": variant, "DesiredInstanceCount": capacity}]}),
        ))
        .map(|_| ());
    crate::record_activity(
        a,
        target_key,
        resource,
        capacity,
        format!(
            "target tracking policy {} scaled {} from {current}: {cause}",
            policy["PolicyName"].as_str().unwrap_or_default(),
            if out { "out" } else { "in" }
        ),
        out,
        &changed,
        now,
    )
    .map_err(|e| e.to_string())?;
    changed.map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_tracking_arithmetic() {
        // 1 instance at 30 per minute, target 10: three instances.
        assert!(matches!(
            decide(1, 30.0, 10.0, 1, 5, true),
            Decision::Set { capacity: 3, .. }
        ));
        // Bounded by MaxCapacity.
        assert!(matches!(
            decide(1, 300.0, 10.0, 1, 4, true),
            Decision::Set { capacity: 4, .. }
        ));
        // Idle: back to MinCapacity, unless scale-in is off.
        assert!(matches!(
            decide(3, 0.0, 10.0, 1, 5, true),
            Decision::Set { capacity: 1, .. }
        ));
        assert_eq!(decide(3, 0.0, 10.0, 1, 5, false), Decision::Keep);
        // MinCapacity above MaxCapacity (bad input) does not panic.
        assert!(matches!(
            decide(1, 30.0, 10.0, 3, 2, true),
            Decision::Set { capacity: 3, .. }
        ));
        // On target: nothing to do.
        assert_eq!(decide(2, 10.0, 10.0, 1, 5, true), Decision::Keep);
        assert_eq!(decide(2, 50.0, 0.0, 1, 5, true), Decision::Keep);
    }
}
