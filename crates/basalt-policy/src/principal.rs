//! The `Principal` / `NotPrincipal` element: who a statement is about.
//!
//! Forms follow "AWS JSON policy elements: Principal": `"*"`, `{"AWS": "*"}`, an account
//! (`123456789012` or `arn:aws:iam::123456789012:root`, both meaning every identity of that
//! account), an IAM user/role ARN, an STS session ARN, `{"CanonicalUser": ...}`, and service
//! or federated principals, which never sign S3 requests themselves.

use serde_json::Value;

use crate::error::PolicyError;
use crate::{Principal, parse::strings};

/// One principal named by a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Anyone,
    /// Every identity of one account.
    Account(Box<str>),
    /// An IAM role. Besides its own ARN it matches that role's STS sessions, whose ARNs drop
    /// the role's path: `arn:aws:sts::ACCT:assumed-role/NAME/SESSION`.
    Role {
        arn: Box<str>,
        account: Box<str>,
        name: Box<str>,
    },
    /// Any other IAM or STS ARN, matched exactly.
    Arn(Box<str>),
    /// An S3 canonical user id, stored lowercased.
    CanonicalUser(Box<str>),
    /// `Service` or `Federated`: valid in a policy, but no signed S3 request carries them.
    Unmatchable,
}

impl Entry {
    pub(crate) fn matches(&self, who: &Principal<'_>) -> bool {
        let (account_id, arn, canonical_id) = match *who {
            Principal::Anonymous => return matches!(self, Entry::Anyone),
            Principal::Account {
                account_id,
                arn,
                canonical_id,
            } => (account_id, arn, canonical_id),
        };
        match self {
            Entry::Anyone => true,
            Entry::Account(a) => **a == *account_id,
            Entry::Role {
                arn: r,
                account,
                name,
            } => {
                **r == *arn
                    || assumed_role(arn).is_some_and(|(a, n)| a == &**account && n == &**name)
            }
            Entry::Arn(a) => **a == *arn,
            Entry::CanonicalUser(c) => c.eq_ignore_ascii_case(canonical_id),
            Entry::Unmatchable => false,
        }
    }
}

/// The account and role name of an STS assumed-role session ARN.
fn assumed_role(arn: &str) -> Option<(&str, &str)> {
    let (account, resource) = split_arn(arn, "sts")?;
    let rest = resource.strip_prefix("assumed-role/")?;
    let (name, session) = rest.split_once('/')?;
    (!name.is_empty() && !session.is_empty()).then_some((account, name))
}

/// `arn:<partition>:<service>::<account>:<resource>` → (account, resource), for IAM and STS
/// ARNs, which have no region.
fn split_arn<'a>(arn: &'a str, service: &str) -> Option<(&'a str, &'a str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, partition, svc, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let ok = arn_ == "arn"
        && partition.starts_with("aws")
        && svc == service
        && region.is_empty()
        && is_account_id(account)
        && !resource.is_empty();
    ok.then_some((account, resource))
}

pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses the value of `Principal` or `NotPrincipal`.
pub(crate) fn parse(v: &Value) -> Result<Vec<Entry>, PolicyError> {
    match v {
        Value::String(s) if s == "*" => Ok(vec![Entry::Anyone]),
        Value::Object(map) if !map.is_empty() => {
            let mut out = Vec::new();
            for (kind, values) in map {
                let values = strings(values).ok_or(PolicyError::InvalidPrincipal)?;
                if values.is_empty() {
                    return Err(PolicyError::InvalidPrincipal);
                }
                for s in values {
                    out.push(match kind.as_str() {
                        "AWS" => aws(s)?,
                        "CanonicalUser" => canonical(s)?,
                        "Service" | "Federated" if !s.is_empty() && !s.contains('*') => {
                            Entry::Unmatchable
                        }
                        _ => return Err(PolicyError::InvalidPrincipal),
                    });
                }
            }
            Ok(out)
        }
        _ => Err(PolicyError::InvalidPrincipal),
    }
}

fn aws(s: &str) -> Result<Entry, PolicyError> {
    if s == "*" {
        return Ok(Entry::Anyone);
    }
    if is_account_id(s) {
        return Ok(Entry::Account(s.into()));
    }
    // IAM allows `*` only on its own; `arn:aws:iam::*:root` or `user/*` is refused.
    if s.contains('*') || s.contains('?') {
        return Err(PolicyError::InvalidPrincipal);
    }
    if let Some((account, resource)) = split_arn(s, "iam") {
        if resource == "root" {
            return Ok(Entry::Account(account.into()));
        }
        if let Some(path_and_name) = resource.strip_prefix("role/") {
            let name = path_and_name.rsplit('/').next().unwrap_or_default();
            if name.is_empty() {
                return Err(PolicyError::InvalidPrincipal);
            }
            return Ok(Entry::Role {
                arn: s.into(),
                account: account.into(),
                name: name.into(),
            });
        }
        if resource.contains('/') {
            return Ok(Entry::Arn(s.into()));
        }
        return Err(PolicyError::InvalidPrincipal);
    }
    if let Some((_, resource)) = split_arn(s, "sts")
        && (resource.starts_with("assumed-role/") || resource.starts_with("federated-user/"))
    {
        return Ok(Entry::Arn(s.into()));
    }
    Err(PolicyError::InvalidPrincipal)
}

