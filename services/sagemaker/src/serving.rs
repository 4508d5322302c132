//! The models this node serves, loaded on first use from an endpoint's record and its
//! artifacts in S3, by (account, region, endpoint, deployment, variant):
//!
//! * the built-in XGBoost image without an inference script: the model read from
//!   `xgboost-model` in `model.tar.gz` and scored in Rust ([`basalt_xgboost`]), answering as
//!   SageMaker's XGBoost container does (`text/csv`, `text/libsvm` and
//!   `application/x-recordio-protobuf` in, comma-separated predictions out);
//! * any image whose container has `SAGEMAKER_PROGRAM`: warm Python workers
//!   (`python/serve.py`), one per instance up to [`MAX_WORKERS`], each having run `model_fn`
//!   once, with the artifacts unpacked at `/opt/ml/model`.
//!
//! A model of several containers (an inference pipeline) passes each container's answer to
//! the next.

use crate::Core;
use crate::container::{self, Layout};
use crate::endpoints::Variant;
use crate::logs::LogSink;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const SERVE_PY: &str = include_str!("../python/serve.py");
/// Python workers per variant on one node, whatever the instance count.
pub const MAX_WORKERS: u32 = 2;
const STARTUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// SageMaker's limit on one invocation.
pub const INVOKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// (account, region, endpoint, generation, variant)
type Key = (String, String, String, u64, String);

fn key_of(owner: &Owner, generation: u64, variant: &Variant) -> Key {
    (
        owner.account.clone(),
        owner.region.clone(),
        owner.name.clone(),
        generation,
        variant.name.clone(),
    )
}

/// An answer from a container.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    /// The container's message when `status` is not 200.
    pub message: String,
}

