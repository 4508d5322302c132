//! Who owns a key pair: the principals behind access keys. The gateway authenticates with them;
//! STS issues them; S3 verifies its own signatures against them.

/// A principal that owns a key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub secret_access_key: String,
    pub account_id: String,
    pub arn: String,
    pub user_id: String,
    /// Session credentials carry a token that must accompany the key.
    pub session_token: Option<String>,
    /// Epoch seconds after which the key is refused.
    pub expires: Option<i64>,
}

/// The keys could not be looked up now (the state store behind them is unreachable): the
/// request is answered 503, never as if the key were unknown.
#[derive(Debug, Clone, thiserror::Error)]
#[error("credentials unavailable: {0}")]
pub struct LookupUnavailable(pub String);

/// Looks up the principal of an access key (static keys, STS-issued session keys).
pub trait Principals: Send + Sync + 'static {
    /// `Ok(None)`: no such key.
    fn lookup(&self, access_key_id: &str) -> Result<Option<Principal>, LookupUnavailable>;
}
