//! The chat engine: a GGUF model run by llama.cpp, driven by one worker thread per loaded
//! model that batches every active request into each forward pass (continuous batching), so
//! concurrent callers share the machine fairly and the prompt of a newcomer is processed
//! alongside the decoding of others. A prompt that starts like an earlier one reuses the
//! keys and values the earlier one left in its sequence ([`prefix`]).

pub mod prefix;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use prefix::PrefixCache;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Instant;
use tokio::sync::mpsc as tmpsc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file {0} could not be loaded: {1}")]
    Load(PathBuf, String),
    #[error("the inference engine failed: {0}")]
    Runtime(String),
    #[error("input of {tokens} tokens exceeds the context window of {window} tokens")]
    TooLong { tokens: usize, window: usize },
    #[error("too many requests are queued for this model")]
    Busy,
    #[error("invalid grammar: {0}")]
    Grammar(String),
}

/// How a request is sampled.
#[derive(Debug, Clone)]
pub struct GenParams {
    pub max_tokens: u32,
    /// `None` or `Some(0.0)` = greedy.
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub grammar: Option<Grammar>,
}

impl GenParams {
    /// Greedy decoding of at most `max_tokens` tokens, no stop sequences, no grammar.
    pub fn greedy(max_tokens: u32) -> GenParams {
        GenParams {
            max_tokens,
            temperature: Some(0.0),
            top_p: None,
            top_k: None,
            seed: None,
            stop: Vec::new(),
            grammar: None,
        }
    }
}

/// Grammar-constrained sampling (GBNF).
#[derive(Debug, Clone)]
pub enum Grammar {
    /// Applies from the first generated token.
    Always(String),
    /// Applies once `trigger` (a special token) has been generated: the model may answer in
    /// text, and what follows the trigger is constrained. With `json_start`, a first token
    /// that opens a JSON object also starts the constrained call (small models often drop
    /// the trigger).
    Lazy {
        trigger: u32,
        grammar: String,
        json_start: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The model emitted an end-of-generation token.
    Eog,
    MaxTokens,
    Stop(String),
}

/// Events of one generation, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Generated text (complete UTF-8, stop sequences withheld).
    Text(String),
    /// The lazy-grammar trigger token was generated; constrained text follows.
    Triggered,
    Done {
        finish: Finish,
        prompt_tokens: usize,
        generated_tokens: usize,
        first_token_ms: u64,
        /// Prompt tokens taken from the prefix cache rather than evaluated.
        cached_tokens: usize,
    },
    Error(String),
}

struct Job {
    prompt: Vec<LlamaToken>,
    params: GenParams,
    events: tmpsc::UnboundedSender<Event>,
    queued: Instant,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EngineConfig {
    pub threads: i32,
    /// Sequences decoded together.
    pub parallel: u32,
    /// Context window of each sequence.
    pub ctx_per_seq: u32,
    /// Requests waiting beyond the running ones before `Busy`.
    pub max_queue: usize,
    pub batch: u32,
    /// Reuse the evaluated prefix of earlier prompts ([`prefix`]).
    #[serde(default = "default_true")]
    pub prefix_cache: bool,
}

fn default_true() -> bool {
    true
}

impl Default for EngineConfig {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as i32)
            .unwrap_or(2);
        EngineConfig {
            threads,
            parallel: 4,
            ctx_per_seq: 4096,
            max_queue: 32,
            batch: 512,
            prefix_cache: true,
        }
    }
}

static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// llama.cpp, initialized for `model` on `threads` threads: the first call chooses the CPU
/// kernel level by running the model (`crate::level`); later calls reuse the choice.
fn backend_for(model: &Path, threads: i32) -> Result<&'static LlamaBackend, EngineError> {
    BACKEND
        .get_or_init(|| {
            crate::level::choose(model, threads)?;
            let mut b = LlamaBackend::init().map_err(|e| e.to_string())?;
            if std::env::var_os("BASALT_LLAMA_LOG").is_none() {
                b.void_logs();
            }
            Ok(b)
        })
        .as_ref()
        .map_err(|e| EngineError::Runtime(e.clone()))
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    match BACKEND.get() {
        Some(b) => b.as_ref().map_err(|e| EngineError::Runtime(e.clone())),
        None => Err(EngineError::Runtime("llama.cpp is not initialized".into())),
    }
}

