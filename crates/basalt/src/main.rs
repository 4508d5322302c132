//! `basalt`: the AI-native AWS stack on one machine.

mod config;
mod kb;
mod lambda;
mod node;
mod openai;
mod sns;

use anyhow::Context;
use basalt_core::ServiceRegistry;
use basalt_gateway::{AuthMode, Gateway, GatewayConfig, Principals, RawHandler, StaticPrincipals};
use clap::{Parser, Subcommand};
use config::ServeArgs;
use futures::FutureExt;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "basalt",
    version,
    about = "The AI-native AWS stack on one machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every AWS API on one port.
    Serve(Box<ServeArgs>),
    /// Fetch or list the local models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Copy a data directory's state (SQLite) into PostgreSQL, offline; safe to run again.
    Migrate {
        /// The data directory whose `state.sqlite3` is copied.
        #[arg(long)]
        from: std::path::PathBuf,
        /// The target, `postgres://user@host:port/db`.
        #[arg(long)]
        to: String,
    },
    /// Install or list the Lambda runtimes (Python environments with awslambdaric and boto3).
    Runtimes {
        #[command(subcommand)]
        command: RuntimesCommand,
    },
    /// A model engine's worker process (started by `serve`; not for direct use).
    #[command(name = "__worker", hide = true)]
    Worker { spec: String },
}

#[derive(Subcommand)]
enum RuntimesCommand {
    /// Install a Python environment for every Python 3.9 to 3.13 on PATH (once; offline after).
    Pull,
    /// Say which runtimes are installed.
    List,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Fetch the default models into the model directory (verified by SHA-256).
    Pull {
        /// Copy from a local folder (holding the GGUF file and model folders) instead.
        #[arg(long)]
        from: Option<std::path::PathBuf>,
        /// Only this model (by name); default: all defaults.
        name: Option<String>,
    },
    /// List the default models and whether they are installed.
    List,
}

fn models(command: ModelsCommand) -> anyhow::Result<()> {
    use basalt_models::pull;
    let dir = pull::model_dir();
    match command {
        ModelsCommand::Pull { from, name } => {
            for spec in pull::DEFAULTS {
                if name.as_deref().is_some_and(|n| n != spec.name) {
                    continue;
                }
                pull::pull(spec, &dir, from.as_deref())
                    .with_context(|| format!("pulling {}", spec.name))?;
            }
        }
        ModelsCommand::List => {
            println!("model directory: {} (BASALT_MODEL_DIR)", dir.display());
            // With the chat model installed, the level is proven as a worker proves it.
            let chat = dir.join(pull::DEFAULT_CHAT);
            let threads = basalt_models::EngineConfig::default().threads;
            let level = chat
                .exists()
                .then(|| basalt_models::level::choose(&chat, threads));
            match level {
                Some(Ok(l)) => {
                    println!("{}", l.describe());
                    if let Some(p) = l.level.and_then(basalt_models::cpu::backend_file) {
                        println!("llama.cpp CPU module: {}", p.display());
                    }
                }
                Some(Err(e)) => println!("llama.cpp CPU kernels: none usable: {e}"),
                None => println!("{}", basalt_models::cpu::selection().describe()),
            }
            for spec in pull::DEFAULTS {
                let state = if pull::is_installed(spec, &dir) {
                    "installed"
                } else {
                    "missing"
                };
                println!(
                    "{:<32} {:>9} {:>8.1} MiB  {}",
                    spec.name,
                    state,
                    spec.bytes as f64 / 1048576.0,
                    spec.role
                );
            }
        }
    }
    Ok(())
}

fn migrate(from: &std::path::Path, to: &str) -> anyhow::Result<()> {
    let db = from.join("state.sqlite3");
    anyhow::ensure!(db.is_file(), "{} has no state.sqlite3", from.display());
    let source = basalt_store::SqliteState::open(&db)
        .with_context(|| format!("opening {}", db.display()))?;
    let target = basalt_store::PgState::open(to).context("opening the target")?;
    let started = std::time::Instant::now();
    let copied = basalt_store::migrate::copy_state(&source, &target).context("copying")?;
    println!(
        "copied {} records ({:.1} MiB) and {} work items from {} to {} in {:.1}s; blobs stay in {}/blobs",
        copied.records,
        copied.bytes as f64 / 1048576.0,
        copied.work_items,
        db.display(),
        basalt_store::redact_url(to),
        started.elapsed().as_secs_f64(),
        from.display()
    );
    Ok(())
}

