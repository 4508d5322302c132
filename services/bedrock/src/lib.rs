//! Amazon Bedrock control plane (botocore service `bedrock`): which foundation models and
//! system-defined (cross-region) inference profiles exist.
//!
//! Everything listed here is served by Basalt itself: the foundation models are exactly
//! `basalt_bedrock_runtime::catalog::FOUNDATION_MODELS`, where every text model id is answered
//! by the local chat model and every embedding id by the local embedding model. The response
//! shapes have no free-text field to say so, so the listing tells the truth by listing only
//! those ids. Inference profiles are the cross-region profiles AWS defines for some of those
//! chat models (`us.`, `eu.`, `global.` ids); the runtime accepts them as model ids.
//!
//! Operations: `ListFoundationModels`, `GetFoundationModel`, `ListInferenceProfiles`,
//! `GetInferenceProfile`; guardrails (`guardrails.rs`) and their tags; batch inference
//! (`batch.rs`: model invocation jobs). Every other
//! operation answers `NotImplemented`.

pub mod batch;
mod guardrails;

use basalt_bedrock_runtime::catalog::{FOUNDATION_MODELS, Foundation};
use basalt_bedrock_runtime::guardrails::Guardrails;
use basalt_core::{AwsError, Output, RequestContext, Service};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::Arc;

/// A group of regions a system-defined inference profile routes across.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geo {
    /// Prefix of the profile id (`us` in `us.anthropic...`).
    pub prefix: &'static str,
    /// Prefix of the profile name (`US Anthropic Claude 3 Haiku`).
    pub label: &'static str,
    /// Source regions; empty for `global` (every commercial region).
    pub regions: &'static [&'static str],
}

pub const US: Geo = Geo {
    prefix: "us",
    label: "US",
    regions: &["us-east-1", "us-east-2", "us-west-2"],
};
pub const EU: Geo = Geo {
    prefix: "eu",
    label: "EU",
    regions: &["eu-central-1", "eu-west-1", "eu-west-3"],
};
pub const GLOBAL: Geo = Geo {
    prefix: "global",
    label: "Global",
    regions: &[],
};

/// The system-defined inference profiles: foundation model id, and the geographies AWS
/// defines a cross-region profile in for it. Every id is a chat model of the catalog.
pub const INFERENCE_PROFILES: &[(&str, &[Geo])] = &[
    ("anthropic.claude-3-haiku-20240307-v1:0", &[US, EU]),
    ("anthropic.claude-3-sonnet-20240229-v1:0", &[US, EU]),
    ("anthropic.claude-3-opus-20240229-v1:0", &[US]),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", &[US]),
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", &[US, EU]),
    ("anthropic.claude-3-5-sonnet-20241022-v2:0", &[US]),
    ("anthropic.claude-3-7-sonnet-20250219-v1:0", &[US, EU]),
    ("anthropic.claude-sonnet-4-20250514-v1:0", &[US, EU, GLOBAL]),
    ("amazon.nova-micro-v1:0", &[US, EU]),
    ("amazon.nova-lite-v1:0", &[US, EU]),
    ("amazon.nova-pro-v1:0", &[US, EU]),
    ("meta.llama3-1-8b-instruct-v1:0", &[US]),
    ("meta.llama3-1-70b-instruct-v1:0", &[US]),
    ("deepseek.r1-v1:0", &[US]),
];

/// One system-defined inference profile, as seen from one region.
#[derive(Debug, Clone)]
pub struct Profile {
    pub model: &'static Foundation,
    pub geo: Geo,
}

impl Profile {
    pub fn id(&self) -> String {
        format!("{}.{}", self.geo.prefix, self.model.id)
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.geo.label, display_name(self.model))
    }

    pub fn arn(&self, region: &str, account: &str) -> String {
        format!(
            "arn:aws:bedrock:{region}:{account}:inference-profile/{}",
            self.id()
        )
    }

    pub fn description(&self) -> String {
        let name = display_name(self.model);
        match self.geo.regions {
            [] => format!("Routes requests to {name} globally across all supported AWS Regions."),
            [one] => format!("Routes requests to {name} in {one}."),
            [init @ .., last] => {
                format!(
                    "Routes requests to {name} in {} and {last}.",
                    init.join(", ")
                )
            }
        }
    }

    /// The foundation models the profile routes to: one per source region (the calling
    /// region for `global`).
    pub fn model_arns(&self, region: &str) -> Vec<String> {
        let regions: Vec<&str> = if self.geo.regions.is_empty() {
            vec![region]
        } else {
            self.geo.regions.to_vec()
        };
        regions
            .into_iter()
            .map(|r| foundation_arn(r, self.model.id))
            .collect()
    }

    pub fn document(&self, ctx: &RequestContext) -> Value {
        json!({
            "inferenceProfileName": self.name(),
            "description": self.description(),
            "inferenceProfileArn": self.arn(&ctx.region, &ctx.account_id),
            "models": self
                .model_arns(&ctx.region)
                .into_iter()
                .map(|a| json!({"modelArn": a}))
                .collect::<Vec<_>>(),
            "inferenceProfileId": self.id(),
            "status": "ACTIVE",
            "type": "SYSTEM_DEFINED",
        })
    }
}

