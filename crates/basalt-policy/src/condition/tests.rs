use std::collections::HashMap;

use serde_json::{Value, json};

use super::Block;
use crate::error::PolicyError;

fn block(v: Value) -> Block {
    Block::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn ctx(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, vs)| (k.to_string(), vs.iter().map(|s| s.to_string()).collect()))
        .collect()
}

/// Evaluates `{op: {key: values}}` against a context where `key` holds `req` (absent when
/// `req` is None).
fn check(op: &str, key: &str, values: Value, req: Option<&[&str]>) -> bool {
    let b = block(json!({op: {key: values}}));
    let lower = key.to_lowercase();
    let c = match req {
        Some(v) => ctx(&[(lower.as_str(), v)]),
        None => HashMap::new(),
    };
    b.holds(&c)
}

#[test]
fn string_equals() {
    assert!(check(
        "StringEquals",
        "s3:prefix",
        json!("home/"),
        Some(&["home/"])
    ));
    assert!(!check(
        "StringEquals",
        "s3:prefix",
        json!("home/"),
        Some(&["Home/"])
    ));
    assert!(check(
        "StringEquals",
        "s3:prefix",
        json!(["a", "b"]),
        Some(&["b"])
    ));
    assert!(!check(
        "StringEquals",
        "s3:prefix",
        json!(["a", "b"]),
        Some(&["c"])
    ));
    assert!(!check(
        "StringEquals",
        "s3:prefix",
        json!("home/*"),
        Some(&["home/x"])
    ));
    assert!(!check("StringEquals", "s3:prefix", json!("a"), None));
}

#[test]
fn string_not_equals() {
    assert!(check(
        "StringNotEquals",
        "s3:x-amz-acl",
        json!("public-read"),
        Some(&["private"])
    ));
    assert!(!check(
        "StringNotEquals",
        "s3:x-amz-acl",
        json!("public-read"),
        Some(&["public-read"])
    ));
    assert!(!check(
        "StringNotEquals",
        "s3:x-amz-acl",
        json!(["a", "b"]),
        Some(&["b"])
    ));
    // A missing key is "not equal": negated operators hold (IAM user guide, Condition operators).
    assert!(check(
        "StringNotEquals",
        "s3:x-amz-acl",
        json!("public-read"),
        None
    ));
}

#[test]
fn string_ignore_case() {
    assert!(check(
        "StringEqualsIgnoreCase",
        "aws:username",
        json!("Alice"),
        Some(&["aLICE"])
    ));
    assert!(check(
        "StringEqualsIgnoreCase",
        "aws:username",
        json!("ÉCOLE"),
        Some(&["école"])
    ));
    assert!(!check(
        "StringEqualsIgnoreCase",
        "aws:username",
        json!("Alice"),
        Some(&["Alicia"])
    ));
    assert!(!check(
        "StringEqualsIgnoreCase",
        "aws:username",
        json!("Alice"),
        None
    ));
    assert!(check(
        "StringNotEqualsIgnoreCase",
        "aws:username",
        json!("Alice"),
        Some(&["bob"])
    ));
    assert!(!check(
        "StringNotEqualsIgnoreCase",
        "aws:username",
        json!("Alice"),
        Some(&["ALICE"])
    ));
    assert!(check(
        "StringNotEqualsIgnoreCase",
        "aws:username",
        json!("Alice"),
        None
    ));
}

#[test]
fn string_like() {
    assert!(check(
        "StringLike",
        "s3:prefix",
        json!("home/*"),
        Some(&["home/alice/x"])
    ));
    assert!(check(
        "StringLike",
        "s3:prefix",
        json!("home/?"),
        Some(&["home/a"])
    ));
    assert!(!check(
        "StringLike",
        "s3:prefix",
        json!("home/?"),
        Some(&["home/ab"])
    ));
    assert!(!check(
        "StringLike",
        "s3:prefix",
        json!("home/*"),
        Some(&["Home/x"])
    ));
    assert!(check(
        "StringLike",
        "s3:prefix",
        json!(["a*", "b*"]),
        Some(&["bx"])
    ));
    assert!(!check("StringLike", "s3:prefix", json!("*"), None));
    assert!(check(
        "StringNotLike",
        "s3:prefix",
        json!("home/*"),
        Some(&["tmp/x"])
    ));
    assert!(!check(
        "StringNotLike",
        "s3:prefix",
        json!("home/*"),
        Some(&["home/x"])
    ));
    assert!(check("StringNotLike", "s3:prefix", json!("home/*"), None));
}

