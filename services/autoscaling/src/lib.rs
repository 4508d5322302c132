//! Application Auto Scaling: RegisterScalableTarget, DescribeScalableTargets,
//! DeregisterScalableTarget, PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy,
//! DescribeScalingActivities and tags, for every service namespace, in the state store.
//!
//! Targets and policies are kept and described as AWS does (a policy needs its target;
//! deregistering a target deletes its policies; PutScalingPolicy on an existing name
//! replaces it). Target tracking policies on SageMaker variants are evaluated on the leases
//! (`evaluate.rs`), step scaling policies when a CloudWatch alarm acts on them (`step.rs`):
//! they change the variants' instance counts, and DescribeScalingActivities lists what they
//! did.

mod evaluate;
mod step;

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_store::StateStore;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

const TARGETS: &str = "autoscaling.targets";
const POLICIES: &str = "autoscaling.policies";
const TAGS: &str = "autoscaling.tags";
/// Scaling activities, `{target key}/{inverted start ms}`: a target's newest first.
const ACTIVITIES: &str = "autoscaling.activities";
/// When a target last scaled in each direction: `{target key}/out|in` → epoch ms.
const LAST_SCALED: &str = "autoscaling.last-scaled";

pub struct AutoScaling {
    state: Arc<dyn StateStore>,
    /// The `AWS/SageMaker` points target tracking reads.
    metrics: basalt_store::metrics::Metrics,
    registry: OnceLock<ServiceRegistry>,
}

impl AutoScaling {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<AutoScaling> {
        Arc::new(AutoScaling {
            metrics: basalt_store::metrics::Metrics::new(state.clone()),
            state,
            registry: OnceLock::new(),
        })
    }

    /// The in-process client, to change what a policy scales.
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Starts the evaluation of scaling policies (on the store's leases).
    pub fn start_workers(self: &Arc<Self>) {
        evaluate::start_worker(self.clone());
    }
}

/// When the target last scaled out (`out`) or in.
fn last_activity_ms(
    a: &AutoScaling,
    target_key: &str,
    out: bool,
) -> Result<Option<i64>, basalt_store::StoreError> {
    let key = format!("{target_key}/{}", if out { "out" } else { "in" });
    Ok(a.state
        .get(LAST_SCALED, &key)?
        .and_then(|v| String::from_utf8(v).ok()?.parse().ok()))
}

/// Whether a policy may scale the target `out` (or in) now: that direction is not
/// suspended and its last scaling is older than `cooldown_s`. Each cooldown follows an
/// activity of its own direction: a scale-out is not held back by a recent scale-in.
fn may_scale(
    a: &AutoScaling,
    target_key: &str,
    target: &Value,
    out: bool,
    cooldown_s: i64,
    now: i64,
) -> Result<bool, basalt_store::StoreError> {
    let suspended = &target["SuspendedState"][if out {
        "DynamicScalingOutSuspended"
    } else {
        "DynamicScalingInSuspended"
    }];
    if suspended.as_bool().unwrap_or(false) {
        return Ok(false);
    }
    let last = last_activity_ms(a, target_key, out)?;
    Ok(last.is_none_or(|t| now - t >= cooldown_s * 1000))
}

/// Records a scaling activity of a SageMaker variant and when its direction last scaled.
#[allow(clippy::too_many_arguments)]
fn record_activity(
    a: &AutoScaling,
    target_key: &str,
    resource: &str,
    capacity: i64,
    cause: String,
    out: bool,
    changed: &Result<(), AwsError>,
    now: i64,
) -> Result<(), basalt_store::StoreError> {
    let (status, message) = match changed {
        Ok(()) => (
            "Successful",
            "Successfully set desired instance count".to_owned(),
        ),
        Err(e) => ("Failed", e.message.clone()),
    };
    let activity = json!({
        "ActivityId": uuid::Uuid::new_v4().to_string(),
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "Description": format!("Setting desired instance count to {capacity}."),
        "Cause": cause,
        "StartTime": now as f64 / 1000.0,
        "EndTime": a.state.clock_ms().unwrap_or(now) as f64 / 1000.0,
        "StatusCode": status,
        "StatusMessage": message,
    });
    a.state.batch(&[
        basalt_store::WriteOp::Put {
            table: ACTIVITIES.into(),
            key: format!("{target_key}/{:020}", i64::MAX - now),
            value: serde_json::to_vec(&activity).unwrap_or_default(),
        },
        basalt_store::WriteOp::Put {
            table: LAST_SCALED.into(),
            key: format!("{target_key}/{}", if out { "out" } else { "in" }),
            value: now.to_string().into_bytes(),
        },
    ])
}

/// The key of the target a policy belongs to: its key without `/{PolicyName}` (a policy
/// name may hold slashes).
fn target_of<'a>(policy_key: &'a str, policy: &Value) -> &'a str {
    policy_key
        .strip_suffix(policy["PolicyName"].as_str().unwrap_or_default())
        .and_then(|k| k.strip_suffix('/'))
        .unwrap_or(policy_key)
}

