//! From JSON text to compiled statements, validated as S3's PutBucketPolicy validates them.
//!
//! Everything a request will be compared against is compiled here (lowercased action
//! patterns, classified wildcards, typed condition values), so evaluation only compares.

use serde_json::{Map, Value};

use crate::condition::Block;
use crate::error::PolicyError;
use crate::pattern::{Case, Pattern};
use crate::principal::{self, Entry};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// An element that comes in a positive and a `Not...` form.
#[derive(Debug, Clone)]
pub(crate) enum Spec<T> {
    Is(Vec<T>),
    Not(Vec<T>),
}

impl<T> Spec<T> {
    /// Whether the element covers the request: for the `Not...` form, whether none of the
    /// listed items does.
    pub(crate) fn covers(&self, hit: impl Fn(&T) -> bool) -> bool {
        match self {
            Spec::Is(v) => v.iter().any(hit),
            Spec::Not(v) => !v.iter().any(hit),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    pub(crate) principal: Spec<Entry>,
    pub(crate) action: Spec<Pattern>,
    pub(crate) resource: Spec<Pattern>,
    pub(crate) condition: Block,
}

const DOCUMENT_FIELDS: &[&str] = &["Version", "Id", "Statement"];
const STATEMENT_FIELDS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Parses a whole document; with `bucket`, every resource must also name that bucket.
pub(crate) fn document(json: &str, bucket: Option<&str>) -> Result<Vec<Statement>, PolicyError> {
    if !json.starts_with('{') {
        return Err(PolicyError::NotAnObject);
    }
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(json) else {
        return Err(PolicyError::InvalidJson);
    };
    unknown_field(&doc, DOCUMENT_FIELDS)?;
    let Some(statements) = doc.get("Statement") else {
        return Err(PolicyError::MissingStatement);
    };
    if let Some(v) = doc.get("Version")
        && !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17"))
    {
        return Err(PolicyError::InvalidVersion);
    }
    if doc.get("Id").is_some_and(|id| !id.is_string()) {
        return Err(PolicyError::InvalidJson);
    }
    let list: Vec<&Map<String, Value>> = match statements {
        Value::Object(s) => vec![s],
        Value::Array(a) if a.is_empty() => return Err(PolicyError::EmptyStatement),
        Value::Array(a) => a
            .iter()
            .map(Value::as_object)
            .collect::<Option<_>>()
            .ok_or(PolicyError::InvalidJson)?,
        _ => return Err(PolicyError::InvalidJson),
    };
    list.into_iter().map(|s| statement(s, bucket)).collect()
}

fn unknown_field(map: &Map<String, Value>, known: &[&str]) -> Result<(), PolicyError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(PolicyError::UnknownField(k.clone())),
        None => Ok(()),
    }
}

/// The positive or `Not...` form of an element; both at once is refused with `conflict`.
fn either<'a>(
    s: &'a Map<String, Value>,
    name: &str,
    not_name: &str,
    missing: PolicyError,
    conflict: PolicyError,
) -> Result<(bool, &'a Value), PolicyError> {
    match (s.get(name), s.get(not_name)) {
        (Some(_), Some(_)) => Err(conflict),
        (Some(v), None) => Ok((false, v)),
        (None, Some(v)) => Ok((true, v)),
        (None, None) => Err(missing),
    }
}

fn spec<T>(not: bool, items: Vec<T>) -> Spec<T> {
    if not {
        Spec::Not(items)
    } else {
        Spec::Is(items)
    }
}

fn statement(s: &Map<String, Value>, bucket: Option<&str>) -> Result<Statement, PolicyError> {
    unknown_field(s, STATEMENT_FIELDS)?;
    if s.get("Sid").is_some_and(|v| !v.is_string()) {
        return Err(PolicyError::InvalidJson);
    }
    let effect = match s.get("Effect") {
        None => return Err(PolicyError::MissingEffect),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => return Err(PolicyError::InvalidEffect(e.clone())),
        Some(other) => return Err(PolicyError::InvalidEffect(other.to_string())),
    };

    let (not, v) = either(
        s,
        "Principal",
        "NotPrincipal",
        PolicyError::MissingPrincipal,
        PolicyError::InvalidPrincipal,
    )?;
    let principal = spec(not, principal::parse(v)?);

    let (not_action, v) = either(
        s,
        "Action",
        "NotAction",
        PolicyError::MissingAction,
        PolicyError::InvalidAction,
    )?;
    let actions = strings(v).ok_or(PolicyError::InvalidAction)?;
    if actions.is_empty() {
        return Err(PolicyError::MissingAction);
    }
    if !actions.iter().all(|a| valid_action(a)) {
        return Err(PolicyError::InvalidAction);
    }

    let (not_resource, v) = either(
        s,
        "Resource",
        "NotResource",
        PolicyError::MissingResource,
        PolicyError::InvalidResource,
    )?;
    let resources = strings(v).ok_or(PolicyError::InvalidResource)?;
    if resources.is_empty() {
        return Err(PolicyError::MissingResource);
    }
    for r in &resources {
        let rest = s3_resource(r).ok_or(PolicyError::InvalidResource)?;
        if let Some(b) = bucket {
            let bucket_part = rest.split('/').next().unwrap_or_default();
            if !Pattern::new(bucket_part, Case::Sensitive).matches(b, Case::Sensitive) {
                return Err(PolicyError::InvalidResource);
            }
        }
    }

    let condition = match s.get("Condition") {
        Some(c) => Block::parse(c)?,
        None => Block::default(),
    };

    if !not_action && !not_resource {
        check_scopes(&actions, &resources)?;
    }

    Ok(Statement {
        effect,
        principal,
        action: spec(
            not_action,
            actions
                .iter()
                .map(|a| Pattern::new(a, Case::AsciiInsensitive))
                .collect(),
        ),
        resource: spec(
            not_resource,
            resources
                .iter()
                .map(|r| Pattern::new(r, Case::Sensitive))
                .collect(),
        ),
        condition,
    })
}