/// The model's name as AWS's profile names and descriptions spell it (`Anthropic Claude 3
/// Haiku`, `Meta Llama 3.1 8B Instruct`, `Nova Pro`).
fn display_name(f: &Foundation) -> String {
    match f.provider {
        "Anthropic" | "Meta" if !f.name.starts_with(f.provider) => {
            format!("{} {}", f.provider, f.name)
        }
        _ => f.name.to_owned(),
    }
}

/// Whether a profile of `geo` can be called from `region` (a US profile from US regions...).
fn geo_serves(geo: &Geo, region: &str) -> bool {
    match geo.prefix {
        "global" => true,
        "us" => region.starts_with("us-") && !region.starts_with("us-gov-"),
        "eu" => region.starts_with("eu-"),
        _ => geo.regions.contains(&region),
    }
}

/// The system-defined profiles callable from `region`, in a stable order.
pub fn profiles_in(region: &str) -> Vec<Profile> {
    INFERENCE_PROFILES
        .iter()
        .filter_map(|(id, geos)| Some((FOUNDATION_MODELS.iter().find(|f| f.id == *id)?, geos)))
        .flat_map(|(model, geos)| {
            geos.iter()
                .filter(|g| geo_serves(g, region))
                .map(move |g| Profile { model, geo: *g })
        })
        .collect()
}

pub fn foundation_arn(region: &str, model_id: &str) -> String {
    format!("arn:aws:bedrock:{region}::foundation-model/{model_id}")
}

fn foundation_document(ctx: &RequestContext, f: &Foundation) -> Value {
    json!({
        "modelArn": foundation_arn(&ctx.region, f.id),
        "modelId": f.id,
        "modelName": f.name,
        "providerName": f.provider,
        "inputModalities": f.input,
        "outputModalities": f.output,
        "responseStreamingSupported": f.streaming,
        // Basalt runs no customization jobs, and every model is called on demand.
        "customizationsSupported": [],
        "inferenceTypesSupported": ["ON_DEMAND"],
        "modelLifecycle": {"status": "ACTIVE"},
    })
}

fn str_param<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// Whether `provider` (the `byProvider` filter) names `f`'s provider: its name (`Mistral AI`)
/// or its id prefix (`mistral`), case-insensitively.
fn provider_matches(f: &Foundation, provider: &str) -> bool {
    let p = provider.trim();
    f.provider.eq_ignore_ascii_case(p)
        || f.id
            .split_once('.')
            .is_some_and(|(prefix, _)| prefix.eq_ignore_ascii_case(p))
}

pub fn list_foundation_models(ctx: &RequestContext, input: &Value) -> Value {
    let provider = str_param(input, "byProvider");
    let output = str_param(input, "byOutputModality");
    let inference = str_param(input, "byInferenceType");
    let customization = str_param(input, "byCustomizationType");
    let summaries: Vec<Value> = FOUNDATION_MODELS
        .iter()
        .filter(|f| provider.is_none_or(|p| provider_matches(f, p)))
        .filter(|f| output.is_none_or(|m| f.output.contains(&m)))
        // Every model is ON_DEMAND only; none supports a customization.
        .filter(|_| inference.is_none_or(|t| t == "ON_DEMAND"))
        .filter(|_| customization.is_none())
        .map(|f| foundation_document(ctx, f))
        .collect();
    json!({ "modelSummaries": summaries })
}

/// The catalog entry a `GetFoundationModel` identifier names: a model id, or a foundation
/// model ARN (of any region). Inference profile ids are not foundation models.
pub fn resolve_foundation(identifier: &str) -> Option<&'static Foundation> {
    let id = match identifier.strip_prefix("arn:") {
        Some(_) => {
            let resource = identifier.splitn(6, ':').nth(5)?;
            resource.strip_prefix("foundation-model/")?
        }
        None => identifier,
    };
    FOUNDATION_MODELS.iter().find(|f| f.id == id)
}

pub fn get_foundation_model(ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let identifier = str_param(input, "modelIdentifier").unwrap_or_default();
    let f = resolve_foundation(identifier).ok_or_else(|| {
        AwsError::new(
            404,
            "ResourceNotFoundException",
            format!("The model ID {identifier} does not exist."),
        )
    })?;
    Ok(json!({ "modelDetails": foundation_document(ctx, f) }))
}

