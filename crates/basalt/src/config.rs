//! Settings: command-line flags, `BASALT_*` environment variables, and an optional TOML file,
//! in that order of precedence.

use anyhow::Context;
use basalt_gateway::AuthMode;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BASALT_HOST")]
    host: Option<String>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "BASALT_PORT")]
    port: Option<u16>,
    /// Where state and objects are kept (default: ./data, or the config file's).
    #[arg(long, env = "BASALT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory; nothing survives a restart.
    #[arg(long, env = "BASALT_EPHEMERAL")]
    ephemeral: bool,
    /// Keep state (metadata, queues, leases) in PostgreSQL, shared by every node given the
    /// same URL: `postgres://user[:password]@host[:port]/db` (default: SQLite in the data dir).
    #[arg(long = "state", env = "BASALT_STATE")]
    state: Option<String>,
    /// Keep blobs (object bodies, artifacts) in an S3-compatible store, shared by every node
    /// given the same URL: `s3://bucket/prefix?endpoint=http://host:port&region=R`, with the
    /// store's keys in BASALT_BLOBS_ACCESS_KEY_ID / BASALT_BLOBS_SECRET_ACCESS_KEY (default:
    /// files in the data dir).
    #[arg(long = "blobs", env = "BASALT_BLOBS")]
    blobs: Option<String>,
    /// This node's name in health reports and logs when several nodes share one state store
    /// (default: the host name and port).
    #[arg(long = "node-id", env = "BASALT_NODE_ID")]
    node_id: Option<String>,
    /// Default region when a request carries none.
    #[arg(long, env = "BASALT_REGION")]
    region: Option<String>,
    /// Account id of the default principal.
    #[arg(long, env = "BASALT_ACCOUNT_ID")]
    account_id: Option<String>,
    /// `off` accepts any credentials; `sigv4` verifies signatures against the configured keys.
    #[arg(long, env = "BASALT_AUTH", value_parser = ["off", "sigv4"])]
    auth: Option<String>,
    /// A key pair `ACCESS_KEY:SECRET[:ACCOUNT]` accepted with `--auth sigv4` (repeatable;
    /// default test:test); the account defaults to --account-id.
    #[arg(long = "access-key", env = "BASALT_ACCESS_KEYS", value_delimiter = ',')]
    access_keys: Vec<String>,
    /// Largest request body for non-S3 services, in bytes.
    #[arg(long, env = "BASALT_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Async worker threads.
    #[arg(long, env = "BASALT_THREADS")]
    threads: Option<usize>,
    /// Where local models live (default: the user cache dir; see `basalt models list`).
    #[arg(long, env = "BASALT_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// A GGUF chat model to serve instead of the default.
    #[arg(long, env = "BASALT_CHAT_MODEL")]
    chat_model: Option<PathBuf>,
    /// The GGUF chat model Bedrock Agents orchestrate with (default: the installed
    /// Qwen2.5-Coder-1.5B, else the chat model).
    #[arg(long, env = "BASALT_AGENT_MODEL")]
    agent_model: Option<PathBuf>,
    /// Threads for model inference (default: all cores).
    #[arg(long, env = "BASALT_LLM_THREADS")]
    llm_threads: Option<i32>,
    /// Requests decoded together by the chat model (continuous batching).
    #[arg(long, env = "BASALT_LLM_PARALLEL")]
    llm_parallel: Option<u32>,
    /// Context window per request, in tokens.
    #[arg(long, env = "BASALT_LLM_CONTEXT")]
    llm_context: Option<u32>,
    /// One key/value cache of N token cells shared by all requests of a chat model, instead
    /// of a private --llm-context cache per request: more requests fit the same memory (a
    /// request waits until its prompt and max tokens fit). Answers may then depend, in the
    /// last bits, on where free cells lie.
    #[arg(long, env = "BASALT_LLM_KV_CELLS")]
    llm_kv_cells: Option<u32>,
    /// Serve model ids matching PATTERN from an OpenAI-compatible server: `PATTERN=URL#MODEL`,
    /// e.g. `anthropic.claude-3-5-*=http://gpu:8000#Qwen/Qwen2.5-7B-Instruct` (repeatable).
    #[arg(
        long = "model-route",
        env = "BASALT_MODEL_ROUTES",
        value_delimiter = ','
    )]
    model_routes: Vec<String>,
    /// Unload a model after this many idle seconds (0: keep models loaded).
    #[arg(long, env = "BASALT_MODEL_IDLE_SECS")]
    model_idle_secs: Option<u64>,
    /// Requests that may wait for the chat model before ThrottlingException.
    #[arg(long, env = "BASALT_LLM_QUEUE")]
    llm_queue: Option<usize>,
    /// Arithmetic of the embedding model: `f32` (default; matches sentence-transformers to
    /// float rounding) or `bf16` (faster on CPUs with AVX-512 BF16, similarities within ~2e-3).
    #[arg(long, env = "BASALT_EMBED_PRECISION")]
    embed_precision: Option<String>,
    /// Highest CPU kernel level the model engines may use (`baseline`, `avx2`, `avx512`, `amx`,
    /// or a llama.cpp level name such as `icelake`); default: the best level this CPU proves
    /// it can run.
    #[arg(long, env = "BASALT_CPU_FEATURES")]
    cpu_features: Option<String>,
    /// Run the model engines inside the server process instead of supervised worker
    /// processes (saves a process; an engine crash then takes the server down).
    #[arg(long, env = "BASALT_IN_PROCESS_ENGINES")]
    in_process_engines: bool,
    /// Step Functions Local's mock configuration file (mocked service integrations).
    #[arg(long = "sfn-mock-config", env = "SFN_MOCK_CONFIG")]
    sfn_mock_config: Option<PathBuf>,
    /// TOML file with any of the settings above (snake_case keys).
    #[arg(long, env = "BASALT_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    host: Option<String>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    ephemeral: Option<bool>,
    state: Option<String>,
    blobs: Option<String>,
    node_id: Option<String>,
    region: Option<String>,
    account_id: Option<String>,
    auth: Option<String>,
    access_keys: Option<Vec<String>>,
    max_body_bytes: Option<usize>,
    threads: Option<usize>,
    model_dir: Option<PathBuf>,
    chat_model: Option<PathBuf>,
    agent_model: Option<PathBuf>,
    llm_threads: Option<i32>,
    llm_parallel: Option<u32>,
    llm_context: Option<u32>,
    llm_kv_cells: Option<u32>,
    llm_queue: Option<usize>,
    embed_precision: Option<String>,
    model_idle_secs: Option<u64>,
    model_routes: Option<Vec<String>>,
    cpu_features: Option<String>,
    in_process_engines: Option<bool>,
    sfn_mock_config: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Resolved {
    /// Step Functions Local's mock configuration file, read at startup.
    pub sfn_mock_config: Option<PathBuf>,
    pub host: String,
    pub port: u16,
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL URL for the state store (`None`: SQLite in `data_dir`).
    pub state_url: Option<String>,
    /// An `s3://` URL for the blob store (`None`: files in `data_dir`).
    pub blobs_url: Option<String>,
    /// This node's name (`None`: host name and port, decided at start).
    pub node_id: Option<String>,
    pub region: String,
    pub account_id: String,
    pub auth: AuthMode,
    pub keys: Vec<KeyPair>,
    pub max_body_bytes: usize,
    pub threads: usize,
    pub runtime: basalt_bedrock_runtime::RuntimeConfig,
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Resolved> {
        let file: FileConfig = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let ephemeral = self.ephemeral || file.ephemeral.unwrap_or(false);
        let state_url = self.state.or(file.state).filter(|s| !s.is_empty());
        let blobs_url = self.blobs.or(file.blobs).filter(|s| !s.is_empty());
        anyhow::ensure!(
            !(ephemeral && (state_url.is_some() || blobs_url.is_some())),
            "--ephemeral keeps everything in memory; it cannot be combined with --state or --blobs"
        );
        let auth = match self.auth.or(file.auth).as_deref() {
            None | Some("off") => AuthMode::Off,
            Some("sigv4") => AuthMode::SigV4,
            Some(other) => anyhow::bail!("unknown auth mode {other} (expected off or sigv4)"),
        };
        let raw_keys = if self.access_keys.is_empty() {
            file.access_keys.unwrap_or_default()
        } else {
            self.access_keys
        };
        let account_id = self
            .account_id
            .or(file.account_id)
            .unwrap_or_else(|| basalt_core::DEFAULT_ACCOUNT_ID.into());
        anyhow::ensure!(is_account_id(&account_id), "account id must be 12 digits");
        let mut keys = Vec::new();
        for k in raw_keys {
            let mut parts = k.splitn(3, ':');
            let (Some(ak), Some(secret)) = (parts.next(), parts.next()) else {
                anyhow::bail!("access key {k} must be ACCESS_KEY:SECRET[:ACCOUNT]");
            };
            let account = parts.next().unwrap_or(&account_id);
            anyhow::ensure!(
                is_account_id(account),
                "the account of access key {ak} must be 12 digits"
            );
            keys.push(KeyPair {
                access_key: ak.to_owned(),
                secret: secret.to_owned(),
                account_id: account.to_owned(),
            });
        }
        if keys.is_empty() {
            keys.push(KeyPair {
                access_key: "test".into(),
                secret: "test".into(),
                account_id: account_id.clone(),
            });
        }
        let mut engine = basalt_models::EngineConfig::default();
        if let Some(t) = self.llm_threads.or(file.llm_threads) {
            engine.threads = t.max(1);
        }
        if let Some(p) = self.llm_parallel.or(file.llm_parallel) {
            engine.parallel = p.clamp(1, 64);
        }
        if let Some(c) = self.llm_context.or(file.llm_context) {
            engine.ctx_per_seq = c.clamp(256, 131_072);
        }
        if let Some(c) = self.llm_kv_cells.or(file.llm_kv_cells) {
            engine.kv_cells = Some(c.clamp(engine.ctx_per_seq, 1 << 22));
        }
        if let Some(q) = self.llm_queue.or(file.llm_queue) {
            engine.max_queue = q.max(1);
        }
        let model_dir = self.model_dir.or(file.model_dir);
        if let Some(dir) = &model_dir {
            // `basalt models` and the runtime read the same variable.
            // SAFETY: set once at start-up, before any other thread exists.
            unsafe { std::env::set_var("BASALT_MODEL_DIR", dir) };
        }
        let embed = basalt_models::embed::EmbedConfig {
            threads: engine.threads as usize,
            precision: match self.embed_precision.or(file.embed_precision) {
                Some(p) => p.parse().map_err(|e: String| anyhow::anyhow!(e))?,
                None => Default::default(),
            },
        };
        let cpu_features = self.cpu_features.or(file.cpu_features);
        let mut worker_env = Vec::new();
        if let Some(cap) = &cpu_features {
            basalt_models::cpu::validate_cap(cap).map_err(|e| anyhow::anyhow!(e))?;
            worker_env.push(("BASALT_CPU_FEATURES".to_owned(), cap.clone()));
        }
        let in_process = self.in_process_engines || file.in_process_engines.unwrap_or(false);
        let worker_exe = if in_process {
            None
        } else {
            Some(
                std::env::current_exe()
                    .context("locating the basalt executable for model workers")?,
            )
        };
        let runtime = basalt_bedrock_runtime::RuntimeConfig {
            worker_exe,
            worker_env,
            model_dir: model_dir.unwrap_or_else(basalt_models::pull::model_dir),
            engine,
            embed,
            chat_model: self.chat_model.or(file.chat_model),
            agent_model: self.agent_model.or(file.agent_model),
            routes: {
                let specs = if self.model_routes.is_empty() {
                    file.model_routes.unwrap_or_default()
                } else {
                    self.model_routes
                };
                specs
                    .iter()
                    .map(|s| basalt_models::ModelRoute::parse(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!(e))?
            },
            idle_unload: self
                .model_idle_secs
                .or(file.model_idle_secs)
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs),
        };
        Ok(Resolved {
            sfn_mock_config: self
                .sfn_mock_config
                .or(file.sfn_mock_config)
                .filter(|p| !p.as_os_str().is_empty()),
            host: self
                .host
                .or(file.host)
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: self.port.or(file.port).unwrap_or(4566),
            data_dir: if ephemeral {
                None
            } else {
                Some(
                    self.data_dir
                        .or(file.data_dir)
                        .unwrap_or_else(|| PathBuf::from("data")),
                )
            },
            state_url,
            blobs_url,
            node_id: self.node_id.or(file.node_id).filter(|s| !s.is_empty()),
            region: self
                .region
                .or(file.region)
                .unwrap_or_else(|| basalt_core::DEFAULT_REGION.into()),
            account_id,
            auth,
            keys,
            max_body_bytes: self
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(64 * 1024 * 1024),
            threads: self.threads.or(file.threads).unwrap_or(2).max(1),
            runtime,
        })
    }
}

