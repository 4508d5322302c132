//! Who may call: key pairs and the principals behind them.

use parking_lot::RwLock;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Any credentials are accepted (as local emulators do); the caller is derived from them.
    #[default]
    Off,
    /// SigV4 signatures are verified against known key pairs.
    SigV4,
}

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

/// Looks up the principal of an access key (static keys, STS-issued session keys).
pub trait Principals: Send + Sync + 'static {
    fn lookup(&self, access_key_id: &str) -> Option<Principal>;
}

/// Configured long-term keys, plus any other source chained behind them.
#[derive(Default)]
pub struct StaticPrincipals {
    keys: RwLock<HashMap<String, Principal>>,
    fallback: Option<Box<dyn Principals>>,
}

impl StaticPrincipals {
    pub fn new(fallback: Option<Box<dyn Principals>>) -> Self {
        StaticPrincipals {
            keys: RwLock::default(),
            fallback,
        }
    }

    pub fn add_root_key(&self, access_key_id: &str, secret: &str, account_id: &str) {
        self.keys.write().insert(
            access_key_id.to_owned(),
            Principal {
                secret_access_key: secret.to_owned(),
                account_id: account_id.to_owned(),
                arn: format!("arn:aws:iam::{account_id}:root"),
                user_id: account_id.to_owned(),
                session_token: None,
                expires: None,
            },
        );
    }
}

impl Principals for StaticPrincipals {
    fn lookup(&self, access_key_id: &str) -> Option<Principal> {
        if let Some(p) = self.keys.read().get(access_key_id) {
            return Some(p.clone());
        }
        self.fallback.as_ref().and_then(|f| f.lookup(access_key_id))
    }
}
