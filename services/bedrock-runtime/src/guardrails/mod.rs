//! Guardrails: their durable records (shared with the control plane, `basalt-bedrock`, which
//! creates and versions them), the compiled form the runtime evaluates, and ApplyGuardrail.
//!
//! One record per guardrail holds its DRAFT and every numbered version: versions are few
//! (Bedrock allows 20) and small, and one record makes create-version and delete atomic
//! without a transaction across records. Names are unique per account and region through a
//! second table written in the same batch.

pub mod apply;
pub mod model;

use basalt_core::{AwsError, RequestContext};
use basalt_guardrails::config::Policies;
use basalt_guardrails::{ConfigError, Guardrail};
use basalt_store::{StateStore, WriteOp};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const TABLE: &str = "bedrock.guardrails";
pub const NAMES: &str = "bedrock.guardrail_names";
pub const RECORD_VERSION: u32 = 1;
/// The literal version that names a guardrail's working copy.
pub const DRAFT: &str = "DRAFT";

/// One version of a guardrail: what it was called, what it says, what it blocks with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub policies: Policies,
    pub blocked_input_messaging: String,
    pub blocked_outputs_messaging: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailRec {
    pub v: u32,
    pub id: String,
    pub created_ms: i64,
    /// The number CreateGuardrailVersion gives next (numbers are never reused).
    pub next_version: u32,
    pub draft: VersionRec,
    #[serde(default)]
    pub versions: BTreeMap<u32, VersionRec>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Idempotency tokens of CreateGuardrailVersion calls, with the version each made.
    #[serde(default)]
    pub version_tokens: BTreeMap<String, u32>,
}

impl GuardrailRec {
    /// The version a `guardrailVersion` parameter names (`DRAFT` when absent).
    pub fn version(&self, version: Option<&str>) -> Option<&VersionRec> {
        match version.unwrap_or(DRAFT) {
            DRAFT => Some(&self.draft),
            n => self.versions.get(&parse_version(n)?),
        }
    }
}

/// `1`..`99999999`, as Bedrock's version pattern allows.
pub fn parse_version(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub fn guardrail_arn(ctx: &RequestContext, id: &str) -> String {
    format!(
        "arn:aws:bedrock:{}:{}:guardrail/{id}",
        ctx.region, ctx.account_id
    )
}

pub fn record_key(ctx: &RequestContext, id: &str) -> String {
    format!("{}/{}/{id}", ctx.account_id, ctx.region)
}

pub fn name_key(ctx: &RequestContext, name: &str) -> String {
    format!("{}/{}/{name}", ctx.account_id, ctx.region)
}

/// The guardrail id a `guardrailIdentifier` names: an id, or an ARN of this account and
/// region. `None` for anything else.
pub fn parse_identifier<'a>(ctx: &RequestContext, identifier: &'a str) -> Option<&'a str> {
    let id = match identifier.strip_prefix("arn:") {
        Some(_) => {
            let parts: Vec<&str> = identifier.splitn(6, ':').collect();
            if parts.len() != 6
                || parts[2] != "bedrock"
                || parts[3] != ctx.region
                || parts[4] != ctx.account_id
            {
                return None;
            }
            parts[5].strip_prefix("guardrail/")?
        }
        None => identifier,
    };
    (!id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    .then_some(id)
}

pub fn not_found(identifier: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("The guardrail {identifier} was not found."),
    )
}

pub fn version_not_found(identifier: &str, version: &str) -> AwsError {
    AwsError::new(
        404,
        "ResourceNotFoundException",
        format!("The guardrail {identifier} has no version {version}."),
    )
}

pub fn config_error(e: ConfigError) -> AwsError {
    AwsError::validation(e.0)
}

fn corrupt(e: serde_json::Error) -> AwsError {
    AwsError::internal(format!("corrupt guardrail record: {e}"))
}

/// Compiled guardrail versions by (record key, version), with when that version last changed.
type Compiled = HashMap<(String, String), (i64, Arc<Guardrail>)>;

