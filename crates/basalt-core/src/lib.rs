//! Shared vocabulary of Basalt: who is calling (account, region, principal), the AWS error
//! every layer speaks, ARNs, ids, the service interface that the gateway dispatches to, and
//! the in-process event bus through which services notify each other.
//!
//! Nothing here knows about HTTP or about any particular AWS wire protocol.

pub mod arn;
pub mod connections;
pub mod context;
pub mod error;
pub mod events;
pub mod ids;
pub mod logs;
pub mod objects;
pub mod page_token;
pub mod principals;
pub mod service;
pub mod time;

pub use arn::Arn;
pub use context::{Caller, RequestContext};
pub use error::{AwsError, Fault};
pub use service::{EventStream, Output, Service, ServiceRegistry, StreamEvent};

/// Default account id when none is configured, as other local emulators use.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// Default region when the request carries none.
pub const DEFAULT_REGION: &str = "us-east-1";
