//! AWS Lambda (botocore service `lambda`): functions, versions and aliases, invocations that
//! run the function for real (through `basalt-functions`), permissions, concurrency, tags.
//!
//! Functions run as local processes speaking the Lambda Runtime API, with the SDK pointed
//! back at Basalt (`AWS_ENDPOINT_URL`) and temporary credentials that STS issues for the
//! function's role. Their output goes to CloudWatch Logs (`/aws/lambda/<name>`).

mod destinations;
mod functions;
mod invoke;
mod layers;
mod mappings;
mod model;
mod permissions;
mod provisioned;
mod urls;
mod versions;

pub use invoke::{ASYNC_QUEUE, LEASE_MS, RETRY_DELAYS_MS};
pub use mappings::ESM_QUEUE;
pub use urls::{URL_PATH, UrlRequest, UrlResponse};

use basalt_core::{AwsError, Output, RequestContext, Service, ServiceRegistry};
use basalt_functions::Engine;
use basalt_store::{BlobStore, StateStore, Store};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Reads an S3 object in-process (account, bucket, key, version), for code from S3.
pub type ObjectReader = Arc<
    dyn Fn(&str, &str, &str, Option<&str>) -> Result<Option<bytes::Bytes>, AwsError> + Send + Sync,
>;

#[derive(Clone)]
pub struct LambdaConfig {
    /// The URL functions reach Basalt at (`AWS_ENDPOINT_URL`) and code URLs start with.
    pub endpoint: String,
    pub read_object: Option<ObjectReader>,
    /// Delays before the two retries of a failed asynchronous invocation
    /// ([`RETRY_DELAYS_MS`], AWS's one and two minutes, unless a test shortens them).
    pub retry_delays_ms: [i64; 2],
    /// How long a node holds an asynchronous invocation between renewals; a dead node's
    /// invocations run elsewhere this long after it died ([`LEASE_MS`] unless a test shortens
    /// it).
    pub lease_ms: i64,
}

pub struct Lambda {
    state: Arc<dyn StateStore>,
    blobs: Arc<dyn BlobStore>,
    engine: Arc<Engine>,
    logs: Arc<basalt_logs::Logs>,
    /// The other services (STS for credentials), set once every service is registered.
    registry: OnceLock<ServiceRegistry>,
    config: LambdaConfig,
    /// Credentials issued for a role, reused until an hour before they expire.
    credentials: Mutex<HashMap<String, invoke::Credentials>>,
    /// Signs code download URLs; shared by the nodes through the state store.
    url_key: OnceLock<Vec<u8>>,
    /// Wakes the asynchronous worker when an invocation is queued on this node.
    async_wake: OnceLock<Arc<tokio::sync::Notify>>,
    /// `AWS/Lambda` data points for CloudWatch.
    metrics: Arc<basalt_store::metrics::Metrics>,
    /// Function output and data points on their way to the store (see `invoke::telemetry`).
    telemetry: OnceLock<tokio::sync::mpsc::UnboundedSender<invoke::Telemetry>>,
    /// Wakes the event source mapping worker when a mapping is enabled on this node.
    esm_wake: tokio::sync::Notify,
}

pub(crate) fn invalid_value(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidParameterValueException", message).with_field("Type", "User")
}

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "ResourceNotFoundException", message).with_field("Type", "User")
}

pub(crate) fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "ResourceConflictException", message).with_field("Type", "User")
}

pub(crate) fn str_of<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

/// The function `FunctionName` names (a name or an ARN), qualified by `Qualifier` or its
/// own suffix.
pub(crate) fn function_ref(
    ctx: &RequestContext,
    input: &Value,
) -> Result<model::FunctionRef, AwsError> {
    model::parse_ref(
        str_of(input, "FunctionName").unwrap_or_default(),
        str_of(input, "Qualifier"),
        &ctx.account_id,
    )
}

/// The name of the function `FunctionName` names, for operations that take no qualifier.
pub(crate) fn function_name(ctx: &RequestContext, input: &Value) -> Result<String, AwsError> {
    Ok(model::parse_ref(
        str_of(input, "FunctionName").unwrap_or_default(),
        None,
        &ctx.account_id,
    )?
    .name)
}

