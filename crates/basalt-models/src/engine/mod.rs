//! The chat engine: a GGUF model run by llama.cpp, driven by one worker thread per loaded
//! model that batches every active request into each forward pass (continuous batching), so
//! concurrent callers share the machine fairly and the prompt of a newcomer is processed
//! alongside the decoding of others. A prompt that starts like an earlier one reuses the
//! keys and values the earlier one left in its sequence ([`prefix`]). A greedy answer that
//! copies from its prompt is decoded several tokens per pass: tokens drafted from the prompt
//! ([`lookup`]) are evaluated with the next one and kept as far as the model agrees with them.

pub mod lookup;
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
        /// Tokens drafted from the prompt and evaluated speculatively, and how many of them
        /// the model agreed with (generated without a pass of their own).
        drafted_tokens: usize,
        accepted_tokens: usize,
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
    /// Speculative decoding of greedy requests with tokens drafted from the prompt
    /// ([`lookup`]), where the machine proves it exact at load.
    #[serde(default = "default_true")]
    pub speculate: bool,
    /// One key/value cache of this many cells shared by all sequences (llama.cpp's unified
    /// cache; at least `ctx_per_seq`), instead of `ctx_per_seq` cells reserved for each. A
    /// request is admitted once its prompt and `max_tokens` fit beside what running requests
    /// reserved, evicting the least recently used cached prompts; until then it waits in the
    /// queue. More sequences fit the same memory, but a prompt's cells then land wherever
    /// cells are free, and llama.cpp's attention sums in cell order: answers can differ in
    /// the last bits (and so, rarely, in tokens) with what ran before, which the private
    /// caches never do.
    #[serde(default)]
    pub kv_cells: Option<u32>,
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
            speculate: true,
            kv_cells: None,
        }
    }
}