/// A loaded chat model and its worker.
pub struct ChatEngine {
    model: Arc<LlamaModel>,
    jobs: mpsc::SyncSender<Job>,
    /// The prefix cache's proven alignment (`None`: the cache is off).
    prefix_align: Option<usize>,
    pub config: EngineConfig,
    pub path: PathBuf,
}

impl ChatEngine {
    pub fn load(path: &Path, config: EngineConfig) -> Result<ChatEngine, EngineError> {
        let backend = backend_for(path, config.threads)?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| EngineError::Load(path.to_owned(), e.to_string()))?;
        let model = Arc::new(model);
        let (tx, rx) = mpsc::sync_channel::<Job>(config.max_queue);
        let worker_model = model.clone();
        let worker_config = config.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("basalt-llm".into())
            .spawn(move || worker(worker_model, worker_config, rx, ready_tx))
            .map_err(|e| EngineError::Runtime(e.to_string()))?;
        // The worker reports once its context exists and the cache's alignment is proven.
        let prefix_align = ready_rx.recv().ok().flatten();
        Ok(ChatEngine {
            model,
            jobs: tx,
            prefix_align,
            config,
            path: path.to_owned(),
        })
    }

    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// Reuse by the prefix cache stops at multiples of this many tokens, proven bit-exact on
    /// this machine at load; `None` when the cache is off.
    pub fn prefix_alignment(&self) -> Option<usize> {
        self.prefix_align
    }

    /// Tokenizes with the model's own tokenizer; special tokens in `text` are parsed.
    pub fn tokenize(&self, text: &str, parse_special: bool) -> Vec<u32> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, parse_special)
            .into_iter()
            .map(|t| t.0 as u32)
            .collect()
    }

    pub fn detokenize(&self, tokens: &[u32]) -> String {
        let vocab = self.model.vocab();
        let mut bytes = Vec::new();
        for t in tokens {
            bytes.extend(vocab.token_to_piece(LlamaToken(*t as i32), false, None));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The token id of a special token's text (`<tool_call>`), if the vocabulary has it.
    pub fn special_token(&self, text: &str) -> Option<u32> {
        let t = self.model.vocab().tokenize(text.as_bytes(), false, true);
        (t.len() == 1).then(|| t[0].0 as u32)
    }

    pub fn chat_template(&self) -> Option<String> {
        self.model.meta_val_str("tokenizer.chat_template").ok()
    }

    pub fn bos_text(&self) -> Option<String> {
        let vocab = self.model.vocab();
        let bos = vocab.bos();
        if bos.0 < 0 {
            return None;
        }
        Some(String::from_utf8_lossy(&vocab.token_to_piece(bos, true, None)).into_owned())
    }

    pub fn eos_text(&self) -> Option<String> {
        let vocab = self.model.vocab();
        let eos = vocab.eos();
        if eos.0 < 0 {
            return None;
        }
        Some(String::from_utf8_lossy(&vocab.token_to_piece(eos, true, None)).into_owned())
    }

    /// Starts generating from `prompt` (token ids, special tokens already resolved).
    pub fn generate(
        &self,
        prompt: Vec<u32>,
        params: GenParams,
    ) -> Result<tmpsc::UnboundedReceiver<Event>, EngineError> {
        let window = self.config.ctx_per_seq as usize;
        if prompt.is_empty() || prompt.len() + 1 > window {
            return Err(EngineError::TooLong {
                tokens: prompt.len(),
                window,
            });
        }
        if let Some(g) = &params.grammar {
            let text = match g {
                Grammar::Always(t) | Grammar::Lazy { grammar: t, .. } => t,
            };
            // Validate now so a bad grammar is the caller's error, not a worker failure.
            LlamaSampler::grammar(&self.model, text, "root")
                .map_err(|e| EngineError::Grammar(e.to_string()))?;
        }
        let (tx, rx) = tmpsc::unbounded_channel();
        let job = Job {
            prompt: prompt.into_iter().map(|t| LlamaToken(t as i32)).collect(),
            params,
            events: tx,
            queued: Instant::now(),
        };
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => EngineError::Busy,
            mpsc::TrySendError::Disconnected(_) => {
                EngineError::Runtime("inference worker stopped".into())
            }
        })?;
        Ok(rx)
    }
}

