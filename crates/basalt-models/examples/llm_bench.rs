//! Chat-engine benchmark: prompt-processing and decode speed, greedy token ids (for an
//! agreement check against llama-cpp-python) and concurrency (time to first token, aggregate
//! output tokens/s), all through `ChatEngine::generate`, the path the server uses.
//!
//! ```sh
//! cargo build --release -p basalt-models --examples
//! target/release/examples/llm_bench --model ~/.cache/basalt/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
//!     --threads 2 --prompts bench/prompts.json --mode speed|greedy|concurrency [--parallel 4]
//! ```
//!
//! `--prompts` is a JSON object: `speed` (text, cut to `--prompt-tokens`, default 512),
//! `greedy` (raw prompts, special tokens parsed) and `concurrency` (raw prompts, cycled).
//! Output: one JSON document on stdout.
//!
//! The engine reports text, not token ids. In greedy mode the ids are recovered from the
//! text events: with no stop sequences the engine sends one event per token whose piece is
//! complete UTF-8, and every piece maps back to one vocabulary entry; an event that does not
//! (a character split over tokens) is reported as `null` and counted in `unresolved`.

use basalt_models::engine::{ChatEngine, EngineConfig, Event, GenParams};
use llama_cpp_2::token::LlamaToken;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

struct Args {
    model: PathBuf,
    threads: i32,
    parallel: u32,
    prompts: PathBuf,
    mode: String,
    prompt_tokens: usize,
    gen_tokens: u32,
    reps: usize,
    levels: Vec<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        model: dirs::home_dir()
            .unwrap_or_default()
            .join(".cache/basalt/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
        threads: 2,
        parallel: 4,
        prompts: PathBuf::from("bench/prompts.json"),
        mode: "speed".into(),
        prompt_tokens: 512,
        gen_tokens: 0,
        reps: 3,
        levels: vec![1, 4, 16],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--model" => a.model = PathBuf::from(v),
            "--threads" => a.threads = v.parse().expect("--threads N"),
            "--parallel" => a.parallel = v.parse().expect("--parallel N"),
            "--prompts" => a.prompts = PathBuf::from(v),
            "--mode" => a.mode = v,
            "--prompt-tokens" => a.prompt_tokens = v.parse().expect("--prompt-tokens N"),
            "--gen-tokens" => a.gen_tokens = v.parse().expect("--gen-tokens N"),
            "--reps" => a.reps = v.parse().expect("--reps N"),
            "--levels" => {
                a.levels = v
                    .split(',')
                    .map(|s| s.parse().expect("--levels 1,4,16"))
                    .collect()
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a
}

/// What one generation produced, timed on the caller's side.
struct Run {
    chunks: Vec<String>,
    generated: usize,
    prompt_tokens: usize,
    /// Engine-side: queued → first token sampled.
    engine_first_ms: u64,
    /// Caller-side: submitted → first event.
    first_event_s: f64,
    /// Caller-side: submitted → `Done`.
    done_s: f64,
    finish: String,
}

async fn run_one(engine: &ChatEngine, prompt: Vec<u32>, params: GenParams) -> Run {
    let t0 = Instant::now();
    let mut rx = engine.generate(prompt, params).expect("generate");
    let mut run = Run {
        chunks: Vec::new(),
        generated: 0,
        prompt_tokens: 0,
        engine_first_ms: 0,
        first_event_s: 0.0,
        done_s: 0.0,
        finish: String::new(),
    };
    let mut first = None;
    while let Some(ev) = rx.recv().await {
        if first.is_none() {
            first = Some(t0.elapsed().as_secs_f64());
        }
        match ev {
            Event::Text(t) => run.chunks.push(t),
            Event::Triggered => {}
            Event::Done {
                finish,
                prompt_tokens,
                generated_tokens,
                first_token_ms,
                ..
            } => {
                run.done_s = t0.elapsed().as_secs_f64();
                run.generated = generated_tokens;
                run.prompt_tokens = prompt_tokens;
                run.engine_first_ms = first_token_ms;
                run.finish = format!("{finish:?}");
                break;
            }
            Event::Error(e) => panic!("engine error: {e}"),
        }
    }
    run.first_event_s = first.unwrap_or(run.done_s);
    run
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile.
fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn speed(engine: &ChatEngine, args: &Args, prompts: &Value) -> Value {
    let text = prompts["speed"].as_str().expect("prompts.speed (text)");
    let mut tokens = engine.tokenize(text, false);
    assert!(
        tokens.len() >= args.prompt_tokens,
        "speed text has only {} tokens",
        tokens.len()
    );
    tokens.truncate(args.prompt_tokens);
    let gen_n = if args.gen_tokens > 0 {
        args.gen_tokens
    } else {
        128
    };
    // Warm-up: page the weights in, build the compute graphs.
    run_one(engine, tokens[..64].to_vec(), GenParams::greedy(8)).await;
    let (mut pp, mut tg, mut reps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.reps {
        let r = run_one(engine, tokens.clone(), GenParams::greedy(gen_n)).await;
        // First token = the whole prompt in one forward pass plus one sample.
        let pp_s = r.engine_first_ms as f64 / 1000.0;
        let decode_s = r.done_s - r.first_event_s;
        let pp_rate = tokens.len() as f64 / pp_s;
        let tg_rate = (r.generated.saturating_sub(1)) as f64 / decode_s;
        pp.push(pp_rate);
        tg.push(tg_rate);
        reps.push(json!({
            "prompt_tokens": r.prompt_tokens, "generated": r.generated, "finish": r.finish,
            "first_token_ms": r.engine_first_ms, "first_event_s": (r.first_event_s * 1000.0).round() / 1000.0,
            "total_s": (r.done_s * 1000.0).round() / 1000.0,
            "pp_tok_s": r1(pp_rate), "tg_tok_s": r1(tg_rate),
        }));
    }
    json!({
        "mode": "speed", "engine": "basalt ChatEngine (llama-cpp-2 0.1.160)",
        "threads": args.threads, "parallel": args.parallel,
        "prompt_tokens": tokens.len(), "gen_tokens": gen_n,
        "pp_tok_s": pp.iter().map(|x| r1(*x)).collect::<Vec<_>>(),
        "tg_tok_s": tg.iter().map(|x| r1(*x)).collect::<Vec<_>>(),
        "pp_median": r1(median(&pp)), "tg_median": r1(median(&tg)),
        "reps": reps,
        "prompt_ids": tokens,
    })
}

/// Piece bytes → token ids, over the whole vocabulary (special tokens render empty).
fn piece_map(engine: &ChatEngine) -> HashMap<Vec<u8>, Vec<u32>> {
    let vocab = engine.model().vocab();
    let mut m: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
    for t in 0..vocab.n_tokens() {
        let piece = vocab.token_to_piece(LlamaToken(t), false, None);
        if !piece.is_empty() {
            m.entry(piece).or_default().push(t as u32);
        }
    }
    m
}

fn resolve(run: &Run, map: &HashMap<Vec<u8>, Vec<u32>>) -> (Vec<Option<u32>>, usize) {
    let mut ids = Vec::new();
    let mut unresolved = 0;
    for c in &run.chunks {
        match map.get(c.as_bytes()) {
            Some(v) if v.len() == 1 => ids.push(Some(v[0])),
            _ => {
                ids.push(None);
                unresolved += 1;
            }
        }
    }
    // Tokens with no event of their own (a split character, or an empty piece); the
    // end-of-generation token that ends a sequence is counted in `generated` but has no text.
    let eog = usize::from(run.finish == "Eog");
    let missing = run.generated.saturating_sub(run.chunks.len() + eog);
    (ids, unresolved + missing)
}

async fn greedy_ids(engine: Arc<ChatEngine>, args: &Args, prompts: &Value) -> Value {
    let list: Vec<String> = prompts["greedy"]
        .as_array()
        .expect("prompts.greedy (list)")
        .iter()
        .map(|v| v.as_str().expect("string prompt").to_owned())
        .collect();
    let n = if args.gen_tokens > 0 {
        args.gen_tokens
    } else {
        32
    };
    let map = piece_map(&engine);
    run_one(
        &engine,
        engine.tokenize(&list[0], true),
        GenParams::greedy(4),
    )
    .await;
    let t0 = Instant::now();
    let mut sequential = Vec::new();
    for p in &list {
        let ids = engine.tokenize(p, true);
        let r = run_one(&engine, ids.clone(), GenParams::greedy(n)).await;
        let (out, unresolved) = resolve(&r, &map);
        sequential.push(json!({
            "prompt_ids": ids, "tokens": out, "unresolved": unresolved,
            "generated": r.generated, "finish": r.finish, "text": r.chunks.concat(),
        }));
    }
    let sequential_s = t0.elapsed().as_secs_f64();
    // The same prompts all at once: continuous batching puts several sequences in each
    // forward pass; greedy output should not depend on it.
    let t1 = Instant::now();
    let handles: Vec<_> = list
        .iter()
        .map(|p| {
            let e = engine.clone();
            let ids = e.tokenize(p, true);
            tokio::spawn(async move { run_one(&e, ids, GenParams::greedy(n)).await })
        })
        .collect();
    let mut concurrent = Vec::new();
    for h in handles {
        let r = h.await.expect("join");
        let (out, unresolved) = resolve(&r, &map);
        concurrent
            .push(json!({"tokens": out, "unresolved": unresolved, "text": r.chunks.concat()}));
    }
    let concurrent_s = t1.elapsed().as_secs_f64();
    json!({
        "mode": "greedy", "threads": args.threads, "parallel": args.parallel, "gen_tokens": n,
        "sequential_s": (sequential_s * 100.0).round() / 100.0, "concurrent_s": (concurrent_s * 100.0).round() / 100.0,
        "results": sequential, "concurrent": concurrent,
    })
}

async fn concurrency(engine: Arc<ChatEngine>, args: &Args, prompts: &Value) -> Value {
    let list: Vec<String> = prompts["concurrency"]
        .as_array()
        .expect("prompts.concurrency (list)")
        .iter()
        .map(|v| v.as_str().expect("string prompt").to_owned())
        .collect();
    let n_out = if args.gen_tokens > 0 {
        args.gen_tokens
    } else {
        64
    };
    run_one(
        &engine,
        engine.tokenize(&list[0], true),
        GenParams::greedy(8),
    )
    .await;
    let mut rows = Vec::new();
    for &level in &args.levels {
        let t0 = Instant::now();
        let handles: Vec<_> = (0..level)
            .map(|i| {
                let e = engine.clone();
                let ids = e.tokenize(&list[i % list.len()], true);
                tokio::spawn(async move { run_one(&e, ids, GenParams::greedy(n_out)).await })
            })
            .collect();
        let mut runs = Vec::new();
        for h in handles {
            runs.push(h.await.expect("join"));
        }
        let wall = t0.elapsed().as_secs_f64();
        let ttft: Vec<f64> = runs.iter().map(|r| r.first_event_s * 1000.0).collect();
        let total: usize = runs.iter().map(|r| r.generated).sum();
        let prompt: usize = runs.iter().map(|r| r.prompt_tokens).sum();
        let latency: Vec<f64> = runs.iter().map(|r| r.done_s * 1000.0).collect();
        rows.push(json!({
            "concurrent": level, "requests": runs.len(),
            "prompt_tokens": prompt, "output_tokens": total,
            "wall_s": (wall * 1000.0).round() / 1000.0,
            "ttft_ms_p50": r1(pct(&ttft, 50.0)), "ttft_ms_p99": r1(pct(&ttft, 99.0)),
            "latency_ms_p50": r1(pct(&latency, 50.0)), "latency_ms_p99": r1(pct(&latency, 99.0)),
            "output_tok_s": r1(total as f64 / wall),
            "per_request_tok_s_p50": r1(median(&runs.iter().map(|r| r.generated as f64 / (r.done_s - r.first_event_s).max(1e-9)).collect::<Vec<_>>())),
        }));
    }
    json!({
        "mode": "concurrency", "threads": args.threads, "parallel": args.parallel,
        "gen_tokens": n_out, "levels": rows,
    })
}

/// Requests one after another, as given (`--prompts` holds `{"requests": [{"prompt": [ids],
/// "max_tokens": n}]}`): per request, time to first token and to the end, the reused prompt
/// tokens, the drafted and accepted tokens, the text pieces and the greedy token count. The
/// prefix cache is on unless `BASALT_PREFIX_CACHE=0`, speculation unless `BASALT_SPECULATE=0`.
async fn sequence(engine: &ChatEngine, prompts: &Value) -> Value {
    let list = prompts["requests"].as_array().expect("prompts.requests");
    let mut rows = Vec::new();
    for r in list {
        let ids: Vec<u32> = r["prompt"]
            .as_array()
            .expect("prompt ids")
            .iter()
            .map(|v| v.as_u64().expect("token id") as u32)
            .collect();
        let n = r["max_tokens"].as_u64().unwrap_or(32) as u32;
        let t0 = Instant::now();
        let mut rx = engine
            .generate(ids.clone(), GenParams::greedy(n))
            .expect("generate");
        let (mut first, mut pieces, mut cached) = (None, Vec::new(), 0);
        let (mut generated, mut drafted, mut accepted) = (0, 0, 0);
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Text(t) => {
                    first.get_or_insert(t0.elapsed().as_secs_f64());
                    pieces.push(t);
                }
                Event::Done {
                    cached_tokens,
                    first_token_ms,
                    generated_tokens,
                    drafted_tokens,
                    accepted_tokens,
                    ..
                } => {
                    cached = cached_tokens;
                    (generated, drafted, accepted) =
                        (generated_tokens, drafted_tokens, accepted_tokens);
                    first.get_or_insert(first_token_ms as f64 / 1000.0);
                    break;
                }
                Event::Triggered => {}
                Event::Error(e) => panic!("engine error: {e}"),
            }
        }
        rows.push(json!({
            "prompt_tokens": ids.len(), "cached_tokens": cached,
            "ttft_s": first.unwrap_or(0.0), "total_s": t0.elapsed().as_secs_f64(),
            "generated_tokens": generated, "drafted_tokens": drafted,
            "accepted_tokens": accepted, "text": pieces.concat(),
        }));
    }
    json!({"mode": "sequence", "requests": rows})
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let prompts: Value = serde_json::from_slice(
        &std::fs::read(&args.prompts).unwrap_or_else(|e| panic!("{}: {e}", args.prompts.display())),
    )
    .expect("prompts JSON");
    let prefix_cache = std::env::var("BASALT_PREFIX_CACHE").map_or(true, |v| v != "0");
    let speculate = std::env::var("BASALT_SPECULATE").map_or(true, |v| v != "0");
    let config = EngineConfig {
        threads: args.threads,
        parallel: args.parallel,
        ctx_per_seq: 2048,
        max_queue: 64,
        batch: 512,
        prefix_cache,
        speculate,
        // One cache of this many cells shared by all sequences (`engine::EngineConfig`).
        kv_cells: std::env::var("BASALT_KV_CELLS")
            .ok()
            .and_then(|v| v.parse().ok()),
    };
    let t = Instant::now();
    let engine = Arc::new(ChatEngine::load(&args.model, config).expect("load model"));
    let load_s = t.elapsed().as_secs_f64();
    let mut out = match args.mode.as_str() {
        "speed" => speed(&engine, &args, &prompts).await,
        "greedy" => greedy_ids(engine.clone(), &args, &prompts).await,
        "concurrency" => concurrency(engine.clone(), &args, &prompts).await,
        "sequence" => sequence(&engine, &prompts).await,
        m => {
            eprintln!("--mode speed|greedy|concurrency, not {m}");
            std::process::exit(2);
        }
    };
    out["load_s"] = json!((load_s * 1000.0).round() / 1000.0);
    out["verify_width"] = json!(engine.verify_width());
    out["model"] = json!(
        args.model
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
    );
    println!("{}", serde_json::to_string(&out).expect("json"));
}