/// `nextToken` of `ListInferenceProfiles`: the offset of the next item, opaque to callers.
fn encode_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("basalt-ip:{offset}"))
}

fn decode_token(token: &str, total: usize) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let offset: usize = text.strip_prefix("basalt-ip:")?.parse().ok()?;
    (offset > 0 && offset < total).then_some(offset)
}

pub fn list_inference_profiles(ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    // Basalt has no application inference profiles (CreateInferenceProfile is not
    // implemented), so only SYSTEM_DEFINED (the default) lists anything.
    let profiles = match str_param(input, "typeEquals") {
        Some("APPLICATION") => Vec::new(),
        _ => profiles_in(&ctx.region),
    };
    let start = match str_param(input, "nextToken") {
        Some(t) => decode_token(t, profiles.len())
            .ok_or_else(|| AwsError::validation("The provided pagination token is invalid."))?,
        None => 0,
    };
    let max = match input.get("maxResults").and_then(Value::as_i64) {
        Some(n) if !(1..=1000).contains(&n) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000"
            )));
        }
        Some(n) => n as usize,
        None => usize::MAX,
    };
    let end = start.saturating_add(max).min(profiles.len());
    let page: Vec<Value> = profiles[start..end]
        .iter()
        .map(|p| p.document(ctx))
        .collect();
    let mut out = json!({ "inferenceProfileSummaries": page });
    if end < profiles.len() {
        out["nextToken"] = Value::String(encode_token(end));
    }
    Ok(out)
}

/// The profile an identifier names from `region`: its id, or its ARN.
pub fn resolve_profile(region: &str, identifier: &str) -> Option<Profile> {
    let id = match identifier.strip_prefix("arn:") {
        Some(_) => {
            let resource = identifier.splitn(6, ':').nth(5)?;
            resource.strip_prefix("inference-profile/")?
        }
        None => identifier,
    };
    profiles_in(region).into_iter().find(|p| p.id() == id)
}

pub fn get_inference_profile(ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let identifier = str_param(input, "inferenceProfileIdentifier").unwrap_or_default();
    let profile = resolve_profile(&ctx.region, identifier).ok_or_else(|| {
        AwsError::new(
            404,
            "ResourceNotFoundException",
            format!("The inference profile ID {identifier} does not exist."),
        )
    })?;
    Ok(profile.document(ctx))
}

/// The `bedrock` service.
#[derive(Clone)]
pub struct Bedrock {
    guardrails: Arc<Guardrails>,
    batch: Option<Arc<batch::Batch>>,
}

impl Bedrock {
    pub fn new(guardrails: Arc<Guardrails>) -> Self {
        Bedrock {
            guardrails,
            batch: None,
        }
    }

    /// With batch inference (model invocation jobs).
    pub fn with_batch(mut self, batch: Arc<batch::Batch>) -> Self {
        self.batch = Some(batch);
        self
    }

    fn batch(&self) -> Result<&batch::Batch, AwsError> {
        self.batch
            .as_deref()
            .ok_or_else(|| AwsError::not_implemented("bedrock", "batch inference"))
    }
}

#[async_trait::async_trait]
impl Service for Bedrock {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let out = match operation {
            "ListFoundationModels" => list_foundation_models(ctx, &input),
            "CreateModelInvocationJob" => self.batch()?.create(ctx, &input)?,
            "GetModelInvocationJob" => self.batch()?.get(ctx, &input)?,
            "ListModelInvocationJobs" => self.batch()?.list(ctx, &input)?,
            "StopModelInvocationJob" => self.batch()?.stop(ctx, &input)?,
            "GetFoundationModel" => get_foundation_model(ctx, &input)?,
            "ListInferenceProfiles" => list_inference_profiles(ctx, &input)?,
            "GetInferenceProfile" => get_inference_profile(ctx, &input)?,
            "CreateGuardrail" => guardrails::create(&self.guardrails, ctx, &input)?,
            "GetGuardrail" => guardrails::get(&self.guardrails, ctx, &input)?,
            "ListGuardrails" => guardrails::list(&self.guardrails, ctx, &input)?,
            "UpdateGuardrail" => guardrails::update(&self.guardrails, ctx, &input)?,
            "CreateGuardrailVersion" => guardrails::create_version(&self.guardrails, ctx, &input)?,
            "DeleteGuardrail" => guardrails::delete(&self.guardrails, ctx, &input)?,
            "TagResource" => guardrails::tag(&self.guardrails, ctx, &input)?,
            "UntagResource" => guardrails::untag(&self.guardrails, ctx, &input)?,
            "ListTagsForResource" => guardrails::list_tags(&self.guardrails, ctx, &input)?,
            _ => return Err(AwsError::not_implemented("bedrock", operation)),
        };
        Ok(Output::new(out))
    }
}

#[cfg(test)]
mod tests;