/// What a worker proves about this machine's kernels at load, before it serves anything.
#[derive(Debug, Clone, Copy, Default)]
struct Proven {
    /// The prefix cache's alignment (`None`: the cache is off).
    align: Option<usize>,
    /// The widest bit-exact verification pass (0 or 1: speculation is off).
    width: usize,
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
    /// What the worker proved on this machine at load.
    proven: Proven,
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
        // The worker reports once its context exists and its exactness proofs have run.
        let proven = ready_rx.recv().unwrap_or_default();
        Ok(ChatEngine {
            model,
            jobs: tx,
            proven,
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
        self.proven.align
    }

    /// The most tokens a speculative pass evaluates for one sequence (the next token and the
    /// drafted ones), proven bit-exact on this machine at load; 1 when speculation is off.
    pub fn verify_width(&self) -> usize {
        self.proven.width.max(1)
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
    /// Cells this request may come to hold in a shared cache: prompt, answer and drafts.
    reserve: usize,
    /// Prompt and generated tokens, kept while the request may decode speculatively (greedy,
    /// no grammar): where drafts are looked up.
    history: Option<Vec<i32>>,
    drafted: usize,
    accepted: usize,
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
            drafted_tokens: self.drafted,
            accepted_tokens: self.accepted,
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
    if let Some(h) = &mut slot.history {
        h.push(tok.0);
    }
    slot.next = Some(tok);
    false
}

impl Slot {
    /// Tokens to evaluate after `next` in this step's pass: a draft from the prompt, cut so
    /// that the pass stays within `width` tokens, the request's token budget and the window.
    fn draft(&self, width: usize, window: i32) -> Vec<LlamaToken> {
        let Some(history) = &self.history else {
            return Vec::new();
        };
        let budget = (self.job.params.max_tokens as usize).saturating_sub(self.generated + 1);
        let room = (window - self.n_past - 2).max(0) as usize;
        lookup::draft(history, width.saturating_sub(1).min(budget).min(room))
            .into_iter()
            .map(LlamaToken)
            .collect()
    }
}

/// Takes the tokens a pass produced for `slot`: the model's token after `next` (row `at`),
/// then, while that token is the next drafted one (whose row follows), the model's token
/// after it, and so on. The rows of rejected drafts leave the cache. True when the slot is
/// done.
fn verify(
    slot: &mut Slot,
    ctx: &mut LlamaContext,
    at: i32,
    drafted: &[LlamaToken],
    model: &LlamaModel,
    window: i32,
) -> Result<bool, String> {
    // `n_past` counts `next` already; rows hold positions base, base + 1, ...
    let base = slot.n_past - 1;
    slot.drafted += drafted.len();
    let mut row = 0;
    loop {
        slot.n_past = base + 1 + row as i32;
        if advance(slot, ctx, at + row as i32, model, window) {
            return Ok(true);
        }
        match drafted.get(row) {
            Some(d) if slot.next == Some(*d) => {
                // The model's own token, and its row already evaluated: no pass of its own.
                slot.next = None;
                slot.accepted += 1;
                row += 1;
            }
            Some(_) => {
                let from = (base + 1 + row as i32) as u32;
                return match ctx.clear_kv_cache_seq(Some(slot.seq as u32), Some(from), None) {
                    Ok(true) => Ok(false),
                    _ => Err("removing a rejected draft from the cache failed".into()),
                };
            }
            None => return Ok(false),
        }
    }
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

/// Frees room in a shared cache of `cells` cells for a request placed at `place` that may
/// come to hold `reserve` cells: what running requests reserved stays theirs, and cached
/// prompts of idle sequences (the placed one's reused prefix excepted) are dropped, least
/// recently used first, until the request fits. False when it cannot fit yet.
fn make_room(
    ctx: &mut LlamaContext,
    cache: &mut PrefixCache,
    slots: &[Slot],
    free: &[i32],
    place: prefix::Placement,
    reserve: usize,
    cells: usize,
) -> bool {
    let held = |ctx: &LlamaContext, seq: i32| (ctx.kv_cache_seq_pos_max(seq) + 1).max(0) as usize;
    let running: usize = slots.iter().map(|s| s.reserve).sum();
    loop {
        let idle: usize = free
            .iter()
            .filter(|&&s| s != place.seq)
            .map(|&s| held(ctx, s))
            .sum();
        // The placed sequence keeps its reused prefix; its cells beyond go.
        let room = cells.saturating_sub(running + idle);
        if room >= reserve.saturating_sub(place.reuse) {
            return true;
        }
        let victim = cache
            .least_recent(
                free.iter()
                    .copied()
                    .filter(|&s| s != place.seq && held(ctx, s) > 0),
            )
            .or_else(|| {
                free.iter()
                    .copied()
                    .find(|&s| s != place.seq && held(ctx, s) > 0)
            });
        let Some(seq) = victim else {
            return false;
        };
        let _ = ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        cache.forget(seq);
        if held(ctx, seq) > 0 {
            // The cache did not give the cells back: wait rather than spin.
            return false;
        }
    }
}

/// The widest speculative pass tried. x86 kernels take rows in groups of four through another
/// path than a lone row, so four rows are never bit-identical to one at a time there.
const MAX_WIDTH: usize = 4;

/// Places in [`PROOF_TEXT`] where a pass is checked. Whether a pass matches one token at a
/// time can depend on its position (measured: with llamafile's kernels, two-token passes
/// match at a few positions and differ at most), so one place proves nothing.
const WIDTH_STARTS: [usize; 8] = [9, 17, 26, 35, 44, 53, 62, 71];

/// A pass of `w` tokens must cost at most `1 + SPEC_MARGIN * (w - 1)` single passes: it
/// then pays once about half its drafted tokens are accepted (prompt lookup on extractive
/// answers accepts more).
const SPEC_MARGIN: f64 = 0.5;

/// The widest pass, up to [`MAX_WIDTH`] tokens of one sequence, that is bit-identical to
/// decoding the same tokens one at a time (the logits of every row, and, through the next
/// token decoded alone after it, the keys and values the pass left in the cache) at every
/// one of [`WIDTH_STARTS`], and that pays ([`SPEC_MARGIN`], timed here). 1 when none is:
/// speculation is then off. Uses sequence 0, cleared after.
fn prove_width(ctx: &mut LlamaContext, model: &LlamaModel, chunk: usize) -> Widths {
    let tokens = model.vocab().tokenize(PROOF_TEXT.as_bytes(), false, false);
    width_at(ctx, &tokens, &WIDTH_STARTS, chunk)
}

/// What [`prove_width`] found: the widest exact pass, the one used (also paying), and the
/// cost of each width in single passes (median over the places checked).
#[derive(Debug, Clone, Default)]
struct Widths {
    exact: usize,
    used: usize,
    cost: Vec<f64>,
}

/// [`prove_width`] over `tokens` at each of `starts`.
fn width_at(
    ctx: &mut LlamaContext,
    tokens: &[LlamaToken],
    starts: &[usize],
    chunk: usize,
) -> Widths {
    let none = Widths {
        exact: 1,
        used: 1,
        cost: Vec::new(),
    };
    let mut batch = LlamaBatch::new(chunk.max(MAX_WIDTH + 1), 1);
    // The logits of every row and the pass's time.
    let mut eval = |ctx: &mut LlamaContext, at: usize, toks: &[LlamaToken]| {
        batch.clear();
        for (i, t) in toks.iter().enumerate() {
            batch.add(*t, (at + i) as i32, &[0], true).ok()?;
        }
        let t0 = Instant::now();
        ctx.decode(&mut batch).ok()?;
        let secs = t0.elapsed().as_secs_f64();
        let rows: Vec<Vec<f32>> = (0..toks.len() as i32)
            .map(|i| ctx.get_logits_ith(i).to_vec())
            .collect();
        Some((rows, secs))
    };
    let same = |a: &[f32], b: &[f32]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    };
    let mut exact = MAX_WIDTH;
    // Seconds per pass, by width (index 0: one token).
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); MAX_WIDTH];
    for &start in starts {
        if tokens.len() < start + MAX_WIDTH + 1 || start > chunk {
            return none;
        }
        let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
        if eval(ctx, 0, &tokens[..start]).is_none() {
            return none;
        }
        // One token at a time: the reference.
        let mut one: Vec<Vec<f32>> = Vec::new();
        for i in 0..=exact {
            let Some((mut rows, secs)) = eval(ctx, start + i, &tokens[start + i..start + i + 1])
            else {
                return none;
            };
            one.push(rows.remove(0));
            times[0].push(secs);
        }
        for w in 2..=exact {
            let cleared = ctx.clear_kv_cache_seq(Some(0), Some(start as u32), None) == Ok(true);
            let pass = eval(ctx, start, &tokens[start..start + w]).filter(|_| cleared);
            let ok = pass.as_ref().is_some_and(|(rows, secs)| {
                times[w - 1].push(*secs);
                rows.iter().zip(&one).all(|(a, b)| same(a, b))
            }) && eval(ctx, start + w, &tokens[start + w..start + w + 1])
                .is_some_and(|(rows, _)| same(&rows[0], &one[w]));
            if !ok {
                exact = w - 1;
                break;
            }
        }
        if exact < 2 {
            break;
        }
    }
    let _ = ctx.clear_kv_cache_seq(Some(0), None, None);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let single = median(&mut times[0]).unwrap_or(0.0);
    let cost: Vec<f64> = times
        .iter_mut()
        .map_while(median)
        .map(|t| {
            if single > 0.0 {
                t / single
            } else {
                f64::INFINITY
            }
        })
        .collect();
    let used = (2..=exact)
        .filter(|&w| {
            cost.get(w - 1)
                .is_some_and(|c| *c <= 1.0 + SPEC_MARGIN * (w - 1) as f64)
        })
        .max()
        .unwrap_or(1);
    Widths { exact, used, cost }
}

