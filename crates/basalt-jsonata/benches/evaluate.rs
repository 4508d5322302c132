//! Parse and evaluation costs for the shapes Step Functions uses: a small `{% %}` expression
//! over `$states`, and a map/filter/aggregate over 10,000 items.

use basalt_jsonata::Expression;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

fn benches(c: &mut Criterion) {
    let mut states = Map::new();
    states.insert(
        "states".into(),
        json!({"input": {"order": {"id": "o-1", "total": 41.5, "lines": [1, 2, 3]}}}),
    );
    c.bench_function("parse small expression", |b| {
        b.iter(|| Expression::parse("$states.input.order.total > 40 ? 'big' : 'small'").unwrap())
    });
    let small =
        Expression::parse("{'id': $states.input.order.id, 'n': $count($states.input.order.lines)}")
            .unwrap();
    c.bench_function("evaluate small expression", |b| {
        b.iter(|| small.evaluate(&Value::Null, &states).unwrap())
    });
    let items: Vec<Value> = (0..10_000)
        .map(|i| json!({"id": i, "price": i % 97, "tag": if i % 2 == 0 { "a" } else { "b" }}))
        .collect();
    let input = json!({"items": items});
    let agg = Expression::parse(
        "$sum(items[tag = 'a'].price) + $count($map(items, function($v){$v.id}))",
    )
    .unwrap();
    c.bench_function("filter, map and sum over 10,000 items", |b| {
        b.iter(|| agg.evaluate(&input, &Map::new()).unwrap())
    });
}

criterion_group!(evaluate, benches);
criterion_main!(evaluate);
