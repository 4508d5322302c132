//! The models behind the Bedrock ids: loaded on first use, shared by every caller, and
//! unloaded after a configurable idle time (the next request loads them again).

use crate::catalog;
use basalt_core::AwsError;
use basalt_models::cpu;
use basalt_models::embed::{EmbedConfig, Kernel, Precision};
use basalt_models::remote::RemoteChat;
use basalt_models::worker::{EngineSpec, WorkerChat, WorkerEmbed, WorkerStatus};
use basalt_models::{
    ChatBackend, ChatModel, EmbedBackend, EmbeddingModel, EngineConfig, ModelRoute, pull,
};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub model_dir: PathBuf,
    pub engine: EngineConfig,
    pub embed: EmbedConfig,
    /// A GGUF to serve instead of the default chat model.
    pub chat_model: Option<PathBuf>,
    /// The GGUF agents orchestrate with, instead of the default agent model.
    pub agent_model: Option<PathBuf>,
    /// Unload a model unused for this long (`None`: keep models loaded).
    pub idle_unload: Option<Duration>,
    /// Model ids served by external OpenAI-compatible servers, first match wins.
    pub routes: Vec<ModelRoute>,
    /// The executable that runs engines in worker processes (`basalt __worker`); `None` runs
    /// them in this process, where a crashing engine takes the process down with it.
    pub worker_exe: Option<PathBuf>,
    /// Added to the workers' environment.
    pub worker_env: Vec<(String, String)>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            model_dir: pull::model_dir(),
            engine: EngineConfig::default(),
            embed: EmbedConfig::default(),
            chat_model: None,
            agent_model: None,
            idle_unload: None,
            routes: Vec::new(),
            worker_exe: None,
            worker_env: Vec::new(),
        }
    }
}

/// A model loaded on demand.
struct Slot<T> {
    model: Mutex<Option<Arc<T>>>,
    /// Milliseconds since `Runtime::epoch` of the last use.
    last_used: AtomicU64,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            model: Mutex::new(None),
            last_used: AtomicU64::new(0),
        }
    }

    async fn get<F, Fut>(&self, epoch: Instant, load: F) -> Result<Arc<T>, AwsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        self.last_used
            .store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        // Holding the lock while loading makes concurrent first requests wait for one load.
        let mut guard = self.model.lock().await;
        if let Some(m) = guard.as_ref() {
            return Ok(m.clone());
        }
        let loaded = Arc::new(load().await?);
        *guard = Some(loaded.clone());
        Ok(loaded)
    }

    /// Drops the model if idle for `max_idle`, nobody holds it and it serves nothing (`busy`);
    /// true if unloaded.
    fn unload_if_idle(
        &self,
        epoch: Instant,
        max_idle: Duration,
        busy: impl Fn(&T) -> bool,
    ) -> bool {
        let idle = epoch.elapsed().as_millis() as u64 - self.last_used.load(Ordering::Relaxed);
        if idle < max_idle.as_millis() as u64 {
            return false;
        }
        let Ok(mut guard) = self.model.try_lock() else {
            return false;
        };
        if guard
            .as_ref()
            .is_some_and(|m| Arc::strong_count(m) == 1 && !busy(m))
        {
            *guard = None;
            return true;
        }
        false
    }

    fn loaded(&self) -> bool {
        self.model.try_lock().map(|g| g.is_some()).unwrap_or(true)
    }

    /// The model if loaded, without waiting for a load in progress.
    fn peek(&self) -> Option<Arc<T>> {
        self.model.try_lock().ok().and_then(|g| g.clone())
    }

    fn loading(&self) -> bool {
        self.model.try_lock().is_err()
    }
}

/// An engine's entry in `/_basalt/health`.
fn engine_health(
    loading: bool,
    status: Option<WorkerStatus>,
    in_process: bool,
) -> serde_json::Value {
    match status {
        Some(s) => serde_json::to_value(s).unwrap_or_default(),
        None if loading => serde_json::json!({"state": "starting"}),
        None if in_process => serde_json::json!({"state": "in_process"}),
        None => serde_json::json!({"state": "not_loaded"}),
    }
}

