//! AWS STS: who am I (`GetCallerIdentity`), and temporary credentials (`AssumeRole`,
//! `GetSessionToken`) that work against every Basalt service, including with `--auth sigv4`.
//!
//! Issued credentials are persisted, so a session key keeps working across restarts until it
//! expires.

use basalt_core::principals::{LookupUnavailable, Principal, Principals};
use basalt_core::{Arn, AwsError, Output, RequestContext, Service, ids};
use basalt_store::StateStore;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const TABLE: &str = "sts-credentials";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Issued {
    secret: String,
    token: String,
    account_id: String,
    arn: String,
    user_id: String,
    expires: i64,
}

/// Session credentials issued by STS, looked up by the gateway when it authenticates.
pub struct SessionKeys {
    state: Arc<dyn StateStore>,
    cache: RwLock<HashMap<String, Issued>>,
}

impl SessionKeys {
    pub fn new(state: Arc<dyn StateStore>) -> Arc<Self> {
        Arc::new(SessionKeys {
            state,
            cache: RwLock::default(),
        })
    }

    fn issue(&self, issued: Issued) -> Result<String, AwsError> {
        let key = format!("ASIA{}", ids::upper_alnum(16));
        let bytes = serde_json::to_vec(&issued).map_err(|e| AwsError::internal(e.to_string()))?;
        self.state
            .put(TABLE, &key, &bytes)
            .map_err(|e| AwsError::internal(e.to_string()))?;
        self.cache.write().insert(key.clone(), issued);
        Ok(key)
    }

    /// The issued key, `Ok(None)` when unknown; an unreachable store is an error, never
    /// "unknown" (the caller answers 503, not 403). Issued keys never change, so caching them
    /// by key cannot make nodes disagree.
    fn get(&self, key: &str) -> Result<Option<Issued>, basalt_store::StoreError> {
        if let Some(i) = self.cache.read().get(key) {
            return Ok(Some(i.clone()));
        }
        let Some(bytes) = self.state.get(TABLE, key)? else {
            return Ok(None);
        };
        let Ok(issued) = serde_json::from_slice::<Issued>(&bytes) else {
            tracing::warn!(key, "unreadable STS session key record");
            return Ok(None);
        };
        self.cache.write().insert(key.to_owned(), issued.clone());
        Ok(Some(issued))
    }
}

/// Lets the gateway authenticate with STS-issued keys.
pub struct SessionPrincipals(pub Arc<SessionKeys>);

impl Principals for SessionPrincipals {
    fn lookup(&self, access_key_id: &str) -> Result<Option<Principal>, LookupUnavailable> {
        let Some(i) = self
            .0
            .get(access_key_id)
            .map_err(|e| LookupUnavailable(e.to_string()))?
        else {
            return Ok(None);
        };
        Ok(Some(Principal {
            secret_access_key: i.secret,
            account_id: i.account_id,
            arn: i.arn,
            user_id: i.user_id,
            session_token: Some(i.token),
            expires: Some(i.expires),
        }))
    }
}

pub struct Sts {
    keys: Arc<SessionKeys>,
}

impl Sts {
    pub fn new(keys: Arc<SessionKeys>) -> Self {
        Sts { keys }
    }

    fn credentials(&self, issued: Issued) -> Result<Value, AwsError> {
        let (secret, token, expires) =
            (issued.secret.clone(), issued.token.clone(), issued.expires);
        let key = self.keys.issue(issued)?;
        Ok(json!({
            "AccessKeyId": key,
            "SecretAccessKey": secret,
            "SessionToken": token,
            "Expiration": expires,
        }))
    }

    fn assume_role(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let role_arn = input["RoleArn"].as_str().unwrap_or_default();
        let session = input["RoleSessionName"].as_str().unwrap_or_default();
        let duration = duration(input, 3600)?;
        let arn: Arn = role_arn
            .parse()
            .map_err(|_| AwsError::new(400, "ValidationError", format!("{role_arn} is invalid")))?;
        if arn.service != "iam" || arn.resource_type() != "role" {
            return Err(AwsError::new(
                400,
                "ValidationError",
                format!("{role_arn} is not a valid role ARN"),
            ));
        }
        let role_name = arn
            .resource
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let account = if arn.account.is_empty() {
            ctx.account_id.clone()
        } else {
            arn.account.clone()
        };
        let role_id = format!("AROA{}", role_id_suffix(&account, &role_name));
        let assumed_arn = format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}");
        let user_id = format!("{role_id}:{session}");
        let creds = self.credentials(Issued {
            secret: ids::secret(40),
            token: session_token(),
            account_id: account,
            arn: assumed_arn.clone(),
            user_id: user_id.clone(),
            expires: chrono::Utc::now().timestamp() + duration,
        })?;
        Ok(json!({
            "Credentials": creds,
            "AssumedRoleUser": {"AssumedRoleId": user_id, "Arn": assumed_arn},
            "PackedPolicySize": 0,
            "SourceIdentity": input.get("SourceIdentity").cloned().unwrap_or(Value::Null),
        }))
    }
}