fn canonical(s: &str) -> Result<Entry, PolicyError> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Entry::CanonicalUser(s.to_ascii_lowercase().into()))
    } else {
        Err(PolicyError::InvalidPrincipal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCT: &str = "111111111111";
    const CANON: &str = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";

    fn user<'a>(arn: &'a str) -> Principal<'a> {
        Principal::Account {
            account_id: ACCT,
            arn,
            canonical_id: CANON,
        }
    }

    fn one(v: Value) -> Entry {
        let mut e = parse(&v).unwrap();
        assert_eq!(e.len(), 1);
        e.pop().unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(one(json!("*")), Entry::Anyone);
        assert_eq!(one(json!({"AWS": "*"})), Entry::Anyone);
        assert_eq!(one(json!({"AWS": ["*"]})), Entry::Anyone);
        assert_eq!(one(json!({"AWS": ACCT})), Entry::Account(ACCT.into()));
        assert_eq!(
            one(json!({"AWS": "arn:aws:iam::111111111111:root"})),
            Entry::Account(ACCT.into())
        );
        assert_eq!(
            one(json!({"CanonicalUser": CANON.to_uppercase()})),
            Entry::CanonicalUser(CANON.into())
        );
        assert_eq!(
            one(json!({"Service": "logging.s3.amazonaws.com"})),
            Entry::Unmatchable
        );
        assert_eq!(
            one(json!({"Federated": "cognito-identity.amazonaws.com"})),
            Entry::Unmatchable
        );
        let many = parse(
            &json!({"AWS": [ACCT, "arn:aws:iam::222222222222:user/bob"], "CanonicalUser": CANON}),
        )
        .unwrap();
        assert_eq!(many.len(), 3);
    }

    #[test]
    fn invalid_forms() {
        for v in [
            json!("anyone"),
            json!(""),
            json!({}),
            json!(42),
            json!(null),
            json!(["*"]),
            json!({"AWS": []}),
            json!({"AWS": 111111111111u64}),
            json!({"AWS": "user"}),
            json!({"AWS": "11111111111"}),
            json!({"AWS": "arn:aws:iam::*:root"}),
            json!({"AWS": "arn:aws:iam::111111111111:user/*"}),
            json!({"AWS": "arn:aws:iam::111111111111:"}),
            json!({"AWS": "arn:aws:iam::111111111111:bob"}),
            json!({"AWS": "arn:aws:iam::111111111111:role/"}),
            json!({"AWS": "arn:aws:s3:::bucket"}),
            json!({"AWS": "arn:aws:iam:us-east-1:111111111111:user/x"}),
            json!({"AWS": "arn:aws:sts::111111111111:bob"}),
            json!({"AWS": {"nested": "x"}}),
            json!({"CanonicalUser": "abc"}),
            json!({"CanonicalUser": "z".repeat(64)}),
            json!({"Service": "*"}),
            json!({"Service": ""}),
            json!({"Everyone": "*"}),
            json!({"aws": "*"}),
        ] {
            assert_eq!(parse(&v), Err(PolicyError::InvalidPrincipal), "{v}");
        }
    }

    #[test]
    fn anonymous_matches_only_anyone() {
        assert!(Entry::Anyone.matches(&Principal::Anonymous));
        for e in [
            Entry::Account(ACCT.into()),
            Entry::Arn("arn:aws:iam::111111111111:user/a".into()),
            Entry::CanonicalUser(CANON.into()),
            Entry::Unmatchable,
        ] {
            assert!(!e.matches(&Principal::Anonymous), "{e:?}");
        }
    }

    #[test]
    fn account_covers_every_identity_of_it() {
        let e = one(json!({"AWS": ACCT}));
        assert!(e.matches(&user("arn:aws:iam::111111111111:root")));
        assert!(e.matches(&user("arn:aws:iam::111111111111:user/alice")));
        assert!(e.matches(&user("arn:aws:sts::111111111111:assumed-role/R/s")));
        let other = Principal::Account {
            account_id: "222222222222",
            arn: "arn:aws:iam::222222222222:root",
            canonical_id: CANON,
        };
        assert!(!e.matches(&other));
    }

    #[test]
    fn user_arn_is_exact() {
        let e = one(json!({"AWS": "arn:aws:iam::111111111111:user/alice"}));
        assert!(e.matches(&user("arn:aws:iam::111111111111:user/alice")));
        assert!(!e.matches(&user("arn:aws:iam::111111111111:user/alice2")));
        assert!(!e.matches(&user("arn:aws:iam::111111111111:root")));
    }

    #[test]
    fn role_matches_its_sessions() {
        let e = one(json!({"AWS": "arn:aws:iam::111111111111:role/team/Deploy"}));
        assert!(e.matches(&user("arn:aws:iam::111111111111:role/team/Deploy")));
        assert!(e.matches(&user("arn:aws:sts::111111111111:assumed-role/Deploy/ci-42")));
        assert!(!e.matches(&user(
            "arn:aws:sts::111111111111:assumed-role/Deployer/ci-42"
        )));
        assert!(!e.matches(&user("arn:aws:sts::222222222222:assumed-role/Deploy/ci-42")));
        assert!(!e.matches(&user("arn:aws:sts::111111111111:assumed-role/Deploy/")));
        let session = one(json!({"AWS": "arn:aws:sts::111111111111:assumed-role/Deploy/ci-42"}));
        assert!(session.matches(&user("arn:aws:sts::111111111111:assumed-role/Deploy/ci-42")));
        assert!(!session.matches(&user("arn:aws:sts::111111111111:assumed-role/Deploy/ci-43")));
    }

    #[test]
    fn canonical_user() {
        let e = one(json!({"CanonicalUser": CANON}));
        assert!(e.matches(&user("arn:aws:iam::111111111111:root")));
        let other = Principal::Account {
            account_id: ACCT,
            arn: "arn:aws:iam::111111111111:root",
            canonical_id: &"0".repeat(64),
        };
        assert!(!e.matches(&other));
    }
}