/// Every record of `table` under `prefix`, decoded (unreadable ones are skipped).
pub(crate) fn records<T: serde::de::DeserializeOwned>(
    l: &Lambda,
    table: &str,
    prefix: &str,
) -> Result<Vec<T>, AwsError> {
    Ok(l.state
        .scan(table, prefix, None, 100_000)?
        .into_iter()
        .filter_map(|(_, raw)| serde_json::from_slice(&raw).ok())
        .collect())
}

/// A stale `RevisionId`; `api` is what to call for the current one.
pub(crate) fn revision_mismatch(api: &str) -> AwsError {
    AwsError::new(
        412,
        "PreconditionFailedException",
        format!("The Revision Id provided does not match the latest Revision Id. Call the {api} API to retrieve the latest Revision Id"),
    )
    .with_field("Type", "User")
}

/// `MaxItems` (a number or a numeric string), `default` when absent, within `1..=cap`.
pub(crate) fn max_items(input: &Value, default: u64, cap: u64) -> usize {
    input
        .get("MaxItems")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(default)
        .clamp(1, cap) as usize
}

/// One page of `items` under `field`, by `Marker` (the last shown item's `id`) and
/// `MaxItems` (at most `cap`).
pub(crate) fn page(
    items: Vec<Value>,
    input: &Value,
    field: &str,
    cap: u64,
    id: impl Fn(&Value) -> String,
) -> Output {
    let max = max_items(input, 50, cap);
    let start = match str_of(input, "Marker") {
        Some(m) => items
            .iter()
            .position(|v| id(v) == m)
            .map_or(items.len(), |i| i + 1),
        None => 0,
    };
    let rest = &items[start.min(items.len())..];
    let shown: Vec<Value> = rest.iter().take(max).cloned().collect();
    let mut out = serde_json::json!({ field: shown });
    if rest.len() > max
        && let Some(last) = shown.last()
    {
        out["NextMarker"] = serde_json::json!(id(last));
    }
    Output::new(out)
}

impl Lambda {
    pub fn new(
        store: &Store,
        engine: Arc<Engine>,
        logs: Arc<basalt_logs::Logs>,
        config: LambdaConfig,
    ) -> Arc<Lambda> {
        Arc::new(Lambda {
            state: store.state.clone(),
            blobs: store.blobs.clone(),
            engine,
            logs,
            registry: OnceLock::new(),
            config,
            credentials: Mutex::default(),
            url_key: OnceLock::new(),
            async_wake: OnceLock::new(),
            metrics: Arc::new(basalt_store::metrics::Metrics::new(store.state.clone())),
            telemetry: OnceLock::new(),
            esm_wake: tokio::sync::Notify::new(),
        })
    }

    /// Gives Lambda the registry it calls STS through; call once all services are in it.
    pub fn set_registry(&self, registry: ServiceRegistry) {
        let _ = self.registry.set(registry);
    }

    /// What runs functions here, for `/_basalt/health`.
    pub fn health(&self) -> Value {
        serde_json::json!({
            "isolation": self.engine.isolation(),
            "runtimes": self.engine.config.runtimes.describe(),
            "idleEnvironments": self.engine.idle(),
        })
    }

    /// Starts the worker that runs asynchronous invocations (on the store's leases, so that
    /// the nodes sharing a store share the work and a dead node's items are taken over).
    pub fn start_workers(self: &Arc<Self>) {
        invoke::start_async_worker(self.clone());
        mappings::start_worker(self.clone());
    }

    /// Serves an HTTP request to the function URL `id`.
    pub async fn serve_url(&self, id: &str, req: UrlRequest) -> UrlResponse {
        urls::serve(self, id, req).await
    }

    /// The package a signed code URL (GetFunction's `Code.Location`) names, if the signature
    /// holds and has not expired.
    pub fn code_for_url(&self, path: &str, query: &str) -> Option<bytes::Bytes> {
        functions::code_for_url(self, path, query)
    }
}