/// One request being served.
struct Slot {
    seq: i32,
    job: Job,
    /// Prompt tokens not yet evaluated.
    pending: usize,
    n_past: i32,
    /// Token to feed next (decode phase).
    next: Option<LlamaToken>,
    sampler: LlamaSampler,
    generated: usize,
    /// Raw bytes of generated text not yet valid UTF-8.
    utf8: Vec<u8>,
    /// Generated text (excluding special trigger tokens) and how much of it was sent.
    text: String,
    sent: usize,
    triggered: bool,
    first_token_ms: u64,
    /// Prompt tokens reused from the prefix cache.
    cached: usize,
}

fn sampler_for(
    model: &LlamaModel,
    params: &GenParams,
    grammar: Option<&str>,
) -> Result<LlamaSampler, String> {
    let mut chain = Vec::new();
    if let Some(g) = grammar {
        chain.push(LlamaSampler::grammar(model, g, "root").map_err(|e| e.to_string())?);
    }
    let temp = params.temperature.unwrap_or(0.0);
    if temp <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if let Some(k) = params.top_k.filter(|k| *k > 0) {
            chain.push(LlamaSampler::top_k(k as i32));
        }
        if let Some(p) = params.top_p.filter(|p| *p < 1.0) {
            chain.push(LlamaSampler::top_p(p, 1));
        }
        chain.push(LlamaSampler::temp(temp));
        let seed = params.seed.map(|s| s as u32).unwrap_or_else(rand_seed);
        chain.push(LlamaSampler::dist(seed));
    }
    Ok(LlamaSampler::chain_simple(chain))
}

fn rand_seed() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u32) ^ std::process::id()
}

/// Longest suffix of `text` that is a proper prefix of some stop sequence: held back until
/// we know whether the stop sequence completes.
fn held_back(text: &str, stops: &[String]) -> usize {
    let mut hold = 0;
    for s in stops {
        for len in (1..s.len()).rev() {
            if len <= text.len()
                && text.is_char_boundary(text.len() - len)
                && s.is_char_boundary(len)
                && text.ends_with(&s[..len])
            {
                hold = hold.max(len);
                break;
            }
        }
    }
    hold
}

impl Slot {
    fn emit(&mut self, ev: Event) -> bool {
        self.job.events.send(ev).is_ok()
    }

    /// Sends what can be sent; returns a stop sequence if one completed.
    fn flush(&mut self) -> Option<String> {
        let stops = self.job.params.stop.clone();
        for s in &stops {
            if s.is_empty() {
                continue;
            }
            let search_from = self.sent.saturating_sub(s.len());
            let search_from = (0..=search_from)
                .rev()
                .find(|i| self.text.is_char_boundary(*i))
                .unwrap_or(0);
            if let Some(pos) = self.text[search_from..].find(s.as_str()) {
                let end = search_from + pos;
                if end > self.sent {
                    let t = self.text[self.sent..end].to_owned();
                    self.emit(Event::Text(t));
                }
                self.sent = end;
                return Some(s.clone());
            }
        }
        let safe = self.text.len() - held_back(&self.text[self.sent..], &self.job.params.stop);
        if safe > self.sent {
            let t = self.text[self.sent..safe].to_owned();
            self.sent = safe;
            self.emit(Event::Text(t));
        }
        None
    }

    fn finish(&mut self, finish: Finish) {
        if !matches!(finish, Finish::Stop(_)) {
            // Release everything still held back for a stop sequence that never completed.
            if self.sent < self.text.len() {
                let t = self.text[self.sent..].to_owned();
                self.sent = self.text.len();
                self.emit(Event::Text(t));
            }
        }
        let prompt_tokens = self.job.prompt.len();
        let ev = Event::Done {
            finish,
            prompt_tokens,
            generated_tokens: self.generated,
            first_token_ms: self.first_token_ms,
            cached_tokens: self.cached,
        };
        self.emit(ev);
    }
}

