//! Events per second through a `Matcher` holding 1, 100 and 10,000 rules.
//!
//! `cargo bench -p basalt-eventpattern --bench matching`. Rules look like a busy account's:
//! most name a shared `source` and a selective `detail` field; one in ten is prefix- or
//! numeric-only and so is checked against every event. Half the events match one rule, half
//! match none.

use basalt_eventpattern::{Matcher, Pattern};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;

fn rule(i: usize) -> Pattern {
    let src = format!("app.service{}", i % 20);
    let p = match i % 10 {
        0 => {
            json!({"source": [{"prefix": format!("app.service{}", i % 20)}], "detail": {"size": [{"numeric": [">", i, "<=", i + 10]}]}})
        }
        1 => json!({"source": [src], "detail-type": ["OrderPlaced"], "$or": [
            {"detail": {"order": {"id": [format!("o-{i}")]}}},
            {"detail": {"customer": [format!("c-{i}")]}}
        ]}),
        _ => json!({"source": [src], "detail-type": ["OrderPlaced", "OrderShipped"], "detail": {
            "order": {"id": [format!("o-{i}")]},
            "state": [{"anything-but": "cancelled"}]
        }}),
    };
    Pattern::from_value(&p).unwrap()
}

fn event(n: usize) -> Value {
    json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "OrderPlaced", "source": format!("app.service{}", n % 20),
        "account": "111122223333", "time": "2017-12-22T18:43:48Z", "region": "us-west-1",
        "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
        "detail": {"order": {"id": format!("o-{n}"), "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}]},
                   "customer": "c-none", "state": "new", "size": 1_000_000}
    })
}

fn matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("matcher");
    g.throughput(Throughput::Elements(1));
    for &n in &[1usize, 100, 10_000] {
        let mut m = Matcher::new();
        for i in 0..n {
            m.insert(i, &rule(i));
        }
        // Alternate an event that hits rule n/2 (or 2 for tiny sets) with one that hits nothing.
        let hit = event(if n > 4 { n / 2 + 2 } else { 2 });
        let miss = event(n + 7);
        let mut flip = false;
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                flip = !flip;
                black_box(m.matches(black_box(if flip { &hit } else { &miss })))
            })
        });
    }
    g.finish();
}

fn single_pattern(c: &mut Criterion) {
    let p = rule(2);
    let e = event(2);
    c.bench_function("pattern/matches", |b| {
        b.iter(|| black_box(p.matches(black_box(&e))))
    });
}

criterion_group!(benches, matching, single_pattern);
criterion_main!(benches);