fn object_not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ObjectNotFoundException", message)
}

/// `{account}/{region}/{namespace}/{dimension}/{resource}`: a target's key, and its policies'
/// prefix.
fn target_key(ctx: &RequestContext, input: &Value) -> Result<String, AwsError> {
    let field = |k: &str| {
        input[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AwsError::validation(format!("{k} is required.")))
    };
    Ok(format!(
        "{}/{}/{}/{}/{}",
        ctx.account_id,
        ctx.region,
        field("ServiceNamespace")?,
        field("ScalableDimension")?,
        field("ResourceId")?
    ))
}

fn scope(ctx: &RequestContext, namespace: &str) -> String {
    format!("{}/{}/{namespace}/", ctx.account_id, ctx.region)
}

/// The dimensions each namespace scales (Application Auto Scaling's ScalableDimension
/// values), and the shape of its resource ids.
fn check_target(namespace: &str, dimension: &str, resource: &str) -> Result<(), AwsError> {
    let ok = match namespace {
        "sagemaker" => match dimension {
            "sagemaker:variant:DesiredInstanceCount"
            | "sagemaker:variant:DesiredProvisionedConcurrency" => {
                let parts: Vec<&str> = resource.split('/').collect();
                parts.len() == 4
                    && parts[0] == "endpoint"
                    && parts[2] == "variant"
                    && !parts[1].is_empty()
                    && !parts[3].is_empty()
            }
            "sagemaker:inference-component:DesiredCopyCount" => {
                resource.starts_with("inference-component/")
            }
            _ => false,
        },
        "dynamodb" => dimension.starts_with("dynamodb:") && (resource.starts_with("table/")),
        "lambda" => {
            dimension == "lambda:function:ProvisionedConcurrency"
                && resource.starts_with("function:")
        }
        _ => dimension.starts_with(&format!("{namespace}:")),
    };
    if ok {
        Ok(())
    } else {
        Err(AwsError::validation(format!(
            "Unsupported or invalid scalable target: namespace {namespace}, dimension {dimension}, resource {resource}."
        )))
    }
}

impl AutoScaling {
    fn register(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let key = target_key(ctx, input)?;
        let (ns, dim, res) = (
            input["ServiceNamespace"].as_str().unwrap_or_default(),
            input["ScalableDimension"].as_str().unwrap_or_default(),
            input["ResourceId"].as_str().unwrap_or_default(),
        );
        check_target(ns, dim, res)?;
        let existing: Option<Value> = self
            .state
            .get(TARGETS, &key)?
            .and_then(|r| serde_json::from_slice(&r).ok());
        let mut target = existing.unwrap_or_else(|| {
            json!({
                "ServiceNamespace": ns, "ResourceId": res, "ScalableDimension": dim,
                "CreationTime": self.state.now_ms() as f64 / 1000.0,
                "RoleARN": format!("arn:aws:iam::{}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint", ctx.account_id),
                "ScalableTargetARN": format!("arn:aws:application-autoscaling:{}:{}:scalable-target/{}", ctx.region, ctx.account_id, uuid::Uuid::new_v4().simple()),
                "SuspendedState": {"DynamicScalingInSuspended": false, "DynamicScalingOutSuspended": false, "ScheduledScalingSuspended": false},
            })
        });
        let is_new = target.get("MinCapacity").is_none();
        for k in ["MinCapacity", "MaxCapacity", "RoleARN", "SuspendedState"] {
            if !input[k].is_null() {
                target[k] = input[k].clone();
            }
        }
        if is_new && (target["MinCapacity"].is_null() || target["MaxCapacity"].is_null()) {
            return Err(AwsError::validation(
                "MinCapacity and MaxCapacity are required to register a new scalable target.",
            ));
        }
        for k in ["MinCapacity", "MaxCapacity"] {
            if !target[k].is_null() && target[k].as_i64().is_none_or(|n| n < 0) {
                return Err(AwsError::validation(format!(
                    "{k} must be a whole number of at least 0."
                )));
            }
        }
        if target["MinCapacity"].as_i64() > target["MaxCapacity"].as_i64() {
            return Err(AwsError::validation(
                "Minimum capacity cannot be greater than maximum capacity",
            ));
        }
        self.state.put(
            TARGETS,
            &key,
            &serde_json::to_vec(&target).unwrap_or_default(),
        )?;
        if let Some(tags) = input["Tags"].as_object() {
            self.state.put(
                TAGS,
                target["ScalableTargetARN"].as_str().unwrap_or_default(),
                &serde_json::to_vec(tags).unwrap_or_default(),
            )?;
        }
        Ok(json!({"ScalableTargetARN": target["ScalableTargetARN"]}))
    }