/// A stable role id for a role name, as IAM keeps one per role.
fn role_id_suffix(account: &str, role: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (account, role).hash(&mut h);
    let n = h.finish();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..17)
        .map(|i| ALPHABET[((n >> ((i * 5) % 60)) & 31) as usize] as char)
        .collect()
}

fn session_token() -> String {
    format!("FwoGZXIvYXdzE{}", ids::secret(300).replace(['+', '/'], "A"))
}

fn duration(input: &Value, default: i64) -> Result<i64, AwsError> {
    let d = input["DurationSeconds"].as_i64().unwrap_or(default);
    if !(900..=129_600).contains(&d) {
        return Err(AwsError::new(
            400,
            "ValidationError",
            format!(
                "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            ),
        ));
    }
    Ok(d)
}

#[async_trait::async_trait]
impl Service for Sts {
    fn name(&self) -> &'static str {
        "sts"
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        let out = match operation {
            "GetCallerIdentity" => json!({
                "UserId": ctx.caller.user_id,
                "Account": ctx.account_id,
                "Arn": ctx.caller.arn,
            }),
            "AssumeRole" => self.assume_role(ctx, &input)?,
            "GetSessionToken" => {
                let duration = duration(&input, 43_200)?;
                let creds = self.credentials(Issued {
                    secret: ids::secret(40),
                    token: session_token(),
                    account_id: ctx.account_id.clone(),
                    arn: ctx.caller.arn.clone(),
                    user_id: ctx.caller.user_id.clone(),
                    expires: chrono::Utc::now().timestamp() + duration,
                })?;
                json!({ "Credentials": creds })
            }
            "GetAccessKeyInfo" => json!({ "Account": ctx.account_id }),
            other => return Err(AwsError::not_implemented("sts", other)),
        };
        Ok(Output::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_store::MemoryState;

    fn ctx() -> RequestContext {
        RequestContext::internal("000000000000", "us-east-1", "http://127.0.0.1:4566")
    }

    #[tokio::test]
    async fn assumed_role_keys_authenticate_as_the_role() {
        let keys = SessionKeys::new(Arc::new(MemoryState::default()));
        let sts = Sts::new(keys.clone());
        let out = sts
            .call(&ctx(), "AssumeRole", json!({"RoleArn": "arn:aws:iam::111122223333:role/app/Worker", "RoleSessionName": "s1"}))
            .await
            .unwrap()
            .body;
        assert_eq!(
            out["AssumedRoleUser"]["Arn"],
            "arn:aws:sts::111122223333:assumed-role/Worker/s1"
        );
        let key = out["Credentials"]["AccessKeyId"].as_str().unwrap();
        assert!(key.starts_with("ASIA") && key.len() == 20);
        let p = SessionPrincipals(keys).lookup(key).unwrap().unwrap();
        assert_eq!(p.account_id, "111122223333");
        assert_eq!(p.secret_access_key, out["Credentials"]["SecretAccessKey"]);
        assert_eq!(
            p.session_token.as_deref(),
            out["Credentials"]["SessionToken"].as_str()
        );
    }

    #[tokio::test]
    async fn rejects_bad_role_arns_and_durations() {
        let sts = Sts::new(SessionKeys::new(Arc::new(MemoryState::default())));
        for input in [
            json!({"RoleArn": "not-an-arn", "RoleSessionName": "s"}),
            json!({"RoleArn": "arn:aws:s3:::bucket", "RoleSessionName": "s"}),
            json!({"RoleArn": "arn:aws:iam::000000000000:role/R", "RoleSessionName": "s", "DurationSeconds": 10}),
        ] {
            let err = sts.call(&ctx(), "AssumeRole", input).await.err().unwrap();
            assert_eq!(err.code, "ValidationError");
        }
    }
}
