//! Who is calling, where, and under which request id.

use std::time::Instant;

/// The address of the connection a request came on (the gateway puts it in the request's
/// extensions): what `aws:SourceIp` and access logs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The authenticated (or, with auth off, claimed) principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    /// `arn:aws:iam::<account>:root` for long-term keys, the assumed-role ARN for session keys.
    pub arn: String,
    pub user_id: String,
}

/// Per-request facts every service needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub account_id: String,
    pub region: String,
    pub request_id: String,
    pub caller: Caller,
    pub started: Instant,
    /// Base URL clients use to reach this server (for presigned URLs, queue URLs...).
    pub endpoint: String,
}

impl RequestContext {
    /// A context for calls made by Basalt itself (internal client, background jobs).
    pub fn internal(account_id: &str, region: &str, endpoint: &str) -> Self {
        RequestContext {
            account_id: account_id.to_owned(),
            region: region.to_owned(),
            request_id: crate::ids::request_id(),
            caller: Caller {
                access_key_id: "internal".into(),
                arn: format!("arn:aws:iam::{account_id}:root"),
                user_id: account_id.to_owned(),
            },
            started: Instant::now(),
            endpoint: endpoint.to_owned(),
        }
    }

    /// Storage namespace: state is isolated per account and region.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.account_id, self.region)
    }
}
