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

pub use basalt_core::principals::{LookupUnavailable, Principal, Principals};

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
    fn lookup(&self, access_key_id: &str) -> Result<Option<Principal>, LookupUnavailable> {
        if let Some(p) = self.keys.read().get(access_key_id) {
            return Ok(Some(p.clone()));
        }
        match &self.fallback {
            Some(f) => f.lookup(access_key_id),
            None => Ok(None),
        }
    }
}
