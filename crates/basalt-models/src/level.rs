//! Which of llama.cpp's CPU kernel levels this process runs: the best candidate
//! ([`crate::cpu`]: every feature advertised and its instructions proven) that also survives
//! a real forward pass of the model, run in a forked child first.
//!
//! Instruction probes are not enough. On some KVM guests every AMX instruction runs in a
//! probe, yet ggml's AMX GEMM dies of SIGILL on its first `tilezero` inside the engine (the
//! tile configuration does not survive there). Only the kernels themselves, on the model's
//! own tensors, with the engine's threads, say whether a level works; a child that dies
//! costs a second at the first model load, not the server.

use crate::cpu;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A forward pass that takes longer than this is a hung level.
const PROBE_TIMEOUT: Duration = Duration::from_secs(180);

/// The level in use and the levels refused on the way.
#[derive(Debug, Clone)]
pub struct LlamaLevel {
    /// `None` off x86-64 (ggml chooses among its variants).
    pub level: Option<&'static str>,
    pub refused: Vec<(&'static str, String)>,
    /// Whether the level was taken from `BASALT_LLAMA_LEVEL` (proven by an earlier worker of
    /// the same server) rather than proven here.
    pub inherited: bool,
}

impl LlamaLevel {
    pub fn describe(&self) -> String {
        let mut s = match self.level {
            Some(l) => format!("llama.cpp CPU kernels: {l}"),
            None => "llama.cpp CPU kernels: ggml's choice".to_owned(),
        };
        if self.inherited {
            s.push_str(" (proven by an earlier worker)");
        }
        for (level, why) in &self.refused {
            s.push_str(&format!("; {level} refused: {why}"));
        }
        s.push_str("; ");
        s.push_str(&cpu::selection().describe());
        s
    }
}

static CHOSEN: OnceLock<Result<LlamaLevel, String>> = OnceLock::new();

/// The level chosen in this process, once a model has been loaded.
pub fn chosen() -> Option<&'static LlamaLevel> {
    CHOSEN.get().and_then(|r| r.as_ref().ok())
}

/// Chooses (once per process) and registers the CPU backend that runs `model` with
/// `threads` threads. Call before `llama_backend_init`.
pub fn choose(model: &Path, threads: i32) -> Result<&'static LlamaLevel, String> {
    CHOSEN
        .get_or_init(|| {
            // Levels a worker of this server died of SIGILL on, after their proof passed.
            let refused_before = std::env::var("BASALT_LLAMA_REFUSED").unwrap_or_default();
            let candidates: Vec<&'static str> = cpu::selection()
                .candidates()
                .into_iter()
                .filter(|c| !refused_before.split(',').any(|r| r == *c))
                .collect();
            if cpu::selection().level.is_none() {
                // Off x86-64: ggml chooses among the variants it built for this architecture.
                cpu::load_llama_level(None)?;
                return Ok(LlamaLevel {
                    level: None,
                    refused: Vec::new(),
                    inherited: false,
                });
            }
            if let Ok(known) = std::env::var("BASALT_LLAMA_LEVEL")
                && let Some(level) = candidates.iter().find(|c| **c == known)
            {
                cpu::load_llama_level(Some(level))?;
                return Ok(LlamaLevel {
                    level: Some(level),
                    refused: Vec::new(),
                    inherited: true,
                });
            }
            let mut refused = Vec::new();
            for level in candidates {
                let started = Instant::now();
                match prove(model, level, threads) {
                    Ok(()) => {
                        cpu::load_llama_level(Some(level))?;
                        let chosen = LlamaLevel {
                            level: Some(level),
                            refused,
                            inherited: false,
                        };
                        tracing::info!(
                            proof_ms = started.elapsed().as_millis() as u64,
                            "{}",
                            chosen.describe()
                        );
                        return Ok(chosen);
                    }
                    Err(Proof::Died(why)) => {
                        tracing::warn!("llama.cpp CPU level {level} refused: {why}");
                        refused.push((level, why));
                    }
                    // The model or the machine, not the level: another level would fail alike.
                    Err(Proof::Failed(why)) => return Err(why),
                }
            }
            Err(format!(
                "no llama.cpp CPU kernel level runs on this machine: {}",
                refused
                    .iter()
                    .map(|(l, w)| format!("{l}: {w}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Why a level was not proven.
enum Proof {
    /// The child died (a signal, or hung past the timeout): the level is refused.
    Died(String),
    /// The forward pass returned an error (the model could not be loaded, out of memory...):
    /// no level would do better.
    Failed(String),
}

/// Runs a forward pass of `model` on `level` in a forked child.
#[cfg(unix)]
fn prove(model: &Path, level: &'static str, threads: i32) -> Result<(), Proof> {
    // SAFETY: the child runs llama.cpp from scratch (nothing of it is loaded in this process
    // yet: `choose` runs before any backend exists) and takes no lock of ours.
    let run = || i32::from(forward_pass(model, level, threads).is_err());
    match unsafe { cpu::in_child(PROBE_TIMEOUT, run) } {
        Ok(0) => Ok(()),
        Ok(_) => Err(Proof::Failed(format!(
            "the model {} could not be run on llama.cpp's {level} kernels",
            model.display()
        ))),
        Err(death) => Err(Proof::Died(format!("a forward pass {death}"))),
    }
}

#[cfg(not(unix))]
fn prove(_model: &Path, _level: &'static str, _threads: i32) -> Result<(), Proof> {
    Ok(())
}

/// What the engine will do: a batched prompt (the GEMM kernels) then one decoded token (the
/// GEMV kernels), on the engine's thread count.
fn forward_pass(model: &Path, level: &str, threads: i32) -> Result<(), String> {
    cpu::load_llama_level(Some(level))?;
    let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
    backend.void_logs();
    let model = LlamaModel::load_from_file(&backend, model, &LlamaModelParams::default())
        .map_err(|e| e.to_string())?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(256))
        .with_n_batch(64)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_flash_attention_policy(0);
    let mut ctx = model
        .new_context(&backend, params)
        .map_err(|e| e.to_string())?;
    let vocab = model.n_vocab().max(2);
    let mut batch = LlamaBatch::new(64, 1);
    const PROMPT: i32 = 48;
    for i in 0..PROMPT {
        batch
            .add(LlamaToken(1 + i % (vocab - 1)), i, &[0], i == PROMPT - 1)
            .map_err(|e| e.to_string())?;
    }
    ctx.decode(&mut batch).map_err(|e| e.to_string())?;
    batch.clear();
    batch
        .add(LlamaToken(1), PROMPT, &[0], true)
        .map_err(|e| e.to_string())?;
    ctx.decode(&mut batch).map_err(|e| e.to_string())?;
    Ok(())
}
