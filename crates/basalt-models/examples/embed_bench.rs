//! Embedding benchmark: sentences/s of `EmbeddingModel::embed`, the call the server makes.
//!
//! ```sh
//! cargo build --release -p basalt-models --examples
//! target/release/examples/embed_bench [--model DIR] [--n 1000] [--reps 3] [--sentences FILE.json]
//!     [--threads N] [--precision f32|bf16]
//! ```
//!
//! Two shapes of traffic: `batched` = one `embed` call with all sentences (a Cohere-style
//! request; the model sorts by length and runs batches of 32), and `single` = one call per
//! sentence (a Titan-style request, one `inputText`). Sentences default to the same generator
//! as bench/embeddings.py (20 random words from a fixed list, seeded); `--sentences` reads a
//! JSON list instead so both sides embed identical text. Prints one JSON document.

use basalt_models::EmbeddingModel;
use basalt_models::embed::{EmbedConfig, Precision};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn main() {
    let mut dir = dirs::home_dir()
        .unwrap_or_default()
        .join(".cache/basalt/models/all-minilm-l6-v2");
    let mut n = 1000usize;
    let mut reps = 3usize;
    let mut file: Option<PathBuf> = None;
    let mut single = true;
    let mut config = EmbedConfig::default();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--model" => dir = PathBuf::from(v),
            "--n" => n = v.parse().expect("--n N"),
            "--reps" => reps = v.parse().expect("--reps N"),
            "--sentences" => file = Some(PathBuf::from(v)),
            "--threads" => config.threads = v.parse().expect("--threads N"),
            "--precision" => {
                config.precision = v.parse::<Precision>().expect("--precision f32|bf16")
            }
            "--no-single" => {
                single = false;
                i += 1;
                continue;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let sentences: Vec<String> = match &file {
        Some(f) => serde_json::from_slice(&std::fs::read(f).expect("sentences file"))
            .expect("JSON list of strings"),
        None => {
            let words: Vec<&str> = "the a cloud service stores data securely while users upload photos videos and documents from phones laptops servers in many regions across the world every day with low latency high throughput and strong consistency guarantees for developers building modern applications that scale".split(' ').collect();
            // xorshift, seeded: deterministic, no dependency.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            (0..n)
                .map(|_| {
                    (0..20)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            words[(x % words.len() as u64) as usize]
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        }
    };
    let t = Instant::now();
    let model = EmbeddingModel::load_with(&dir, config).expect("load embedding model");
    let load_s = t.elapsed().as_secs_f64();
    let tokens: usize = sentences
        .iter()
        .map(|s| model.count_tokens(s).unwrap())
        .sum();
    // Warm-up.
    model
        .embed(&sentences[..64.min(sentences.len())])
        .expect("embed");
    let mut batched = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let (v, _) = model.embed(&sentences).expect("embed");
        batched.push(sentences.len() as f64 / t.elapsed().as_secs_f64());
        assert_eq!(v.len(), sentences.len());
    }
    let mut one = Vec::new();
    if single {
        for _ in 0..reps {
            let t = Instant::now();
            for s in &sentences {
                model.embed(std::slice::from_ref(s)).expect("embed");
            }
            one.push(sentences.len() as f64 / t.elapsed().as_secs_f64());
        }
    }
    let probe: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market crashed today.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (e, _) = model.embed(&probe).expect("embed");
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    println!(
        "{}",
        json!({
            "engine": format!("basalt EmbeddingModel (own BERT encoder, {})", model.kernel().name()), "model": model.name,
            "n_sent": sentences.len(), "avg_tokens": r1(tokens as f64 / sentences.len() as f64),
            "load_s": (load_s * 1000.0).round() / 1000.0,
            "batched_sent_s": batched.iter().map(|x| r1(*x)).collect::<Vec<_>>(),
            "batched_median": r1(median(&batched)),
            "single_sent_s": one.iter().map(|x| r1(*x)).collect::<Vec<_>>(),
            "single_median": if one.is_empty() { serde_json::Value::Null } else { json!(r1(median(&one))) },
            "cos_sim_related": (dot(&e[0], &e[1]) as f64 * 1e4).round() / 1e4,
            "cos_sim_unrelated": (dot(&e[0], &e[2]) as f64 * 1e4).round() / 1e4,
        })
    );
}