#[test]
fn policy_variables_stay_literal() {
    assert!(check(
        "StringLike",
        "s3:prefix",
        json!("${aws:username}/*"),
        Some(&["${aws:username}/a"])
    ));
    assert!(!check(
        "StringLike",
        "s3:prefix",
        json!("${aws:username}/*"),
        Some(&["alice/a"])
    ));
}

#[test]
fn numeric() {
    let k = "s3:max-keys";
    assert!(check("NumericEquals", k, json!("10"), Some(&["10"])));
    assert!(check("NumericEquals", k, json!(10), Some(&["10.0"])));
    assert!(!check("NumericEquals", k, json!("10"), Some(&["11"])));
    assert!(!check("NumericEquals", k, json!("10"), Some(&["ten"])));
    assert!(!check("NumericEquals", k, json!("ten"), Some(&["10"])));
    assert!(!check("NumericEquals", k, json!("10"), None));
    assert!(check("NumericNotEquals", k, json!("10"), Some(&["11"])));
    assert!(!check("NumericNotEquals", k, json!("10"), Some(&["10"])));
    assert!(check("NumericNotEquals", k, json!("10"), None));
    assert!(check("NumericLessThan", k, json!(10), Some(&["9"])));
    assert!(!check("NumericLessThan", k, json!(10), Some(&["10"])));
    assert!(check("NumericLessThanEquals", k, json!(10), Some(&["10"])));
    assert!(!check(
        "NumericLessThanEquals",
        k,
        json!(10),
        Some(&["10.5"])
    ));
    assert!(check("NumericGreaterThan", k, json!(10), Some(&["11"])));
    assert!(!check("NumericGreaterThan", k, json!(10), Some(&["10"])));
    assert!(check(
        "NumericGreaterThanEquals",
        k,
        json!("1.5"),
        Some(&["1.5"])
    ));
    assert!(!check(
        "NumericGreaterThanEquals",
        k,
        json!("1.5"),
        Some(&["-2"])
    ));
    assert!(!check("NumericLessThan", k, json!(10), None));
}

#[test]
fn dates() {
    let k = "aws:CurrentTime";
    let t = "2024-06-01T12:00:00Z";
    assert!(check(
        "DateEquals",
        k,
        json!(t),
        Some(&["2024-06-01T12:00:00Z"])
    ));
    assert!(check(
        "DateEquals",
        k,
        json!(t),
        Some(&["2024-06-01T14:00:00+02:00"])
    ));
    assert!(check("DateEquals", k, json!(1_717_243_200), Some(&[t])));
    assert!(check(
        "DateEquals",
        "aws:EpochTime",
        json!(t),
        Some(&["1717243200"])
    ));
    assert!(!check(
        "DateEquals",
        k,
        json!(t),
        Some(&["2024-06-01T12:00:01Z"])
    ));
    assert!(!check("DateEquals", k, json!(t), Some(&["soon"])));
    assert!(!check("DateEquals", k, json!(t), None));
    assert!(check("DateNotEquals", k, json!(t), Some(&["2024-06-02"])));
    assert!(!check("DateNotEquals", k, json!(t), Some(&[t])));
    assert!(check("DateNotEquals", k, json!(t), None));
    assert!(check(
        "DateLessThan",
        k,
        json!(t),
        Some(&["2024-06-01T11:59:59Z"])
    ));
    assert!(!check("DateLessThan", k, json!(t), Some(&[t])));
    assert!(check("DateLessThanEquals", k, json!(t), Some(&[t])));
    assert!(!check(
        "DateLessThanEquals",
        k,
        json!(t),
        Some(&["2025-01-01"])
    ));
    assert!(check("DateGreaterThan", k, json!("2024-01-01"), Some(&[t])));
    assert!(!check("DateGreaterThan", k, json!(t), Some(&[t])));
    assert!(check("DateGreaterThanEquals", k, json!(t), Some(&[t])));
    assert!(!check(
        "DateGreaterThanEquals",
        k,
        json!(t),
        Some(&["2020-01-01"])
    ));
    assert!(!check("DateLessThan", k, json!(t), None));
}

