//! Measures the HNSW search against the exact scan on vectors read from files.
//!
//! ```text
//! cargo run --release --example ann_bench -p basalt-vector -- \
//!     --base base.f32 --queries queries.f32 [--metric cosine|euclidean] [--ef 32,64,128] \
//!     [--exact-below N] [--churn ROUNDS]
//! ```
//!
//! `--churn` ends with rounds of updates: each removes a quarter of the entries and upserts
//! them again (same keys, same vectors), so the exact answers do not change and the recall
//! at the default ef shows what the removals did to the graph.
//!
//! `--exact-below` defaults to 0, so that the graph is measured however small the base set
//! is (the index itself scans below `basalt_vector::EXACT_BELOW` entries).
//!
//! Each file: a little-endian u32 count, a u32 dimension, then count × dimension
//! little-endian f32. Prints one JSON object per line (build, one per ef, filtered), so that
//! bench/vector_index.py can read them.

use basalt_vector::{Filter, Index, Metric};
use serde_json::{Map, json};
use std::collections::HashSet;
use std::time::Instant;

const K: usize = 10;

fn read_vectors(path: &str) -> Result<(usize, Vec<Vec<f32>>), String> {
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let word = |i: usize| -> Result<u32, String> {
        raw.get(i * 4..i * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| format!("{path}: shorter than its header"))
    };
    let (n, dim) = (word(0)? as usize, word(1)? as usize);
    let body = &raw[8..];
    if dim == 0 || body.len() != n * dim * 4 {
        return Err(format!(
            "{path}: {n} × {dim} f32 need {} bytes after the header, found {}",
            n * dim * 4,
            body.len()
        ));
    }
    let floats: Vec<f32> = body
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((dim, floats.chunks_exact(dim).map(<[f32]>::to_vec).collect()))
}

/// Queries per second over `queries` with `threads` threads sharing the index, and each
/// query's keys. The query set is repeated until a run lasts about a second, so that short
/// runs are not all noise.
fn run(
    idx: &Index,
    queries: &[Vec<f32>],
    filter: Option<&Filter>,
    threads: usize,
) -> (f64, Vec<Vec<String>>) {
    let one = |q: &Vec<f32>| -> Vec<String> {
        idx.nearest(q, K, filter)
            .map(|hits| hits.into_iter().map(|h| h.key).collect())
            .unwrap_or_default()
    };
    let results: Vec<Vec<String>> = queries.iter().map(one).collect();
    let chunk = queries.len().div_ceil(threads.max(1)).max(1);
    let mut done = 0usize;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < 1.0 {
        std::thread::scope(|s| {
            for part in queries.chunks(chunk) {
                s.spawn(move || {
                    for q in part {
                        std::hint::black_box(one(q));
                    }
                });
            }
        });
        done += queries.len();
    }
    (done as f64 / start.elapsed().as_secs_f64(), results)
}

fn exact(idx: &Index, queries: &[Vec<f32>], filter: Option<&Filter>) -> Vec<Vec<String>> {
    queries
        .iter()
        .map(|q| {
            idx.nearest_exact(q, K, filter)
                .map(|h| h.into_iter().map(|h| h.key).collect())
                .unwrap_or_default()
        })
        .collect()
}

