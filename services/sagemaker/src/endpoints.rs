//! Endpoints: CreateEndpoint, DescribeEndpoint, ListEndpoints, UpdateEndpoint,
//! DeleteEndpoint.
//!
//! An endpoint keeps a copy of its configuration and models as deployed (deleting either
//! later changes nothing, as on AWS). A deployment is an item on the leases (queue
//! [`QUEUE`]): the node that claims it loads every variant's model (`serving.rs`), which
//! checks the artifacts and starts the workers, then sets the endpoint InService, or Failed
//! with the reason. An update keeps serving the old variants until the new ones are loaded.

use crate::endpoint_configs;
use crate::models::Model;
use crate::records::{self, ENDPOINTS, Listed, secs};
use crate::{Core, could_not_find};
use basalt_core::{AwsError, RequestContext};
use basalt_store::{Claim, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

pub const QUEUE: &str = "sagemaker.deployments";
const LEASE_MS: i64 = 120_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Variant {
    pub name: String,
    pub model: Model,
    /// The variant as the configuration gives it.
    pub spec: Value,
    /// A shadow variant: it answers a sample of the production variant's requests (the
    /// ratio of its weight to the production variant's), and its answers go nowhere but its
    /// metrics, logs and captured data.
    #[serde(default)]
    pub shadow: bool,
}

impl Variant {
    pub fn weight(&self) -> f64 {
        if self.spec["ServerlessConfig"].is_null() {
            self.spec["InitialVariantWeight"].as_f64().unwrap_or(1.0)
        } else {
            1.0
        }
    }

    pub fn serverless(&self) -> bool {
        !self.spec["ServerlessConfig"].is_null()
    }

    pub fn instances(&self) -> u32 {
        self.spec["InitialInstanceCount"]
            .as_u64()
            .unwrap_or(1)
            .clamp(1, 1000) as u32
    }

    fn summary(&self, deployed_ms: i64) -> Value {
        let images: Vec<Value> = self
            .model
            .containers()
            .iter()
            .filter_map(|c| c["Image"].as_str())
            .map(|image| {
                json!({"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": secs(deployed_ms)})
            })
            .collect();
        let mut v = json!({
            "VariantName": self.name,
            "DeployedImages": images,
            "CurrentWeight": self.weight(),
            "DesiredWeight": self.weight(),
        });
        if self.serverless() {
            v["CurrentServerlessConfig"] = self.spec["ServerlessConfig"].clone();
            v["DesiredServerlessConfig"] = self.spec["ServerlessConfig"].clone();
        } else {
            v["CurrentInstanceCount"] = self.instances().into();
            v["DesiredInstanceCount"] = self.instances().into();
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub config: String,
    pub generation: u64,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub name: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub config_name: String,
    pub status: String,
    pub failure: Option<String>,
    /// What serves requests now.
    pub variants: Vec<Variant>,
    /// What a deployment in progress will serve.
    pub pending: Option<Pending>,
    /// The deployment `variants` come from; every deployment takes a new one, so that nodes
    /// reload what changed.
    pub generation: u64,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub deployed_ms: i64,
    pub data_capture: Value,
}

impl Endpoint {
    pub fn owner(&self) -> crate::serving::Owner {
        crate::serving::Owner {
            account: self.account.clone(),
            region: self.region.clone(),
            name: self.name.clone(),
            log_group: format!("/aws/sagemaker/Endpoints/{}", self.name),
            batch: false,
        }
    }

    fn describe(&self) -> Value {
        let mut v = json!({
            "EndpointName": self.name, "EndpointArn": self.arn,
            "EndpointConfigName": self.config_name, "EndpointStatus": self.status,
            "CreationTime": secs(self.created_ms), "LastModifiedTime": secs(self.modified_ms),
        });
        if !self.variants.is_empty() {
            let (shadows, production): (Vec<&Variant>, Vec<&Variant>) =
                self.variants.iter().partition(|x| x.shadow);
            v["ProductionVariants"] = production
                .iter()
                .map(|x| x.summary(self.deployed_ms))
                .collect();
            if !shadows.is_empty() {
                v["ShadowProductionVariants"] = shadows
                    .iter()
                    .map(|x| x.summary(self.deployed_ms))
                    .collect();
            }
        }
        if let Some(f) = &self.failure {
            v["FailureReason"] = f.clone().into();
        }
        if self.data_capture.is_object() {
            let c = &self.data_capture;
            v["DataCaptureConfig"] = json!({
                "EnableCapture": c["EnableCapture"].as_bool().unwrap_or(true),
                "CaptureStatus": if c["EnableCapture"].as_bool().unwrap_or(true) { "Started" } else { "Stopped" },
                "CurrentSamplingPercentage": c["InitialSamplingPercentage"],
                "DestinationS3Uri": c["DestinationS3Uri"],
                // A required member of the summary; the configuration's own when it has one.
                "KmsKeyId": c["KmsKeyId"].as_str().unwrap_or_default(),
            });
        }
        v
    }
}

impl Listed for Endpoint {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn modified_ms(&self) -> i64 {
        self.modified_ms
    }
    fn status(&self) -> Option<&str> {
        Some(&self.status)
    }
    fn summary(&self) -> Value {
        json!({"EndpointName": self.name, "EndpointArn": self.arn, "CreationTime": secs(self.created_ms), "LastModifiedTime": secs(self.modified_ms), "EndpointStatus": self.status})
    }
}

pub(crate) fn load(
    core: &Core,
    ctx: &RequestContext,
    name: &str,
) -> Result<Option<Endpoint>, AwsError> {
    records::load(core.state.as_ref(), ENDPOINTS, ctx, name)
}

fn not_found(ctx: &RequestContext, name: &str) -> AwsError {
    could_not_find("endpoint", &records::arn(ctx, "endpoint", name))
}

/// The variants of a configuration, with their models as they are now.
fn variants_of(
    core: &Core,
    ctx: &RequestContext,
    config: &str,
) -> Result<(Vec<Variant>, Value), AwsError> {
    let config = endpoint_configs::load(core, ctx, config)?;
    let production = config.variants().into_iter().map(|spec| (spec, false));
    let shadows = config
        .shadow_variants()
        .into_iter()
        .map(|spec| (spec, true));
    let variants = production
        .chain(shadows)
        .map(|(spec, shadow)| {
            let model =
                crate::models::load(core, ctx, spec["ModelName"].as_str().unwrap_or_default())?;
            Ok(Variant {
                name: spec["VariantName"].as_str().unwrap_or_default().to_owned(),
                model,
                spec,
                shadow,
            })
        })
        .collect::<Result<Vec<_>, AwsError>>()?;
    Ok((
        variants,
        config
            .request
            .get("DataCaptureConfig")
            .cloned()
            .unwrap_or(Value::Null),
    ))
}

fn write_and_enqueue(
    core: &Core,
    ctx: &RequestContext,
    endpoint: &Endpoint,
    expected: Option<Vec<u8>>,
) -> Result<(), AwsError> {
    let key = records::key(ctx, &endpoint.name);
    let creating = expected.is_none();
    let ops = [
        WriteOp::Check {
            table: ENDPOINTS.into(),
            key: key.clone(),
            expected,
        },
        WriteOp::Put {
            table: ENDPOINTS.into(),
            key: key.clone(),
            value: serde_json::to_vec(endpoint).map_err(|e| AwsError::internal(e.to_string()))?,
        },
        WriteOp::Enqueue {
            queue: QUEUE.into(),
            id: key,
            payload: Vec::new(),
            due_ms: core.now_ms(),
        },
    ];
    match core.state.batch(&ops) {
        Ok(()) => {
            core.wake_endpoints.notify_one();
            Ok(())
        }
        // Another request created or updated it in between: what SageMaker answers the later
        // of two such requests (ConflictException is not among these operations' errors).
        Err(basalt_store::StoreError::Conflict) if creating => Err(AwsError::validation(format!(
            "Cannot create already existing endpoint \"{}\".",
            endpoint.arn
        ))),
        Err(basalt_store::StoreError::Conflict) => Err(AwsError::validation(format!(
            "Cannot update in-progress endpoint \"{}\".",
            endpoint.arn
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn create(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["EndpointName"].as_str().unwrap_or_default();
    records::check_name("endpointName", name)?;
    let arn = records::arn(ctx, "endpoint", name);
    if load(core, ctx, name)?.is_some() {
        return Err(AwsError::validation(format!(
            "Cannot create already existing endpoint \"{arn}\"."
        )));
    }
    let config_name = input["EndpointConfigName"].as_str().unwrap_or_default();
    let (variants, data_capture) = variants_of(core, ctx, config_name)?;
    let now = core.now_ms();
    let endpoint = Endpoint {
        name: name.to_owned(),
        arn: arn.clone(),
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        config_name: config_name.to_owned(),
        status: "Creating".into(),
        failure: None,
        variants: Vec::new(),
        pending: Some(Pending {
            config: config_name.to_owned(),
            generation: 1,
            variants,
        }),
        generation: 0,
        created_ms: now,
        modified_ms: now,
        deployed_ms: now,
        data_capture,
    };
    write_and_enqueue(core, ctx, &endpoint, None)?;
    crate::tags::put(core, &arn, &input["Tags"])?;
    Ok(json!({"EndpointArn": arn}))
}

pub(crate) fn describe(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = input["EndpointName"].as_str().unwrap_or_default();
    Ok(load(core, ctx, name)?
        .ok_or_else(|| not_found(ctx, name))?
        .describe())
}

pub(crate) fn list(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let all: Vec<Endpoint> = records::all(core.state.as_ref(), ENDPOINTS, ctx)?;
    records::list_page(all, input, "Endpoints")
}

/// The endpoint as stored (its bytes, for the write's precondition), if it can be updated.
fn updatable(
    core: &Core,
    ctx: &RequestContext,
    name: &str,
) -> Result<(Vec<u8>, Endpoint), AwsError> {
    let raw = core
        .state
        .get(ENDPOINTS, &records::key(ctx, name))?
        .ok_or_else(|| not_found(ctx, name))?;
    let endpoint: Endpoint =
        serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?;
    if endpoint.status != "InService" && endpoint.status != "Failed" {
        return Err(AwsError::validation(format!(
            "Cannot update in-progress endpoint \"{}\".",
            endpoint.arn
        )));
    }
    Ok((raw, endpoint))
}

/// Deploys `variants` in place of what the endpoint serves.
fn redeploy(
    core: &Core,
    ctx: &RequestContext,
    raw: Vec<u8>,
    mut endpoint: Endpoint,
    config: String,
    variants: Vec<Variant>,
) -> Result<Value, AwsError> {
    endpoint.status = if endpoint.variants.is_empty() {
        "Creating"
    } else {
        "Updating"
    }
    .into();
    endpoint.failure = None;
    let generation = endpoint
        .generation
        .max(endpoint.pending.as_ref().map_or(0, |p| p.generation))
        + 1;
    endpoint.pending = Some(Pending {
        config,
        generation,
        variants,
    });
    endpoint.modified_ms = core.now_ms();
    write_and_enqueue(core, ctx, &endpoint, Some(raw))?;
    Ok(json!({"EndpointArn": endpoint.arn}))
}

pub(crate) fn update(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["EndpointName"].as_str().unwrap_or_default();
    let (raw, mut endpoint) = updatable(core, ctx, name)?;
    let config = input["EndpointConfigName"].as_str().unwrap_or_default();
    let (variants, data_capture) = variants_of(core, ctx, config)?;
    endpoint.data_capture = data_capture;
    redeploy(core, ctx, raw, endpoint, config.to_owned(), variants)
}

/// UpdateEndpointWeightsAndCapacities: new weights and instance counts (or serverless
/// settings) for some variants, deployed as an update of the same models.
pub(crate) fn update_weights(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    let name = input["EndpointName"].as_str().unwrap_or_default();
    let (raw, endpoint) = updatable(core, ctx, name)?;
    let mut variants = endpoint.variants.clone();
    if variants.is_empty() {
        return Err(AwsError::validation(format!(
            "The endpoint {name} serves no variant to update."
        )));
    }
    for desired in input["DesiredWeightsAndCapacities"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let vname = desired["VariantName"].as_str().unwrap_or_default();
        let v = variants
            .iter_mut()
            .find(|v| v.name == vname)
            .ok_or_else(|| {
                AwsError::validation(format!(
                    "The variant(s) \"[{vname}]\" is/are not present in the endpoint \"{}\".",
                    endpoint.arn
                ))
            })?;
        if let Some(w) = desired["DesiredWeight"].as_f64() {
            v.spec["InitialVariantWeight"] = w.into();
        }
        if let Some(n) = desired["DesiredInstanceCount"].as_u64() {
            if v.serverless() {
                return Err(AwsError::validation(format!(
                    "The variant {vname} is serverless: it has no instance count."
                )));
            }
            v.spec["InitialInstanceCount"] = n.into();
        }
        if let Some(update) = desired["ServerlessUpdateConfig"].as_object() {
            if !v.serverless() {
                return Err(AwsError::validation(format!(
                    "The variant {vname} is not serverless."
                )));
            }
            for (k, val) in update {
                v.spec["ServerlessConfig"][k] = val.clone();
            }
        }
    }
    let config = endpoint.config_name.clone();
    redeploy(core, ctx, raw, endpoint, config, variants)
}

pub(crate) fn delete(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["EndpointName"].as_str().unwrap_or_default();
    let endpoint = load(core, ctx, name)?.ok_or_else(|| not_found(ctx, name))?;
    core.state.delete(ENDPOINTS, &records::key(ctx, name))?;
    core.serving
        .forget(&endpoint.account, &endpoint.region, &endpoint.name);
    crate::tags::forget(core, &endpoint.arn);
    Ok(json!({}))
}

pub(crate) fn start_worker(core: Arc<Core>) {
    crate::spawn_each(
        &core,
        QUEUE,
        LEASE_MS,
        &core.wake_endpoints,
        |core, claim| async move { deploy(&core, claim).await },
    );
    // Workers of endpoints deleted or redeployed (on any node) go away.
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tick.tick().await;
            core.serving.prune(|account, region, name, generation| {
                // Transform jobs drop their own models when they end.
                if name.starts_with(crate::transform::OWNER_PREFIX) {
                    return true;
                }
                let ctx = RequestContext::internal(account, region, "http://localhost");
                matches!(load(&core, &ctx, name), Ok(Some(e))
                    if e.generation == generation || e.pending.as_ref().is_some_and(|p| p.generation == generation))
            });
        }
    });
}

async fn deploy(core: &Arc<Core>, claim: Claim) {
    let raw = match core.state.get(ENDPOINTS, &claim.id) {
        Ok(Some(raw)) => raw,
        Ok(None) => return drop(core.state.complete(&claim, &[])),
        Err(_) => return,
    };
    let Ok(mut endpoint) = serde_json::from_slice::<Endpoint>(&raw) else {
        return drop(core.state.complete(&claim, &[]));
    };
    let Some(pending) = endpoint.pending.clone() else {
        return drop(core.state.complete(&claim, &[]));
    };
    // Renew the lease while the models load (a large model or a slow model_fn).
    let renewing = {
        let (state, mut claim) = (core.state.clone(), claim.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis((LEASE_MS / 3) as u64)).await;
                match state.renew(&claim, state.now_ms(), LEASE_MS) {
                    Ok(expires) => claim.expires_ms = expires,
                    Err(_) => return,
                }
            }
        })
    };
    let mut failure = None;
    for v in &pending.variants {
        if let Err(e) = core
            .serving
            .load(core, &endpoint.owner(), pending.generation, v)
            .await
        {
            failure = Some(format!("The variant {} could not be deployed: {e}", v.name));
            break;
        }
    }
    renewing.abort();
    let now = core.now_ms();
    // Write over the record only if nothing changed it meanwhile (a newer update or a delete).
    let Ok(Some(current)) = core.state.get(ENDPOINTS, &claim.id) else {
        return drop(core.state.complete(&claim, &[]));
    };
    if current != raw {
        return drop(core.state.complete(&claim, &[]));
    }
    match failure {
        None => {
            endpoint.variants = pending.variants;
            endpoint.config_name = pending.config;
            endpoint.generation = pending.generation;
            endpoint.status = "InService".into();
            endpoint.deployed_ms = now;
        }
        Some(reason) => {
            // A failed update leaves the old variants serving.
            endpoint.status = if endpoint.variants.is_empty() {
                "Failed"
            } else {
                "InService"
            }
            .into();
            endpoint.failure = Some(reason);
        }
    }
    endpoint.pending = None;
    endpoint.modified_ms = now;
    let ops = [
        WriteOp::Check {
            table: ENDPOINTS.into(),
            key: claim.id.clone(),
            expected: Some(raw),
        },
        WriteOp::Put {
            table: ENDPOINTS.into(),
            key: claim.id.clone(),
            value: serde_json::to_vec(&endpoint).unwrap_or_default(),
        },
    ];
    if let Err(e) = core.state.complete(&claim, &ops) {
        tracing::warn!(endpoint = %endpoint.name, "could not record a deployment: {e}");
    }
}