#[test]
fn bool_operator() {
    let k = "aws:SecureTransport";
    assert!(check("Bool", k, json!("true"), Some(&["true"])));
    assert!(check("Bool", k, json!(true), Some(&["TRUE"])));
    assert!(check("Bool", k, json!("false"), Some(&["false"])));
    assert!(!check("Bool", k, json!("false"), Some(&["true"])));
    assert!(!check("Bool", k, json!("yes"), Some(&["true"])));
    assert!(!check("Bool", k, json!("true"), Some(&["1"])));
    // The classic "deny insecure transport" statement does not fire when the key is missing;
    // BoolIfExists is how policies make it fire.
    assert!(!check("Bool", k, json!("false"), None));
    assert!(check("BoolIfExists", k, json!("false"), None));
}

#[test]
fn binary_equals() {
    let k = "s3:x-amz-server-side-encryption-customer-key-md5";
    assert!(check(
        "BinaryEquals",
        k,
        json!("QmluYXJ5VmFsdWU="),
        Some(&["QmluYXJ5VmFsdWU="])
    ));
    assert!(!check(
        "BinaryEquals",
        k,
        json!("QmluYXJ5VmFsdWU="),
        Some(&["QmluYXJ5VmFsdWF="])
    ));
    assert!(!check("BinaryEquals", k, json!("QmluYXJ5VmFsdWU="), None));
}

#[test]
fn ip_address() {
    let k = "aws:SourceIp";
    assert!(check(
        "IpAddress",
        k,
        json!("203.0.113.0/24"),
        Some(&["203.0.113.9"])
    ));
    assert!(check(
        "IpAddress",
        k,
        json!(["10.0.0.0/8", "2001:db8::/32"]),
        Some(&["2001:db8::5"])
    ));
    assert!(check(
        "IpAddress",
        k,
        json!("203.0.113.7"),
        Some(&["203.0.113.7"])
    ));
    assert!(!check(
        "IpAddress",
        k,
        json!("203.0.113.0/24"),
        Some(&["198.51.100.1"])
    ));
    assert!(!check(
        "IpAddress",
        k,
        json!("203.0.113.0/24"),
        Some(&["garbage"])
    ));
    assert!(!check("IpAddress", k, json!("203.0.113.0/24"), None));
    assert!(check(
        "NotIpAddress",
        k,
        json!("203.0.113.0/24"),
        Some(&["198.51.100.1"])
    ));
    assert!(!check(
        "NotIpAddress",
        k,
        json!("203.0.113.0/24"),
        Some(&["203.0.113.1"])
    ));
    assert!(check("NotIpAddress", k, json!("203.0.113.0/24"), None));
    for bad in [
        json!("300.0.0.1"),
        json!("10.0.0.0/33"),
        json!(["10.0.0.0/8", "x"]),
        json!(true),
    ] {
        let r = Block::parse(&json!({"IpAddress": {k: bad.clone()}}));
        assert_eq!(r.err(), Some(PolicyError::InvalidIpAddress), "{bad}");
    }
}

