//! One evaluation against a 20-statement bucket policy.
//!
//! `cargo bench -p basalt-policy --bench evaluate`. The statements mix exact and wildcard
//! actions, object and bucket resources, account, role and `*` principals, and conditions
//! (IP blocks, string sets, dates, IfExists and set operators), like a bucket that several
//! teams share. The request matches only the last statement, so every statement is tried;
//! the target is under 5 µs per evaluation.

use std::collections::HashMap;
use std::hint::black_box;

use basalt_policy::{Decision, Policy, Principal, Request};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

fn statement(i: usize) -> Value {
    let team = format!("arn:aws:s3:::shared/team-{i}/*");
    match i % 5 {
        0 => json!({
            "Sid": format!("ReadTeam{i}"), "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{:012}:role/team-{i}", 100_000_000_000u64 + i as u64)},
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"],
            "Resource": team,
        }),
        1 => json!({
            "Sid": format!("WriteTeam{i}"), "Effect": "Allow",
            "Principal": {"AWS": format!("{:012}", 200_000_000_000u64 + i as u64)},
            "Action": "s3:Put*",
            "Resource": team,
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        }),
        2 => json!({
            "Sid": format!("Office{i}"), "Effect": "Allow", "Principal": "*",
            "Action": ["s3:List*"],
            "Resource": "arn:aws:s3:::shared",
            "Condition": {
                "IpAddress": {"aws:SourceIp": ["198.51.100.0/24", "2001:db8::/32"]},
                "StringLike": {"s3:prefix": [format!("team-{i}/*"), "public/*"]},
            },
        }),
        3 => json!({
            "Sid": format!("DenyOld{i}"), "Effect": "Deny", "Principal": "*",
            "Action": "s3:DeleteObject*",
            "Resource": team,
            "Condition": {
                "DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                "ForAnyValue:StringEquals": {"aws:TagKeys": ["legal-hold", "retain"]},
            },
        }),
        _ => json!({
            "Sid": format!("Vpce{i}"), "Effect": "Deny", "Principal": {"AWS": "*"},
            "NotAction": ["s3:Get*", "s3:List*"],
            "Resource": format!("arn:aws:s3:::shared/archive-{i}/*"),
            "Condition": {"StringNotEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
        }),
    }
}

fn policy() -> Policy {
    let mut statements: Vec<Value> = (0..19).map(statement).collect();
    statements.push(json!({
        "Sid": "Partners", "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::333333333333:role/Partner", "444444444444"]},
        "Action": ["s3:GetObject", "s3:GetObjectAcl"],
        "Resource": "arn:aws:s3:::shared/partners/*",
        "Condition": {
            "IpAddress": {"aws:SourceIp": "203.0.113.0/24"},
            "Bool": {"aws:SecureTransport": "true"},
            "StringEqualsIgnoreCase": {"s3:ExistingObjectTag/Share": "Yes"},
            "NumericLessThanEquals": {"s3:signatureAge": 600000},
        },
    }));
    let doc = json!({"Version": "2012-10-17", "Id": "bench", "Statement": statements});
    Policy::parse_for_bucket(&doc.to_string(), "shared").expect("bench policy parses")
}

fn context() -> HashMap<String, Vec<String>> {
    [
        ("aws:sourceip", "203.0.113.77"),
        ("aws:securetransport", "true"),
        ("aws:currenttime", "2025-06-01T12:00:00Z"),
        ("aws:sourcevpce", "vpce-1a2b3c4d"),
        ("s3:existingobjecttag/share", "yes"),
        ("s3:signatureage", "1200"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), vec![v.to_owned()]))
    .collect()
}

fn evaluate(c: &mut Criterion) {
    let p = policy();
    let ctx = context();
    let req = Request {
        principal: Principal::Account {
            account_id: "333333333333",
            arn: "arn:aws:sts::333333333333:assumed-role/Partner/sync-7",
            canonical_id: "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        },
        action: "s3:GetObject",
        resource: "arn:aws:s3:::shared/partners/2025/report.pdf",
        context: &ctx,
    };
    assert_eq!(p.evaluate(&req), Decision::Allow);
    c.bench_function("evaluate/20-statements/last-matches", |b| {
        b.iter(|| black_box(&p).evaluate(black_box(&req)))
    });
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
