//! The prefix cache is exact: a request whose prompt shares a prefix with an earlier one (and
//! so reuses its keys and values) gets, token for token, the greedy answer an engine without
//! the cache gives. Pairs are drawn from the knowledge-base bench corpus: a shared prefix of
//! 64 to 1,100 tokens (a system text) followed by different questions.
//!
//! The engine proves its alignment at load (`engine::prefix`); on the Intel development machine
//! it is 4 tokens. `make test` runs a small sample; `BASALT_PREFIX_PAIRS=240 cargo test --release -p
//! basalt-models --test engine prefix_cache -- --nocapture` runs the full measurement (about ten
//! minutes on two cores). Skipped when the default model has not been pulled.

use basalt_models::engine::{ChatEngine, EngineConfig, Event, GenParams};
use basalt_models::pull;
use std::path::PathBuf;

pub fn config(prefix_cache: bool, parallel: u32) -> EngineConfig {
    EngineConfig {
        threads: 2,
        parallel,
        ctx_per_seq: 2048,
        max_queue: 16,
        batch: 512,
        prefix_cache,
        // The engine without the cache does not speculate either: answers with both are
        // compared with answers with neither.
        speculate: prefix_cache,
        kv_cells: None,
    }
}

/// The generated text of a greedy generation, split as the engine emitted it (one event per
/// token), and its `Done` event.
pub async fn generate(
    engine: &ChatEngine,
    prompt: Vec<u32>,
    max_tokens: u32,
) -> (Vec<String>, Event) {
    let mut rx = engine
        .generate(prompt, GenParams::greedy(max_tokens))
        .unwrap();
    let mut pieces = Vec::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text(t) => pieces.push(t),
            Event::Triggered => {}
            done @ Event::Done { .. } => return (pieces, done),
            Event::Error(e) => panic!("engine error: {e}"),
        }
    }
    panic!("the engine stopped without Done");
}

/// The generated text and how many prompt tokens came from the cache.
pub async fn run(engine: &ChatEngine, prompt: Vec<u32>, max_tokens: u32) -> (Vec<String>, usize) {
    match generate(engine, prompt, max_tokens).await {
        (pieces, Event::Done { cached_tokens, .. }) => (pieces, cached_tokens),
        _ => unreachable!("generate returns the Done event"),
    }
}

pub fn corpus() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/kb/docs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