/// S3 through s3s, behind the gateway's raw-handler interface.
struct S3Raw(Arc<basalt_s3::S3Handler>);

impl RawHandler for S3Raw {
    fn handle(
        &self,
        req: http::Request<basalt_gateway::RequestBody>,
    ) -> BoxFuture<'static, http::Response<basalt_gateway::Body>> {
        let h = self.0.clone();
        async move {
            let resp = h.handle_body(req).await;
            resp.map(|b| {
                b.map_err(|e| -> basalt_gateway::body_error::BoxError { e })
                    .boxed_unsync()
            })
        }
        .boxed()
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args.resolve()?),
        Command::Models { command } => models(command),
        Command::Migrate { from, to } => migrate(&from, &to),
        Command::Runtimes { command } => lambda::runtimes(command),
        Command::Worker { spec } => {
            init_logging();
            std::process::exit(basalt_models::worker::host::run(&spec))
        }
    }
}

/// Logs to stderr, filtered by `BASALT_LOG` (default `warn`); workers log the same way.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BASALT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// SIGTERM (container and service managers stop with it): shut down as on Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        s.recv().await;
        return;
    }
    std::future::pending::<()>().await
}

fn serve(cfg: config::Resolved) -> anyhow::Result<()> {
    init_logging();
    // Two worker threads suit the small machines Basalt targets; more are spawned on demand
    // for blocking work (storage, models).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let store = match &cfg.data_dir {
            // An unreachable or unsupported database or blob store refuses the start with
            // one line.
            Some(dir) if cfg.state_url.is_some() || cfg.blobs_url.is_some() => {
                basalt_store::Store::open_with(
                    dir,
                    cfg.state_url.as_deref(),
                    cfg.blobs_url.as_deref(),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?
            }
            Some(dir) => basalt_store::Store::open(dir)
                .with_context(|| format!("opening data dir {}", dir.display()))?,
            None => basalt_store::Store::ephemeral(),
        };
        let bus = basalt_core::events::EventBus::default();
        let session_keys = basalt_sts::SessionKeys::new(store.state.clone());
        let principals = Arc::new(StaticPrincipals::new(Some(Box::new(
            basalt_sts::SessionPrincipals(session_keys.clone()),
        ))));
        for k in &cfg.keys {
            principals.add_root_key(&k.access_key, &k.secret, &k.account_id);
        }
        let mut registry = ServiceRegistry::default();
        registry.register(Arc::new(basalt_sts::Sts::new(session_keys)));
        let runtime = Arc::new(basalt_bedrock_runtime::Runtime::new(cfg.runtime.clone()));
        if runtime.config.idle_unload.is_some() {
            let runtime = runtime.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
                loop {
                    tick.tick().await;
                    runtime.unload_idle();
                }
            });
        }
        let accounting = Arc::new(basalt_bedrock_runtime::accounting::Accounting::new(
            store.state.clone(),
        ));
        let guardrails = basalt_bedrock_runtime::guardrails::Guardrails::new(store.state.clone());
        let bedrock_runtime = basalt_bedrock_runtime::BedrockRuntime::new(
            runtime.clone(),
            accounting.clone(),
            guardrails.clone(),
            Arc::new(basalt_bedrock_runtime::prompt_cache::PromptCache::new(
                store.state.clone(),
            )),
        );
        registry.register(Arc::new(bedrock_runtime.clone()));
        // S3 as Basalt's own services read and write it (Lambda code, knowledge-base
        // documents, batch inference records), without the HTTP layer or authentication.
        let in_process_s3 = || {
            basalt_s3::BasaltS3::new(
                store.clone(),
                bus.clone(),
                basalt_s3::S3Config {
                    account_id: cfg.account_id.clone(),
                    region: cfg.region.clone(),
                    auth: None,
                    base_domain: None,
                    accounts: Vec::new(),
                },
            )
        };
        let batch = basalt_bedrock::batch::Batch::new(
            store.state.clone(),
            Arc::new(kb::S3Objects(in_process_s3())),
        );
        registry.register(Arc::new(
            basalt_bedrock::Bedrock::new(guardrails).with_batch(batch.clone()),
        ));
        let endpoint = format!(
            "http://{}:{}",
            if cfg.host == "0.0.0.0" {
                "127.0.0.1"
            } else {
                &cfg.host
            },
            listener.local_addr()?.port()
        );
        let logs = basalt_logs::Logs::new(store.state.clone());
        registry.register(logs.clone());
        let cloudwatch = basalt_cloudwatch::CloudWatch::new(store.state.clone());
        registry.register(cloudwatch.clone());
        let sqs = basalt_sqs::Sqs::new(store.state.clone());
        registry.register(sqs.clone());
        let sns = basalt_sns::Sns::new(store.state.clone(), basalt_sns::SnsConfig::new(&endpoint));
        registry.register(sns.clone());
        let events = basalt_events::Events::new(store.state.clone());
        registry.register(events.clone());
        let scheduler = basalt_scheduler::Scheduler::new(store.state.clone());
        registry.register(scheduler.clone());
        let dynamodb = basalt_dynamodb::DynamoDb::new(store.state.clone());
        registry.register(dynamodb.clone());
        registry.register(basalt_dynamodb::DynamoDbStreams::new(dynamodb.clone()));
        let stepfunctions = basalt_stepfunctions::StepFunctions::new(store.state.clone());
        // As Step Functions Local reads it; a bad file refuses to start rather than
        // running tests against mocks that silently do not apply.
        if let Some(path) = &cfg.sfn_mock_config {
            let mocks = basalt_stepfunctions::MockConfig::load(path)
                .map_err(|e| anyhow::anyhow!("SFN_MOCK_CONFIG: {e}"))?;
            stepfunctions.set_mock_config(mocks);
        }
        stepfunctions.set_objects(Arc::new(kb::S3Objects(in_process_s3())));
        stepfunctions.set_connections(Arc::new(basalt_events::EventsConnections(events.clone())));
        registry.register(stepfunctions.clone());
        let lambda = lambda::build(&cfg, &store, logs.clone(), in_process_s3(), &endpoint)?;
        registry.register(lambda.clone());
        let knowledge_bases = basalt_bedrock_agent::KnowledgeBases::new(
            store.state.clone(),
            Arc::new(kb::LocalEmbedder::new(runtime.clone(), accounting.clone())),
            Arc::new(kb::S3Objects(in_process_s3())),
        );
        registry.register(basalt_s3vectors::S3Vectors::new(store.state.clone()));
        registry.register(Arc::new(basalt_bedrock_agent::BedrockAgent(
            knowledge_bases.clone(),
        )));
        registry.register(Arc::new(basalt_bedrock_agent::BedrockAgentRuntime(
            knowledge_bases.clone(),
        )));
        let sagemaker = basalt_sagemaker::Core::new(
            store.state.clone(),
            Arc::new(kb::S3Objects(in_process_s3())),
            basalt_sagemaker::SageMakerConfig {
                work_dir: lambda::work_dir(&cfg, "sagemaker")?,
                environments: basalt_sagemaker::environments::Environments::new(
                    &basalt_functions::runtimes::default_dir(),
                ),
            },
        );
        registry.register(Arc::new(basalt_sagemaker::SageMaker(sagemaker.clone())));
        registry.register(Arc::new(basalt_sagemaker::SageMakerRuntime(
            sagemaker.clone(),
        )));
        let autoscaling = basalt_autoscaling::AutoScaling::new(store.state.clone());
        registry.register(autoscaling.clone());
        let s3 = basalt_s3::build_service(
            store.clone(),
            bus.clone(),
            basalt_s3::S3Config {
                account_id: cfg.account_id.clone(),
                region: cfg.region.clone(),
                // The gateway's principals: configured keys and STS session keys alike
                // (expired session keys are unknown).
                auth: (cfg.auth == AuthMode::SigV4).then(|| {
                    let principals = principals.clone();
                    let lookup: basalt_s3::KeyLookup = Arc::new(move |ak: &str| {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs() as i64);
                        let p = principals.lookup(ak).map_err(|e| e.to_string())?;
                        Ok(p.filter(|p| p.expires.is_none_or(|e| e > now)).map(|p| {
                            basalt_s3::KeySecret {
                                secret: p.secret_access_key,
                                session_token: p.session_token,
                                account_id: p.account_id,
                                arn: p.arn,
                            }
                        }))
                    });
                    lookup
                }),
                base_domain: None,
                accounts: cfg.keys.iter().map(|k| k.account_id.clone()).collect(),
            },
        );
        lambda.set_registry(registry.clone());
        lambda.start_workers();
        logs.set_registry(registry.clone());
        logs.start_workers();
        s3.set_registry(registry.clone());
        s3.start_workers();
        sqs.start_workers();
        sns.set_registry(registry.clone());
        sns.start_workers();
        events.set_registry(registry.clone());
        events.start_workers(Some(bus.clone()));
        scheduler.set_registry(registry.clone());
        scheduler.start_workers();
        cloudwatch.set_registry(registry.clone());
        cloudwatch.start_workers();
        dynamodb.start_workers();
        stepfunctions.set_registry(registry.clone());
        stepfunctions.start_workers();
        knowledge_bases.set_registry(registry.clone());
        knowledge_bases.start_workers();
        batch.set_registry(registry.clone());
        batch.start_worker();
        sagemaker.set_registry(registry.clone());
        sagemaker.start_workers();
        autoscaling.set_registry(registry.clone());
        autoscaling.start_workers();
        let gateway = Gateway::new(
            GatewayConfig {
                account_id: cfg.account_id.clone(),
                region: cfg.region.clone(),
                auth: cfg.auth,
                max_body_bytes: cfg.max_body_bytes,
                endpoint,
            },
            registry,
            principals,
        )
        .with_s3(Arc::new(S3Raw(Arc::new(s3))))
        .with_route(
            "/_basalt/lambda/code/",
            Arc::new(lambda::CodeUrls(lambda.clone())),
        )
        .with_route(
            basalt_lambda::URL_PATH,
            Arc::new(lambda::FunctionUrls(lambda.clone())),
        )
        .with_route(basalt_sns::URL_PATH, Arc::new(sns::SnsUrls(sns.clone())))
        .with_route(
            "/v1/",
            Arc::new(openai::OpenAi {
                runtime: runtime.clone(),
                guardrails: Some(openai::Guarding {
                    bedrock: bedrock_runtime.clone(),
                    account_id: cfg.account_id.clone(),
                    region: cfg.region.clone(),
                }),
            }),
        );
        let node = node::NodeHealth::start(
            cfg.node_id.clone().unwrap_or_else(|| {
                node::default_node_id(listener.local_addr().map_or(0, |a| a.port()))
            }),
            match (&cfg.data_dir, &cfg.state_url) {
                (None, _) => "memory",
                (Some(_), None) => "sqlite",
                (Some(_), Some(_)) => "postgresql",
            },
            match (&cfg.data_dir, &cfg.blobs_url) {
                (None, _) => "memory",
                (Some(_), None) => "filesystem",
                (Some(_), Some(_)) => "s3",
            },
            store.clone(),
        );
        let gateway = {
            let runtime = runtime.clone();
            let node = node.clone();
            let lambda = lambda.clone();
            gateway
                .with_health("node", Box::new(move || node.render()))
                .with_health("lambda", Box::new(move || lambda.health()))
                .with_health("engines", Box::new(move || runtime.health()))
        };
        gateway
            .metrics
            .add_renderer(Box::new(move |out: &mut String| accounting.render(out)));
        {
            let runtime = runtime.clone();
            gateway
                .metrics
                .add_renderer(Box::new(move |out: &mut String| {
                    runtime.render_metrics(out)
                }));
        }
        eprintln!(
            "basalt {} ready on http://{} (node {}, {})",
            env!("CARGO_PKG_VERSION"),
            listener.local_addr()?,
            node.node_id(),
            match (&cfg.data_dir, &cfg.state_url, &cfg.blobs_url) {
                (Some(d), None, None) => format!("data in {}", d.display()),
                (Some(d), state, blobs) => format!(
                    "state in {}, blobs in {}",
                    state.as_deref().map_or_else(
                        || d.join("state.sqlite3").display().to_string(),
                        basalt_store::redact_url
                    ),
                    blobs
                        .clone()
                        .unwrap_or_else(|| d.join("blobs").display().to_string())
                ),
                (None, ..) => "ephemeral".into(),
            }
        );
        tokio::select! {
            r = basalt_gateway::serve(Arc::new(gateway), listener) => r.context("serving")?,
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
        }
        // Counts acknowledged since the last minute's flush.
        sqs.flush_metrics();
        Ok(())
    })
}
