use serde_json::{Value, json};

use super::{ACCT, policy};

fn public(statement: Value) -> bool {
    policy(json!([statement])).is_public()
}

fn allow(principal: Value, condition: Option<Value>) -> Value {
    let mut s = json!({"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"});
    if let Some(c) = condition {
        s["Condition"] = c;
    }
    s
}

#[test]
fn everyone_without_conditions() {
    assert!(public(allow(json!("*"), None)));
    assert!(public(allow(json!({"AWS": "*"}), None)));
    assert!(public(allow(
        json!({"AWS": ["arn:aws:iam::111111111111:root", "*"]}),
        None
    )));
}

#[test]
fn named_principals_are_not_public() {
    assert!(!public(allow(json!({"AWS": ACCT}), None)));
    assert!(!public(allow(
        json!({"AWS": "arn:aws:iam::222222222222:user/x"}),
        None
    )));
    assert!(!public(allow(
        json!({"Service": "cloudfront.amazonaws.com"}),
        None
    )));
    assert!(!public(allow(json!({"CanonicalUser": super::CANON}), None)));
}

#[test]
fn deny_statements_are_not_grants() {
    let s = json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"});
    assert!(!public(s));
}

#[test]
fn allow_with_not_principal_grants_everyone_else() {
    let s = json!({"Effect": "Allow", "NotPrincipal": {"AWS": ACCT}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"});
    assert!(public(s));
}

#[test]
fn fixed_value_conditions_make_it_private() {
    for c in [
        json!({"StringEquals": {"aws:SourceAccount": ACCT}}),
        json!({"ArnEquals": {"aws:SourceArn": "arn:aws:cloudfront::111111111111:distribution/EDFDVBD6EXAMPLE"}}),
        json!({"StringEquals": {"aws:SourceVpc": "vpc-111bbb22"}}),
        json!({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}),
        json!({"StringEquals": {"aws:PrincipalOrgID": "o-xxxxxxxxxx"}}),
        json!({"StringEquals": {"aws:userid": "AIDAEXAMPLEID"}}),
        json!({"StringEquals": {"s3:DataAccessPointArn": "arn:aws:s3:us-east-1:111111111111:accesspoint/ap"}}),
        json!({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
        json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}),
    ] {
        assert!(!public(allow(json!("*"), Some(c.clone()))), "{c}");
    }
}

#[test]
fn loose_conditions_leave_it_public() {
    for c in [
        json!({"Bool": {"aws:SecureTransport": "true"}}),
        json!({"StringLike": {"aws:Referer": "https://example.com/*"}}),
        json!({"StringEquals": {"aws:Referer": "https://example.com/"}}),
        json!({"StringLike": {"aws:SourceArn": "arn:aws:sns:*"}}),
        json!({"StringLike": {"aws:userid": "AROAEXAMPLE:*"}}),
        json!({"StringNotEquals": {"aws:SourceAccount": ACCT}}),
        json!({"StringEqualsIfExists": {"aws:SourceAccount": ACCT}}),
        json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
        json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
    ] {
        assert!(public(allow(json!("*"), Some(c.clone()))), "{c}");
    }
}

#[test]
fn one_public_statement_is_enough() {
    let p = policy(json!([
        allow(json!({"AWS": ACCT}), None),
        allow(json!("*"), Some(json!({"StringEquals": {"aws:SourceAccount": ACCT}}))),
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
    ]));
    assert!(p.is_public());
    let private = policy(json!([
        allow(json!({"AWS": ACCT}), None),
        allow(
            json!("*"),
            Some(json!({"StringEquals": {"aws:SourceAccount": ACCT}}))
        )
    ]));
    assert!(!private.is_public());
}