#[async_trait::async_trait]
impl Service for Lambda {
    fn name(&self) -> &'static str {
        "lambda"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        match operation {
            "Invoke" => return invoke::invoke(self, ctx, &input).await,
            "InvokeAsync" => return invoke::invoke_async_legacy(self, ctx, &input).await,
            "InvokeWithResponseStream" => return invoke::invoke_stream(self, ctx, &input).await,
            "PutProvisionedConcurrencyConfig" => return provisioned::put(self, ctx, &input).await,
            "GetProvisionedConcurrencyConfig" => return provisioned::get(self, ctx, &input).await,
            "DeleteProvisionedConcurrencyConfig" => {
                return provisioned::delete(self, ctx, &input).await;
            }
            "ListProvisionedConcurrencyConfigs" => {
                return provisioned::list(self, ctx, &input).await;
            }
            "CreateEventSourceMapping" => return mappings::create(self, ctx, &input).await,
            "UpdateEventSourceMapping" => return mappings::update(self, ctx, &input).await,
            _ => {}
        }
        // The rest is short storage work.
        let out = match operation {
            "CreateFunction" => functions::create(self, ctx, &input),
            "GetFunction" => functions::get(self, ctx, &input),
            "GetFunctionConfiguration" => functions::get_configuration(self, ctx, &input),
            "ListFunctions" => functions::list(self, ctx, &input),
            "UpdateFunctionCode" => functions::update_code(self, ctx, &input),
            "UpdateFunctionConfiguration" => functions::update_configuration(self, ctx, &input),
            "DeleteFunction" => functions::delete(self, ctx, &input),
            "PutFunctionConcurrency" => functions::put_concurrency(self, ctx, &input),
            "GetFunctionConcurrency" => functions::get_concurrency(self, ctx, &input),
            "DeleteFunctionConcurrency" => functions::delete_concurrency(self, ctx, &input),
            "TagResource" => functions::tag(self, ctx, &input),
            "UntagResource" => functions::untag(self, ctx, &input),
            "ListTags" => functions::list_tags(self, ctx, &input),
            "GetAccountSettings" => functions::account_settings(self, ctx),
            "PutFunctionEventInvokeConfig" | "UpdateFunctionEventInvokeConfig" => {
                functions::put_event_invoke_config(self, ctx, operation, &input)
            }
            "GetFunctionEventInvokeConfig" => functions::get_event_invoke_config(self, ctx, &input),
            "DeleteFunctionEventInvokeConfig" => {
                functions::delete_event_invoke_config(self, ctx, &input)
            }
            "PublishVersion" => versions::publish(self, ctx, &input),
            "ListVersionsByFunction" => versions::list(self, ctx, &input),
            "CreateAlias" => versions::create_alias(self, ctx, &input),
            "GetAlias" => versions::get_alias(self, ctx, &input),
            "UpdateAlias" => versions::update_alias(self, ctx, &input),
            "DeleteAlias" => versions::delete_alias(self, ctx, &input),
            "ListAliases" => versions::list_aliases(self, ctx, &input),
            "PublishLayerVersion" => layers::publish(self, ctx, &input),
            "GetLayerVersion" => layers::get(self, ctx, &input),
            "GetLayerVersionByArn" => layers::get_by_arn(self, ctx, &input),
            "ListLayers" => layers::list(self, ctx, &input),
            "ListLayerVersions" => layers::list_versions(self, ctx, &input),
            "DeleteLayerVersion" => layers::delete(self, ctx, &input),
            "CreateFunctionUrlConfig" => urls::create(self, ctx, &input),
            "GetFunctionUrlConfig" => urls::get(self, ctx, &input),
            "UpdateFunctionUrlConfig" => urls::update(self, ctx, &input),
            "DeleteFunctionUrlConfig" => urls::delete(self, ctx, &input),
            "ListFunctionUrlConfigs" => urls::list(self, ctx, &input),
            "AddPermission" => permissions::add(self, ctx, &input),
            "RemovePermission" => permissions::remove(self, ctx, &input),
            "GetPolicy" => permissions::get(self, ctx, &input),
            "GetEventSourceMapping" => mappings::get(self, ctx, &input),
            "ListEventSourceMappings" => mappings::list(self, ctx, &input),
            "DeleteEventSourceMapping" => mappings::delete(self, ctx, &input),
            _ => return Err(AwsError::not_implemented("lambda", operation)),
        }?;
        Ok(out)
    }
}
