//! Warm environments, concurrency limits and reaping.

use crate::env::Env;
use crate::runtimes::{PROVIDED_RUNTIMES, Runtimes};
use crate::{EngineError, EnvSpec, FunctionError, Invocation, Outcome, now_ms};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where packages are unpacked and environments keep their temporary directories.
    pub work_dir: PathBuf,
    pub runtimes: Runtimes,
    /// An environment idle this long is stopped.
    pub idle_ttl: Duration,
    /// An environment this old is not reused (its credentials must outlive it).
    pub max_age: Duration,
}

impl EngineConfig {
    pub fn new(work_dir: PathBuf) -> Self {
        EngineConfig {
            work_dir,
            runtimes: Runtimes::default(),
            idle_ttl: Duration::from_secs(600),
            max_age: Duration::from_secs(11 * 3600),
        }
    }
}

#[derive(Default)]
struct State {
    /// Idle (frozen) environments by spec key, most recently used last.
    idle: HashMap<String, Vec<Arc<Env>>>,
    /// Invocations running by concurrency key.
    running: HashMap<String, u32>,
}

pub struct Engine {
    pub config: EngineConfig,
    state: Mutex<State>,
}

/// Counts one running invocation until dropped.
struct Running<'a> {
    engine: &'a Engine,
    key: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut st = self.engine.state.lock();
        if let Some(n) = st.running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                st.running.remove(&self.key);
            }
        }
    }
}

impl Engine {
    pub fn new(config: EngineConfig) -> Arc<Engine> {
        Arc::new(Engine {
            config,
            state: Mutex::default(),
        })
    }

    /// Stops idle environments past their idle time, every 10 s, for as long as the engine
    /// lives.
    pub fn start_reaper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else {
                    return;
                };
                engine.reap();
            }
        });
    }

    fn reap(&self) {
        let ttl = self.config.idle_ttl;
        let mut st = self.state.lock();
        for envs in st.idle.values_mut() {
            envs.retain(|e| !e.is_dead() && (e.provisioned || e.last_used.lock().elapsed() < ttl));
        }
        st.idle.retain(|_, v| !v.is_empty());
    }

    /// How the sandbox isolates functions here, for health.
    pub fn isolation(&self) -> String {
        crate::sandbox::describe()
    }

    /// Invocations running now under `concurrency_key`.
    pub fn running(&self, concurrency_key: &str) -> u32 {
        self.state
            .lock()
            .running
            .get(concurrency_key)
            .copied()
            .unwrap_or(0)
    }

    /// Idle environments of every function.
    pub fn idle(&self) -> usize {
        self.state.lock().idle.values().map(Vec::len).sum()
    }

    /// Provisioned environments of `key` that are initialized and idle.
    pub fn provisioned(&self, key: &str) -> usize {
        self.state.lock().idle.get(key).map_or(0, |v| {
            v.iter().filter(|e| e.provisioned && !e.is_dead()).count()
        })
    }

    /// Starts and initializes environments of `spec` until `n` provisioned ones are ready
    /// (provisioned concurrency); returns how many are.
    pub async fn prewarm(&self, spec: &Arc<EnvSpec>, n: usize) -> Result<usize, EngineError> {
        let mut ready = self.provisioned(&spec.key);
        while ready < n {
            let launch = self
                .config
                .runtimes
                .launch(
                    &spec.runtime,
                    &spec.handler,
                    &spec.task_root,
                    spec.opt_dir.as_deref(),
                )
                .map_err(EngineError::RuntimeMissing)?;
            let env =
                crate::env::Env::start(spec.clone(), launch, &self.config.work_dir, true).await?;
            if !env.prewarm().await {
                return Ok(ready);
            }
            self.state
                .lock()
                .idle
                .entry(spec.key.clone())
                .or_default()
                .push(env);
            ready += 1;
        }
        Ok(ready)
    }

    /// Stops the idle provisioned environments of `key` beyond `keep`.
    pub fn unprovision(&self, key: &str, keep: usize) {
        let mut st = self.state.lock();
        if let Some(envs) = st.idle.get_mut(key) {
            let mut kept = 0;
            envs.retain(|e| {
                if !e.provisioned {
                    return true;
                }
                kept += 1;
                kept <= keep
            });
        }
    }

    /// Stops the idle environments whose key starts with `prefix` (a function changed or
    /// was deleted); running ones finish and are not reused, since their key is gone.
    pub fn retire(&self, prefix: &str) {
        self.state.lock().idle.retain(|k, _| !k.starts_with(prefix));
    }

    /// Runs `inv` in a warm environment of `spec`, or a new one. `limit` caps the
    /// invocations running at once under the spec's concurrency key.
    pub async fn invoke(
        &self,
        spec: &Arc<EnvSpec>,
        inv: &Invocation,
        limit: Option<u32>,
    ) -> Result<Outcome, EngineError> {
        let (warm, _running) = {
            let mut st = self.state.lock();
            let n = st.running.get(&spec.concurrency_key).copied().unwrap_or(0);
            if limit.is_some_and(|l| n >= l) {
                return Err(EngineError::Throttled);
            }
            *st.running.entry(spec.concurrency_key.clone()).or_default() += 1;
            let max_age = self.config.max_age;
            let warm = st.idle.get_mut(&spec.key).and_then(|v| {
                while let Some(e) = v.pop() {
                    if !e.is_dead() && e.started.elapsed() < max_age {
                        return Some(e);
                    }
                }
                None
            });
            (
                warm,
                Running {
                    engine: self,
                    key: spec.concurrency_key.clone(),
                },
            )
        };
        let env = match warm {
            Some(e) => e,
            None => match self.start(spec).await? {
                Ok(e) => e,
                Err(outcome) => return Ok(outcome),
            },
        };
        let outcome = env.invoke(inv).await;
        if !env.is_dead() {
            let mut st = self.state.lock();
            st.idle.entry(spec.key.clone()).or_default().push(env);
        }
        Ok(outcome)
    }

    /// A new environment, or (for a package that cannot run) the invocation's error.
    async fn start(&self, spec: &Arc<EnvSpec>) -> Result<Result<Arc<Env>, Outcome>, EngineError> {
        let launch = match self.config.runtimes.launch(
            &spec.runtime,
            &spec.handler,
            &spec.task_root,
            spec.opt_dir.as_deref(),
        ) {
            Ok(l) => l,
            Err(why) if PROVIDED_RUNTIMES.contains(&spec.runtime.as_str()) => {
                return Ok(Err(Outcome {
                    result: Err(FunctionError::platform(
                        "Runtime.InvalidEntrypoint",
                        why.clone(),
                    )),
                    logs: vec![(now_ms(), why)],
                    duration: Duration::ZERO,
                    init_duration: None,
                    max_memory_mb: 0,
                    log_stream: String::new(),
                }));
            }
            Err(why) => return Err(EngineError::RuntimeMissing(why)),
        };
        if let Some(sub) = &launch.substitute {
            tracing::info!(
                runtime = %spec.runtime,
                "runtime {} is not installed; running on {sub}",
                spec.runtime
            );
        }
        Ok(Ok(crate::env::Env::start(
            spec.clone(),
            launch,
            &self.config.work_dir,
            false,
        )
        .await?))
    }
}