#[test]
fn arn_operators() {
    let k = "aws:SourceArn";
    let arn = "arn:aws:sns:us-east-1:123456789012:topic";
    for op in ["ArnEquals", "ArnLike"] {
        assert!(check(op, k, json!(arn), Some(&[arn])), "{op}");
        assert!(
            check(op, k, json!("arn:aws:sns:*:123456789012:*"), Some(&[arn])),
            "{op}"
        );
        assert!(
            check(op, k, json!("arn:aws:sns:us-?ast-1:*:topic"), Some(&[arn])),
            "{op}"
        );
        assert!(
            !check(op, k, json!("arn:aws:sns:*:111111111111:*"), Some(&[arn])),
            "{op}"
        );
        assert!(
            !check(op, k, json!("arn:aws:SNS:*:123456789012:*"), Some(&[arn])),
            "{op}"
        );
        assert!(!check(op, k, json!(arn), Some(&["not-an-arn"])), "{op}");
        assert!(!check(op, k, json!(arn), None), "{op}");
    }
    // A `*` stays inside its part: it cannot absorb the account of a shorter region.
    assert!(!check(
        "ArnLike",
        k,
        json!("arn:aws:sns:us-east-1*:topic"),
        Some(&[arn])
    ));
    // The resource part keeps its colons.
    assert!(check(
        "ArnLike",
        k,
        json!("arn:aws:logs:*:*:log-group:app:*"),
        Some(&["arn:aws:logs:eu-west-1:123456789012:log-group:app:log-stream:x"])
    ));
    // Values that are not ARNs match as whole strings.
    assert!(check("ArnLike", k, json!("*"), Some(&[arn])));
    for op in ["ArnNotEquals", "ArnNotLike"] {
        assert!(
            check(op, k, json!("arn:aws:sns:*:111111111111:*"), Some(&[arn])),
            "{op}"
        );
        assert!(
            !check(op, k, json!("arn:aws:sns:*:123456789012:*"), Some(&[arn])),
            "{op}"
        );
        assert!(check(op, k, json!(arn), None), "{op}");
    }
}

#[test]
fn null_operator() {
    let k = "aws:TokenIssueTime";
    assert!(check("Null", k, json!("true"), None));
    assert!(!check("Null", k, json!("true"), Some(&["2024-01-01"])));
    assert!(check("Null", k, json!(false), Some(&["2024-01-01"])));
    assert!(!check("Null", k, json!("false"), None));
    assert!(!check("Null", k, json!("maybe"), None));
    // An empty value list is no value at all.
    assert!(check("Null", k, json!("true"), Some(&[])));
}

#[test]
fn if_exists() {
    let k = "aws:SourceVpce";
    assert!(check("StringEqualsIfExists", k, json!("vpce-1"), None));
    assert!(check(
        "StringEqualsIfExists",
        k,
        json!("vpce-1"),
        Some(&["vpce-1"])
    ));
    assert!(!check(
        "StringEqualsIfExists",
        k,
        json!("vpce-1"),
        Some(&["vpce-2"])
    ));
    assert!(check("StringNotEqualsIfExists", k, json!("vpce-1"), None));
    assert!(!check(
        "StringNotEqualsIfExists",
        k,
        json!("vpce-1"),
        Some(&["vpce-1"])
    ));
    assert!(check(
        "NumericLessThanIfExists",
        "s3:max-keys",
        json!(5),
        None
    ));
    assert!(!check(
        "NumericLessThanIfExists",
        "s3:max-keys",
        json!(5),
        Some(&["9"])
    ));
    assert!(check(
        "IpAddressIfExists",
        "aws:SourceIp",
        json!("10.0.0.0/8"),
        None
    ));
    assert!(check(
        "ArnLikeIfExists",
        "aws:SourceArn",
        json!("arn:aws:s3:::b"),
        None
    ));
    assert!(check(
        "DateLessThanIfExists",
        "aws:CurrentTime",
        json!("2020-01-01"),
        None
    ));
}

