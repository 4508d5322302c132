use serde_json::json;

use super::{ACCT, CANON, OTHER, caller, ctx, eval, eval_ctx, policy, root};
use crate::{Decision, Principal};

const OBJ: &str = "arn:aws:s3:::b/k";
const BUCKET: &str = "arn:aws:s3:::b";

#[test]
fn public_read() {
    let p = policy(
        json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:GetObject", OBJ),
        Decision::Allow
    );
    assert_eq!(eval(&p, root(OTHER), "s3:GetObject", OBJ), Decision::Allow);
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:PutObject", OBJ),
        Decision::NotApplicable
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:GetObject", BUCKET),
        Decision::NotApplicable
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:GetObject", "arn:aws:s3:::c/k"),
        Decision::NotApplicable
    );
}

#[test]
fn statement_as_single_object() {
    let doc = r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}}"#;
    let p = crate::Policy::parse(doc).unwrap();
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:DeleteObject", OBJ),
        Decision::Allow
    );
}

#[test]
fn action_wildcards_and_case() {
    let p = policy(
        json!([{"Effect": "Allow", "Principal": "*", "Action": ["s3:Get*", "s3:List?ucket"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}]),
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:GetObjectAcl", OBJ),
        Decision::Allow
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "S3:GETOBJECT", OBJ),
        Decision::Allow
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:ListBucket", BUCKET),
        Decision::Allow
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:listbucket", BUCKET),
        Decision::Allow
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:ListBucketVersions", BUCKET),
        Decision::NotApplicable
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:PutObject", OBJ),
        Decision::NotApplicable
    );
    let star = policy(
        json!([{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "arn:aws:s3:::b/*"}]),
    );
    assert_eq!(
        eval(&star, Principal::Anonymous, "s3:PutObjectTagging", OBJ),
        Decision::Allow
    );
}

