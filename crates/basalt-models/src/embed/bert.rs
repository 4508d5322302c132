//! A BERT encoder (the architecture of all-MiniLM-L6-v2 and the other sentence-transformers
//! BERT models) over a batch of sentences laid end to end: no padding, so no work is spent on
//! pad tokens, and attention runs per sentence.

use super::gemm::{Kernel, Linear};
use super::math;
use rayon::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

struct Layer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: (Vec<f32>, Vec<f32>),
    up: Linear,
    down: Linear,
    out_norm: (Vec<f32>, Vec<f32>),
}

pub struct Bert {
    cfg: Config,
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type0: Vec<f32>,
    embed_norm: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    eps: f32,
}

/// Tensors of a safetensors file, converted to f32.
pub struct Tensors(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Tensors {
    /// Parses a safetensors file (8-byte header length, JSON header, raw little-endian data).
    pub fn parse(raw: &[u8]) -> Result<Tensors, String> {
        let len = raw
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
            .ok_or("file shorter than its header")?;
        let header = raw.get(8..8 + len).ok_or("header longer than the file")?;
        let header: HashMap<String, serde_json::Value> =
            serde_json::from_slice(header).map_err(|e| format!("header: {e}"))?;
        let data = &raw[8 + len..];
        let mut out = HashMap::new();
        for (name, meta) in header {
            if name == "__metadata__" {
                continue;
            }
            let dtype = meta["dtype"].as_str().unwrap_or_default();
            let shape: Vec<usize> = meta["shape"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as usize)
                        .collect()
                })
                .unwrap_or_default();
            let offsets = meta["data_offsets"].as_array().ok_or("no data_offsets")?;
            let (start, end) = (
                offsets.first().and_then(|v| v.as_u64()).unwrap_or(0) as usize,
                offsets.get(1).and_then(|v| v.as_u64()).unwrap_or(0) as usize,
            );
            let bytes = data
                .get(start..end)
                .ok_or_else(|| format!("{name}: data outside the file"))?;
            let values: Vec<f32> = match dtype {
                "F32" => bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                "F16" => bytes
                    .chunks_exact(2)
                    .map(|c| f16_to_f32(u16::from_le_bytes(c.try_into().unwrap())))
                    .collect(),
                "BF16" => bytes
                    .chunks_exact(2)
                    .map(|c| {
                        f32::from_bits((u16::from_le_bytes(c.try_into().unwrap()) as u32) << 16)
                    })
                    .collect(),
                // Integer buffers (e.g. position_ids) are not weights.
                _ => continue,
            };
            if values.len() != shape.iter().product::<usize>() {
                return Err(format!(
                    "{name}: {} values for shape {shape:?}",
                    values.len()
                ));
            }
            out.insert(name, (shape, values));
        }
        Ok(Tensors(out))
    }

    /// Rows (first dimension) of a tensor; 0 if absent.
    fn rows(&self, name: &str) -> usize {
        self.0
            .get(name)
            .or_else(|| self.0.get(&format!("bert.{name}")))
            .and_then(|(shape, _)| shape.first().copied())
            .unwrap_or(0)
    }

    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let (got, values) = self
            .0
            .remove(name)
            .or_else(|| self.0.remove(&format!("bert.{name}")))
            .ok_or_else(|| format!("tensor {name} missing"))?;
        if got != shape {
            return Err(format!(
                "tensor {name} has shape {got:?}, expected {shape:?}"
            ));
        }
        Ok(values)
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: man · 2^-24.
            let v = man as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000,
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

