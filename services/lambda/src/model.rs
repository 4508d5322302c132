//! Records, keys and names.
//!
//! A function is `{scope}/{name}` in `lambda.functions` (its `$LATEST` configuration, code,
//! tags, policy, concurrency); published versions are `{scope}/{name}/{version:010}` in
//! `lambda.versions` (a frozen configuration); aliases `{scope}/{name}/{alias}` in
//! `lambda.aliases`. Packages are blobs `lambda/{account}/{sha256 hex}.zip`.

use basalt_core::AwsError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const FUNCTIONS: &str = "lambda.functions";
pub const VERSIONS: &str = "lambda.versions";
pub const ALIASES: &str = "lambda.aliases";
pub const LATEST: &str = "$LATEST";

/// One version's configuration (`$LATEST`'s changes; a published one's never does).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Config {
    pub runtime: String,
    pub role: String,
    pub handler: String,
    #[serde(default)]
    pub description: String,
    pub timeout: u32,
    pub memory: u32,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub ephemeral: u32,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub tracing: String,
    #[serde(default)]
    pub dead_letter: Option<String>,
    #[serde(default)]
    pub kms_key: Option<String>,
    /// Layer version ARNs, in order, with each package's hex SHA-256 and size (a function
    /// keeps its layers' code even if a version is deleted later, as on AWS).
    #[serde(default)]
    pub layers: Vec<String>,
    #[serde(default)]
    pub layer_hexes: Vec<String>,
    #[serde(default)]
    pub layer_sizes: Vec<u64>,
    #[serde(default)]
    pub logging: Option<Value>,
    /// Base64 SHA-256 of the package, as `CodeSha256`.
    pub code_sha256: String,
    /// Hex SHA-256 of the package: its blob and unpacked directory.
    pub code_hex: String,
    pub code_size: u64,
    pub last_modified: String,
    pub revision_id: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct FunctionRec {
    pub name: String,
    pub config: Config,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Resource-based policy statements (AddPermission).
    #[serde(default)]
    pub policy: Vec<Value>,
    #[serde(default)]
    pub reserved_concurrency: Option<u32>,
    /// The number the next published version gets.
    #[serde(default = "one")]
    pub next_version: u64,
    /// Asynchronous invocation settings by qualifier (`$LATEST`, version, alias).
    #[serde(default)]
    pub event_invoke: BTreeMap<String, Value>,
    /// Provisioned concurrency by qualifier (a version or an alias).
    #[serde(default)]
    pub provisioned: BTreeMap<String, crate::provisioned::ProvisionedRec>,
    /// Function URLs by qualifier (`$LATEST` or an alias).
    #[serde(default)]
    pub urls: BTreeMap<String, crate::urls::UrlRec>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AliasRec {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// Extra version → weight (0..1) of the routing configuration.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    pub revision_id: String,
}

pub fn function_key(scope: &str, name: &str) -> String {
    format!("{scope}/{name}")
}

pub fn version_key(scope: &str, name: &str, version: u64) -> String {
    format!("{scope}/{name}/{version:010}")
}

pub fn alias_key(scope: &str, name: &str, alias: &str) -> String {
    format!("{scope}/{name}/{alias}")
}

pub fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

/// `2026-12-06T02:40:00.000+0000`, Lambda's `LastModified`.
pub fn timestamp_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

pub fn revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A function reference as the API accepts it: a name, `name:qualifier`, a full ARN or a
/// partial one (`123456789012:function:name`), with the `Qualifier` parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
}

pub fn parse_ref(
    raw: &str,
    qualifier_param: Option<&str>,
    account: &str,
) -> Result<FunctionRef, AwsError> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (acct, name, qualifier) = match parts.as_slice() {
        [name] => (None, *name, None),
        [name, q] => (None, *name, Some(*q)),
        [acct, "function", name] => (Some(*acct), *name, None),
        [acct, "function", name, q] => (Some(*acct), *name, Some(*q)),
        ["arn", _, "lambda", _region, acct, "function", name] => (Some(*acct), *name, None),
        ["arn", _, "lambda", _region, acct, "function", name, q] => (Some(*acct), *name, Some(*q)),
        _ => {
            return Err(crate::invalid_value(format!(
                "Invalid function name: {raw}"
            )));
        }
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(crate::invalid_value(format!(
            "1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        )));
    }
    if acct.is_some_and(|a| a != account) {
        return Err(crate::AwsError::new(
            403,
            "AccessDeniedException",
            format!("The function {raw} belongs to another account."),
        ));
    }
    let qualifier = match (qualifier, qualifier_param) {
        (Some(a), Some(b)) if a != b => {
            return Err(crate::invalid_value(
                "The derived qualifier from the function name does not match the specified qualifier.",
            ));
        }
        (a, b) => a.or(b).map(str::to_owned),
    };
    Ok(FunctionRef {
        name: name.to_owned(),
        qualifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_as_lambda_accepts_them() {
        let r = |s, q| parse_ref(s, q, "000000000000");
        assert_eq!(r("f", None).unwrap().name, "f");
        assert_eq!(r("f:3", None).unwrap().qualifier.as_deref(), Some("3"));
        assert_eq!(
            r("f", Some("prod")).unwrap().qualifier.as_deref(),
            Some("prod")
        );
        let arn = r(
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST",
            None,
        )
        .unwrap();
        assert_eq!(
            (arn.name.as_str(), arn.qualifier.as_deref()),
            ("f", Some("$LATEST"))
        );
        assert_eq!(r("000000000000:function:f", None).unwrap().name, "f");
        assert!(r("f:1", Some("2")).is_err());
        assert!(r("a b", None).is_err());
        assert_eq!(
            r("arn:aws:lambda:us-east-1:111111111111:function:f", None)
                .unwrap_err()
                .status,
            403
        );
    }
}