fn recall(got: &[Vec<String>], truth: &[Vec<String>]) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for (g, t) in got.iter().zip(truth) {
        let t: HashSet<&String> = t.iter().collect();
        hit += g.iter().filter(|k| t.contains(k)).count();
        total += t.len();
    }
    hit as f64 / total.max(1) as f64
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let base = arg("--base").ok_or("--base FILE is required")?;
    let queries = arg("--queries").ok_or("--queries FILE is required")?;
    let metric = match arg("--metric").as_deref() {
        None | Some("cosine") => Metric::Cosine,
        Some("euclidean") => Metric::Euclidean,
        Some(m) => return Err(format!("unknown metric {m}")),
    };
    let efs: Vec<usize> = arg("--ef")
        .unwrap_or_else(|| basalt_vector::EF_SEARCH.to_string())
        .split(',')
        .map(|s| s.trim().parse().map_err(|e| format!("--ef {s}: {e}")))
        .collect::<Result<_, _>>()?;
    let exact_below: usize = match arg("--exact-below") {
        Some(n) => n.parse().map_err(|e| format!("--exact-below {n}: {e}"))?,
        None => 0,
    };
    let churn: u64 = match arg("--churn") {
        Some(n) => n.parse().map_err(|e| format!("--churn {n}: {e}"))?,
        None => 0,
    };
    let (dim, base) = read_vectors(&base)?;
    let (qdim, queries) = read_vectors(&queries)?;
    if qdim != dim {
        return Err(format!("queries have {qdim} dimensions, base {dim}"));
    }

    let mut idx = Index::new(dim, metric);
    idx.set_exact_below(exact_below);
    let start = Instant::now();
    for (i, v) in base.iter().enumerate() {
        let mut meta = Map::new();
        meta.insert("bucket".into(), json!(i % 100));
        idx.upsert(&i.to_string(), v, "", meta)
            .map_err(|e| format!("vector {i}: {e}"))?;
    }
    let build_s = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"event": "build", "n": base.len(), "dim": dim, "build_s": build_s,
               "m": basalt_vector::hnsw::M, "ef_construction": basalt_vector::hnsw::EF_CONSTRUCTION})
    );

    let start = Instant::now();
    let truth = exact(&idx, &queries, None);
    let exact_qps = queries.len() as f64 / start.elapsed().as_secs_f64();
    println!("{}", json!({"event": "exact", "qps_1": exact_qps}));

    for &ef in &efs {
        idx.set_ef_search(ef);
        let (qps1, got) = run(&idx, &queries, None, 1);
        let (qps2, _) = run(&idx, &queries, None, 2);
        println!(
            "{}",
            json!({"event": "search", "ef": ef, "recall": recall(&got, &truth),
                   "qps_1": qps1, "qps_2": qps2})
        );
    }

    // 1% selectivity: the index estimates it and answers from the exact scan.
    idx.set_ef_search(basalt_vector::EF_SEARCH);
    let filter = Filter::Equals("bucket".into(), json!(42));
    let truth = exact(&idx, &queries, Some(&filter));
    let (qps1, got) = run(&idx, &queries, Some(&filter), 1);
    let (qps2, _) = run(&idx, &queries, Some(&filter), 2);
    println!(
        "{}",
        json!({"event": "filtered", "selectivity": 0.01, "recall": recall(&got, &truth),
               "qps_1": qps1, "qps_2": qps2})
    );

    if churn > 0 {
        let truth = exact(&idx, &queries, None);
        let (_, got) = run(&idx, &queries, None, 1);
        let before = recall(&got, &truth);
        let start = Instant::now();
        let mut ops = 0usize;
        for round in 0..churn {
            let chosen: Vec<usize> = (0..base.len())
                .filter(|&i| {
                    (i as u64)
                        .wrapping_mul(2_654_435_761)
                        .wrapping_add(round * 97)
                        .is_multiple_of(4)
                })
                .collect();
            for &i in &chosen {
                idx.remove(&i.to_string());
            }
            for &i in &chosen {
                let mut meta = Map::new();
                meta.insert("bucket".into(), json!(i % 100));
                idx.upsert(&i.to_string(), &base[i], "", meta)
                    .map_err(|e| format!("vector {i}: {e}"))?;
            }
            ops += chosen.len();
        }
        let per_update_us = start.elapsed().as_secs_f64() * 1e6 / ops as f64;
        let (qps1, got) = run(&idx, &queries, None, 1);
        println!(
            "{}",
            json!({"event": "churn", "rounds": churn, "ef": basalt_vector::EF_SEARCH,
                   "recall_before": before, "recall_after": recall(&got, &truth),
                   "update_us": per_update_us, "qps_1": qps1})
        );
    }
    Ok(())
}
