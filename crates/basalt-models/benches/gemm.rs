//! The embedding encoder's linear layers at all-MiniLM-L6-v2's shapes (k × n: 384 × 1152 for
//! the fused Q/K/V, 384 × 384, 384 × 1536, 1536 × 384), for a batch of 32 sentences of 24
//! tokens (768 rows) and for one sentence (24 rows), on every kernel this CPU has.
//!
//! `cargo bench -p basalt-models --bench gemm`; throughput is reported in elements (= rows ×
//! n × k multiply-adds), so criterion's "Melem/s" reads as millions of multiply-adds per second.

use basalt_models::embed::gemm::{Kernel, Linear, Precision};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut kernels = vec![Kernel::F32];
    for p in [Precision::F32, Precision::Bf16] {
        let k = Kernel::select(p);
        if !kernels.contains(&k) {
            kernels.push(k);
        }
    }
    let mut group = c.benchmark_group("linear");
    group.sample_size(20);
    for (k, n) in [(384, 1152), (384, 384), (384, 1536), (1536, 384)] {
        let w = values(n * k, 1);
        let b = values(n, 2);
        for rows in [24, 768] {
            let x = values(rows * k, 3);
            let mut out = vec![0f32; rows * n];
            group.throughput(Throughput::Elements((rows * n * k) as u64));
            for &kernel in &kernels {
                let lin = Linear::new(&w, b.clone(), n, k, kernel);
                group.bench_with_input(
                    BenchmarkId::new(format!("{kernel:?}"), format!("{rows}x{k}x{n}")),
                    &x,
                    |bench, x| bench.iter(|| lin.forward(black_box(x), rows, &mut out, &pool)),
                );
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