pub fn chatml(system: &str, question: &str) -> String {
    format!(
        "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_answer_token_for_token_as_fresh_evaluations() {
    let path = pull::model_dir().join(pull::DEFAULT_CHAT);
    if !path.exists() {
        eprintln!(
            "skipped: {} not present (basalt models pull)",
            path.display()
        );
        return;
    }
    let pairs: usize = std::env::var("BASALT_PREFIX_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let gen_tokens = if pairs > 6 { 24 } else { 12 };
    let cached = ChatEngine::load(&path, config(true, 2)).unwrap();
    let fresh = ChatEngine::load(&path, config(false, 1)).unwrap();
    let docs = corpus();
    let questions = [
        "Summarize the text above in one sentence.",
        "What is the main topic?",
        "List three names or terms that appear in the text.",
        "Which year is mentioned first?",
        "Explain the second paragraph to a child.",
        "Give the text a title.",
    ];
    // Shared prefixes of varying lengths: small samples spread over 64..1,100 tokens.
    let per_prefix = if pairs > 6 { 6 } else { 2 };
    let prefixes = pairs.div_ceil(per_prefix);
    let (mut compared, mut identical, mut hits) = (0usize, 0usize, 0usize);
    let mut mismatches = Vec::new();
    for k in 0..prefixes {
        let doc = &docs[k % docs.len()];
        let tokens = cached.tokenize(doc, false);
        let want = 64 + (k * 997) % 1_040;
        let system = cached.detokenize(&tokens[..want.min(tokens.len())]);
        // The first request fills the cache with this system text.
        let warm = cached.tokenize(&chatml(&system, "Hello."), true);
        run(&cached, warm, 1).await;
        for q in 0..per_prefix {
            if compared == pairs {
                break;
            }
            let question = questions[(k + q) % questions.len()];
            let prompt = cached.tokenize(&chatml(&system, question), true);
            let (a, reused) = run(&cached, prompt.clone(), gen_tokens).await;
            let (b, _) = run(&fresh, prompt.clone(), gen_tokens).await;
            compared += 1;
            if reused > 0 {
                hits += 1;
            }
            if a == b {
                identical += 1;
            } else {
                mismatches.push(format!(
                    "prompt of {} tokens, {reused} reused: {:?} vs {:?}",
                    prompt.len(),
                    a.concat(),
                    b.concat()
                ));
            }
        }
    }
    eprintln!("{identical} of {compared} answers identical; {hits} cache hits");
    assert!(
        mismatches.is_empty(),
        "answers differ with the cache: {mismatches:#?}"
    );
    // Every prompt after the warm-up shares at least 64 tokens with the cached one.
    assert_eq!(hits, compared, "every pair must hit the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_prompt_reuses_all_but_its_ragged_end() {
    let path = pull::model_dir().join(pull::DEFAULT_CHAT);
    if !path.exists() {
        return;
    }
    let engine = ChatEngine::load(&path, config(true, 1)).unwrap();
    let text = corpus()[0].clone();
    let tokens = engine.tokenize(&text, false);
    let prompt: Vec<u32> = tokens[..300].to_vec();
    let (first, reused) = run(&engine, prompt.clone(), 4).await;
    assert_eq!(reused, 0);
    let (second, reused) = run(&engine, prompt.clone(), 4).await;
    let align = engine
        .prefix_alignment()
        .expect("an alignment is proven on this machine");
    assert_eq!(
        reused,
        299 / align * align,
        "300 tokens: reuse stops at the multiple of {align} below the last token"
    );
    assert_eq!(first, second);
    // A different prompt in the only sequence: nothing reusable, the old prefix is dropped.
    let other: Vec<u32> = tokens[300..400].to_vec();
    let (_, reused) = run(&engine, other, 2).await;
    assert_eq!(reused, 0);
}

/// A shared cache admits requests while their prompt and answer fit: with room for about one
/// at a time, four concurrent requests each wait their turn and all complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_shared_cache_queues_requests_until_there_is_room() {
    let path = pull::model_dir().join(pull::DEFAULT_CHAT);
    if !path.exists() {
        return;
    }
    let mut cfg = config(true, 4);
    cfg.ctx_per_seq = 512;
    cfg.kv_cells = Some(640);
    let engine = std::sync::Arc::new(ChatEngine::load(&path, cfg).unwrap());
    let text = corpus()[1].clone();
    let tokens = engine.tokenize(&text, false);
    let mut runs = Vec::new();
    for k in 0..4 {
        // 380 prompt tokens and 16 to generate: two never fit in 640 cells at once.
        let prompt: Vec<u32> = tokens[k * 7..k * 7 + 380].to_vec();
        let e = engine.clone();
        runs.push(tokio::spawn(async move { run(&e, prompt, 16).await }));
    }
    // Admitted all at once, they would need 1,584 cells of 640 and llama.cpp would refuse
    // the batch (`run` panics on an engine error).
    for r in runs {
        let (pieces, _) = r.await.expect("the request completes");
        assert!(!pieces.is_empty(), "every request is answered");
    }
}

/// With private caches a request's cells do not depend on what other sequences hold: the
/// answer to a prompt placed after unrelated, odd-sized residents is the fresh engine's.
/// (A shared cache, `kv_cells`, does not promise this: see `EngineConfig::kv_cells`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_do_not_depend_on_where_cells_land() {
    let path = pull::model_dir().join(pull::DEFAULT_CHAT);
    if !path.exists() {
        return;
    }
    let shared = ChatEngine::load(&path, config(true, 3)).unwrap();
    let fresh = ChatEngine::load(&path, config(false, 1)).unwrap();
    let docs = corpus();
    let mut mismatches = Vec::new();
    for k in 0..4 {
        // Odd-sized residents first, so that a shared cache would place the next prompt's
        // cells at unaligned places.
        for (i, len) in [(k + 1, 301 + 37 * k), (k + 2, 129 + 11 * k)] {
            let t = shared.tokenize(&docs[i % docs.len()], false);
            run(&shared, t[..len.min(t.len())].to_vec(), 3).await;
        }
        let t = shared.tokenize(&docs[(k + 5) % docs.len()], false);
        let system = shared.detokenize(&t[..400.min(t.len())]);
        let prompt = shared.tokenize(&chatml(&system, "Summarize the text above."), true);
        let (a, _) = run(&shared, prompt.clone(), 16).await;
        let (b, _) = run(&fresh, prompt, 16).await;
        if a != b {
            mismatches.push(format!("{k}: {:?} vs {:?}", a.concat(), b.concat()));
        }
    }
    assert!(mismatches.is_empty(), "answers differ: {mismatches:#?}");
}
