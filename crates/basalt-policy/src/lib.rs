//! IAM resource policies as S3 bucket policies use them: parse and validate a document the
//! way PutBucketPolicy does, evaluate a request against it, and tell whether it is public.
//!
//! ```
//! use std::collections::HashMap;
//! use basalt_policy::{Decision, Policy, Principal, Request};
//!
//! let policy = Policy::parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{
//!         "Effect": "Allow", "Principal": "*",
//!         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"
//!     }]
//! }"#)?;
//! let context = HashMap::new();
//! let req = Request {
//!     principal: Principal::Anonymous,
//!     action: "s3:GetObject",
//!     resource: "arn:aws:s3:::site/index.html",
//!     context: &context,
//! };
//! assert_eq!(policy.evaluate(&req), Decision::Allow);
//! assert!(policy.is_public());
//! # Ok::<(), basalt_policy::PolicyError>(())
//! ```
//!
//! Semantics follow the IAM user guide's policy reference ("IAM JSON policy elements") and the
//! S3 user guide ("The meaning of public"). Nothing here does I/O or knows S3 beyond ARNs.

mod condition;
mod error;
mod parse;
mod pattern;
mod principal;

use std::collections::HashMap;

pub use error::PolicyError;
use parse::{Effect, Spec, Statement};
use pattern::Case;
use principal::Entry;

/// A parsed resource policy (S3 bucket policy).
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// The outcome of evaluating one request against one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Some statement allows the request and none denies it.
    Allow,
    /// Some statement denies the request; this overrides every Allow, here and elsewhere.
    Deny,
    /// No statement applies: the caller's other grants (ACLs, identity policies) decide.
    NotApplicable,
}

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    /// Unsigned request.
    Anonymous,
    /// A signed request: the account (12 digits), the caller's ARN (e.g.
    /// `arn:aws:iam::111111111111:root` or an assumed-role ARN), and the account's S3 canonical
    /// user id (64 hex chars).
    Account {
        account_id: &'a str,
        arn: &'a str,
        canonical_id: &'a str,
    },
}

/// One request, as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: Principal<'a>,
    /// e.g. "s3:GetObject"
    pub action: &'a str,
    /// e.g. "arn:aws:s3:::bucket/key" or "arn:aws:s3:::bucket"
    pub resource: &'a str,
    /// Condition keys present in the request context, keys lowercase (IAM keys are
    /// case-insensitive), each with one or more values.
    pub context: &'a HashMap<String, Vec<String>>,
}

impl Policy {
    /// Parses and validates a policy document as S3's PutBucketPolicy does.
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        parse::document(json, None).map(|statements| Policy { statements })
    }

    /// As [`Policy::parse`], and also refuses (`Policy has invalid resource`) any resource
    /// that cannot name `bucket` or its objects, as PutBucketPolicy on that bucket does.
    pub fn parse_for_bucket(json: &str, bucket: &str) -> Result<Policy, PolicyError> {
        parse::document(json, Some(bucket)).map(|statements| Policy { statements })
    }

    /// Evaluates one request against the policy's statements: an explicit Deny wins, then an
    /// Allow, else NotApplicable.
    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            // Once an Allow is known only a Deny can change the answer.
            if allowed && s.effect == Effect::Allow {
                continue;
            }
            if applies(s, req) {
                match s.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotApplicable
        }
    }

    /// Whether the policy grants access to anyone ("public" as S3's GetBucketPolicyStatus and
    /// Block Public Access define it: an Allow statement whose principal is "*" / {"AWS":"*"}
    /// without a condition that narrows it to fixed values such as aws:SourceIp,
    /// aws:SourceAccount, aws:SourceArn, aws:SourceVpc/Vpce, aws:PrincipalOrgID, aws:userid,
    /// s3:DataAccessPointArn etc.).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            let to_everyone = match &s.principal {
                Spec::Is(entries) => entries.contains(&Entry::Anyone),
                // "Everyone except these" is everyone for this purpose, unless it excepts `*`.
                Spec::Not(entries) => !entries.contains(&Entry::Anyone),
            };
            s.effect == Effect::Allow && to_everyone && !s.condition.narrows_to_fixed_values()
        })
    }

    /// Number of statements, for callers that report or limit policy size.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Always false for a parsed policy: S3 refuses an empty `Statement` list.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }
}

/// Whether a statement covers the request, cheapest test first; the condition block, the
/// only part that looks things up, runs last.
fn applies(s: &Statement, req: &Request<'_>) -> bool {
    s.action
        .covers(|p| p.matches(req.action, Case::AsciiInsensitive))
        && s.resource
            .covers(|p| p.matches(req.resource, Case::Sensitive))
        && s.principal.covers(|e| e.matches(&req.principal))
        && (s.condition.is_empty() || s.condition.holds(req.context))
}

#[cfg(test)]
mod tests;
