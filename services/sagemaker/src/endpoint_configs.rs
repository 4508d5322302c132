//! Endpoint configurations: CreateEndpointConfig, DescribeEndpointConfig,
//! ListEndpointConfigs, DeleteEndpointConfig. A configuration names the production variants
//! (a model each, on instances or serverless, with a traffic weight).

use crate::records::{self, ENDPOINT_CONFIGS, Listed, secs};
use crate::{Core, could_not_find};
use basalt_core::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EndpointConfig {
    pub name: String,
    pub arn: String,
    pub request: Map<String, Value>,
    pub created_ms: i64,
}

impl EndpointConfig {
    pub fn variants(&self) -> Vec<Value> {
        self.list("ProductionVariants")
    }

    /// The variants that get a copy of the production traffic (ShadowProductionVariants).
    pub fn shadow_variants(&self) -> Vec<Value> {
        self.list("ShadowProductionVariants")
    }

    fn list(&self, member: &str) -> Vec<Value> {
        self.request
            .get(member)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    fn describe(&self) -> Value {
        let mut v = Value::Object(self.request.clone());
        v["EndpointConfigName"] = self.name.clone().into();
        v["EndpointConfigArn"] = self.arn.clone().into();
        v["CreationTime"] = secs(self.created_ms).into();
        v
    }
}

impl Listed for EndpointConfig {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn summary(&self) -> Value {
        json!({"EndpointConfigName": self.name, "EndpointConfigArn": self.arn, "CreationTime": secs(self.created_ms)})
    }
}

pub(crate) fn load(
    core: &Core,
    ctx: &RequestContext,
    name: &str,
) -> Result<EndpointConfig, AwsError> {
    records::load(core.state.as_ref(), ENDPOINT_CONFIGS, ctx, name)?.ok_or_else(|| {
        could_not_find(
            "endpoint configuration",
            &records::arn(ctx, "endpoint-config", name),
        )
    })
}

pub(crate) fn create(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["EndpointConfigName"].as_str().unwrap_or_default();
    records::check_name("endpointConfigName", name)?;
    let arn = records::arn(ctx, "endpoint-config", name);
    if records::load::<EndpointConfig>(core.state.as_ref(), ENDPOINT_CONFIGS, ctx, name)?.is_some()
    {
        return Err(AwsError::validation(format!(
            "Cannot create already existing endpoint configuration \"{arn}\"."
        )));
    }
    let variants = input["ProductionVariants"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if variants.is_empty() || variants.len() > 10 {
        return Err(AwsError::validation(
            "ProductionVariants must list between 1 and 10 variants.",
        ));
    }
    let shadows = input["ShadowProductionVariants"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !shadows.is_empty() && (variants.len() != 1 || shadows.len() != 1) {
        return Err(AwsError::validation(
            "An endpoint configuration with ShadowProductionVariants must have exactly one variant in ProductionVariants and one in ShadowProductionVariants.",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for v in variants.iter().chain(&shadows) {
        let vname = v["VariantName"].as_str().unwrap_or_default();
        if !seen.insert(vname) {
            return Err(AwsError::validation(format!(
                "The variant name {vname} appears more than once."
            )));
        }
        let model = v["ModelName"].as_str().ok_or_else(|| {
            AwsError::validation(format!("The variant {vname} needs a ModelName."))
        })?;
        crate::models::load(core, ctx, model)?;
        let serverless = !v["ServerlessConfig"].is_null();
        let instances = v["InstanceType"].is_string() || v["InitialInstanceCount"].is_number();
        if serverless && instances {
            return Err(AwsError::validation(format!(
                "The variant {vname} cannot have both ServerlessConfig and InstanceType or InitialInstanceCount."
            )));
        }
        let on_instances = v["InstanceType"].is_string() && v["InitialInstanceCount"].is_number();
        if !serverless && !on_instances {
            return Err(AwsError::validation(format!(
                "The variant {vname} needs InstanceType and InitialInstanceCount, or a ServerlessConfig."
            )));
        }
        if serverless {
            let memory = v["ServerlessConfig"]["MemorySizeInMB"]
                .as_i64()
                .unwrap_or(0);
            if ![1024, 2048, 3072, 4096, 5120, 6144].contains(&memory) {
                return Err(AwsError::validation(format!(
                    "ServerlessConfig.MemorySizeInMB {memory} is not one of 1024, 2048, 3072, 4096, 5120, 6144."
                )));
            }
            let concurrency = v["ServerlessConfig"]["MaxConcurrency"]
                .as_i64()
                .unwrap_or(0);
            if !(1..=200).contains(&concurrency) {
                return Err(AwsError::validation(
                    "ServerlessConfig.MaxConcurrency must be between 1 and 200.",
                ));
            }
        }
    }
    let mut request = input.as_object().cloned().unwrap_or_default();
    request.remove("Tags");
    request.remove("EndpointConfigName");
    // AWS fills in the variants' default weight.
    for member in ["ProductionVariants", "ShadowProductionVariants"] {
        if let Some(Value::Array(list)) = request.get_mut(member) {
            for v in list.iter_mut() {
                if v["InitialVariantWeight"].is_null() && v["ServerlessConfig"].is_null() {
                    v["InitialVariantWeight"] = 1.0.into();
                }
            }
        }
    }
    let config = EndpointConfig {
        name: name.to_owned(),
        arn: arn.clone(),
        request,
        created_ms: core.now_ms(),
    };
    records::save(core.state.as_ref(), ENDPOINT_CONFIGS, ctx, name, &config)?;
    crate::tags::put(core, &arn, &input["Tags"])?;
    Ok(json!({"EndpointConfigArn": arn}))
}

pub(crate) fn describe(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    Ok(load(
        core,
        ctx,
        input["EndpointConfigName"].as_str().unwrap_or_default(),
    )?
    .describe())
}

pub(crate) fn list(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let all: Vec<EndpointConfig> = records::all(core.state.as_ref(), ENDPOINT_CONFIGS, ctx)?;
    records::list_page(all, input, "EndpointConfigs")
}

pub(crate) fn delete(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["EndpointConfigName"].as_str().unwrap_or_default();
    let config = load(core, ctx, name)?;
    core.state
        .delete(ENDPOINT_CONFIGS, &records::key(ctx, name))?;
    crate::tags::forget(core, &config.arn);
    Ok(json!({}))
}