impl Bert {
    pub fn load(cfg: Config, mut t: Tensors, kernel: Kernel) -> Result<Bert, String> {
        if cfg.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {} is not supported (gelu is)",
                cfg.hidden_act
            ));
        }
        if cfg
            .position_embedding_type
            .as_deref()
            .is_some_and(|p| p != "absolute")
        {
            return Err("only absolute position embeddings are supported".into());
        }
        let h = cfg.hidden_size;
        if cfg.num_attention_heads == 0 || !h.is_multiple_of(cfg.num_attention_heads) {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        if h / cfg.num_attention_heads > MAX_HEAD_DIM {
            return Err(format!(
                "attention heads larger than {MAX_HEAD_DIM} are not supported"
            ));
        }
        let words = t.take(
            "embeddings.word_embeddings.weight",
            &[t.rows("embeddings.word_embeddings.weight"), h],
        )?;
        let positions = t.take(
            "embeddings.position_embeddings.weight",
            &[cfg.max_position_embeddings, h],
        )?;
        // Every token is of type 0 (single-segment input): only that row is kept.
        let types = t.rows("embeddings.token_type_embeddings.weight").max(1);
        let mut token_type0 = t.take("embeddings.token_type_embeddings.weight", &[types, h])?;
        token_type0.truncate(h);
        let norm = |t: &mut Tensors, p: &str| -> Result<(Vec<f32>, Vec<f32>), String> {
            Ok((
                t.take(&format!("{p}.weight"), &[h])?,
                t.take(&format!("{p}.bias"), &[h])?,
            ))
        };
        let embed_norm = norm(&mut t, "embeddings.LayerNorm")?;
        let inter = cfg.intermediate_size;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let mut qkv_w = Vec::with_capacity(3 * h * h);
            let mut qkv_b = Vec::with_capacity(3 * h);
            for m in ["query", "key", "value"] {
                qkv_w.extend(t.take(&format!("{p}.attention.self.{m}.weight"), &[h, h])?);
                qkv_b.extend(t.take(&format!("{p}.attention.self.{m}.bias"), &[h])?);
            }
            let linear =
                |t: &mut Tensors, name: &str, n: usize, k: usize| -> Result<Linear, String> {
                    let w = t.take(&format!("{p}.{name}.weight"), &[n, k])?;
                    let b = t.take(&format!("{p}.{name}.bias"), &[n])?;
                    Ok(Linear::new(&w, b, n, k, kernel))
                };
            layers.push(Layer {
                qkv: Linear::new(&qkv_w, qkv_b, 3 * h, h, kernel),
                attn_out: linear(&mut t, "attention.output.dense", h, h)?,
                attn_norm: norm(&mut t, &format!("{p}.attention.output.LayerNorm"))?,
                up: linear(&mut t, "intermediate.dense", inter, h)?,
                down: linear(&mut t, "output.dense", h, inter)?,
                out_norm: norm(&mut t, &format!("{p}.output.LayerNorm"))?,
            });
        }
        let eps = cfg.layer_norm_eps as f32;
        Ok(Bert {
            cfg,
            words,
            positions,
            token_type0,
            embed_norm,
            layers,
            eps,
        })
    }

    /// `rows = LayerNorm(rows + residual)`, row by row.
    fn residual_norm(
        &self,
        rows: &mut [f32],
        residual: &[f32],
        (w, b): &(Vec<f32>, Vec<f32>),
        pool: &rayon::ThreadPool,
    ) {
        let h = self.cfg.hidden_size;
        pool.install(|| {
            rows.par_chunks_mut(ELEMENTWISE_ROWS * h)
                .zip(residual.par_chunks(ELEMENTWISE_ROWS * h))
                .for_each(|(rows, residual)| {
                    for (row, res) in rows.chunks_mut(h).zip(residual.chunks(h)) {
                        math::add_layer_norm(row, res, w, b, self.eps);
                    }
                })
        });
    }

    pub fn vocab_size(&self) -> usize {
        self.words.len() / self.cfg.hidden_size
    }

    /// Mean-pooled, L2-normalised embeddings of `sentences` (token ids, each at most
    /// `max_positions` long and within the vocabulary; the caller checks).
    pub fn embed(&self, sentences: &[&[u32]], pool: &rayon::ThreadPool) -> Vec<Vec<f32>> {
        let h = self.cfg.hidden_size;
        let heads = self.cfg.num_attention_heads;
        let d = h / heads;
        let spans: Vec<(usize, usize)> = sentences
            .iter()
            .scan(0, |start, s| {
                let span = (*start, s.len());
                *start += s.len();
                Some(span)
            })
            .collect();
        let t: usize = sentences.iter().map(|s| s.len()).sum();
        if t == 0 {
            return sentences.iter().map(|_| vec![0.0; h]).collect();
        }

        let mut x = vec![0f32; t * h];
        for (s, &(start, _)) in sentences.iter().zip(&spans) {
            for (pos, &id) in s.iter().enumerate() {
                let row = &mut x[(start + pos) * h..][..h];
                let word = &self.words[id as usize * h..][..h];
                let position = &self.positions[pos * h..][..h];
                for c in 0..h {
                    row[c] = word[c] + position[c] + self.token_type0[c];
                }
                math::layer_norm(row, &self.embed_norm.0, &self.embed_norm.1, self.eps);
            }
        }

        let mut qkv = vec![0f32; t * 3 * h];
        let mut ctx = vec![0f32; t * h];
        let mut tmp = vec![0f32; t * h];
        let mut up = vec![0f32; t * self.cfg.intermediate_size];
        let scale = 1.0 / (d as f32).sqrt();
        for layer in &self.layers {
            layer.qkv.forward(&x, t, &mut qkv, pool);
            // Attention, one task per sentence (its rows of `ctx` are contiguous).
            let mut parts: Vec<&mut [f32]> = Vec::with_capacity(spans.len());
            let mut rest = ctx.as_mut_slice();
            for &(_, len) in &spans {
                let (head, tail) = rest.split_at_mut(len * h);
                parts.push(head);
                rest = tail;
            }
            let attend = |(&(start, len), out): (&(usize, usize), &mut &mut [f32])| {
                attention(
                    &qkv[start * 3 * h..(start + len) * 3 * h],
                    len,
                    heads,
                    d,
                    scale,
                    out,
                );
            };
            if sentences.len() > 1 {
                pool.install(|| spans.par_iter().zip(parts.par_iter_mut()).for_each(attend));
            } else {
                spans.iter().zip(parts.iter_mut()).for_each(attend);
            }

            layer.attn_out.forward(&ctx, t, &mut tmp, pool);
            self.residual_norm(&mut tmp, &x, &layer.attn_norm, pool);
            std::mem::swap(&mut x, &mut tmp);

            layer.up.forward(&x, t, &mut up, pool);
            let inter = self.cfg.intermediate_size;
            pool.install(|| {
                up.par_chunks_mut(ELEMENTWISE_ROWS * inter)
                    .for_each(math::gelu_in_place)
            });
            layer.down.forward(&up, t, &mut tmp, pool);
            self.residual_norm(&mut tmp, &x, &layer.out_norm, pool);
            std::mem::swap(&mut x, &mut tmp);
        }

        spans
            .iter()
            .map(|&(start, len)| {
                let mut mean = vec![0f32; h];
                for row in x[start * h..(start + len) * h].chunks(h) {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += v;
                    }
                }
                let inv_len = 1.0 / len.max(1) as f32;
                for m in mean.iter_mut() {
                    *m *= inv_len;
                }
                let norm = math::dot(&mean, &mean).sqrt();
                if norm > 0.0 {
                    for m in mean.iter_mut() {
                        *m /= norm;
                    }
                }
                mean
            })
            .collect()
    }
}