/// Samples the token at batch index `at` for `slot` and takes it: text out, lazy grammars
/// triggered, stop sequences and limits checked. True when the slot is done.
fn advance(slot: &mut Slot, ctx: &LlamaContext, at: i32, model: &LlamaModel, window: i32) -> bool {
    let vocab = model.vocab();
    let tok = slot.sampler.sample(ctx, at);
    slot.generated += 1;
    if slot.generated == 1 {
        slot.first_token_ms = slot.job.queued.elapsed().as_millis() as u64;
    }
    if vocab.is_eog(tok) {
        slot.finish(Finish::Eog);
        return true;
    }
    let mut tok = tok;
    let lazy = match &slot.job.params.grammar {
        Some(Grammar::Lazy {
            trigger,
            grammar,
            json_start,
        }) if !slot.triggered => Some((*trigger, grammar.clone(), *json_start)),
        _ => None,
    };
    // Small models often answer a tool call as bare JSON without the trigger token: a first
    // token opening a JSON object also starts the constrained call, re-sampled from the same
    // logits under the grammar.
    if let Some((_, grammar, _)) = lazy
        .as_ref()
        .filter(|(t, _, json_start)| *json_start && slot.generated == 1 && tok.0 as u32 != *t)
    {
        let piece = vocab.token_to_piece(tok, false, None);
        let piece = String::from_utf8_lossy(&piece);
        let opening = piece.trim_start();
        if opening.starts_with('{') || opening.starts_with("```") {
            let constrained = GenParams {
                temperature: Some(0.0),
                ..slot.job.params.clone()
            };
            match sampler_for(model, &constrained, Some(grammar)) {
                Ok(mut s) => {
                    tok = s.sample(ctx, at);
                    slot.sampler = s;
                    slot.triggered = true;
                    slot.emit(Event::Triggered);
                }
                Err(e) => {
                    slot.emit(Event::Error(e));
                    return true;
                }
            }
        }
    }
    let trigger = match lazy {
        Some((trigger, grammar, _)) if !slot.triggered && tok.0 as u32 == trigger => Some(grammar),
        _ => None,
    };
    if let Some(grammar) = trigger {
        slot.triggered = true;
        // Text so far is final; what follows is constrained.
        if slot.sent < slot.text.len() {
            let t = slot.text[slot.sent..].to_owned();
            slot.sent = slot.text.len();
            slot.emit(Event::Text(t));
        }
        slot.emit(Event::Triggered);
        let constrained = GenParams {
            temperature: Some(0.0),
            ..slot.job.params.clone()
        };
        match sampler_for(model, &constrained, Some(&grammar)) {
            Ok(s) => slot.sampler = s,
            Err(e) => {
                slot.emit(Event::Error(e));
                return true;
            }
        }
    } else {
        slot.utf8.extend(vocab.token_to_piece(tok, false, None));
        let valid = match std::str::from_utf8(&slot.utf8) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => slot.utf8.len(),
        };
        let chunk: Vec<u8> = slot.utf8.drain(..valid).collect();
        slot.text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(stop) = slot.flush() {
            slot.finish(Finish::Stop(stop));
            return true;
        }
    }
    if slot.job.events.is_closed() {
        // The caller went away: stop spending compute on it.
        return true;
    }
    if slot.generated as u32 >= slot.job.params.max_tokens || slot.n_past + 1 >= window {
        slot.finish(Finish::MaxTokens);
        return true;
    }
    slot.next = Some(tok);
    false
}

/// Text for the alignment proof: any prose does; it only has to be the same every time.
const PROOF_TEXT: &str = "The prefix cache keeps the keys and values of earlier prompts so that a \
    new prompt which starts the same way evaluates only what differs. Whether that gives the \
    same numbers as evaluating the whole prompt depends on how the machine's matrix kernels \
    group the rows of a batch, so the engine checks it here, on this machine, with this model, \
    before it serves anything: once the whole prompt in one pass, then as a cache hit at each \
    candidate alignment, comparing the logits of the last token bit for bit.";