#[test]
fn for_any_value() {
    let k = "aws:TagKeys";
    let op = "ForAnyValue:StringEquals";
    assert!(check(op, k, json!(["a", "b"]), Some(&["x", "b"])));
    assert!(!check(op, k, json!(["a", "b"]), Some(&["x", "y"])));
    assert!(!check(op, k, json!(["a", "b"]), None));
    // Negated: some request value lies outside the policy's set.
    let neg = "ForAnyValue:StringNotEquals";
    assert!(check(neg, k, json!(["a", "b"]), Some(&["a", "z"])));
    assert!(!check(neg, k, json!(["a", "b"]), Some(&["a", "b"])));
    assert!(!check(neg, k, json!(["a"]), None));
    assert!(check(
        "ForAnyValue:StringLike",
        k,
        json!("team-*"),
        Some(&["x", "team-a"])
    ));
    assert!(check(
        "ForAnyValue:StringEqualsIfExists",
        k,
        json!("a"),
        None
    ));
}

#[test]
fn for_all_values() {
    let k = "aws:TagKeys";
    let op = "ForAllValues:StringEquals";
    assert!(check(op, k, json!(["a", "b", "c"]), Some(&["a", "c"])));
    assert!(!check(op, k, json!(["a", "b"]), Some(&["a", "z"])));
    // Vacuously true for a missing key, per the IAM set-operator page.
    assert!(check(op, k, json!(["a"]), None));
    assert!(check(op, k, json!(["a"]), Some(&[])));
    let neg = "ForAllValues:StringNotEquals";
    assert!(check(neg, k, json!(["a", "b"]), Some(&["x", "y"])));
    assert!(!check(neg, k, json!(["a", "b"]), Some(&["x", "a"])));
    assert!(check(neg, k, json!(["a"]), None));
    assert!(check(
        "ForAllValues:StringLike",
        k,
        json!("team-*"),
        Some(&["team-a", "team-b"])
    ));
    assert!(!check(
        "ForAllValues:StringLike",
        k,
        json!("team-*"),
        Some(&["team-a", "x"])
    ));
}

#[test]
fn single_valued_operator_with_several_request_values() {
    assert!(check(
        "StringEquals",
        "aws:TagKeys",
        json!("a"),
        Some(&["x", "a"])
    ));
    assert!(!check(
        "StringNotEquals",
        "aws:TagKeys",
        json!("a"),
        Some(&["x", "a"])
    ));
}

#[test]
fn blocks_are_and_keys_are_and_values_are_or() {
    let b = block(json!({
        "StringEquals": {"s3:prefix": ["a", "b"], "s3:delimiter": "/"},
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}
    }));
    let all = ctx(&[
        ("s3:prefix", &["b"]),
        ("s3:delimiter", &["/"]),
        ("aws:sourceip", &["10.1.1.1"]),
    ]);
    assert!(b.holds(&all));
    let wrong_ip = ctx(&[
        ("s3:prefix", &["b"]),
        ("s3:delimiter", &["/"]),
        ("aws:sourceip", &["11.1.1.1"]),
    ]);
    assert!(!b.holds(&wrong_ip));
    let no_delim = ctx(&[("s3:prefix", &["a"]), ("aws:sourceip", &["10.1.1.1"])]);
    assert!(!b.holds(&no_delim));
    assert!(block(json!({})).holds(&HashMap::new()));
}

#[test]
fn keys_are_case_insensitive() {
    let b = block(json!({"StringEquals": {"AWS:SourceAccount": "111111111111"}}));
    assert!(b.holds(&ctx(&[("aws:sourceaccount", &["111111111111"])])));
}

#[test]
fn values_may_be_numbers_and_booleans() {
    assert!(check(
        "StringEquals",
        "s3:max-keys",
        json!(10),
        Some(&["10"])
    ));
    assert!(check(
        "StringEquals",
        "aws:SecureTransport",
        json!(true),
        Some(&["true"])
    ));
    assert!(check(
        "StringEquals",
        "s3:max-keys",
        json!([1, "2", false]),
        Some(&["false"])
    ));
}