    fn describe_targets(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let ns = input["ServiceNamespace"].as_str().unwrap_or_default();
        let ids: Option<Vec<&str>> = input["ResourceIds"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let all: Vec<Value> = self
            .state
            .scan(TARGETS, &scope(ctx, ns), None, usize::MAX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Value>(&v).ok())
            .filter(|t| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&t["ResourceId"].as_str().unwrap_or_default()))
            })
            .filter(|t| {
                input["ScalableDimension"]
                    .as_str()
                    .is_none_or(|d| t["ScalableDimension"] == d)
            })
            .collect();
        page(all, input, "ScalableTargets")
    }

    fn deregister(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let key = target_key(ctx, input)?;
        if !self.state.delete(TARGETS, &key)? {
            return Err(object_not_found(format!(
                "No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}",
                input["ServiceNamespace"].as_str().unwrap_or_default(),
                input["ResourceId"].as_str().unwrap_or_default(),
                input["ScalableDimension"].as_str().unwrap_or_default()
            )));
        }
        for (k, _) in self
            .state
            .scan(POLICIES, &format!("{key}/"), None, usize::MAX)?
        {
            self.state.delete(POLICIES, &k)?;
        }
        Ok(json!({}))
    }

    fn put_policy(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let key = target_key(ctx, input)?;
        if self.state.get(TARGETS, &key)?.is_none() {
            return Err(object_not_found(format!(
                "No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}",
                input["ServiceNamespace"].as_str().unwrap_or_default(),
                input["ResourceId"].as_str().unwrap_or_default(),
                input["ScalableDimension"].as_str().unwrap_or_default()
            )));
        }
        let name = input["PolicyName"].as_str().unwrap_or_default();
        let kind = input["PolicyType"].as_str().unwrap_or("StepScaling");
        let config_member = match kind {
            "TargetTrackingScaling" => "TargetTrackingScalingPolicyConfiguration",
            "StepScaling" => "StepScalingPolicyConfiguration",
            "PredictiveScaling" => "PredictiveScalingPolicyConfiguration",
            other => {
                return Err(AwsError::validation(format!(
                    "Unsupported policy type {other}"
                )));
            }
        };
        if input[config_member].is_null() {
            return Err(AwsError::validation(format!(
                "{config_member} is required for a {kind} policy."
            )));
        }
        if kind == "TargetTrackingScaling" {
            let c = &input[config_member];
            if c["PredefinedMetricSpecification"].is_null()
                == c["CustomizedMetricSpecification"].is_null()
            {
                return Err(AwsError::validation(
                    "A target tracking policy needs exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification.",
                ));
            }
        }
        let policy_key = format!("{key}/{name}");
        let arn = match self
            .state
            .get(POLICIES, &policy_key)?
            .and_then(|r| serde_json::from_slice::<Value>(&r).ok())
        {
            Some(old) => old["PolicyARN"].as_str().unwrap_or_default().to_owned(),
            None => format!(
                "arn:aws:autoscaling:{}:{}:scalingPolicy:{}:resource/{}/{}:policyName/{name}",
                ctx.region,
                ctx.account_id,
                uuid::Uuid::new_v4(),
                input["ServiceNamespace"].as_str().unwrap_or_default(),
                input["ResourceId"].as_str().unwrap_or_default()
            ),
        };
        let mut policy = json!({
            "PolicyARN": arn, "PolicyName": name, "PolicyType": kind,
            "ServiceNamespace": input["ServiceNamespace"], "ResourceId": input["ResourceId"],
            "ScalableDimension": input["ScalableDimension"],
            "CreationTime": self.state.now_ms() as f64 / 1000.0,
        });
        policy[config_member] = input[config_member].clone();
        self.state.put(
            POLICIES,
            &policy_key,
            &serde_json::to_vec(&policy).unwrap_or_default(),
        )?;
        Ok(json!({"PolicyARN": arn}))
    }

    fn describe_policies(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let ns = input["ServiceNamespace"].as_str().unwrap_or_default();
        let names: Option<Vec<&str>> = input["PolicyNames"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let all: Vec<Value> = self
            .state
            .scan(POLICIES, &scope(ctx, ns), None, usize::MAX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Value>(&v).ok())
            .filter(|p| {
                input["ResourceId"]
                    .as_str()
                    .is_none_or(|r| p["ResourceId"] == r)
            })
            .filter(|p| {
                input["ScalableDimension"]
                    .as_str()
                    .is_none_or(|d| p["ScalableDimension"] == d)
            })
            .filter(|p| {
                names
                    .as_ref()
                    .is_none_or(|n| n.contains(&p["PolicyName"].as_str().unwrap_or_default()))
            })
            .collect();
        page(all, input, "ScalingPolicies")
    }

    fn describe_activities(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let ns = input["ServiceNamespace"].as_str().unwrap_or_default();
        let mut all: Vec<Value> = self
            .state
            .scan(ACTIVITIES, &scope(ctx, ns), None, usize::MAX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<Value>(&v).ok())
            .filter(|a| {
                input["ResourceId"]
                    .as_str()
                    .is_none_or(|r| a["ResourceId"] == r)
            })
            .filter(|a| {
                input["ScalableDimension"]
                    .as_str()
                    .is_none_or(|d| a["ScalableDimension"] == d)
            })
            .collect();
        all.sort_by(|a, b| {
            b["StartTime"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&a["StartTime"].as_f64().unwrap_or(0.0))
        });
        page(all, input, "ScalingActivities")
    }

    fn delete_policy(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let key = format!(
            "{}/{}",
            target_key(ctx, input)?,
            input["PolicyName"].as_str().unwrap_or_default()
        );
        if !self.state.delete(POLICIES, &key)? {
            return Err(object_not_found(format!(
                "No scaling policy found for service namespace: {}, resource ID: {}, scalable dimension: {}, policy name: {}",
                input["ServiceNamespace"].as_str().unwrap_or_default(),
                input["ResourceId"].as_str().unwrap_or_default(),
                input["ScalableDimension"].as_str().unwrap_or_default(),
                input["PolicyName"].as_str().unwrap_or_default()
            )));
        }
        Ok(json!({}))
    }

    fn tags(&self, operation: &str, input: &Value) -> Result<Value, AwsError> {
        let arn = input["ResourceARN"].as_str().unwrap_or_default();
        let mut tags: serde_json::Map<String, Value> = self
            .state
            .get(TAGS, arn)?
            .and_then(|r| serde_json::from_slice(&r).ok())
            .unwrap_or_default();
        match operation {
            "TagResource" => {
                for (k, v) in input["Tags"].as_object().into_iter().flatten() {
                    tags.insert(k.clone(), v.clone());
                }
            }
            "UntagResource" => {
                for k in input["TagKeys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    tags.remove(k);
                }
            }
            _ => return Ok(json!({"Tags": tags})),
        }
        self.state
            .put(TAGS, arn, &serde_json::to_vec(&tags).unwrap_or_default())?;
        Ok(json!({}))
    }
}