impl Answer {
    fn ok(body: Vec<u8>, content_type: &str) -> Answer {
        Answer {
            status: 200,
            body,
            content_type: content_type.into(),
            message: String::new(),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Answer {
        Answer {
            status,
            body: Vec::new(),
            content_type: "text/plain".into(),
            message: message.into(),
        }
    }
}

pub(crate) enum Container {
    /// `batch`: answering a transform job (one prediction per line).
    Xgboost {
        model: basalt_xgboost::Model,
        batch: bool,
    },
    Script(ScriptPool),
}

/// Who a model is loaded for: an endpoint, or a transform job.
pub(crate) struct Owner {
    pub account: String,
    pub region: String,
    /// Unique among the owners of the account and region (`transform-job/` prefixes jobs).
    pub name: String,
    pub log_group: String,
    /// A transform job: the containers run with `SAGEMAKER_BATCH=true`.
    pub batch: bool,
}

/// A loaded variant: its containers, in order, or its multi-model container.
pub(crate) struct Served {
    pub containers: Vec<Container>,
    /// A multi-model endpoint's variant (`Mode: MultiModel`): `containers` is empty and each
    /// request names its model.
    pub multi: Option<MultiModel>,
    /// A serverless variant: unloaded after [`serverless_idle_ms`] without a request.
    serverless: bool,
    last_used_ms: std::sync::atomic::AtomicI64,
}

impl Served {
    fn touch(&self, now_ms: i64) {
        self.last_used_ms
            .store(now_ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Why a variant cannot answer now.
pub(crate) enum Unavailable {
    /// A serverless variant is starting (its cold start): ModelNotReadyException.
    NotReady,
    Failed(String),
}

/// How long a serverless variant stays loaded without a request (it scales to zero then,
/// and the next request pays a cold start); `BASALT_SAGEMAKER_SERVERLESS_IDLE_SECS`.
pub(crate) fn serverless_idle_ms() -> i64 {
    static MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MS.get_or_init(|| {
        basalt_store::ms_from_secs_env("BASALT_SAGEMAKER_SERVERLESS_IDLE_SECS", 300_000)
    })
}

#[derive(Default)]
pub(crate) struct Serving {
    loaded: parking_lot::Mutex<HashMap<Key, Arc<Served>>>,
    /// One load at a time per node: loads are rare, and two of the same variant would
    /// start twice the workers.
    loading: tokio::sync::Mutex<()>,
    /// Serverless variants in their cold start.
    cold: parking_lot::Mutex<std::collections::HashSet<Key>>,
}

impl Serving {
    /// The variant for an invocation. A serverless variant that scaled to zero starts on
    /// the request that finds it so (its ModelSetupTime is recorded); requests that come
    /// while it starts get [`Unavailable::NotReady`], as SageMaker answers them.
    pub async fn serve(
        &self,
        core: &Arc<Core>,
        owner: &Owner,
        generation: u64,
        variant: &Variant,
    ) -> Result<Arc<Served>, Unavailable> {
        let key = key_of(owner, generation, variant);
        if let Some(s) = self.loaded.lock().get(&key) {
            s.touch(core.now_ms());
            return Ok(s.clone());
        }
        if !variant.serverless() {
            return self
                .load(core, owner, generation, variant)
                .await
                .map_err(Unavailable::Failed);
        }
        if !self.cold.lock().insert(key.clone()) {
            return Err(Unavailable::NotReady);
        }
        // Removed however this ends, a caller that went away included.
        struct Warming<'a>(&'a parking_lot::Mutex<std::collections::HashSet<Key>>, Key);
        impl Drop for Warming<'_> {
            fn drop(&mut self) {
                self.0.lock().remove(&self.1);
            }
        }
        let _warming = Warming(&self.cold, key);
        let started = std::time::Instant::now();
        let loaded = self.load(core, owner, generation, variant).await;
        if loaded.is_ok() {
            core.invocations.record_setup(
                &owner.account,
                &owner.region,
                &owner.name,
                &variant.name,
                started.elapsed().as_secs_f64() * 1e6,
            );
        }
        loaded.map_err(Unavailable::Failed)
    }

    /// Unloads the serverless variants idle for `idle_ms` (their workers stop).
    pub fn scale_to_zero(&self, now_ms: i64, idle_ms: i64) {
        self.loaded.lock().retain(|_, s| {
            !s.serverless
                || now_ms - s.last_used_ms.load(std::sync::atomic::Ordering::Relaxed) < idle_ms
        });
    }

    /// The variant as this node serves it, loading it when needed.
    pub async fn load(
        &self,
        core: &Arc<Core>,
        owner: &Owner,
        generation: u64,
        variant: &Variant,
    ) -> Result<Arc<Served>, String> {
        let key = key_of(owner, generation, variant);
        if let Some(s) = self.loaded.lock().get(&key) {
            return Ok(s.clone());
        }
        let _one = self.loading.lock().await;
        if let Some(s) = self.loaded.lock().get(&key) {
            return Ok(s.clone());
        }
        let specs = variant.model.containers();
        let mut containers = Vec::new();
        let mut multi = None;
        match specs.as_slice() {
            [one] if is_multi_model(one) => {
                if owner.batch {
                    return Err(
                        "Batch transform does not support multi-model models (Mode MultiModel)."
                            .into(),
                    );
                }
                multi = Some(MultiModel::new(one.clone()));
            }
            _ => {
                for (i, spec) in specs.iter().enumerate() {
                    let artifacts = read_artifacts(core, &owner.account, spec).await?;
                    let slot = i.to_string();
                    containers.push(
                        load_container(core, owner, generation, variant, &slot, spec, artifacts)
                            .await?,
                    );
                }
            }
        }
        let served = Arc::new(Served {
            containers,
            multi,
            serverless: variant.serverless(),
            last_used_ms: std::sync::atomic::AtomicI64::new(core.now_ms()),
        });
        self.loaded.lock().insert(key, served.clone());
        Ok(served)
    }

    /// Drops every deployment of an endpoint on this node (their workers stop).
    pub fn forget(&self, account: &str, region: &str, name: &str) {
        self.loaded
            .lock()
            .retain(|(a, r, n, _, _), _| !(a == account && r == region && n == name));
    }

    /// Drops the deployments `keep` refuses.
    pub fn prune(&self, keep: impl Fn(&str, &str, &str, u64) -> bool) {
        let keys: Vec<Key> = self.loaded.lock().keys().cloned().collect();
        for k in keys {
            if !keep(&k.0, &k.1, &k.2, k.3) {
                self.loaded.lock().remove(&k);
            }
        }
    }
}

fn env_of(spec: &Value) -> serde_json::Map<String, Value> {
    spec["Environment"].as_object().cloned().unwrap_or_default()
}

fn is_xgboost_image(image: &str) -> bool {
    let repo = image.rsplit('/').next().unwrap_or(image);
    let repo = repo.split([':', '@']).next().unwrap_or(repo);
    repo == "sagemaker-xgboost" || repo == "xgboost"
}

async fn read_artifacts(
    core: &Core,
    account: &str,
    spec: &Value,
) -> Result<Option<Vec<u8>>, String> {
    let Some(url) = spec["ModelDataUrl"].as_str() else {
        return Ok(None);
    };
    let (bucket, key) =
        basalt_core::objects::parse_s3_uri(url).ok_or_else(|| format!("{url} is not an S3 URI"))?;
    core.objects
        .read(account, bucket, key)?
        .map(Some)
        .ok_or_else(|| {
            format!("Failed to download model data from {url}: the object does not exist.")
        })
}

/// Whether a container definition hosts several models (`Mode: MultiModel`).
pub(crate) fn is_multi_model(spec: &Value) -> bool {
    spec["Mode"].as_str() == Some("MultiModel")
}

/// How many models a multi-model variant keeps loaded on one node; the least recently used
/// is unloaded to make room (SageMaker unloads under memory pressure; a count is the local
/// equivalent). `BASALT_SAGEMAKER_MME_MAX_MODELS`.
fn mme_capacity() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("BASALT_SAGEMAKER_MME_MAX_MODELS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(16)
    })
}

/// Why a multi-model endpoint's model cannot answer.
pub(crate) enum TargetUnavailable {
    /// No object at `ModelDataUrl` + `TargetModel`.
    Missing {
        bucket: String,
        key: String,
    },
    Failed(String),
}

/// The models of a multi-model container: the object `TargetModel` names under the
/// container's `ModelDataUrl` prefix, loaded on first use and, unless
/// `MultiModelConfig.ModelCacheSetting` is `Disabled`, kept for the next request.
pub(crate) struct MultiModel {
    spec: Value,
    cache: bool,
    /// Loaded models and when each was last used (a tick of `clock`).
    models: parking_lot::Mutex<HashMap<String, (Arc<Container>, u64)>>,
    clock: std::sync::atomic::AtomicU64,
    /// One load at a time: two requests for a cold model load it once.
    loading: tokio::sync::Mutex<()>,
}

impl MultiModel {
    fn new(spec: Value) -> MultiModel {
        MultiModel {
            cache: spec["MultiModelConfig"]["ModelCacheSetting"].as_str() != Some("Disabled"),
            spec,
            models: Default::default(),
            clock: Default::default(),
            loading: Default::default(),
        }
    }