/// A string or an array of strings, as `Action`, `Resource` and principal lists take.
pub(crate) fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// `*`, or `s3:<name>` where the name may use wildcards. A bucket policy can only grant S3
/// actions, so another service's action is refused as S3 refuses it.
fn valid_action(a: &str) -> bool {
    if a == "*" {
        return true;
    }
    let Some((service, name)) = a.split_once(':') else {
        return false;
    };
    service.eq_ignore_ascii_case("s3")
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'?' | b'-' | b'_'))
}

/// What follows `arn:<partition>:s3:::` in a resource, if it is an S3 ARN at all.
fn s3_resource(r: &str) -> Option<&str> {
    let rest = ["arn:aws:s3:::", "arn:aws-cn:s3:::", "arn:aws-us-gov:s3:::"]
        .iter()
        .find_map(|p| r.strip_prefix(p))?;
    (!rest.is_empty() && !rest.starts_with('/')).then_some(rest)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Bucket,
    Object,
}

/// S3 actions whose resource is an object. Anything else named `s3:Get/Put/Delete/List
/// Bucket...` or `...Configuration` is a bucket action; names in neither group (account
/// actions, newer or misspelled ones) are not checked.
const OBJECT_ACTIONS: &[&str] = &[
    "abortmultipartupload",
    "bypassgovernanceretention",
    "deleteobject",
    "deleteobjecttagging",
    "deleteobjectversion",
    "deleteobjectversiontagging",
    "getobject",
    "getobjectacl",
    "getobjectattributes",
    "getobjectlegalhold",
    "getobjectretention",
    "getobjecttagging",
    "getobjecttorrent",
    "getobjectversion",
    "getobjectversionacl",
    "getobjectversionattributes",
    "getobjectversionforreplication",
    "getobjectversiontagging",
    "getobjectversiontorrent",
    "initiatereplication",
    "listmultipartuploadparts",
    "objectowneroverridetobucketowner",
    "putobject",
    "putobjectacl",
    "putobjectlegalhold",
    "putobjectretention",
    "putobjecttagging",
    "putobjectversionacl",
    "putobjectversiontagging",
    "replicatedelete",
    "replicateobject",
    "replicatetags",
    "restoreobject",
];

fn scope(action: &str) -> Option<Scope> {
    let (_, name) = action.split_once(':')?;
    if name.contains(['*', '?']) {
        return None;
    }
    let name = name.to_ascii_lowercase();
    if OBJECT_ACTIONS.contains(&name.as_str()) {
        return Some(Scope::Object);
    }
    let bucket = ["getbucket", "putbucket", "deletebucket", "listbucket"]
        .iter()
        .any(|p| name.starts_with(p))
        || name.ends_with("configuration");
    bucket.then_some(Scope::Bucket)
}

/// S3 refuses a statement naming an action that none of its resources can be the target of,
/// such as `s3:GetObject` on `arn:aws:s3:::bucket`.
fn check_scopes(actions: &[&str], resources: &[&str]) -> Result<(), PolicyError> {
    let rests = || resources.iter().filter_map(|r| s3_resource(r));
    let any_object = rests().any(|r| r.contains(['/', '*']));
    let any_bucket = rests().any(|r| !r.contains('/'));
    for a in actions {
        match scope(a) {
            Some(Scope::Object) if !any_object => return Err(PolicyError::ActionResourceMismatch),
            Some(Scope::Bucket) if !any_bucket => return Err(PolicyError::ActionResourceMismatch),
            _ => {}
        }
    }
    Ok(())
}