fn page(all: Vec<Value>, input: &Value, member: &str) -> Result<Value, AwsError> {
    let max = input["MaxResults"].as_u64().unwrap_or(50).clamp(1, 50) as usize;
    let (items, next) = basalt_store::paging::page_slice(&all, input["NextToken"].as_str(), max)?;
    let mut out = json!({ member: items });
    if let Some(n) = next {
        out["NextToken"] = n.into();
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Service for AutoScaling {
    fn name(&self) -> &'static str {
        "application-autoscaling"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let out = match operation {
            "RegisterScalableTarget" => self.register(ctx, &input)?,
            "DescribeScalableTargets" => self.describe_targets(ctx, &input)?,
            "DeregisterScalableTarget" => self.deregister(ctx, &input)?,
            "PutScalingPolicy" => self.put_policy(ctx, &input)?,
            "DescribeScalingPolicies" => self.describe_policies(ctx, &input)?,
            "DeleteScalingPolicy" => self.delete_policy(ctx, &input)?,
            "DescribeScalingActivities" => self.describe_activities(ctx, &input)?,
            "TagResource" | "UntagResource" | "ListTagsForResource" => {
                self.tags(operation, &input)?
            }
            step::EXECUTE => step::execute(self, ctx, &input).await?,
            other => return Err(AwsError::not_implemented("application-autoscaling", other)),
        };
        Ok(Output::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_per_namespace() {
        assert!(
            check_target(
                "sagemaker",
                "sagemaker:variant:DesiredInstanceCount",
                "endpoint/fraud/variant/AllTraffic"
            )
            .is_ok()
        );
        assert!(
            check_target(
                "sagemaker",
                "sagemaker:variant:DesiredInstanceCount",
                "endpoint/fraud"
            )
            .is_err()
        );
        assert!(
            check_target(
                "sagemaker",
                "dynamodb:table:ReadCapacityUnits",
                "endpoint/a/variant/b"
            )
            .is_err()
        );
        assert!(
            check_target(
                "dynamodb",
                "dynamodb:table:ReadCapacityUnits",
                "table/orders"
            )
            .is_ok()
        );
    }
}