/// Rows per task of the element-wise passes (GELU, residual + LayerNorm).
const ELEMENTWISE_ROWS: usize = 32;

/// Multi-head self-attention of one sentence: `qkv` holds `len` rows of [q | k | v], each
/// `heads × d` wide; `out` receives `len` rows of `heads × d`.
fn attention(qkv: &[f32], len: usize, heads: usize, d: usize, scale: f32, out: &mut [f32]) {
    // Keys are transposed per head, and padded to whole vectors, so that the scores run along
    // contiguous rows with no scalar remainder; the head size is a constant where it is
    // common, so each output row stays in registers.
    let padded = len.next_multiple_of(16);
    let mut scratch = Scratch {
        kt: vec![0f32; d * padded],
        scores: vec![0f32; padded],
        padded,
    };
    for head in 0..heads {
        match d {
            32 => attend_head::<32>(qkv, len, heads, d, head, scale, out, &mut scratch),
            64 => attend_head::<64>(qkv, len, heads, d, head, scale, out, &mut scratch),
            _ => attend_head::<0>(qkv, len, heads, d, head, scale, out, &mut scratch),
        }
    }
}

/// Largest attention head supported (BERT models use 32 to 128).
const MAX_HEAD_DIM: usize = 256;

struct Scratch {
    kt: Vec<f32>,
    scores: Vec<f32>,
    padded: usize,
}

/// Scores of query row `q` against every key of the head (in `s.kt`), softmaxed in place.
fn scores(q: &[f32], len: usize, scale: f32, s: &mut Scratch) {
    let padded = s.padded;
    for (jc, chunk) in s.scores.chunks_exact_mut(16).enumerate() {
        // A local accumulator: the compiler keeps it in a register across the head dimension.
        let mut acc = [0f32; 16];
        for (c, &qc) in q.iter().enumerate() {
            let k: &[f32; 16] = s.kt[c * padded + jc * 16..][..16].try_into().unwrap();
            for l in 0..16 {
                acc[l] += qc * k[l];
            }
        }
        for l in 0..16 {
            chunk[l] = acc[l] * scale;
        }
    }
    math::softmax_in_place(&mut s.scores[..len]);
}