#[test]
fn resource_wildcards_are_case_sensitive() {
    let p = policy(
        json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::b/public/*", "arn:aws:s3:::b/img-?.png"]}]),
    );
    let a = Principal::Anonymous;
    assert_eq!(
        eval(&p, a, "s3:GetObject", "arn:aws:s3:::b/public/x/y"),
        Decision::Allow
    );
    assert_eq!(
        eval(&p, a, "s3:GetObject", "arn:aws:s3:::b/Public/x"),
        Decision::NotApplicable
    );
    assert_eq!(
        eval(&p, a, "s3:GetObject", "arn:aws:s3:::b/img-1.png"),
        Decision::Allow
    );
    assert_eq!(
        eval(&p, a, "s3:GetObject", "arn:aws:s3:::b/img-12.png"),
        Decision::NotApplicable
    );
}

#[test]
fn deny_wins() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert_eq!(eval(&p, root(ACCT), "s3:DeleteObject", OBJ), Decision::Deny);
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:DeleteObject", OBJ),
        Decision::Deny
    );
    assert_eq!(eval(&p, root(ACCT), "s3:GetObject", OBJ), Decision::Allow);
    // Order does not matter: a Deny after an Allow still wins.
    let reversed = policy(json!([
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/secret/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert_eq!(
        eval(
            &reversed,
            root(ACCT),
            "s3:GetObject",
            "arn:aws:s3:::b/secret/x"
        ),
        Decision::Deny
    );
    assert_eq!(
        eval(&reversed, root(ACCT), "s3:GetObject", "arn:aws:s3:::b/open"),
        Decision::Allow
    );
}

#[test]
fn only_deny_statements() {
    let p = policy(
        json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]),
    );
    assert_eq!(eval(&p, root(ACCT), "s3:PutObject", OBJ), Decision::Deny);
    assert_eq!(
        eval(&p, root(ACCT), "s3:GetObject", OBJ),
        Decision::NotApplicable
    );
}

#[test]
fn account_principals() {
    for principal in [
        json!({"AWS": ACCT}),
        json!({"AWS": "arn:aws:iam::111111111111:root"}),
    ] {
        let p = policy(
            json!([{"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]),
        );
        assert_eq!(eval(&p, root(ACCT), "s3:GetObject", OBJ), Decision::Allow);
        assert_eq!(
            eval(
                &p,
                caller("arn:aws:iam::111111111111:user/alice"),
                "s3:GetObject",
                OBJ
            ),
            Decision::Allow
        );
        assert_eq!(
            eval(
                &p,
                caller("arn:aws:sts::111111111111:assumed-role/R/s"),
                "s3:GetObject",
                OBJ
            ),
            Decision::Allow
        );
        assert_eq!(
            eval(&p, root(OTHER), "s3:GetObject", OBJ),
            Decision::NotApplicable
        );
        assert_eq!(
            eval(&p, Principal::Anonymous, "s3:GetObject", OBJ),
            Decision::NotApplicable
        );
    }
}

#[test]
fn user_role_and_canonical_principals() {
    let p = policy(json!([{"Effect": "Allow", "Principal": {
        "AWS": ["arn:aws:iam::111111111111:user/alice", "arn:aws:iam::111111111111:role/Deploy"],
        "CanonicalUser": CANON
    }, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]));
    assert_eq!(
        eval(
            &p,
            caller("arn:aws:iam::111111111111:user/alice"),
            "s3:PutObject",
            OBJ
        ),
        Decision::Allow
    );
    assert_eq!(
        eval(
            &p,
            caller("arn:aws:sts::111111111111:assumed-role/Deploy/run-1"),
            "s3:PutObject",
            OBJ
        ),
        Decision::Allow
    );
    let other_canonical = Principal::Account {
        account_id: OTHER,
        arn: "arn:aws:iam::222222222222:user/bob",
        canonical_id: &"a".repeat(64),
    };
    assert_eq!(
        eval(&p, other_canonical, "s3:PutObject", OBJ),
        Decision::NotApplicable
    );
    let same_canonical = Principal::Account {
        account_id: OTHER,
        arn: "arn:aws:iam::222222222222:user/bob",
        canonical_id: CANON,
    };
    assert_eq!(
        eval(&p, same_canonical, "s3:PutObject", OBJ),
        Decision::Allow
    );
}

#[test]
fn service_principals_never_match_users() {
    let p = policy(
        json!([{"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]),
    );
    assert_eq!(
        eval(&p, root(ACCT), "s3:PutObject", OBJ),
        Decision::NotApplicable
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:PutObject", OBJ),
        Decision::NotApplicable
    );
}

#[test]
fn not_principal() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": ["arn:aws:iam::111111111111:role/Admin", ACCT]}, "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}
    ]));
    assert_eq!(
        eval(&p, root(ACCT), "s3:DeleteObject", OBJ),
        Decision::Allow
    );
    assert_eq!(
        eval(
            &p,
            caller("arn:aws:sts::111111111111:assumed-role/Admin/s"),
            "s3:DeleteObject",
            OBJ
        ),
        Decision::Allow
    );
    assert_eq!(
        eval(&p, root(OTHER), "s3:DeleteObject", OBJ),
        Decision::Deny
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:DeleteObject", OBJ),
        Decision::Deny
    );
    // NotPrincipal "*" excepts everyone, so the statement applies to no one.
    let nobody = policy(
        json!([{"Effect": "Deny", "NotPrincipal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]),
    );
    assert_eq!(
        eval(&nobody, Principal::Anonymous, "s3:GetObject", OBJ),
        Decision::NotApplicable
    );
}

#[test]
fn not_action() {
    let p = policy(
        json!([{"Effect": "Deny", "Principal": "*", "NotAction": ["s3:Get*", "s3:ListBucket"], "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]}]),
    );
    assert_eq!(eval(&p, root(ACCT), "s3:PutObject", OBJ), Decision::Deny);
    assert_eq!(
        eval(&p, root(ACCT), "s3:DeleteBucket", BUCKET),
        Decision::Deny
    );
    assert_eq!(
        eval(&p, root(ACCT), "s3:GetObject", OBJ),
        Decision::NotApplicable
    );
    assert_eq!(
        eval(&p, root(ACCT), "s3:listbucket", BUCKET),
        Decision::NotApplicable
    );
}

#[test]
fn not_resource() {
    let p = policy(
        json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::b/private/*"}]),
    );
    assert_eq!(
        eval(&p, Principal::Anonymous, "s3:GetObject", OBJ),
        Decision::Allow
    );
    assert_eq!(
        eval(
            &p,
            Principal::Anonymous,
            "s3:GetObject",
            "arn:aws:s3:::other/k"
        ),
        Decision::Allow
    );
    assert_eq!(
        eval(
            &p,
            Principal::Anonymous,
            "s3:GetObject",
            "arn:aws:s3:::b/private/k"
        ),
        Decision::NotApplicable
    );
}

#[test]
fn conditions_gate_statements() {
    let p = policy(json!([
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    ]));
    let a = Principal::Anonymous;
    let inside = ctx(&[
        ("aws:sourceip", "203.0.113.5"),
        ("aws:securetransport", "true"),
    ]);
    let outside = ctx(&[
        ("aws:sourceip", "198.51.100.5"),
        ("aws:securetransport", "true"),
    ]);
    let plain_http = ctx(&[
        ("aws:sourceip", "203.0.113.5"),
        ("aws:securetransport", "false"),
    ]);
    assert_eq!(
        eval_ctx(&p, a, "s3:GetObject", OBJ, &inside),
        Decision::Allow
    );
    assert_eq!(
        eval_ctx(&p, a, "s3:GetObject", OBJ, &outside),
        Decision::NotApplicable
    );
    assert_eq!(
        eval_ctx(&p, a, "s3:GetObject", OBJ, &plain_http),
        Decision::Deny
    );
    // No context at all: the Allow's IpAddress is false and so is the Deny's Bool.
    assert_eq!(eval(&p, a, "s3:GetObject", OBJ), Decision::NotApplicable);
}

#[test]
fn deny_unless_condition_with_negated_operator() {
    // The usual "deny everything not from my VPC endpoint": a missing key is "not equal".
    let p = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": ACCT}, "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c"}}}
    ]));
    let via_endpoint = ctx(&[("aws:sourcevpce", "vpce-1a2b3c")]);
    assert_eq!(
        eval_ctx(&p, root(ACCT), "s3:GetObject", OBJ, &via_endpoint),
        Decision::Allow
    );
    assert_eq!(
        eval_ctx(
            &p,
            root(ACCT),
            "s3:GetObject",
            OBJ,
            &ctx(&[("aws:sourcevpce", "vpce-other")])
        ),
        Decision::Deny
    );
    assert_eq!(eval(&p, root(ACCT), "s3:GetObject", OBJ), Decision::Deny);
}

#[test]
fn multi_valued_context() {
    let p = policy(
        json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObjectTagging", "Resource": "arn:aws:s3:::b/*",
        "Condition": {"ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "env"]}}}]),
    );
    let ok = ctx(&[
        ("s3:requestobjecttagkeys", "team"),
        ("s3:requestobjecttagkeys", "env"),
    ]);
    let extra = ctx(&[
        ("s3:requestobjecttagkeys", "team"),
        ("s3:requestobjecttagkeys", "cost"),
    ]);
    let a = Principal::Anonymous;
    assert_eq!(
        eval_ctx(&p, a, "s3:PutObjectTagging", OBJ, &ok),
        Decision::Allow
    );
    assert_eq!(
        eval_ctx(&p, a, "s3:PutObjectTagging", OBJ, &extra),
        Decision::NotApplicable
    );
}