/// A key pair accepted with `--auth sigv4`, and the account whose root it signs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub access_key: String,
    pub secret: String,
    pub account_id: String,
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_models::embed::Precision;

    /// Resolves `args` with `toml` as the configuration file.
    fn with_file(toml: &str, args: ServeArgs) -> anyhow::Result<Resolved> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("basalt-config-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, toml).unwrap();
        let r = ServeArgs {
            config: Some(path.clone()),
            ..args
        }
        .resolve();
        let _ = std::fs::remove_file(path);
        r
    }

    #[test]
    fn defaults() {
        let r = ServeArgs::default().resolve().unwrap();
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 4566));
        assert_eq!(r.runtime.embed.precision, Precision::F32);
        assert_eq!(r.runtime.embed.threads, r.runtime.engine.threads as usize);
        assert_eq!(r.keys.len(), 1);
        assert_eq!(
            (r.keys[0].access_key.as_str(), r.keys[0].secret.as_str()),
            ("test", "test")
        );
        assert_eq!(r.keys[0].account_id, basalt_core::DEFAULT_ACCOUNT_ID);
    }

    #[test]
    fn file_settings_and_flags() {
        let toml = "port = 5000\nembed_precision = \"bf16\"\nllm_threads = 1\n";
        let r = with_file(toml, ServeArgs::default()).unwrap();
        assert_eq!(r.port, 5000);
        assert_eq!(r.runtime.embed.precision, Precision::Bf16);
        assert_eq!(r.runtime.embed.threads, 1);
        // A flag wins over the file.
        let flag = ServeArgs {
            embed_precision: Some("f32".into()),
            ..Default::default()
        };
        let r = with_file(toml, flag).unwrap();
        assert_eq!(r.runtime.embed.precision, Precision::F32);
    }

    #[test]
    fn state_url_from_flag_env_or_file() {
        assert_eq!(ServeArgs::default().resolve().unwrap().state_url, None);
        let r = with_file("state = \"postgres://u@h/db\"\n", ServeArgs::default()).unwrap();
        assert_eq!(r.state_url.as_deref(), Some("postgres://u@h/db"));
        let flag = ServeArgs {
            state: Some("postgres://u@other/db".into()),
            ..Default::default()
        };
        let r = with_file("state = \"postgres://u@h/db\"\n", flag).unwrap();
        assert_eq!(r.state_url.as_deref(), Some("postgres://u@other/db"));
        let both = ServeArgs {
            state: Some("postgres://u@h/db".into()),
            ephemeral: true,
            ..Default::default()
        };
        assert!(both.resolve().is_err());
    }

    #[test]
    fn bad_settings_are_errors() {
        let e = with_file("embed_precision = \"int4\"\n", ServeArgs::default()).unwrap_err();
        assert!(e.to_string().contains("expected f32 or bf16"), "{e}");
        assert!(with_file("no_such_setting = 1\n", ServeArgs::default()).is_err());
        assert!(with_file("account_id = \"12\"\n", ServeArgs::default()).is_err());
        assert!(with_file("auth = \"maybe\"\n", ServeArgs::default()).is_err());
    }
}
