//! Functions: create, read, list, update, delete; concurrency, tags, account settings,
//! asynchronous invocation settings; code download URLs.

use crate::model::{self, Config, FUNCTIONS, FunctionRec, LATEST, function_arn};
use crate::{Lambda, conflict, invalid_value, not_found, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use basalt_functions::{runtimes, unpack};
use basalt_store::{StoreError, WriteOp};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A zipped package uploaded directly may be at most 50 MB.
pub const MAX_ZIP: usize = 52_428_800;
/// Environment variables may total at most 4 KB.
const MAX_ENV_BYTES: usize = 4096;
/// Account-wide concurrency, of which 100 must stay unreserved.
pub const ACCOUNT_CONCURRENCY: u32 = 1000;
const UNRESERVED_MIN: u32 = 100;
/// How long a code URL stays valid.
const CODE_URL_SECONDS: i64 = 600;

const RESERVED_VARS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

pub(crate) fn function_missing(
    ctx: &RequestContext,
    name: &str,
    qualifier: Option<&str>,
) -> AwsError {
    let mut arn = function_arn(&ctx.region, &ctx.account_id, name);
    if let Some(q) = qualifier {
        arn = format!("{arn}:{q}");
    }
    not_found(format!("Function not found: {arn}"))
}

pub(crate) fn load(
    l: &Lambda,
    ctx: &RequestContext,
    name: &str,
) -> Result<(FunctionRec, Vec<u8>), AwsError> {
    let raw = l
        .state
        .get(FUNCTIONS, &model::function_key(&ctx.scope(), name))?
        .ok_or_else(|| function_missing(ctx, name, None))?;
    let rec = serde_json::from_slice(&raw).map_err(|e| AwsError::internal(e.to_string()))?;
    Ok((rec, raw))
}

/// Writes `rec` if the stored record is still `raw` (another writer wins otherwise).
pub(crate) fn save(
    l: &Lambda,
    ctx: &RequestContext,
    rec: &FunctionRec,
    raw: Option<Vec<u8>>,
    extra: Vec<WriteOp>,
) -> Result<(), AwsError> {
    let key = model::function_key(&ctx.scope(), &rec.name);
    let value = serde_json::to_vec(rec).map_err(|e| AwsError::internal(e.to_string()))?;
    let mut ops = vec![
        WriteOp::Check {
            table: FUNCTIONS.into(),
            key: key.clone(),
            expected: raw,
        },
        WriteOp::Put {
            table: FUNCTIONS.into(),
            key,
            value,
        },
    ];
    ops.extend(extra);
    match l.state.batch(&ops) {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict) => Err(conflict(
            "The operation cannot be performed at this time. An update is in progress for resource: ".to_owned()
                + &function_arn(&ctx.region, &ctx.account_id, &rec.name),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The name of an unqualified reference (create and configuration updates take none).
fn unqualified_name(ctx: &RequestContext, input: &Value) -> Result<String, AwsError> {
    let r = model::parse_ref(
        str_of(input, "FunctionName").unwrap_or_default(),
        None,
        &ctx.account_id,
    )?;
    if r.qualifier.is_some() {
        return Err(invalid_value(
            "Unqualified function name is required for this operation.",
        ));
    }
    Ok(r.name)
}

/// The configuration document AWS returns (`FunctionConfiguration`).
pub(crate) fn config_doc(
    ctx: &RequestContext,
    name: &str,
    c: &Config,
    qualified_arn: bool,
) -> Value {
    let mut arn = function_arn(&ctx.region, &ctx.account_id, name);
    if qualified_arn || c.version != LATEST {
        arn = format!("{arn}:{}", c.version);
    }
    let mut v = json!({
        "FunctionName": name,
        "FunctionArn": arn,
        "Runtime": c.runtime,
        "Role": c.role,
        "Handler": c.handler,
        "CodeSize": c.code_size,
        "Description": c.description,
        "Timeout": c.timeout,
        "MemorySize": c.memory,
        "LastModified": c.last_modified,
        "CodeSha256": c.code_sha256,
        "Version": c.version,
        "TracingConfig": {"Mode": if c.tracing.is_empty() { "PassThrough" } else { &c.tracing }},
        "RevisionId": c.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": if c.architectures.is_empty() { vec!["x86_64".to_owned()] } else { c.architectures.clone() },
        "EphemeralStorage": {"Size": c.ephemeral},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": c.logging.clone().unwrap_or_else(|| json!({"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{name}")})),
    });
    if !c.env.is_empty() {
        v["Environment"] = json!({"Variables": c.env});
    }
    if let Some(t) = &c.dead_letter {
        v["DeadLetterConfig"] = json!({"TargetArn": t});
    }
    if let Some(k) = &c.kms_key {
        v["KMSKeyArn"] = json!(k);
    }
    if !c.layers.is_empty() {
        v["Layers"] = json!(
            c.layers
                .iter()
                .zip(c.layer_sizes.iter().chain(std::iter::repeat(&0)))
                .map(|(a, size)| json!({"Arn": a, "CodeSize": size}))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// Marks a document as just created or just updated, as the write APIs answer before the
/// function settles (waiters poll GetFunctionConfiguration until Active / Successful).
fn in_progress(mut v: Value, creating: bool) -> Value {
    if creating {
        v["State"] = json!("Pending");
        v["StateReason"] = json!("The function is being created.");
        v["StateReasonCode"] = json!("Creating");
        if let Some(o) = v.as_object_mut() {
            o.remove("LastUpdateStatus");
        }
    } else {
        v["LastUpdateStatus"] = json!("InProgress");
    }
    v
}

fn env_of(input: &Value) -> Result<Option<std::collections::BTreeMap<String, String>>, AwsError> {
    let Some(env) = input.get("Environment") else {
        return Ok(None);
    };
    let vars: std::collections::BTreeMap<String, String> = env
        .get("Variables")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let reserved: Vec<&str> = vars
        .keys()
        .filter(|k| RESERVED_VARS.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !reserved.is_empty() {
        return Err(invalid_value(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let size: usize = serde_json::to_string(&vars).map_or(0, |s| s.len());
    if size > MAX_ENV_BYTES {
        return Err(invalid_value(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {}",
            serde_json::to_string(&vars).unwrap_or_default()
        )));
    }
    Ok(Some(vars))
}

fn check_range(
    input: &Value,
    name: &str,
    member: &str,
    lo: u64,
    hi: u64,
) -> Result<Option<u32>, AwsError> {
    let Some(v) = input.get(name).and_then(Value::as_u64) else {
        return Ok(None);
    };
    if v < lo || v > hi {
        return Err(invalid_value(format!(
            "1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must have value {} {}",
            if v < lo {
                "greater than or equal to"
            } else {
                "less than or equal to"
            },
            if v < lo { lo } else { hi }
        )));
    }
    Ok(Some(v as u32))
}

fn check_runtime(runtime: &str) -> Result<(), AwsError> {
    if runtimes::is_known(runtime) {
        return Ok(());
    }
    Err(invalid_value(format!(
        "The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions."
    )))
}

/// Applies the configuration members of `input` (CreateFunction, UpdateFunctionConfiguration).
fn apply_config(c: &mut Config, input: &Value) -> Result<(), AwsError> {
    if let Some(r) = str_of(input, "Runtime") {
        check_runtime(r)?;
        c.runtime = r.to_owned();
    }
    if let Some(v) = str_of(input, "Role") {
        c.role = v.to_owned();
    }
    if let Some(v) = str_of(input, "Handler") {
        c.handler = v.to_owned();
    }
    if let Some(v) = str_of(input, "Description") {
        c.description = v.to_owned();
    }
    if let Some(t) = check_range(input, "Timeout", "timeout", 1, 900)? {
        c.timeout = t;
    }
    if let Some(m) = check_range(input, "MemorySize", "memorySize", 128, 10240)? {
        c.memory = m;
    }
    if let Some(size) = input.get("EphemeralStorage").and_then(|e| e.get("Size")) {
        let size = size.as_u64().unwrap_or(0);
        if !(512..=10240).contains(&size) {
            return Err(invalid_value(format!(
                "1 validation error detected: Value '{size}' at 'ephemeralStorage.size' failed to satisfy constraint: Member must have value between 512 and 10240"
            )));
        }
        c.ephemeral = size as u32;
    }
    if let Some(env) = env_of(input)? {
        c.env = env;
    }
    if let Some(a) = input.get("Architectures").and_then(Value::as_array) {
        c.architectures = a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    if let Some(m) = input
        .get("TracingConfig")
        .and_then(|t| t.get("Mode"))
        .and_then(Value::as_str)
    {
        c.tracing = m.to_owned();
    }
    if let Some(d) = input.get("DeadLetterConfig") {
        c.dead_letter = d
            .get("TargetArn")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if let Some(arn) = &c.dead_letter {
            crate::destinations::check_dead_letter(arn)?;
        }
    }
    if let Some(k) = str_of(input, "KMSKeyArn") {
        c.kms_key = (!k.is_empty()).then(|| k.to_owned());
    }
    if let Some(lc) = input.get("LoggingConfig") {
        c.logging = Some(lc.clone());
    }
    Ok(())
}

/// Applies `Layers` (they must exist; their code is pinned in the configuration).
fn apply_layers(
    l: &Lambda,
    ctx: &RequestContext,
    c: &mut Config,
    input: &Value,
) -> Result<(), AwsError> {
    let Some(layers) = input.get("Layers").and_then(Value::as_array) else {
        return Ok(());
    };
    let arns: Vec<String> = layers
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    crate::layers::check_function_layers(l, ctx, &arns)?;
    let pinned = crate::layers::pinned(l, ctx, &arns)?;
    c.layer_hexes = pinned.iter().map(|(h, _)| h.clone()).collect();
    c.layer_sizes = pinned.iter().map(|(_, s)| *s).collect();
    c.layers = arns;
    Ok(())
}

/// The package of a create or code update: stored, unpacked once, and described.
pub(crate) fn take_code(
    l: &Lambda,
    ctx: &RequestContext,
    code: &Value,
) -> Result<(Vec<u8>, String, String), AwsError> {
    let zip = match (
        str_of(code, "ZipFile"),
        str_of(code, "S3Bucket"),
        str_of(code, "ImageUri"),
    ) {
        (Some(b64), None, None) => B64.decode(b64).map_err(|_| {
            invalid_value(
                "Could not unzip uploaded file. Please check your file, then try to upload again.",
            )
        })?,
        (None, Some(bucket), None) => {
            let key = str_of(code, "S3Key").unwrap_or_default();
            let Some(read) = &l.config.read_object else {
                return Err(invalid_value(
                    "Reading code from S3 is not available on this server.",
                ));
            };
            read(&ctx.account_id, bucket, key, str_of(code, "S3ObjectVersion"))?.ok_or_else(|| {
                invalid_value(
                    "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.",
                )
            })?.to_vec()
        }
        (None, None, Some(_)) => {
            return Err(invalid_value(
                "Container image functions are not supported by Basalt: PackageType Image needs a container runtime.",
            ));
        }
        _ => return Err(invalid_value("Please provide a source for function code.")),
    };
    if zip.len() > MAX_ZIP {
        return Err(AwsError::new(
            413,
            "RequestEntityTooLargeException",
            "Request must be smaller than 69905067 bytes for the CreateFunction operation",
        ));
    }
    unpack::check(&zip).map_err(|e| invalid_value(e.to_string()))?;
    let hex = unpack::hex_sha256(&zip);
    let sha = B64.encode(Sha256::digest(&zip));
    let blob = blob_key(&ctx.account_id, &hex);
    if !l.blobs.exists(&blob)? {
        l.blobs.put(&blob, &zip)?;
    }
    Ok((zip, sha, hex))
}

pub(crate) fn blob_key(account: &str, hex: &str) -> String {
    format!("lambda/{account}/{hex}.zip")
}

pub(crate) fn create(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    if str_of(input, "PackageType") == Some("Image") {
        return Err(invalid_value(
            "Container image functions are not supported by Basalt: PackageType Image needs a container runtime.",
        ));
    }
    if str_of(input, "Runtime").is_none() || str_of(input, "Handler").is_none() {
        return Err(invalid_value(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
        ));
    }
    let mut config = Config {
        timeout: 3,
        memory: 128,
        ephemeral: 512,
        version: LATEST.into(),
        ..Default::default()
    };
    apply_config(&mut config, input)?;
    apply_layers(l, ctx, &mut config, input)?;
    let key = model::function_key(&ctx.scope(), &name);
    if l.state.get(FUNCTIONS, &key)?.is_some() {
        return Err(conflict(format!("Function already exist: {name}")));
    }
    let code = input.get("Code").cloned().unwrap_or(Value::Null);
    let (zip, sha, hex) = take_code(l, ctx, &code)?;
    config.code_size = zip.len() as u64;
    config.code_sha256 = sha;
    config.code_hex = hex;
    config.last_modified = model::timestamp_now();
    config.revision_id = model::revision();
    let mut rec = FunctionRec {
        name: name.clone(),
        config,
        next_version: 1,
        ..Default::default()
    };
    if let Some(tags) = input.get("Tags").and_then(Value::as_object) {
        rec.tags = tags
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
    }
    let publish = input
        .get("Publish")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut extra = Vec::new();
    let mut shown = rec.config.clone();
    if publish {
        let (op, published) = crate::versions::publish_op(ctx, &mut rec, "")?;
        extra.push(op);
        shown = published;
    }
    match save(l, ctx, &rec, None, extra) {
        Err(e) if e.code == "ResourceConflictException" => {
            return Err(conflict(format!("Function already exist: {name}")));
        }
        r => r?,
    }
    Ok(Output::new(in_progress(
        config_doc(ctx, &name, &shown, false),
        true,
    )))
}

/// Stops the warm environments of `$LATEST` (its code or configuration changed).
fn retire_latest(l: &Lambda, ctx: &RequestContext, name: &str) {
    l.engine.retire(&format!(
        "{}:{LATEST}:",
        function_arn(&ctx.region, &ctx.account_id, name)
    ));
}

/// The configuration a reference names: `$LATEST`, a version or an alias's version.
pub(crate) fn resolve_config(
    l: &Lambda,
    ctx: &RequestContext,
    rec: &FunctionRec,
    qualifier: Option<&str>,
) -> Result<Config, AwsError> {
    match qualifier {
        None | Some(LATEST) => Ok(rec.config.clone()),
        Some(q) => {
            let version = match q.parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    let alias = crate::versions::load_alias(l, ctx, &rec.name, q)?;
                    if alias.version == LATEST {
                        return Ok(rec.config.clone());
                    }
                    alias.version.parse().unwrap_or(0)
                }
            };
            crate::versions::load_version(l, ctx, &rec.name, version)
                .map_err(|_| function_missing(ctx, &rec.name, Some(q)))
        }
    }
}

pub(crate) fn code_location(l: &Lambda, ctx: &RequestContext, hex: &str) -> String {
    let expires = chrono::Utc::now().timestamp() + CODE_URL_SECONDS;
    let path = format!("/_basalt/lambda/code/{}/{hex}.zip", ctx.account_id);
    let sig = sign(l, &format!("{path}\n{expires}"));
    format!("{}{path}?Expires={expires}&Signature={sig}", ctx.endpoint)
}

/// The key code URLs are signed with: made once, shared by every node through the store.
fn url_key(l: &Lambda) -> Vec<u8> {
    l.url_key
        .get_or_init(|| {
            const KEY: &str = "code-url-key";
            if let Ok(Some(k)) = l.state.get("lambda.secrets", KEY) {
                return k;
            }
            let fresh = basalt_core::ids::secret(40).into_bytes();
            let _ = l.state.batch(&[
                WriteOp::Check {
                    table: "lambda.secrets".into(),
                    key: KEY.into(),
                    expected: None,
                },
                WriteOp::Put {
                    table: "lambda.secrets".into(),
                    key: KEY.into(),
                    value: fresh.clone(),
                },
            ]);
            l.state
                .get("lambda.secrets", KEY)
                .ok()
                .flatten()
                .unwrap_or(fresh)
        })
        .clone()
}

fn sign(l: &Lambda, text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&url_key(l)).expect("any key length");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) fn code_for_url(l: &Lambda, path: &str, query: &str) -> Option<bytes::Bytes> {
    let params: std::collections::HashMap<String, String> =
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    let expires: i64 = params.get("Expires")?.parse().ok()?;
    if expires < chrono::Utc::now().timestamp() {
        return None;
    }
    let want = sign(l, &format!("{path}\n{expires}"));
    if !constant_time_eq(want.as_bytes(), params.get("Signature")?.as_bytes()) {
        return None;
    }
    let rest = path.strip_prefix("/_basalt/lambda/code/")?;
    let (account, file) = rest.split_once('/')?;
    let hex = file.strip_suffix(".zip")?;
    l.blobs.get(&blob_key(account, hex)).ok().flatten()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn get(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let r = crate::function_ref(ctx, input)?;
    let (rec, _) = load(l, ctx, &r.name)?;
    let config = resolve_config(l, ctx, &rec, r.qualifier.as_deref())?;
    let mut out = json!({
        "Configuration": config_doc(ctx, &r.name, &config, false),
        "Code": {"RepositoryType": "S3", "Location": code_location(l, ctx, &config.code_hex)},
    });
    if !rec.tags.is_empty() {
        out["Tags"] = json!(rec.tags);
    }
    if let Some(c) = rec.reserved_concurrency {
        out["Concurrency"] = json!({"ReservedConcurrentExecutions": c});
    }
    Ok(Output::new(out))
}

pub(crate) fn get_configuration(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let r = crate::function_ref(ctx, input)?;
    let (rec, _) = load(l, ctx, &r.name)?;
    let config = resolve_config(l, ctx, &rec, r.qualifier.as_deref())?;
    Ok(Output::new(config_doc(ctx, &r.name, &config, false)))
}

pub(crate) fn list(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let scope = ctx.scope();
    let max = crate::max_items(input, 50, 10_000);
    let all_versions = str_of(input, "FunctionVersion") == Some("ALL");
    if let Some(v) = str_of(input, "FunctionVersion")
        && v != "ALL"
    {
        return Err(invalid_value(format!(
            "1 validation error detected: Value '{v}' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
        )));
    }
    let mut after = match str_of(input, "Marker") {
        Some(m) => Some(model::function_key(
            &scope,
            &String::from_utf8(B64.decode(m).map_err(|_| invalid_value("Invalid marker"))?)
                .map_err(|_| invalid_value("Invalid marker"))?,
        )),
        None => None,
    };
    let mut out = Vec::new();
    let mut next = None;
    'pages: loop {
        let page = l
            .state
            .scan(FUNCTIONS, &format!("{scope}/"), after.as_deref(), 100)?;
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(k, _)| k.clone());
        for (_, raw) in page {
            let Ok(rec) = serde_json::from_slice::<FunctionRec>(&raw) else {
                continue;
            };
            if out.len() >= max {
                next = Some(B64.encode(out_last_name(&out)));
                break 'pages;
            }
            out.push(config_doc(ctx, &rec.name, &rec.config, all_versions));
            if all_versions {
                for v in crate::versions::all_versions(l, ctx, &rec.name)? {
                    out.push(config_doc(ctx, &rec.name, &v, false));
                }
            }
        }
    }
    let mut resp = json!({ "Functions": out });
    if let Some(m) = next {
        resp["NextMarker"] = json!(m);
    }
    Ok(Output::new(resp))
}

fn out_last_name(out: &[Value]) -> String {
    out.last()
        .and_then(|v| v["FunctionName"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn check_revision(input: &Value, current: &str) -> Result<(), AwsError> {
    match str_of(input, "RevisionId") {
        Some(r) if r != current => Err(crate::revision_mismatch("GetFunction/GetAlias")),
        _ => Ok(()),
    }
}

pub(crate) fn update_code(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    check_revision(input, &rec.config.revision_id)?;
    let (zip, sha, hex) = take_code(l, ctx, input)?;
    if input.get("DryRun").and_then(Value::as_bool) == Some(true) {
        let mut c = rec.config.clone();
        c.code_sha256 = sha;
        c.code_size = zip.len() as u64;
        return Ok(Output::new(config_doc(ctx, &name, &c, false)));
    }
    rec.config.code_size = zip.len() as u64;
    rec.config.code_sha256 = sha;
    rec.config.code_hex = hex;
    if let Some(a) = input.get("Architectures").and_then(Value::as_array) {
        rec.config.architectures = a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
    }
    rec.config.last_modified = model::timestamp_now();
    rec.config.revision_id = model::revision();
    let mut extra = Vec::new();
    let mut shown = rec.config.clone();
    if input.get("Publish").and_then(Value::as_bool) == Some(true) {
        let (op, published) = crate::versions::publish_op(ctx, &mut rec, "")?;
        extra.push(op);
        shown = published;
    }
    save(l, ctx, &rec, Some(raw), extra)?;
    retire_latest(l, ctx, &name);
    Ok(Output::new(in_progress(
        config_doc(ctx, &name, &shown, false),
        false,
    )))
}

pub(crate) fn update_configuration(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    check_revision(input, &rec.config.revision_id)?;
    apply_config(&mut rec.config, input)?;
    apply_layers(l, ctx, &mut rec.config, input)?;
    rec.config.last_modified = model::timestamp_now();
    rec.config.revision_id = model::revision();
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    retire_latest(l, ctx, &name);
    Ok(Output::new(in_progress(
        config_doc(ctx, &name, &rec.config, false),
        false,
    )))
}

pub(crate) fn delete(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let r = crate::function_ref(ctx, input)?;
    let (rec, raw) = load(l, ctx, &r.name)?;
    let scope = ctx.scope();
    let arn = function_arn(&ctx.region, &ctx.account_id, &r.name);
    match r.qualifier.as_deref() {
        Some(LATEST) => {
            return Err(invalid_value(
                "$LATEST version cannot be deleted without deleting the function.",
            ));
        }
        Some(q) => {
            let n: u64 = q.parse().map_err(|_| {
                invalid_value(
                    "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias.",
                )
            })?;
            crate::versions::load_version(l, ctx, &r.name, n)
                .map_err(|_| function_missing(ctx, &r.name, Some(q)))?;
            if let Some(alias) = crate::versions::aliases_of(l, ctx, &r.name)?
                .into_iter()
                .find(|a| a.version == q)
            {
                return Err(conflict(format!(
                    "Unable to delete version because the following aliases reference it: [{}]",
                    alias.name
                )));
            }
            l.state
                .delete(model::VERSIONS, &model::version_key(&scope, &r.name, n))?;
            l.engine.retire(&format!("{arn}:{q}:"));
        }
        None => {
            let mut ops = vec![
                WriteOp::Check {
                    table: FUNCTIONS.into(),
                    key: model::function_key(&scope, &r.name),
                    expected: Some(raw),
                },
                WriteOp::Delete {
                    table: FUNCTIONS.into(),
                    key: model::function_key(&scope, &r.name),
                },
            ];
            ops.extend(crate::urls::index_deletes(&rec));
            let prefix = format!("{}/", model::function_key(&scope, &r.name));
            for table in [model::VERSIONS, model::ALIASES] {
                for (key, _) in l.state.scan(table, &prefix, None, 100_000)? {
                    ops.push(WriteOp::Delete {
                        table: table.into(),
                        key,
                    });
                }
            }
            match l.state.batch(&ops) {
                Ok(()) => {}
                Err(StoreError::Conflict) => return Err(function_missing(ctx, &rec.name, None)),
                Err(e) => return Err(e.into()),
            }
            l.engine.retire(&format!("{arn}:"));
        }
    }
    Ok(Output::empty())
}

fn reserved_elsewhere(l: &Lambda, ctx: &RequestContext, except: &str) -> Result<u32, AwsError> {
    let mut total = 0;
    for (_, raw) in l
        .state
        .scan(FUNCTIONS, &format!("{}/", ctx.scope()), None, 100_000)?
    {
        if let Ok(rec) = serde_json::from_slice::<FunctionRec>(&raw)
            && rec.name != except
        {
            total += rec.reserved_concurrency.unwrap_or(0);
        }
    }
    Ok(total)
}

pub(crate) fn put_concurrency(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    let n = input
        .get("ReservedConcurrentExecutions")
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32;
    let others = reserved_elsewhere(l, ctx, &name)?;
    if others + n > ACCOUNT_CONCURRENCY - UNRESERVED_MIN {
        return Err(invalid_value(format!(
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{UNRESERVED_MIN}]."
        )));
    }
    rec.reserved_concurrency = Some(n);
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::new(json!({"ReservedConcurrentExecutions": n})))
}

pub(crate) fn get_concurrency(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (rec, _) = load(l, ctx, &name)?;
    Ok(Output::new(match rec.reserved_concurrency {
        Some(n) => json!({"ReservedConcurrentExecutions": n}),
        None => json!({}),
    }))
}

pub(crate) fn delete_concurrency(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    rec.reserved_concurrency = None;
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::empty())
}

/// The function a tagging call's `Resource` ARN names.
fn tagged(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<(FunctionRec, Vec<u8>), AwsError> {
    let arn = str_of(input, "Resource").unwrap_or_default();
    let r = model::parse_ref(arn, None, &ctx.account_id)?;
    load(l, ctx, &r.name)
}

pub(crate) fn tag(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let (mut rec, raw) = tagged(l, ctx, input)?;
    if let Some(tags) = input.get("Tags").and_then(Value::as_object) {
        for (k, v) in tags {
            rec.tags
                .insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
    }
    if rec.tags.len() > 50 {
        return Err(invalid_value("A function can have at most 50 tags."));
    }
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::empty())
}

pub(crate) fn untag(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let (mut rec, raw) = tagged(l, ctx, input)?;
    for k in input
        .get("TagKeys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(k) = k.as_str() {
            rec.tags.remove(k);
        }
    }
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::empty())
}

pub(crate) fn list_tags(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let (rec, _) = tagged(l, ctx, input)?;
    Ok(Output::new(json!({ "Tags": rec.tags })))
}

pub(crate) fn account_settings(l: &Lambda, ctx: &RequestContext) -> Result<Output, AwsError> {
    let mut count = 0u64;
    let mut size = 0u64;
    for (_, raw) in l
        .state
        .scan(FUNCTIONS, &format!("{}/", ctx.scope()), None, 100_000)?
    {
        if let Ok(rec) = serde_json::from_slice::<FunctionRec>(&raw) {
            count += 1;
            size += rec.config.code_size;
        }
    }
    let reserved = reserved_elsewhere(l, ctx, "")?;
    Ok(Output::new(json!({
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800u64,
            "CodeSizeUnzipped": unpack::MAX_UNZIPPED,
            "CodeSizeZipped": MAX_ZIP,
            "ConcurrentExecutions": ACCOUNT_CONCURRENCY,
            "UnreservedConcurrentExecutions": ACCOUNT_CONCURRENCY - reserved,
        },
        "AccountUsage": {"TotalCodeSize": size, "FunctionCount": count},
    })))
}

fn qualifier_of(input: &Value) -> String {
    str_of(input, "Qualifier").unwrap_or(LATEST).to_owned()
}

pub(crate) fn put_event_invoke_config(
    l: &Lambda,
    ctx: &RequestContext,
    operation: &str,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    let q = qualifier_of(input);
    let retries = input.get("MaximumRetryAttempts").and_then(Value::as_u64);
    if retries.is_some_and(|r| r > 2) {
        return Err(invalid_value(
            "1 validation error detected: Value at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2",
        ));
    }
    let age = input
        .get("MaximumEventAgeInSeconds")
        .and_then(Value::as_u64);
    if age.is_some_and(|a| !(60..=21600).contains(&a)) {
        return Err(invalid_value(
            "1 validation error detected: Value at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600",
        ));
    }
    if let Some(d) = input.get("DestinationConfig") {
        for side in ["OnSuccess", "OnFailure"] {
            if let Some(arn) = d
                .get(side)
                .and_then(|s| s.get("Destination"))
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                crate::destinations::check_destination(arn)?;
            }
        }
    }
    let mut cfg: Map<String, Value> = if operation == "UpdateFunctionEventInvokeConfig" {
        rec.event_invoke
            .get(&q)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    } else {
        Map::new()
    };
    for k in [
        "MaximumRetryAttempts",
        "MaximumEventAgeInSeconds",
        "DestinationConfig",
    ] {
        if let Some(v) = input.get(k) {
            cfg.insert(k.into(), v.clone());
        }
    }
    let mut arn = function_arn(&ctx.region, &ctx.account_id, &name);
    arn = format!("{arn}:{q}");
    cfg.insert("FunctionArn".into(), json!(arn));
    cfg.insert("LastModified".into(), json!(chrono::Utc::now().timestamp()));
    rec.event_invoke.insert(q, Value::Object(cfg.clone()));
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::new(Value::Object(cfg)))
}

pub(crate) fn get_event_invoke_config(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (rec, _) = load(l, ctx, &name)?;
    let q = qualifier_of(input);
    rec.event_invoke
        .get(&q)
        .cloned()
        .map(Output::new)
        .ok_or_else(|| {
            not_found(format!(
                "The function {}:{q} doesn't have an EventInvokeConfig",
                function_arn(&ctx.region, &ctx.account_id, &name)
            ))
        })
}

pub(crate) fn delete_event_invoke_config(
    l: &Lambda,
    ctx: &RequestContext,
    input: &Value,
) -> Result<Output, AwsError> {
    let name = unqualified_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    let q = qualifier_of(input);
    if rec.event_invoke.remove(&q).is_none() {
        return Err(not_found(format!(
            "The function {}:{q} doesn't have an EventInvokeConfig",
            function_arn(&ctx.region, &ctx.account_id, &name)
        )));
    }
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::empty())
}