#[test]
fn unknown_operators_are_refused() {
    for op in [
        "StringEqual",
        "stringequals",
        "StringEqualsIfExist",
        "NullIfExists",
        "ForAnyValue:Null",
        "ForSomeValues:StringEquals",
        "ForAnyValue:",
        "IfExists",
        "BinaryNotEquals",
        "",
    ] {
        let r = Block::parse(&json!({op: {"aws:SourceIp": "x"}}));
        assert_eq!(
            r.err(),
            Some(PolicyError::InvalidConditionOperator(op.to_owned())),
            "{op}"
        );
    }
}

#[test]
fn malformed_blocks() {
    for (v, want) in [
        (json!("x"), PolicyError::InvalidJson),
        (json!([]), PolicyError::InvalidJson),
        (json!({"StringEquals": "x"}), PolicyError::InvalidJson),
        (
            json!({"StringEquals": {"s3:prefix": null}}),
            PolicyError::InvalidJson,
        ),
        (
            json!({"StringEquals": {"s3:prefix": {"a": 1}}}),
            PolicyError::InvalidJson,
        ),
        (
            json!({"StringEquals": {"s3:prefix": [["a"]]}}),
            PolicyError::InvalidJson,
        ),
        (
            json!({"StringEquals": {"prefix": "a"}}),
            PolicyError::InvalidConditionKey,
        ),
        (
            json!({"StringEquals": {":prefix": "a"}}),
            PolicyError::InvalidConditionKey,
        ),
        (
            json!({"StringEquals": {"s3:": "a"}}),
            PolicyError::InvalidConditionKey,
        ),
        (
            json!({"StringEquals": {"s 3:x": "a"}}),
            PolicyError::InvalidConditionKey,
        ),
    ] {
        assert_eq!(Block::parse(&v).err(), Some(want), "{v}");
    }
}

#[test]
fn narrowing() {
    let n = |v: Value| block(v).narrows_to_fixed_values();
    assert!(n(
        json!({"StringEquals": {"aws:SourceAccount": "111111111111"}})
    ));
    assert!(n(json!({"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})));
    assert!(n(
        json!({"StringEquals": {"aws:SourceVpce": ["vpce-1", "vpce-2"]}})
    ));
    assert!(n(json!({"StringLike": {"aws:SourceVpc": "vpc-1"}})));
    assert!(n(
        json!({"ArnEquals": {"aws:SourceArn": "arn:aws:cloudfront::111111111111:distribution/E1"}})
    ));
    assert!(n(
        json!({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/48"]}})
    ));
    assert!(n(json!({"StringEquals": {"aws:userid": "AIDAEXAMPLE"}})));
    assert!(n(
        json!({"ForAnyValue:StringEquals": {"aws:SourceAccount": "111111111111"}})
    ));
    assert!(n(
        json!({"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:SourceAccount": "111111111111"}})
    ));

    assert!(!n(json!({})));
    assert!(!n(json!({"Bool": {"aws:SecureTransport": "true"}})));
    assert!(!n(json!({"StringEquals": {"s3:prefix": "home/"}})));
    assert!(!n(
        json!({"StringLike": {"aws:SourceArn": "arn:aws:sns:*:111111111111:*"}})
    ));
    assert!(!n(
        json!({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111111111111:*"}})
    ));
    assert!(!n(json!({"StringLike": {"aws:userid": "AROAEXAMPLE:*"}})));
    assert!(!n(json!({"StringEquals": {"aws:SourceAccount": "*"}})));
    assert!(!n(
        json!({"StringNotEquals": {"aws:SourceAccount": "111111111111"}})
    ));
    assert!(!n(
        json!({"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}})
    ));
    assert!(!n(
        json!({"ForAllValues:StringEquals": {"aws:SourceAccount": "111111111111"}})
    ));
    assert!(!n(json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})));
    assert!(!n(
        json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "0.0.0.0/1"]}})
    ));
    assert!(!n(json!({"IpAddress": {"aws:SourceIp": "::/0"}})));
    assert!(!n(json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})));
    assert!(!n(json!({"StringEquals": {"aws:SourceIp": "10.0.0.1"}})));
}