    fn cached(&self, target: &str) -> Option<Arc<Container>> {
        let tick = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut models = self.models.lock();
        let (c, used) = models.get_mut(target)?;
        *used = tick;
        Some(c.clone())
    }

    /// How many models are loaded now.
    pub fn loaded(&self) -> usize {
        self.models.lock().len()
    }

    /// The container serving `target`, and whether it was already loaded.
    pub async fn container(
        &self,
        core: &Arc<Core>,
        owner: &Owner,
        generation: u64,
        variant: &Variant,
        target: &str,
    ) -> Result<(Arc<Container>, bool), TargetUnavailable> {
        if let Some(c) = self.cached(target) {
            return Ok((c, true));
        }
        let _one = self.loading.lock().await;
        if let Some(c) = self.cached(target) {
            return Ok((c, true));
        }
        let prefix = self.spec["ModelDataUrl"].as_str().unwrap_or_default();
        let (bucket, dir) = basalt_core::objects::parse_s3_uri(prefix)
            .ok_or_else(|| TargetUnavailable::Failed(format!("{prefix} is not an S3 URI")))?;
        let key = if dir.is_empty() || dir.ends_with('/') {
            format!("{dir}{target}")
        } else {
            format!("{dir}/{target}")
        };
        let data = core
            .objects
            .read(&owner.account, bucket, &key)
            .map_err(TargetUnavailable::Failed)?
            .ok_or_else(|| TargetUnavailable::Missing {
                bucket: bucket.to_owned(),
                key: key.clone(),
            })?;
        let mut spec = self.spec.clone();
        spec["ModelDataUrl"] = format!("s3://{bucket}/{key}").into();
        // A directory of its own per model (script models unpack there), named for the model
        // but safe whatever the name holds.
        // Every load in a directory of its own, removed with the model: an evicted or uncached
        // model may still be answering a request when the same model loads again.
        static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let slot = format!(
            "mm-{}-{}",
            target
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .take(48)
                .collect::<String>(),
            LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut container =
            load_container(core, owner, generation, variant, &slot, &spec, Some(data))
                .await
                .map_err(TargetUnavailable::Failed)?;
        if let Container::Script(pool) = &mut container {
            pool.own_dir = true;
        }
        let container = Arc::new(container);
        if self.cache {
            let tick = self
                .clock
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut models = self.models.lock();
            while models.len() >= mme_capacity() {
                let Some(oldest) = models
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                models.remove(&oldest);
            }
            models.insert(target.to_owned(), (container.clone(), tick));
        }
        Ok((container, false))
    }
}

/// One container of a variant, from its definition and its artifacts (`model.tar.gz`);
/// `slot` names its working directory among the variant's.
async fn load_container(
    core: &Arc<Core>,
    owner: &Owner,
    generation: u64,
    variant: &Variant,
    slot: &str,
    spec: &Value,
    artifacts: Option<Vec<u8>>,
) -> Result<Container, String> {
    let image = spec["Image"].as_str().unwrap_or_default();
    let mut env = env_of(spec);
    if owner.batch {
        env.insert("SAGEMAKER_BATCH".into(), "true".into());
    }
    if env.contains_key("SAGEMAKER_PROGRAM") {
        let root = core
            .config
            .work_dir
            .join("models")
            .join(&owner.account)
            .join(&owner.region)
            .join(&owner.name)
            .join(format!("{generation}-{}-{slot}", variant.name));
        let _ = std::fs::remove_dir_all(&root);
        let layout = Layout::new(root);
        let model_dir = layout.host("model");
        std::fs::create_dir_all(&model_dir).map_err(|e| e.to_string())?;
        if let Some(data) = &artifacts {
            container::untar_gz(data, &model_dir).map_err(|e| format!("model.tar.gz: {e}"))?;
        }
        let mut submit = env
            .get("SAGEMAKER_SUBMIT_DIRECTORY")
            .and_then(Value::as_str)
            .unwrap_or("/opt/ml/model/code")
            .to_owned();
        if submit.starts_with("s3://") {
            let (bucket, key) = basalt_core::objects::parse_s3_uri(&submit)
                .ok_or("SAGEMAKER_SUBMIT_DIRECTORY is not an S3 URI")?;
            let data = core
                .objects
                .read(&owner.account, bucket, key)?
                .ok_or_else(|| format!("{submit} does not exist"))?;
            container::untar_gz(&data, &layout.host("code"))
                .map_err(|e| format!("{submit}: {e}"))?;
            submit = layout.seen("code");
        } else if let Some(rel) = submit.strip_prefix("/opt/ml/") {
            submit = layout.seen(rel);
        }
        std::fs::write(layout.root.join("serve.py"), SERVE_PY).map_err(|e| e.to_string())?;
        let workers = if variant.serverless() {
            1
        } else {
            variant.instances().min(MAX_WORKERS)
        };
        let pool = ScriptPool::start(core, owner, variant, layout, env, submit, workers).await?;
        return Ok(Container::Script(pool));
    }
    if is_xgboost_image(image) {
        let data = artifacts.ok_or(
            "The XGBoost container needs ModelDataUrl (a model.tar.gz holding xgboost-model).",
        )?;
        let file = model_file(&data)?;
        let model = basalt_xgboost::Model::from_json(&file)
            .map_err(|e| format!("Unable to load model: {e}"))?;
        return Ok(Container::Xgboost {
            model,
            batch: owner.batch,
        });
    }
    Err(format!(
        "Basalt serves the built-in XGBoost image natively and models with an inference script (the SAGEMAKER_PROGRAM environment variable); the image {image} has neither, and Basalt runs no containers."
    ))
}

/// The model file of an XGBoost `model.tar.gz`: `xgboost-model`, or its only file.
fn model_file(data: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let mut files = Vec::new();
    for entry in archive
        .entries()
        .map_err(|e| format!("model.tar.gz: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("model.tar.gz: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("model.tar.gz: {e}"))?;
        files.push((name.trim_start_matches("./").to_owned(), bytes));
    }
    if let Some((_, b)) = files.iter().find(|(n, _)| n == "xgboost-model") {
        return Ok(b.clone());
    }
    match files.len() {
        1 => Ok(files.remove(0).1),
        0 => Err("model.tar.gz holds no model file".into()),
        _ => Err("model.tar.gz holds several files and none is named xgboost-model".into()),
    }
}

impl Container {
    pub async fn invoke(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        accept: Option<&str>,
    ) -> Answer {
        match self {
            Container::Xgboost { model, batch } => {
                xgboost_answer(model, *batch, body, content_type)
            }
            Container::Script(pool) => pool.invoke(body, content_type, accept).await,
        }
    }
}

/// What SageMaker's XGBoost container answers (without selectable inference output).
fn xgboost_answer(
    model: &basalt_xgboost::Model,
    batch: bool,
    body: &[u8],
    content_type: Option<&str>,
) -> Answer {
    if body.is_empty() {
        return Answer {
            status: 204,
            body: Vec::new(),
            content_type: "text/html; charset=utf-8".into(),
            message: String::new(),
        };
    }
    let kind = content_type
        .unwrap_or("text/csv")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    let text = String::from_utf8_lossy(body);
    let rows = match kind.as_str() {
        "text/csv" => basalt_xgboost::input::csv(text.trim()).map_err(|e| {
            format!("Loading csv data failed with Exception, please ensure data is in csv format:\n <class 'ValueError'>\n {e}")
        }),
        "text/libsvm" | "text/x-libsvm" => basalt_xgboost::input::libsvm(text.trim()).map_err(|e| {
            format!("Loading libsvm data failed with Exception, please ensure data is in libsvm format:\n <class 'ValueError'>\n {e}")
        }),
        "application/x-recordio-protobuf" => basalt_xgboost::input::recordio_protobuf(body, if model.features() > 0 { model.features() + 1 } else { 1_000_000 }).map_err(|e| {
            format!("Loading recordio-protobuf data failed with Exception, please ensure data is in recordio-protobuf format: <class 'ValueError'> {e}")
        }),
        _ => Err(format!(
            "Content-type {} not supported. Supported content-type is text/csv, text/libsvm, application/x-recordio-protobuf",
            content_type.unwrap_or_default()
        )),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(message) => return Answer::error(415, message),
    };
    if let Some(width) = rows.iter().map(Vec::len).max()
        && model.features() > 0
        && width > model.features() + 1
    {
        return Answer::error(
            400,
            format!(
                "Unable to evaluate payload provided: Feature size of {kind} inference data {width} is not consistent with feature size of trained model {}.",
                model.features()
            ),
        );
    }
    let out: Vec<String> = model
        .predict(&rows)
        .into_iter()
        .map(|p| {
            if p.len() == 1 {
                basalt_xgboost::input::python_float(f64::from(p[0]))
            } else {
                let items: Vec<String> = p
                    .iter()
                    .map(|x| basalt_xgboost::input::python_float(f64::from(*x)))
                    .collect();
                format!("[{}]", items.join(", "))
            }
        })
        .collect();
    let text = if batch {
        out.join("\n") + "\n"
    } else {
        out.join(",")
    };
    Answer::ok(text.into_bytes(), "text/csv; charset=utf-8")
}

/// Warm Python workers of one container.
pub(crate) struct ScriptPool {
    workers: Vec<tokio::sync::Mutex<Option<Worker>>>,
    next: std::sync::atomic::AtomicUsize,
    start: StartSpec,
    /// The pool's directory is its alone (a multi-model endpoint's model): removed with it.
    own_dir: bool,
}

impl Drop for ScriptPool {
    fn drop(&mut self) {
        if self.own_dir {
            // The workers die with their handles (kill on drop); their files go with them.
            let _ = std::fs::remove_dir_all(&self.start.layout.root);
        }
    }
}

/// How to start (or restart) a worker.
struct StartSpec {
    core: Arc<Core>,
    layout: Layout,
    env: Vec<(String, String)>,
    account: String,
    region: String,
    log_group: String,
    variant: String,
}

struct Worker {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ScriptPool {
    async fn start(
        core: &Arc<Core>,
        owner: &Owner,
        variant: &Variant,
        layout: Layout,
        env: serde_json::Map<String, Value>,
        submit: String,
        workers: u32,
    ) -> Result<ScriptPool, String> {
        let mut vars: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
        vars.retain(|(k, _)| k != "SAGEMAKER_SUBMIT_DIRECTORY");
        vars.extend([
            ("SAGEMAKER_SUBMIT_DIRECTORY".into(), submit),
            ("SM_MODEL_DIR".into(), layout.seen("model")),
            ("AWS_REGION".into(), owner.region.clone()),
            ("AWS_DEFAULT_REGION".into(), owner.region.clone()),
        ]);
        let start = StartSpec {
            core: core.clone(),
            layout,
            env: vars,
            account: owner.account.clone(),
            region: owner.region.clone(),
            log_group: owner.log_group.clone(),
            variant: variant.name.clone(),
        };
        let mut list = Vec::new();
        for i in 0..workers {
            list.push(tokio::sync::Mutex::new(Some(start.spawn(i).await?)));
        }
        Ok(ScriptPool {
            workers: list,
            next: Default::default(),
            start,
            own_dir: false,
        })
    }