/// Which local model a text request runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalChat {
    /// The chat model, for every Bedrock text model id.
    Default,
    /// The model agents orchestrate with (larger: it must plan calls).
    Agent,
}

impl LocalChat {
    /// The in-process-only Converse input member that asks for the agents' model. The
    /// gateway builds inputs from modeled members only, so no client can set it.
    pub const MEMBER: &'static str = "x-basalt-local-model";

    pub fn of_input(input: &serde_json::Value) -> LocalChat {
        match input.get(Self::MEMBER).and_then(serde_json::Value::as_str) {
            Some("agent") => LocalChat::Agent,
            _ => LocalChat::Default,
        }
    }
}

pub struct Runtime {
    pub config: RuntimeConfig,
    epoch: Instant,
    chat: Slot<ChatBackend>,
    /// The agents' model, when it is another file than the chat model.
    agent: Slot<ChatBackend>,
    embed: Slot<EmbedBackend>,
    /// The same embedding model in bf16, for guardrails (see `Runtime::judging_embedding`).
    judge: Slot<EmbedBackend>,
    judge_on_amx: std::sync::OnceLock<bool>,
    remotes: Vec<(ModelRoute, Arc<ChatBackend>)>,
}

fn not_installed(model_id: &str, path: &std::path::Path) -> AwsError {
    AwsError::new(
        429,
        "ModelNotReadyException",
        format!(
            "The local model for {model_id} is not installed ({}). Run `basalt models pull`.",
            path.display()
        ),
    )
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Self {
        let remotes = config
            .routes
            .iter()
            .map(|r| {
                (
                    r.clone(),
                    Arc::new(ChatBackend::Remote(RemoteChat::new(&r.url, &r.model))),
                )
            })
            .collect();
        Runtime {
            config,
            epoch: Instant::now(),
            chat: Slot::new(),
            agent: Slot::new(),
            embed: Slot::new(),
            judge: Slot::new(),
            judge_on_amx: std::sync::OnceLock::new(),
            remotes,
        }
    }

    pub fn chat_path(&self) -> PathBuf {
        self.config
            .chat_model
            .clone()
            .unwrap_or_else(|| self.config.model_dir.join(pull::DEFAULT_CHAT))
    }

    /// The model agents orchestrate with: the configured one, else the default agent model
    /// when it is installed, else the chat model.
    pub fn agent_path(&self) -> PathBuf {
        match &self.config.agent_model {
            Some(p) => p.clone(),
            None => {
                let p = self.config.model_dir.join(pull::AGENT_CHAT);
                if p.exists() { p } else { self.chat_path() }
            }
        }
    }

    /// Whether the chat model is loaded (it loads on the first request).
    pub fn chat_loaded(&self) -> bool {
        self.chat.loaded()
    }

    /// Unloads models idle for longer than the configured time; call it periodically.
    pub fn unload_idle(&self) -> usize {
        let Some(max_idle) = self.config.idle_unload else {
            return 0;
        };
        let mut n = 0;
        for (slot, what) in [(&self.chat, "chat"), (&self.agent, "agent")] {
            if slot.unload_if_idle(self.epoch, max_idle, |c| c.in_flight() > 0) {
                tracing::info!("{what} model unloaded after {max_idle:?} idle");
                n += 1;
            }
        }
        for (slot, what) in [
            (&self.embed, "embedding"),
            (&self.judge, "guardrail embedding"),
        ] {
            if slot.unload_if_idle(self.epoch, max_idle, |e| e.in_flight() > 0) {
                tracing::info!("{what} model unloaded after {max_idle:?} idle");
                n += 1;
            }
        }
        n
    }

    /// The chat model serving `model_id`.
    pub async fn chat_for(&self, model_id: &str) -> Result<Arc<ChatBackend>, AwsError> {
        self.local_chat(model_id, LocalChat::Default).await
    }

    /// The model serving `model_id` for `use_`: a remote route when one matches, else the
    /// local model of that use.
    pub async fn local_chat(
        &self,
        model_id: &str,
        use_: LocalChat,
    ) -> Result<Arc<ChatBackend>, AwsError> {
        debug_assert!(catalog::is_text_model(model_id));
        let base = basalt_chat::providers::base_model_id(model_id).unwrap_or(model_id);
        if let Some((_, remote)) = self
            .remotes
            .iter()
            .find(|(r, _)| r.matches(model_id) || r.matches(base))
        {
            return Ok(remote.clone());
        }
        let (slot, path) = match use_ {
            LocalChat::Agent if self.agent_path() != self.chat_path() => {
                (&self.agent, self.agent_path())
            }
            _ => (&self.chat, self.chat_path()),
        };
        slot.get(self.epoch, || async {
            if !path.exists() {
                return Err(not_installed(model_id, &path));
            }
            let config = self.config.engine.clone();
            if let Some(exe) = &self.config.worker_exe {
                let spec = EngineSpec::Chat { path, config };
                let w = WorkerChat::start(exe.clone(), spec, self.config.worker_env.clone())
                    .await
                    .map_err(|e| AwsError::new(424, "ModelErrorException", e))?;
                tracing::info!(model = %w.name, "chat model loaded in a worker process");
                return Ok(ChatBackend::Worker(w));
            }
            let loaded = tokio::task::spawn_blocking(move || ChatModel::load(&path, config))
                .await
                .map_err(|e| AwsError::internal(e.to_string()))?
                .map_err(|e| AwsError::new(424, "ModelErrorException", e.to_string()))?;
            tracing::info!(model = %loaded.name, "chat model loaded");
            Ok(ChatBackend::Local(loaded))
        })
        .await
    }

    /// The embedding model serving `model_id`.
    pub async fn embedding_for(&self, model_id: &str) -> Result<Arc<EmbedBackend>, AwsError> {
        self.embed
            .get(self.epoch, || {
                self.load_embedding(model_id, self.config.embed)
            })
            .await
    }

    /// The embedding model guardrails judge meaning with (`model_id` names it in errors):
    /// the same model in bf16 on AMX tiles where the CPU has them, else the shared one. A
    /// guarded request waits for its encoder pass, and on AMX a bf16 pass is about 1.5x
    /// faster, while a guardrail compares scores with thresholds, where bf16's error
    /// (similarities within about 2e-3) is far below what moves a verdict. AVX-512 BF16
    /// without AMX is not used here: on Intel it measured slower than f32 (vdpbf16ps issues
    /// at half the rate of an f32 FMA there). Embeddings returned to callers stay f32, as
    /// sentence-transformers computes them.
    pub async fn judging_embedding(&self, model_id: &str) -> Result<Arc<EmbedBackend>, AwsError> {
        if self.config.embed.precision == Precision::Bf16 || !self.judges_on_amx().await {
            return self.embedding_for(model_id).await;
        }
        let config = EmbedConfig {
            precision: Precision::Bf16,
            ..self.config.embed
        };
        self.judge
            .get(self.epoch, || self.load_embedding(model_id, config))
            .await
    }

    /// Whether a bf16 encoder would run on AMX, in this process and in the workers (whose
    /// `BASALT_CPU_FEATURES` cap may come from the command line only). Decided once, off the
    /// async threads: the first call may run the CPU probes, which fork.
    async fn judges_on_amx(&self) -> bool {
        if let Some(&known) = self.judge_on_amx.get() {
            return known;
        }
        let capped = self
            .config
            .worker_env
            .iter()
            .find(|(k, _)| k == "BASALT_CPU_FEATURES")
            .is_some_and(|(_, cap)| !cpu::cap_allows(cap, cpu::Feature::Amx));
        let amx = !capped
            && tokio::task::spawn_blocking(|| Kernel::select(Precision::Bf16) == Kernel::Amx)
                .await
                .unwrap_or(false);
        *self.judge_on_amx.get_or_init(|| amx)
    }

    async fn load_embedding(
        &self,
        model_id: &str,
        config: EmbedConfig,
    ) -> Result<EmbedBackend, AwsError> {
        let dir = self.config.model_dir.join(pull::DEFAULT_EMBEDDING);
        if !dir.join("model.safetensors").exists() {
            return Err(not_installed(model_id, &dir));
        }
        if let Some(exe) = &self.config.worker_exe {
            let spec = EngineSpec::Embed { dir, config };
            let w = WorkerEmbed::start(exe.clone(), spec, self.config.worker_env.clone())
                .await
                .map_err(|e| AwsError::new(424, "ModelErrorException", e))?;
            return Ok(EmbedBackend::Worker(w));
        }
        tokio::task::spawn_blocking(move || EmbeddingModel::load_with(&dir, config))
            .await
            .map_err(|e| AwsError::internal(e.to_string()))?
            .map(|m| EmbedBackend::Local(Arc::new(m)))
            .map_err(|e| AwsError::new(424, "ModelErrorException", e.to_string()))
    }

    /// The engines' state for `/_basalt/health`.
    pub fn health(&self) -> serde_json::Value {
        let in_process = self.config.worker_exe.is_none();
        let chat = self.chat.peek();
        let agent = self.agent.peek();
        let embed = self.embed.peek();
        let judge = self.judge.peek();
        serde_json::json!({
            "isolation": if in_process { "in_process" } else { "worker_process" },
            "chat": engine_health(self.chat.loading(), chat.and_then(|c| c.worker_status()), in_process && self.chat.loaded()),
            "agent_chat": engine_health(self.agent.loading(), agent.and_then(|c| c.worker_status()), in_process && self.agent.loaded()),
            "embeddings": engine_health(self.embed.loading(), embed.and_then(|e| e.worker_status()), in_process && self.embed.loaded()),
            "guardrail_embeddings": engine_health(self.judge.loading(), judge.and_then(|e| e.worker_status()), in_process && self.judge.loaded()),
        })
    }

    /// Prometheus lines about the engines' workers.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let statuses = [
            self.chat.peek().and_then(|c| c.worker_status()),
            self.agent
                .peek()
                .and_then(|c| c.worker_status())
                .map(|mut s| {
                    s.engine = "agent_chat";
                    s
                }),
            self.embed.peek().and_then(|e| e.worker_status()),
            self.judge
                .peek()
                .and_then(|e| e.worker_status())
                .map(|mut s| {
                    s.engine = "guardrail_embeddings";
                    s
                }),
        ];
        let _ = writeln!(out, "# TYPE basalt_engine_worker_up gauge");
        let _ = writeln!(out, "# TYPE basalt_engine_worker_crashes_total counter");
        let _ = writeln!(
            out,
            "# TYPE basalt_engine_worker_failed_requests_total counter"
        );
        for s in statuses.into_iter().flatten() {
            let e = s.engine;
            let up = (s.state == "running") as u8;
            let _ = writeln!(out, "basalt_engine_worker_up{{engine=\"{e}\"}} {up}");
            let _ = writeln!(
                out,
                "basalt_engine_worker_crashes_total{{engine=\"{e}\"}} {}",
                s.crashes
            );
            let _ = writeln!(
                out,
                "basalt_engine_worker_failed_requests_total{{engine=\"{e}\"}} {}",
                s.failed_calls
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_load_once_and_unload_when_idle_and_free() {
        let slot: Slot<String> = Slot::new();
        let epoch = Instant::now();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok("model".to_string())
        };
        let held = slot.get(epoch, load).await.unwrap();
        let again = slot
            .get(epoch, || async { Ok("other".to_string()) })
            .await
            .unwrap();
        assert_eq!(
            (held.as_str(), again.as_str(), loads.load(Ordering::SeqCst)),
            ("model", "model", 1)
        );
        // In use: never unloaded.
        assert!(!slot.unload_if_idle(epoch, Duration::ZERO, |_| false));
        drop((held, again));
        // Recently used: kept.
        assert!(!slot.unload_if_idle(epoch, Duration::from_secs(3600), |_| false));
        assert!(slot.unload_if_idle(epoch, Duration::ZERO, |_| false));
        assert!(!slot.loaded());
        let reloaded = slot
            .get(epoch, || async { Ok("reloaded".to_string()) })
            .await
            .unwrap();
        assert_eq!(reloaded.as_str(), "reloaded");
    }
}