/// Durable guardrail records, and a cache of their compiled versions.
pub struct Guardrails {
    pub state: Arc<dyn StateStore>,
    compiled: Mutex<Compiled>,
}

impl Guardrails {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<Guardrails> {
        Arc::new(Guardrails {
            state,
            compiled: Mutex::default(),
        })
    }

    /// The record and its raw bytes (for a compare-and-set write), or None.
    pub fn load(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<Option<(GuardrailRec, Vec<u8>)>, AwsError> {
        match self.state.get(TABLE, &record_key(ctx, id))? {
            Some(raw) => Ok(Some((serde_json::from_slice(&raw).map_err(corrupt)?, raw))),
            None => Ok(None),
        }
    }

    /// The record an identifier names, or ResourceNotFoundException.
    pub fn must_load(
        &self,
        ctx: &RequestContext,
        identifier: &str,
    ) -> Result<(GuardrailRec, Vec<u8>), AwsError> {
        let id = parse_identifier(ctx, identifier).ok_or_else(|| not_found(identifier))?;
        self.load(ctx, id)?.ok_or_else(|| not_found(identifier))
    }

    /// Writes `rec` if the stored record is still `expected` (None: absent), with `extra`
    /// writes in the same batch. A lost race is a ConflictException.
    pub fn save(
        &self,
        ctx: &RequestContext,
        rec: &GuardrailRec,
        expected: Option<Vec<u8>>,
        extra: Vec<WriteOp>,
    ) -> Result<(), AwsError> {
        let key = record_key(ctx, &rec.id);
        let mut ops = vec![
            WriteOp::Check {
                table: TABLE.into(),
                key: key.clone(),
                expected,
            },
            WriteOp::Put {
                table: TABLE.into(),
                key,
                value: serde_json::to_vec(rec).map_err(|e| AwsError::internal(e.to_string()))?,
            },
        ];
        ops.extend(extra);
        self.state.batch(&ops).map_err(|e| match e {
            basalt_store::StoreError::Conflict => AwsError::new(
                409,
                "ConflictException",
                "The guardrail was changed by another request; try again.",
            ),
            other => other.into(),
        })
    }

    /// The compiled guardrail for `version`, without its topic anchors embedded; the caller
    /// embeds them (see [`apply`]) and stores the result with [`Guardrails::remember`].
    pub fn cached(
        &self,
        ctx: &RequestContext,
        rec: &GuardrailRec,
        version: &str,
        v: &VersionRec,
    ) -> Option<Arc<Guardrail>> {
        let key = (record_key(ctx, &rec.id), version.to_owned());
        self.compiled
            .lock()
            .get(&key)
            .filter(|(updated, _)| *updated == v.updated_ms)
            .map(|(_, g)| g.clone())
    }

    pub fn remember(
        &self,
        ctx: &RequestContext,
        rec: &GuardrailRec,
        version: &str,
        v: &VersionRec,
        g: Arc<Guardrail>,
    ) {
        let mut cache = self.compiled.lock();
        // Bounded: a long-lived server with many edited guardrails keeps only recent ones.
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(
            (record_key(ctx, &rec.id), version.to_owned()),
            (v.updated_ms, g),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::internal("000000000000", "us-east-1", "http://127.0.0.1:4566")
    }

    #[test]
    fn identifiers_are_ids_or_arns_of_this_account() {
        let c = ctx();
        assert_eq!(parse_identifier(&c, "abc123"), Some("abc123"));
        assert_eq!(
            parse_identifier(
                &c,
                "arn:aws:bedrock:us-east-1:000000000000:guardrail/abc123"
            ),
            Some("abc123")
        );
        assert_eq!(
            parse_identifier(
                &c,
                "arn:aws:bedrock:eu-west-1:000000000000:guardrail/abc123"
            ),
            None
        );
        assert_eq!(parse_identifier(&c, "ABC"), None);
        assert_eq!(parse_identifier(&c, ""), None);
        assert_eq!(parse_version("1"), Some(1));
        assert_eq!(parse_version("01"), None);
        assert_eq!(parse_version("DRAFT"), None);
        assert_eq!(parse_version("123456789"), None);
    }
}
