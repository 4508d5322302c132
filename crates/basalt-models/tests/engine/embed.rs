//! The embedding model on the real all-MiniLM-L6-v2 weights (skipped when not installed):
//! published reference similarities, agreement of the kernels with each other, batching that
//! does not change results.

use basalt_models::EmbeddingModel;
use basalt_models::embed::{EmbedConfig, Kernel, Precision};

fn load(precision: Precision, threads: usize) -> Option<EmbeddingModel> {
    let dir = basalt_models::pull::model_dir().join(basalt_models::pull::DEFAULT_EMBEDDING);
    if !dir.join("model.safetensors").exists() {
        eprintln!(
            "skipped: {} not present (basalt models pull)",
            dir.display()
        );
        return None;
    }
    Some(EmbeddingModel::load_with(&dir, EmbedConfig { threads, precision }).expect("load"))
}

fn cos(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn sentences() -> Vec<String> {
    let mut out: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market crashed today.",
        "",
        "Hi",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Long enough to be truncated at 256 tokens.
    out.push("word ".repeat(400));
    for i in 0..40 {
        out.push(format!(
            "Sentence number {i} talks about {} things.",
            "many ".repeat(i % 9)
        ));
    }
    out
}

#[test]
fn f32_matches_the_published_similarities() {
    let Some(model) = load(Precision::F32, 0) else {
        return;
    };
    let (e, counts) = model.embed(&sentences()[..3]).unwrap();
    // sentence-transformers' documented values for all-MiniLM-L6-v2.
    assert!(
        (cos(&e[0], &e[1]) - 0.7553).abs() < 1e-4,
        "{}",
        cos(&e[0], &e[1])
    );
    assert!(
        (cos(&e[0], &e[2]) - 0.0088).abs() < 1e-4,
        "{}",
        cos(&e[0], &e[2])
    );
    assert_eq!(counts, vec![8, 11, 8]); // [CLS] … [SEP]
    for v in &e {
        assert_eq!(v.len(), 384);
        assert!((cos(v, v) - 1.0).abs() < 1e-5);
    }
}

#[test]
fn batching_and_threads_do_not_change_vectors() {
    let Some(model) = load(Precision::F32, 2) else {
        return;
    };
    let Some(single) = load(Precision::F32, 1) else {
        return;
    };
    let all = sentences();
    let (batched, counts) = model.embed(&all).unwrap();
    assert_eq!(counts[5], 256, "truncated to max_seq_length");
    for (i, s) in all.iter().enumerate() {
        let (one, _) = single.embed(std::slice::from_ref(s)).unwrap();
        assert!(cos(&one[0], &batched[i]) > 1.0 - 1e-6, "sentence {i}");
    }
}

#[test]
fn bf16_stays_close_to_f32() {
    let Some(exact) = load(Precision::F32, 0) else {
        return;
    };
    let Some(fast) = load(Precision::Bf16, 0) else {
        return;
    };
    // Either bf16 kernel: AMX tiles where the CPU proves them, else AVX-512 BF16.
    if !matches!(fast.kernel(), Kernel::Bf16 | Kernel::Amx) {
        eprintln!("skipped: no AVX-512 BF16 on this CPU");
        return;
    }
    let all = sentences();
    let (a, _) = exact.embed(&all).unwrap();
    let (b, _) = fast.embed(&all).unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(cos(x, y) > 1.0 - 1e-4, "sentence {i}: {}", cos(x, y));
    }
    assert!((cos(&b[0], &b[1]) - 0.7553).abs() < 3e-3);
}