/// The smallest of [`prefix::ALIGNMENTS`] at which a cache hit is bit-identical to a fresh
/// evaluation on this machine: the prompt evaluated whole, against the same prompt evaluated
/// as the cache evaluates it (the prefix as part of a longer earlier prompt, whose tail is then
/// dropped, and the rest in one chunk), for two prefix lengths per candidate. Uses sequence 0,
/// cleared after.
fn prove_alignment(ctx: &mut LlamaContext, model: &LlamaModel, chunk: usize) -> Option<usize> {
    let tokens = model.vocab().tokenize(PROOF_TEXT.as_bytes(), false, false);
    let n = tokens.len().min(chunk).min(100);
    if n < 40 {
        return None;
    }
    let tokens = &tokens[..n];
    let mut batch = LlamaBatch::new(chunk, 1);
    let mut eval = |ctx: &mut LlamaContext, from: usize, upto: &[LlamaToken]| -> Option<Vec<f32>> {
        batch.clear();
        for (i, t) in upto.iter().enumerate().skip(from) {
            batch.add(*t, i as i32, &[0], i + 1 == upto.len()).ok()?;
        }
        ctx.decode(&mut batch).ok()?;
        Some(ctx.get_logits_ith(batch.n_tokens() - 1).to_vec())
    };
    let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
    let fresh = eval(ctx, 0, tokens);
    let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
    let fresh = fresh?;
    prefix::ALIGNMENTS.into_iter().find(|&align| {
        [align, 3 * align]
            .into_iter()
            .filter(|&b| b + 1 < n)
            .all(|b| {
                // The earlier prompt: the prefix and three other tokens, a ragged end.
                let mut earlier = tokens[..b].to_vec();
                earlier.extend(tokens[b..].iter().rev().take(3));
                let same = eval(ctx, 0, &earlier).is_some()
                    && ctx.clear_kv_cache_seq(Some(0), Some(b as u32), None) == Ok(true)
                    && eval(ctx, b, tokens).is_some_and(|l| {
                        l.len() == fresh.len()
                            && l.iter()
                                .zip(&fresh)
                                .all(|(x, y)| x.to_bits() == y.to_bits())
                    });
                let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
                same
            })
    })
}