fn worker(
    model: Arc<LlamaModel>,
    config: EngineConfig,
    jobs: mpsc::Receiver<Job>,
    ready: mpsc::Sender<Proven>,
) {
    let Ok(backend) = backend() else { return };
    let shared = config.kv_cells.map(|c| c.max(config.ctx_per_seq));
    let n_ctx = shared.unwrap_or(config.ctx_per_seq * config.parallel);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(config.batch)
        .with_n_seq_max(config.parallel)
        .with_kv_unified(shared.is_some())
        .with_n_threads(config.threads)
        .with_n_threads_batch(config.threads)
        // Flash attention off, as llama.cpp's CPU defaults elsewhere (llama-cpp-python, the
        // server without -fa): same numerics, same greedy tokens.
        .with_flash_attention_policy(0);
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Proven::default());
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
    let width = if config.speculate {
        let w = prove_width(&mut ctx, &model, chunk);
        let cost = format!("{:.2?}", w.cost);
        match (w.used, w.exact) {
            (u, _) if u > 1 => tracing::info!(width = u, cost, "speculative decoding on"),
            (_, 1) => tracing::info!(
                cost,
                "speculative decoding off: passes of two tokens are not bit-identical to one at a time on these kernels"
            ),
            (_, e) => tracing::info!(
                exact = e,
                cost,
                "speculative decoding off: wider passes cost more than drafts save on this machine"
            ),
        }
        w.used
    } else {
        1
    };
    let _ = ready.send(Proven { align, width });
    let mut cache = PrefixCache::new(config.parallel as usize, align);
    let mut slots: Vec<Slot> = Vec::new();
    let mut free: Vec<i32> = (0..config.parallel as i32).collect();
    let mut batch = LlamaBatch::new(config.batch as usize, 1);
    // A request that waits for room in the shared cache, first in line.
    let mut waiting: Option<Job> = None;

    loop {
        // Admit new requests while sequences are free; block only when idle.
        while !free.is_empty() {
            let job = match waiting.take() {
                Some(j) => j,
                None if slots.is_empty() => match jobs.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
                None => match jobs.try_recv() {
                    Ok(j) => j,
                    Err(_) => break,
                },
            };
            if job.events.is_closed() {
                continue;
            }
            let ids: Vec<i32> = job.prompt.iter().map(|t| t.0).collect();
            let Some(place) = cache.place(&free, &ids) else {
                waiting = Some(job);
                break;
            };
            let reserve = (job.prompt.len() + job.params.max_tokens as usize + width)
                .min(config.ctx_per_seq as usize);
            if let Some(cells) = shared
                && !make_room(
                    &mut ctx,
                    &mut cache,
                    &slots,
                    &free,
                    place,
                    reserve,
                    cells as usize,
                )
            {
                // Running requests hold the room it needs: it goes first once they end.
                waiting = Some(job);
                break;
            }
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
                    let greedy = job.params.temperature.unwrap_or(0.0) <= 0.0;
                    let history =
                        (width > 1 && greedy && job.params.grammar.is_none()).then(|| ids.clone());
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
                        reserve,
                        history,
                        drafted: 0,
                        accepted: 0,
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

        // One decoding step for every sequence past its prompt. A sequence that decodes
        // alone also evaluates its draft in the pass: its rows then take the kernels' path of
        // a lone token ([`prove_width`]), which rows of other sequences would change.
        batch.clear();
        let decoding = slots
            .iter()
            .filter(|s| s.next.is_some() && !done.contains(&s.seq) && !failed.contains(&s.seq))
            .count();
        let mut logits_at: Vec<(usize, i32, Vec<LlamaToken>)> = Vec::new();
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.pending > 0 || done.contains(&slot.seq) || failed.contains(&slot.seq) {
                continue;
            }
            let Some(tok) = slot.next.take() else {
                continue;
            };
            if batch.add(tok, slot.n_past, &[slot.seq], true).is_err() {
                continue;
            }
            let at = batch.n_tokens() - 1;
            let mut drafted = if decoding == 1 {
                slot.draft(width, window)
            } else {
                Vec::new()
            };
            // Only a lone sequence drafts, and a batch holds more than a pass's width; a draft
            // that would not fit whole is not added at all (its rows would stay in the cache).
            if batch.n_tokens() as usize + drafted.len() > config.batch as usize {
                drafted.clear();
            }
            for (j, d) in drafted.iter().enumerate() {
                // Cannot fail: the room was checked above.
                let _ = batch.add(*d, slot.n_past + 1 + j as i32, &[slot.seq], true);
            }
            logits_at.push((i, at, drafted));
            slot.n_past += 1;
        }
        if batch.n_tokens() > 0 {
            if let Err(e) = ctx.decode(&mut batch) {
                for (i, _, _) in &logits_at {
                    let slot = &mut slots[*i];
                    slot.emit(Event::Error(format!("decode failed: {e}")));
                    failed.push(slot.seq);
                }
            } else {
                for (i, at, drafted) in logits_at {
                    let slot = &mut slots[i];
                    match verify(slot, &mut ctx, at, &drafted, &model, window) {
                        Ok(true) => done.push(slot.seq),
                        Ok(false) => {}
                        Err(e) => {
                            slot.emit(Event::Error(e));
                            failed.push(slot.seq);
                        }
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

    /// Where speculation is exact: the exact width and the cost of each width (in single
    /// passes) at every start position of a long text; `SWEEP_MODEL` another GGUF.
    /// `cargo test --release -p basalt-models --lib width_sweep -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn width_sweep() {
        let path = std::env::var_os("SWEEP_MODEL")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::pull::model_dir().join(crate::pull::DEFAULT_CHAT));
        let backend = backend_for(&path, 2).unwrap();
        let model =
            LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default()).unwrap();
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(4096))
            .with_n_batch(512)
            .with_n_seq_max(1)
            .with_n_threads(2)
            .with_n_threads_batch(2)
            .with_flash_attention_policy(0);
        let mut ctx = model.new_context(backend, params).unwrap();
        // The corpus's first document by name, so that every sweep reads the same text.
        let first = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../bench/kb/docs")
            .read_dir()
            .unwrap()
            .map(|e| e.unwrap().path())
            .min()
            .unwrap();
        let text = std::fs::read_to_string(first).unwrap();
        let tokens = model.vocab().tokenize(text.as_bytes(), false, false);
        let step: usize = std::env::var("SWEEP_STEP")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(7);
        let mut line = String::new();
        for start in (4..500.min(tokens.len() - 10)).step_by(step) {
            let w = width_at(&mut ctx, &tokens, &[start], 512);
            line.push_str(&format!("{start}:{}/{:.1?} ", w.exact, w.cost));
        }
        eprintln!("{line}");
    }

    #[test]
    fn holds_back_possible_stop_prefixes() {
        let stops = vec!["\nHuman:".to_string(), "END".to_string()];
        assert_eq!(held_back("hello\nHu", &stops), 3);
        assert_eq!(held_back("hello EN", &stops), 2);
        assert_eq!(held_back("hello", &stops), 0);
        assert_eq!(held_back("héllo", &["é!".to_string()]), 0);
    }
}
