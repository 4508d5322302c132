//! What PutBucketPolicy refuses, and that nothing, however broken, panics.

use serde_json::{Value, json};

use crate::{Policy, PolicyError};

fn err(doc: &str) -> PolicyError {
    match Policy::parse(doc) {
        Ok(_) => panic!("accepted: {doc}"),
        Err(e) => e,
    }
}

/// A document with one statement: a valid one with `patch` applied (null removes a field).
fn stmt_err(patch: Value) -> PolicyError {
    let mut s = json!({
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b/*"
    });
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            s.as_object_mut().unwrap().remove(k);
        } else {
            s[k] = v.clone();
        }
    }
    err(&json!({"Version": "2012-10-17", "Statement": [s]}).to_string())
}

#[test]
fn messages_are_s3s() {
    let cases = [
        (
            PolicyError::NotAnObject,
            "Policies must be valid JSON and the first byte must be '{'",
        ),
        (
            PolicyError::InvalidJson,
            "This policy contains invalid Json",
        ),
        (
            PolicyError::UnknownField("Conditions".into()),
            "Unknown field Conditions",
        ),
        (
            PolicyError::InvalidVersion,
            "The policy must contain a valid version string",
        ),
        (
            PolicyError::MissingStatement,
            "Missing required field Statement",
        ),
        (
            PolicyError::EmptyStatement,
            "Could not parse the policy: Statement is empty!",
        ),
        (PolicyError::MissingEffect, "Missing required field Effect"),
        (
            PolicyError::InvalidEffect("hello".into()),
            "Invalid effect: hello",
        ),
        (
            PolicyError::MissingPrincipal,
            "Missing required field Principal",
        ),
        (PolicyError::InvalidPrincipal, "Invalid principal in policy"),
        (PolicyError::MissingAction, "Missing required field Action"),
        (PolicyError::InvalidAction, "Policy has invalid action"),
        (
            PolicyError::MissingResource,
            "Missing required field Resource",
        ),
        (PolicyError::InvalidResource, "Policy has invalid resource"),
        (
            PolicyError::ActionResourceMismatch,
            "Action does not apply to any resource(s) in statement",
        ),
        (
            PolicyError::InvalidConditionKey,
            "Policy has an invalid condition key",
        ),
        (
            PolicyError::InvalidConditionOperator("StringEqual".into()),
            "Invalid Condition type : StringEqual",
        ),
        (
            PolicyError::InvalidIpAddress,
            "Invalid IP address in Conditions",
        ),
    ];
    for (e, msg) in cases {
        assert_eq!(e.to_string(), msg);
    }
}

#[test]
fn document_level() {
    assert_eq!(err(""), PolicyError::NotAnObject);
    assert_eq!(err(" {}"), PolicyError::NotAnObject);
    assert_eq!(err("[]"), PolicyError::NotAnObject);
    assert_eq!(err("null"), PolicyError::NotAnObject);
    assert_eq!(err("{"), PolicyError::InvalidJson);
    assert_eq!(
        err("{\"Statement\": []} trailing"),
        PolicyError::InvalidJson
    );
    assert_eq!(err("{}"), PolicyError::MissingStatement);
    assert_eq!(
        err(r#"{"Version": "2012-10-17"}"#),
        PolicyError::MissingStatement
    );
    assert_eq!(err(r#"{"Statement": []}"#), PolicyError::EmptyStatement);
    assert_eq!(err(r#"{"Statement": "x"}"#), PolicyError::InvalidJson);
    assert_eq!(err(r#"{"Statement": ["x"]}"#), PolicyError::InvalidJson);
    assert_eq!(err(r#"{"Statement": null}"#), PolicyError::InvalidJson);
    assert_eq!(
        err(r#"{"Version": "2012-10-18", "Statement": []}"#),
        PolicyError::InvalidVersion
    );
    assert_eq!(
        err(r#"{"Version": 2012, "Statement": []}"#),
        PolicyError::InvalidVersion
    );
    assert_eq!(
        err(r#"{"Id": 5, "Statement": []}"#),
        PolicyError::InvalidJson
    );
    assert_eq!(
        err(r#"{"Statement": [], "statement": []}"#),
        PolicyError::UnknownField("statement".into())
    );
}

#[test]
fn version_and_id_are_optional() {
    let s = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#;
    assert!(Policy::parse(&format!(r#"{{"Statement": {s}}}"#)).is_ok());
    assert!(
        Policy::parse(&format!(
            r#"{{"Version":"2008-10-17","Id":"x","Statement":[{s}]}}"#
        ))
        .is_ok()
    );
    let with_sid = s.replace("{\"Effect\"", "{\"Sid\":\"Public\",\"Effect\"");
    assert!(Policy::parse(&format!(r#"{{"Statement":[{with_sid}]}}"#)).is_ok());
}

#[test]
fn statement_level() {
    assert_eq!(
        stmt_err(json!({"Conditions": {}})),
        PolicyError::UnknownField("Conditions".into())
    );
    assert_eq!(
        stmt_err(json!({"condition": {}})),
        PolicyError::UnknownField("condition".into())
    );
    assert_eq!(stmt_err(json!({"Sid": 1})), PolicyError::InvalidJson);
    assert_eq!(
        stmt_err(json!({"Effect": null})),
        PolicyError::MissingEffect
    );
    assert_eq!(
        stmt_err(json!({"Effect": "hello"})),
        PolicyError::InvalidEffect("hello".into())
    );
    assert_eq!(
        stmt_err(json!({"Effect": "allow"})),
        PolicyError::InvalidEffect("allow".into())
    );
    assert_eq!(
        stmt_err(json!({"Effect": 1})),
        PolicyError::InvalidEffect("1".into())
    );
    assert_eq!(
        stmt_err(json!({"Principal": null})),
        PolicyError::MissingPrincipal
    );
    assert_eq!(
        stmt_err(json!({"Principal": "someone"})),
        PolicyError::InvalidPrincipal
    );
    assert_eq!(
        stmt_err(json!({"Principal": {"AWS": "user"}})),
        PolicyError::InvalidPrincipal
    );
    assert_eq!(
        stmt_err(json!({"NotPrincipal": {"AWS": "*"}})),
        PolicyError::InvalidPrincipal
    );
    assert_eq!(
        stmt_err(json!({"Action": null})),
        PolicyError::MissingAction
    );
    assert_eq!(stmt_err(json!({"Action": []})), PolicyError::MissingAction);
    assert_eq!(
        stmt_err(json!({"Action": "invalid_action"})),
        PolicyError::InvalidAction
    );
    assert_eq!(
        stmt_err(json!({"Action": "s3:"})),
        PolicyError::InvalidAction
    );
    assert_eq!(
        stmt_err(json!({"Action": ":GetObject"})),
        PolicyError::InvalidAction
    );
    assert_eq!(
        stmt_err(json!({"Action": "ec2:RunInstances"})),
        PolicyError::InvalidAction
    );
    assert_eq!(
        stmt_err(json!({"Action": "s3:Get Object"})),
        PolicyError::InvalidAction
    );
    assert_eq!(stmt_err(json!({"Action": 5})), PolicyError::InvalidAction);
    assert_eq!(
        stmt_err(json!({"Action": ["s3:GetObject", 5]})),
        PolicyError::InvalidAction
    );
    assert_eq!(
        stmt_err(json!({"NotAction": "s3:PutObject"})),
        PolicyError::InvalidAction
    );
    assert_eq!(
        stmt_err(json!({"Resource": null})),
        PolicyError::MissingResource
    );
    assert_eq!(
        stmt_err(json!({"Resource": []})),
        PolicyError::MissingResource
    );
    assert_eq!(
        stmt_err(json!({"Resource": "bucket"})),
        PolicyError::InvalidResource
    );
    assert_eq!(
        stmt_err(json!({"Resource": "*"})),
        PolicyError::InvalidResource
    );
    assert_eq!(
        stmt_err(json!({"Resource": "arn:aws:s3:::"})),
        PolicyError::InvalidResource
    );
    assert_eq!(
        stmt_err(json!({"Resource": "arn:aws:sqs:::b"})),
        PolicyError::InvalidResource
    );
    assert_eq!(
        stmt_err(json!({"Resource": {"a": 1}})),
        PolicyError::InvalidResource
    );
    assert_eq!(
        stmt_err(json!({"NotResource": "arn:aws:s3:::b"})),
        PolicyError::InvalidResource
    );
    assert_eq!(
        stmt_err(json!({"Condition": "x"})),
        PolicyError::InvalidJson
    );
    assert_eq!(
        stmt_err(json!({"Condition": {"StringEqual": {"aws:SourceIp": "x"}}})),
        PolicyError::InvalidConditionOperator("StringEqual".into())
    );
    assert_eq!(
        stmt_err(json!({"Condition": {"StringEquals": {"SourceIp": "x"}}})),
        PolicyError::InvalidConditionKey
    );
    assert_eq!(
        stmt_err(json!({"Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.999"}}})),
        PolicyError::InvalidIpAddress
    );
}

#[test]
fn first_bad_statement_is_reported() {
    let doc = json!({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    ]});
    assert_eq!(err(&doc.to_string()), PolicyError::MissingResource);
}

#[test]
fn action_resource_scopes() {
    let mismatch =
        |action: Value, resource: Value| stmt_err(json!({"Action": action, "Resource": resource}));
    assert_eq!(
        mismatch(json!("s3:PutObject"), json!("arn:aws:s3:::b")),
        PolicyError::ActionResourceMismatch
    );
    assert_eq!(
        mismatch(json!("s3:ListBucket"), json!("arn:aws:s3:::b/*")),
        PolicyError::ActionResourceMismatch
    );
    assert_eq!(
        mismatch(
            json!(["s3:ListBucket", "s3:GetObject"]),
            json!("arn:aws:s3:::b")
        ),
        PolicyError::ActionResourceMismatch
    );
    let ok = |action: Value, resource: Value| {
        let doc = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource}});
        Policy::parse(&doc.to_string()).map(|_| ())
    };
    assert_eq!(
        ok(
            json!(["s3:ListBucket", "s3:GetObject"]),
            json!(["arn:aws:s3:::b", "arn:aws:s3:::b/*"])
        ),
        Ok(())
    );
    assert_eq!(ok(json!("s3:GetObject"), json!("arn:aws:s3:::b*")), Ok(()));
    assert_eq!(
        ok(json!("s3:PutBucketPolicy"), json!("arn:aws:s3:::b")),
        Ok(())
    );
    assert_eq!(
        ok(
            json!("s3:GetLifecycleConfiguration"),
            json!("arn:aws:s3:::b")
        ),
        Ok(())
    );
    // Wildcard actions are not checked: `s3:*` is fine on objects alone.
    assert_eq!(ok(json!("s3:*"), json!("arn:aws:s3:::b/*")), Ok(()));
    assert_eq!(ok(json!("*"), json!("arn:aws:s3:::b")), Ok(()));
    // Case does not matter to action names.
    assert_eq!(ok(json!("S3:getobject"), json!("arn:aws:s3:::b/*")), Ok(()));
}

#[test]
fn bucket_bound_resources() {
    let doc = |r: &str| {
        json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": r}})
            .to_string()
    };
    assert!(Policy::parse_for_bucket(&doc("arn:aws:s3:::site"), "site").is_ok());
    assert!(Policy::parse_for_bucket(&doc("arn:aws:s3:::site/*"), "site").is_ok());
    assert!(Policy::parse_for_bucket(&doc("arn:aws:s3:::si*"), "site").is_ok());
    assert_eq!(
        Policy::parse_for_bucket(&doc("arn:aws:s3:::other/*"), "site").err(),
        Some(PolicyError::InvalidResource)
    );
    assert_eq!(
        Policy::parse_for_bucket(&doc("arn:aws:s3:::sites"), "site").err(),
        Some(PolicyError::InvalidResource)
    );
    // Without a bucket, any S3 resource goes.
    assert!(Policy::parse(&doc("arn:aws:s3:::other/*")).is_ok());
}

/// Deterministic xorshift, so a failure names a reproducible input.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

const VALID: &str = r#"{"Version":"2012-10-17","Id":"p","Statement":[{"Sid":"a","Effect":"Deny","NotPrincipal":{"AWS":["111111111111","arn:aws:iam::111111111111:role/x/R"],"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},"NotAction":["s3:Get*","s3:List?ucket"],"Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"],"Condition":{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*",1,true]},"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"},"Null":{"s3:prefix":"false"}}},{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::b/private/*"}]}"#;

#[test]
fn the_fuzz_corpus_base_is_valid() {
    let p = Policy::parse(VALID).unwrap();
    assert_eq!(p.len(), 2);
    assert!(!p.is_empty());
}

#[test]
fn truncations_never_panic() {
    // Every prefix by character; the only accepted one is the whole document.
    for (i, _) in VALID.char_indices() {
        assert!(Policy::parse(&VALID[..i]).is_err(), "{}", &VALID[..i]);
    }
}

#[test]
fn mutations_never_panic() {
    let alphabet: &[u8] = b"{}[]\":,*?/\\ 0123456789aAsS-.\x00\xff";
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let ctx = std::collections::HashMap::new();
    for _ in 0..20_000 {
        let mut bytes = VALID.as_bytes().to_vec();
        for _ in 0..1 + rng(&mut seed) % 4 {
            let at = (rng(&mut seed) as usize) % bytes.len();
            match rng(&mut seed) % 3 {
                0 => bytes[at] = alphabet[(rng(&mut seed) as usize) % alphabet.len()],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[(rng(&mut seed) as usize) % alphabet.len()]),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(p) = Policy::parse(&text) {
            // Whatever parses must also evaluate and classify without trouble.
            let _ = p.is_public();
            let _ = super::eval_ctx(
                &p,
                crate::Principal::Anonymous,
                "s3:GetObject",
                "arn:aws:s3:::b/k",
                &ctx,
            );
        }
    }
}

#[test]
fn garbage_never_panics() {
    let deep_array = format!(
        "{{\"Statement\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_object = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let huge_glob = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*",
        "Resource": format!("arn:aws:s3:::b/{}", "*a".repeat(2_000))}})
    .to_string();
    for doc in [
        "\u{0}",
        "{\u{0}}",
        "{\"Statement\":",
        "{\"Statement\":{\"Effect\":\"Allow\",\"Principal\":",
        "{\"Statement\":[{}]}",
        "{\"Statement\":[{\"Effect\":\"Allow\"}]}",
        "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":[]}}]}",
        "{\"Statement\":1e999}",
        "{\"Statement\":\"\\ud800\"}",
        "{\"\":\"\"}",
        &deep_array,
        &deep_object,
    ] {
        assert!(Policy::parse(doc).is_err(), "{doc}");
    }
    let p = Policy::parse(&huge_glob).unwrap();
    let key = format!("arn:aws:s3:::b/{}", "a".repeat(4_000));
    let d = super::eval(&p, crate::Principal::Anonymous, "s3:GetObject", &key);
    assert_eq!(d, crate::Decision::Allow);
}
