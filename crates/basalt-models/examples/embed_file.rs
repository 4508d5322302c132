//! Embeds a list of texts with the server's embedding model and writes the vectors, for
//! benchmarks that need many real embeddings (bench/vector_index.py's MiniLM data set).
//!
//! ```sh
//! cargo build --release -p basalt-models --example embed_file
//! target/release/examples/embed_file --texts texts.json --out vectors.f32 [--model DIR]
//! ```
//!
//! `--texts`: a JSON list of strings. `--out`: a little-endian u32 count, a u32 dimension,
//! then count × dimension little-endian f32, in the order of the texts (the format
//! `basalt-vector`'s `ann_bench` reads). Progress goes to stderr every 10,000 texts.

use basalt_models::EmbeddingModel;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Texts per `embed` call: large enough for full batches, small enough to report progress.
const CALL: usize = 2_000;

fn main() -> Result<(), String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let dir = arg("--model").map(PathBuf::from).unwrap_or_else(|| {
        dirs::home_dir()
            .unwrap_or_default()
            .join(".cache/basalt/models/all-minilm-l6-v2")
    });
    let texts_path = arg("--texts").ok_or("--texts FILE.json is required")?;
    let out_path = arg("--out").ok_or("--out FILE.f32 is required")?;
    let texts: Vec<String> = serde_json::from_slice(
        &std::fs::read(&texts_path).map_err(|e| format!("{texts_path}: {e}"))?,
    )
    .map_err(|e| format!("{texts_path}: {e}"))?;
    let model = EmbeddingModel::load(&dir).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut body: Vec<u8> = Vec::with_capacity(texts.len() * 384 * 4 + 8);
    let mut dim = 0usize;
    for (n, part) in texts.chunks(CALL).enumerate() {
        let (vectors, _) = model.embed(part).map_err(|e| e.to_string())?;
        for v in vectors {
            dim = v.len();
            for x in v {
                body.extend_from_slice(&x.to_le_bytes());
            }
        }
        let done = (n + 1) * CALL;
        if done.is_multiple_of(10_000) {
            let s = start.elapsed().as_secs_f64();
            eprintln!("embed_file: {done} texts in {s:.0} s");
        }
    }
    let mut out = std::fs::File::create(&out_path).map_err(|e| format!("{out_path}: {e}"))?;
    out.write_all(&(texts.len() as u32).to_le_bytes())
        .and_then(|()| out.write_all(&(dim as u32).to_le_bytes()))
        .and_then(|()| out.write_all(&body))
        .map_err(|e| format!("{out_path}: {e}"))?;
    eprintln!(
        "embed_file: {} texts in {:.1} s ({})",
        texts.len(),
        start.elapsed().as_secs_f64(),
        model.kernel().name()
    );
    Ok(())
}
