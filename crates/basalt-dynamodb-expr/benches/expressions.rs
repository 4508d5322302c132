//! Parse and evaluation costs of typical requests.
//!
//! `cargo bench -p basalt-dynamodb-expr --bench expressions`. A conditional write's condition
//! (parse, then eval on a 12-attribute item), a filter evaluated per scanned item, an update
//! with SET arithmetic, `if_not_exists`, `list_append`, REMOVE and ADD applied to the item,
//! and a nested projection.

use basalt_dynamodb_expr::{
    ExprKind, Item, Params, item_from_json, parse_condition, parse_projection, parse_update,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use std::hint::black_box;

fn item() -> Item {
    item_from_json(&json!({
        "pk": {"S": "user#123"}, "sk": {"S": "order#2024-06-01#0042"}, "status": {"S": "PENDING"},
        "total": {"N": "129.95"}, "version": {"N": "7"}, "items": {"L": [
            {"M": {"sku": {"S": "A-1"}, "qty": {"N": "2"}}}, {"M": {"sku": {"S": "B-7"}, "qty": {"N": "1"}}}]},
        "tags": {"SS": ["gift", "express"]}, "address": {"M": {"city": {"S": "Lyon"}, "zip": {"S": "69001"}}},
        "paid": {"BOOL": false}, "note": {"NULL": true}, "created": {"N": "1717243200"}, "attempts": {"N": "0"}
    }))
    .unwrap()
}

fn params(names: Value, values: Value) -> Params {
    Params::new(Some(&names), Some(&values)).unwrap()
}

const CONDITION: &str = "attribute_exists(pk) AND #st IN (:pending, :new) AND version = :v AND NOT contains(tags, :blocked) AND size(#it) <= :max";

fn condition_names() -> Value {
    json!({"#st": "status", "#it": "items"})
}

fn condition_values() -> Value {
    json!({":pending": {"S": "PENDING"}, ":new": {"S": "NEW"}, ":v": {"N": "7"}, ":blocked": {"S": "fraud"}, ":max": {"N": "25"}})
}

const UPDATE: &str = "SET version = version + :one, #st = :paid, attempts = if_not_exists(attempts, :zero) + :one, \
                      #it = list_append(#it, :more) REMOVE note ADD tags :t";

fn update_values() -> Value {
    json!({":one": {"N": "1"}, ":zero": {"N": "0"}, ":paid": {"S": "PAID"},
           ":more": {"L": [{"M": {"sku": {"S": "C-3"}, "qty": {"N": "1"}}}]}, ":t": {"SS": ["paid"]}})
}

fn benches(c: &mut Criterion) {
    let it = item();
    let mut g = c.benchmark_group("expressions");
    g.throughput(Throughput::Elements(1));

    g.bench_function("condition parse+eval", |b| {
        b.iter(|| {
            let mut p = params(condition_names(), condition_values());
            let cond = parse_condition(black_box(CONDITION), ExprKind::Condition, &mut p).unwrap();
            p.finish().unwrap();
            black_box(cond.eval(&it))
        })
    });

    let mut p = params(condition_names(), condition_values());
    let cond = parse_condition(CONDITION, ExprKind::Filter, &mut p).unwrap();
    g.bench_function("filter eval", |b| {
        b.iter(|| black_box(cond.eval(black_box(&it))))
    });

    g.bench_function("update parse+apply", |b| {
        b.iter(|| {
            let mut p = params(json!({"#st": "status", "#it": "items"}), update_values());
            let u = parse_update(black_box(UPDATE), &mut p).unwrap();
            p.finish().unwrap();
            let mut copy = it.clone();
            black_box(u.apply(&mut copy).unwrap())
        })
    });

    let mut p = params(json!({"#st": "status", "#it": "items"}), update_values());
    let u = parse_update(UPDATE, &mut p).unwrap();
    g.bench_function("update apply", |b| {
        b.iter(|| {
            let mut copy = it.clone();
            black_box(u.apply(&mut copy).unwrap())
        })
    });

    let mut p = params(
        json!({"#it": "items", "#t": "total"}),
        json!({":unused": {"N": "0"}}),
    );
    let proj = parse_projection("pk, sk, #it[0].sku, address.city, #t", &mut p).unwrap();
    g.bench_function("projection apply", |b| {
        b.iter(|| black_box(proj.apply(black_box(&it))))
    });
    g.finish();
}

criterion_group!(expressions, benches);
criterion_main!(expressions);