    async fn invoke(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        accept: Option<&str>,
    ) -> Answer {
        // A free worker, else the next in turn.
        let mut slot = None;
        for w in &self.workers {
            if let Ok(guard) = w.try_lock() {
                slot = Some(guard);
                break;
            }
        }
        let (mut guard, index) = match slot {
            Some(g) => (g, 0),
            None => {
                let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    % self.workers.len();
                (self.workers[i].lock().await, i)
            }
        };
        if guard.is_none() {
            match self.start.spawn(index as u32).await {
                Ok(w) => *guard = Some(w),
                Err(e) => return Answer::error(500, e),
            }
        }
        let worker = guard.as_mut().expect("started above");
        let request = json!({
            "body": base64::engine::general_purpose::STANDARD.encode(body),
            "content_type": content_type, "accept": accept,
        });
        let exchange = async {
            worker
                .stdin
                .write_all(format!("{request}\n").as_bytes())
                .await?;
            worker.stdin.flush().await?;
            worker.stdout.next_line().await
        };
        match tokio::time::timeout(INVOKE_TIMEOUT, exchange).await {
            Ok(Ok(Some(line))) => {
                let reply: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let status = reply["status"].as_u64().unwrap_or(500) as u16;
                if status == 200 {
                    let body = base64::engine::general_purpose::STANDARD
                        .decode(reply["body"].as_str().unwrap_or_default())
                        .unwrap_or_default();
                    Answer::ok(
                        body,
                        reply["content_type"].as_str().unwrap_or("application/json"),
                    )
                } else {
                    Answer::error(
                        status,
                        reply["error"].as_str().unwrap_or("the model worker failed"),
                    )
                }
            }
            Ok(_) => {
                // The worker died: the next request starts a new one.
                if let Some(mut w) = guard.take() {
                    container::kill_group(&mut w.child, std::time::Duration::from_millis(100))
                        .await;
                }
                Answer::error(500, "The model worker exited; see the endpoint's logs.")
            }
            Err(_) => {
                if let Some(mut w) = guard.take() {
                    container::kill_group(&mut w.child, std::time::Duration::from_millis(100))
                        .await;
                }
                Answer::error(500, "The model did not answer within 60 seconds.")
            }
        }
    }
}

impl StartSpec {
    async fn spawn(&self, index: u32) -> Result<Worker, String> {
        let environments = &self.core.config.environments;
        let python = environments.python()?;
        let mut read = environments.read_paths();
        read.push(self.layout.root.clone());
        let launch = container::Launch {
            layout: &self.layout,
            program: python,
            args: vec![self.layout.inside.join("serve.py").display().to_string()],
            cwd: "model",
            env: self.env.clone(),
            read,
        };
        // `serve.py` sits at the layout's root, beside `ml/`.
        let mut child = launch
            .spawn(true)
            .map_err(|e| format!("could not start the model worker: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        if let Some(stderr) = child.stderr.take() {
            let stream = format!("{}/i-{:016x}-{index}", self.variant, std::process::id());
            let mut sink = LogSink::new(
                self.core.clone(),
                &self.account,
                &self.region,
                &self.log_group,
                stream,
            );
            let state = self.core.state.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tokio::select! {
                        line = lines.next_line() => match line {
                            Ok(Some(l)) => sink.push((state.now_ms(), l)),
                            _ => break,
                        },
                        _ = tick.tick() => sink.flush().await,
                    }
                }
                sink.flush().await;
            });
        }
        let first = tokio::time::timeout(STARTUP_TIMEOUT, stdout.next_line()).await;
        let ready: Value = match first {
            Ok(Ok(Some(line))) => serde_json::from_str(&line).unwrap_or(Value::Null),
            Ok(_) => Value::Null,
            Err(_) => json!({"error": "the model worker did not start within 300 seconds"}),
        };
        if ready["ready"].as_bool() != Some(true) {
            container::kill_group(&mut child, std::time::Duration::from_millis(100)).await;
            return Err(format!(
                "the inference script failed to load: {}",
                ready["error"]
                    .as_str()
                    .unwrap_or("the worker exited; see the endpoint's logs")
            ));
        }
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }
}
