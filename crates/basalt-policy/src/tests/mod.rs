//! Whole documents: parsing errors, evaluation, and public-ness.

mod errors;
mod evaluate;
mod public;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::{Decision, Policy, Principal, Request};

pub(super) const ACCT: &str = "111111111111";
pub(super) const OTHER: &str = "222222222222";
pub(super) const CANON: &str = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";

pub(super) fn policy(statements: Value) -> Policy {
    let doc = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    Policy::parse(&doc).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

pub(super) fn root(account: &'static str) -> Principal<'static> {
    let arn: &'static str = if account == ACCT {
        "arn:aws:iam::111111111111:root"
    } else {
        "arn:aws:iam::222222222222:root"
    };
    Principal::Account {
        account_id: account,
        arn,
        canonical_id: CANON,
    }
}

pub(super) fn caller(arn: &str) -> Principal<'_> {
    Principal::Account {
        account_id: ACCT,
        arn,
        canonical_id: CANON,
    }
}

/// Evaluates with an empty context.
pub(super) fn eval(p: &Policy, who: Principal<'_>, action: &str, resource: &str) -> Decision {
    eval_ctx(p, who, action, resource, &HashMap::new())
}

pub(super) fn eval_ctx(
    p: &Policy,
    who: Principal<'_>,
    action: &str,
    resource: &str,
    context: &HashMap<String, Vec<String>>,
) -> Decision {
    p.evaluate(&Request {
        principal: who,
        action,
        resource,
        context,
    })
}

pub(super) fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    m
}