fn worker(
    model: Arc<LlamaModel>,
    config: EngineConfig,
    jobs: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Option<usize>>,
) {
    let Ok(backend) = backend() else { return };
    let n_ctx = config.ctx_per_seq * config.parallel;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(config.batch)
        .with_n_seq_max(config.parallel)
        .with_n_threads(config.threads)
        .with_n_threads_batch(config.threads)
        // Flash attention off, as llama.cpp's CPU defaults elsewhere (llama-cpp-python, the
        // server without -fa): same numerics, same greedy tokens.
        .with_flash_attention_policy(0);
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(None);
            tracing::error!(error = %e, "creating the inference context failed");
            // Answer every request with the error rather than hanging callers.
            for job in jobs {
                let _ = job.events.send(Event::Error(format!(
                    "creating the inference context failed: {e}"
                )));
            }
            return;
        }
    };
    let window = config.ctx_per_seq as i32;
    let chunk = config.batch as usize;
    let align = if config.prefix_cache {
        let proven = prove_alignment(&mut ctx, &model, chunk);
        match proven {
            Some(a) => tracing::info!(align = a, "prefix cache: reuse aligned to {a} tokens"),
            None => tracing::warn!("prefix cache off: no alignment gave bit-identical logits"),
        }
        proven
    } else {
        None
    };
    let _ = ready.send(align);
    let mut cache = PrefixCache::new(config.parallel as usize, align);
    let mut slots: Vec<Slot> = Vec::new();
    let mut free: Vec<i32> = (0..config.parallel as i32).collect();
    let mut batch = LlamaBatch::new(config.batch as usize, 1);

    loop {
        // Admit new requests while sequences are free; block only when idle.
        while !free.is_empty() {
            let job = if slots.is_empty() {
                match jobs.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                }
            } else {
                match jobs.try_recv() {
                    Ok(j) => j,
                    Err(_) => break,
                }
            };
            let ids: Vec<i32> = job.prompt.iter().map(|t| t.0).collect();
            let Some(place) = cache.place(&free, &ids) else {
                break;
            };
            free.retain(|s| *s != place.seq);
            // The sequence keeps the reused prefix; the rest of the old prompt and its answer go.
            cache.forget(place.seq);
            let reuse = match ctx.clear_kv_cache_seq(
                Some(place.seq as u32),
                Some(place.reuse as u32),
                None,
            ) {
                Ok(true) => place.reuse,
                _ => {
                    let _ = ctx.clear_kv_cache_seq(Some(place.seq as u32), None, None);
                    0
                }
            };
            let grammar = match &job.params.grammar {
                Some(Grammar::Always(g)) => Some(g.as_str()),
                _ => None,
            };
            match sampler_for(&model, &job.params, grammar) {
                Ok(sampler) => {
                    let pending = job.prompt.len() - reuse;
                    slots.push(Slot {
                        seq: place.seq,
                        job,
                        pending,
                        n_past: reuse as i32,
                        next: None,
                        sampler,
                        generated: 0,
                        utf8: Vec::new(),
                        text: String::new(),
                        sent: 0,
                        triggered: false,
                        first_token_ms: 0,
                        cached: reuse,
                    });
                }
                Err(e) => {
                    let _ = job.events.send(Event::Error(e));
                    let _ = ctx.clear_kv_cache_seq(Some(place.seq as u32), None, None);
                    free.push(place.seq);
                }
            }
        }

        let mut done: Vec<i32> = Vec::new();
        let mut failed: Vec<i32> = Vec::new();

        // One chunk of the longest-waiting prompt, alone in its forward pass and cut where a
        // fresh evaluation cuts it ([`prefix`]: the cache's exactness rests on this).
        let oldest = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.pending > 0)
            .min_by_key(|(_, s)| s.job.queued)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            let slot = &mut slots[i];
            let len = slot.job.prompt.len();
            let from = slot.n_past as usize;
            let end = prefix::chunk_end(from, len, chunk);
            batch.clear();
            let mut added = true;
            for p in from..end {
                if batch
                    .add(slot.job.prompt[p], p as i32, &[slot.seq], p + 1 == len)
                    .is_err()
                {
                    added = false;
                    break;
                }
            }
            if !added {
                slot.emit(Event::Error(
                    "the prompt chunk did not fit the batch".into(),
                ));
                failed.push(slot.seq);
            } else if let Err(e) = ctx.decode(&mut batch) {
                slot.emit(Event::Error(format!("decode failed: {e}")));
                failed.push(slot.seq);
            } else {
                slot.n_past = end as i32;
                slot.pending = len - end;
                if slot.pending == 0 && advance(slot, &ctx, batch.n_tokens() - 1, &model, window) {
                    done.push(slot.seq);
                }
            }
        }

        // One decoding step for every sequence past its prompt.
        batch.clear();
        let mut logits_at: Vec<(usize, i32)> = Vec::new();
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.pending > 0 || done.contains(&slot.seq) || failed.contains(&slot.seq) {
                continue;
            }
            if let Some(tok) = slot.next.take()
                && batch.add(tok, slot.n_past, &[slot.seq], true).is_ok()
            {
                logits_at.push((i, batch.n_tokens() - 1));
                slot.n_past += 1;
            }
        }
        if batch.n_tokens() > 0 {
            if let Err(e) = ctx.decode(&mut batch) {
                for (i, _) in &logits_at {
                    let slot = &mut slots[*i];
                    slot.emit(Event::Error(format!("decode failed: {e}")));
                    failed.push(slot.seq);
                }
            } else {
                for (i, at) in logits_at {
                    let slot = &mut slots[i];
                    if advance(slot, &ctx, at, &model, window) {
                        done.push(slot.seq);
                    }
                }
            }
        }

        let mut i = 0;
        while i < slots.len() {
            let seq = slots[i].seq;
            if failed.contains(&seq) {
                slots.swap_remove(i);
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                cache.forget(seq);
                free.push(seq);
            } else if done.contains(&seq) {
                let slot = slots.swap_remove(i);
                if slot.pending == 0 {
                    // Its prompt stays for the next request that starts the same way.
                    cache.store(seq, slot.job.prompt.iter().map(|t| t.0).collect());
                } else {
                    let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                    cache.forget(seq);
                }
                free.push(seq);
            } else {
                i += 1;
            }
        }
        // A caller that went away while its prompt was still being evaluated.
        let mut i = 0;
        while i < slots.len() {
            if slots[i].pending > 0 && slots[i].job.events.is_closed() {
                let seq = slots.swap_remove(i).seq;
                let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
                cache.forget(seq);
                free.push(seq);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_possible_stop_prefixes() {
        let stops = vec!["\nHuman:".to_string(), "END".to_string()];
        assert_eq!(held_back("hello\nHu", &stops), 3);
        assert_eq!(held_back("hello EN", &stops), 2);
        assert_eq!(held_back("hello", &stops), 0);
        assert_eq!(held_back("héllo", &["é!".to_string()]), 0);
    }
}
