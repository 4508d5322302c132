//! Outbound HTTP: what Basalt's services send to endpoints their users name (SNS HTTP/S
//! subscriptions, Step Functions HTTP tasks), through one pooled client and one TLS trust.

mod client;
mod der;
mod tls;

pub use client::{Client, Failure, Outcome, Response};
pub use tls::{TlsTrust, client_config};