fn transpose_keys(qkv: &[f32], len: usize, h: usize, ko: usize, d: usize, s: &mut Scratch) {
    for j in 0..len {
        for (c, &k) in qkv[j * 3 * h + ko..][..d].iter().enumerate() {
            s.kt[c * s.padded + j] = k;
        }
    }
}

/// Attention of one head over the sentence. `D` is the head size when it is known at compile
/// time (the common sizes: the compiler then unrolls the output row into registers), or 0 to
/// take it from `d`.
#[allow(clippy::too_many_arguments)]
fn attend_head<const D: usize>(
    qkv: &[f32],
    len: usize,
    heads: usize,
    d: usize,
    head: usize,
    scale: f32,
    out: &mut [f32],
    s: &mut Scratch,
) {
    let d = if D > 0 { D } else { d };
    let h = heads * d;
    let (qo, ko, vo) = (head * d, h + head * d, 2 * h + head * d);
    transpose_keys(qkv, len, h, ko, d, s);
    let mut o = [0f32; MAX_HEAD_DIM];
    let o = &mut o[..d];
    for i in 0..len {
        scores(&qkv[i * 3 * h + qo..][..d], len, scale, s);
        o.fill(0.0);
        for (j, &p) in s.scores[..len].iter().enumerate() {
            for (o, &v) in o.iter_mut().zip(&qkv[j * 3 * h + vo..][..d]) {
                *o += p * v;
            }
        }
        out[i * h + head * d..][..d].copy_from_slice(o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn safetensors_header_errors_are_reported() {
        assert!(Tensors::parse(b"abc").is_err());
        let mut raw = 100u64.to_le_bytes().to_vec();
        raw.extend_from_slice(b"{}");
        assert!(Tensors::parse(&raw).is_err());
        let header = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#;
        let mut raw = (header.len() as u64).to_le_bytes().to_vec();
        raw.extend_from_slice(header);
        raw.extend_from_slice(&[0u8; 8]);
        assert!(Tensors::parse(&raw).err().unwrap().contains("outside"));
    }

    /// Attention written out directly, in f64.
    fn attention_ref(qkv: &[f32], len: usize, heads: usize, d: usize, scale: f32) -> Vec<f64> {
        let h = heads * d;
        let mut out = vec![0.0; len * h];
        for head in 0..heads {
            for i in 0..len {
                let q = |c: usize| qkv[i * 3 * h + head * d + c] as f64;
                let mut s: Vec<f64> = (0..len)
                    .map(|j| {
                        (0..d)
                            .map(|c| q(c) * qkv[j * 3 * h + h + head * d + c] as f64)
                            .sum::<f64>()
                            * scale as f64
                    })
                    .collect();
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                s.iter_mut().for_each(|v| *v = (*v - max).exp());
                let sum: f64 = s.iter().sum();
                for c in 0..d {
                    out[i * h + head * d + c] = (0..len)
                        .map(|j| s[j] / sum * qkv[j * 3 * h + 2 * h + head * d + c] as f64)
                        .sum();
                }
            }
        }
        out
    }

    #[test]
    fn attention_matches_direct_formula() {
        for (len, heads, d) in [(1, 2, 32), (5, 3, 32), (17, 2, 64), (33, 2, 8), (16, 1, 32)] {
            let h = heads * d;
            let qkv: Vec<f32> = (0..len * 3 * h)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let mut out = vec![f32::NAN; len * h];
            attention(&qkv, len, heads, d, 0.3, &mut out);
            let want = attention_ref(&qkv, len, heads, d, 0.3);
            for (g, w) in out.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-5,
                    "len={len} heads={heads} d={d}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn attention_of_one_token_is_its_value() {
        // One token attends only to itself: the output is its value vector.
        let (heads, d) = (2, 4);
        let qkv: Vec<f32> = (0..3 * heads * d).map(|i| i as f32).collect();
        let mut out = vec![0f32; heads * d];
        attention(&qkv, 1, heads, d, 0.5, &mut out);
        assert_eq!(out, qkv[2 * heads * d..].to_vec());
    }
}
