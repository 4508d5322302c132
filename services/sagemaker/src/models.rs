//! Models: CreateModel, DescribeModel, ListModels, DeleteModel. A model is what an endpoint
//! serves: a container (image, artifacts in S3, environment), or several in an inference
//! pipeline.

use crate::records::{self, Listed, MODELS, secs};
use crate::{Core, could_not_find};
use basalt_core::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Model {
    pub name: String,
    pub arn: String,
    /// The request's members as given (but Tags and the name).
    pub request: Map<String, Value>,
    pub created_ms: i64,
    /// The containers with model packages replaced by the packages' inference containers.
    #[serde(default)]
    pub resolved: Option<Vec<Value>>,
}

impl Model {
    /// The containers, in the order requests go through them.
    pub fn containers(&self) -> Vec<Value> {
        if let Some(resolved) = &self.resolved {
            return resolved.clone();
        }
        match self.request.get("Containers").and_then(Value::as_array) {
            Some(list) if !list.is_empty() => list.clone(),
            _ => self
                .request
                .get("PrimaryContainer")
                .cloned()
                .into_iter()
                .collect(),
        }
    }

    fn describe(&self) -> Value {
        let mut v = Value::Object(self.request.clone());
        v["ModelName"] = self.name.clone().into();
        v["ModelArn"] = self.arn.clone().into();
        v["CreationTime"] = secs(self.created_ms).into();
        v["EnableNetworkIsolation"] = v["EnableNetworkIsolation"]
            .as_bool()
            .unwrap_or(false)
            .into();
        v
    }
}

impl Listed for Model {
    fn name(&self) -> &str {
        &self.name
    }
    fn created_ms(&self) -> i64 {
        self.created_ms
    }
    fn summary(&self) -> Value {
        json!({"ModelName": self.name, "ModelArn": self.arn, "CreationTime": secs(self.created_ms)})
    }
}

pub(crate) fn load(core: &Core, ctx: &RequestContext, name: &str) -> Result<Model, AwsError> {
    records::load(core.state.as_ref(), MODELS, ctx, name)?
        .ok_or_else(|| could_not_find("model", &records::arn(ctx, "model", name)))
}

pub(crate) fn create(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["ModelName"].as_str().unwrap_or_default();
    records::check_name("modelName", name)?;
    let arn = records::arn(ctx, "model", name);
    if records::load::<Model>(core.state.as_ref(), MODELS, ctx, name)?.is_some() {
        return Err(AwsError::validation(format!(
            "Cannot create already existing model \"{arn}\"."
        )));
    }
    let containers: Vec<&Value> = match input["Containers"].as_array() {
        Some(list) if !list.is_empty() => list.iter().collect(),
        _ => input.get("PrimaryContainer").into_iter().collect(),
    };
    if containers.is_empty() {
        return Err(AwsError::validation(
            "Either PrimaryContainer or Containers must be specified.",
        ));
    }
    if !input["PrimaryContainer"].is_null()
        && input["Containers"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    {
        return Err(AwsError::validation(
            "PrimaryContainer and Containers cannot both be specified.",
        ));
    }
    let mut resolved = Vec::new();
    for c in &containers {
        if let Some(package) = c["ModelPackageName"].as_str() {
            let package = crate::registry::load_package(core, ctx, package)?;
            for mut inner in package.containers() {
                // The model's environment adds to (and overrides) the package's.
                for (k, v) in c["Environment"].as_object().into_iter().flatten() {
                    inner["Environment"][k] = v.clone();
                }
                resolved.push(inner);
            }
            continue;
        }
        resolved.push((*c).clone());
        if c["Image"].as_str().is_none() {
            return Err(AwsError::validation("A container needs an Image."));
        }
        if crate::serving::is_multi_model(c) {
            if containers.len() > 1 {
                return Err(AwsError::validation(
                    "Multi-model mode (Mode MultiModel) is not supported for inference pipelines: give one container.",
                ));
            }
            if c["ModelDataUrl"].as_str().is_none() {
                return Err(AwsError::validation(
                    "A container in MultiModel mode needs ModelDataUrl: the S3 prefix of its models.",
                ));
            }
        }
        if let Some(url) = c["ModelDataUrl"].as_str()
            && basalt_core::objects::parse_s3_uri(url).is_none()
        {
            return Err(AwsError::validation(format!(
                "Could not access model data at {url}. Please ensure that the role exists and that its trust relationship policy allows the action 'sts:AssumeRole' for the service principal 'sagemaker.amazonaws.com'."
            )));
        }
    }
    let mut request = input.as_object().cloned().unwrap_or_default();
    request.remove("Tags");
    request.remove("ModelName");
    let model = Model {
        name: name.to_owned(),
        arn: arn.clone(),
        request,
        created_ms: core.now_ms(),
        resolved: containers
            .iter()
            .any(|c| c["ModelPackageName"].is_string())
            .then_some(resolved),
    };
    records::save(core.state.as_ref(), MODELS, ctx, name, &model)?;
    crate::tags::put(core, &arn, &input["Tags"])?;
    Ok(json!({"ModelArn": arn}))
}

pub(crate) fn describe(
    core: &Core,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Value, AwsError> {
    Ok(load(core, ctx, input["ModelName"].as_str().unwrap_or_default())?.describe())
}

pub(crate) fn list(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let all: Vec<Model> = records::all(core.state.as_ref(), MODELS, ctx)?;
    records::list_page(all, input, "Models")
}

pub(crate) fn delete(core: &Core, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
    let name = input["ModelName"].as_str().unwrap_or_default();
    let model = load(core, ctx, name)?;
    core.state.delete(MODELS, &records::key(ctx, name))?;
    crate::tags::forget(core, &model.arn);
    Ok(json!({}))
}
