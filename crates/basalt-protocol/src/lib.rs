//! AWS wire protocols, driven by botocore service models.
//!
//! Requests are parsed into the *canonical document* of the operation's input shape and
//! outputs are serialized from the canonical document of its output shape. The canonical
//! document is JSON: member names as in the model, blobs as base64 strings, timestamps as
//! epoch seconds, non-finite floats as the strings `NaN`, `Infinity`, `-Infinity`. It is what
//! services consume and produce, so no service ever sees a wire format.
//!
//! Protocols: awsJson1_0/1_1 ([`json`]), restJson1 and restXml ([`rest`]), awsQuery
//! ([`query`]), smithy-rpc-v2-cbor ([`cbor`]); AWS event-stream framing in [`eventstream`].

pub mod cbor;
mod cbor_codec;
pub mod eventstream;
pub mod json;
pub mod query;
pub mod rest;
mod shapes;
pub mod timestamp;
pub mod validate;
pub mod xml;

use basalt_core::AwsError;
use basalt_spec::{Operation, Protocol, ServiceModel};

pub use cbor_codec::{Cbor, decode as cbor_decode, encode as cbor_encode};

/// The parts of an HTTP request a protocol needs. `path` is raw (still percent-encoded) and
/// excludes the query string, which is `query` (raw, without `?`).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// A serialized response, before the gateway adds request ids and common headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Which protocol a request to a multi-protocol service (CloudWatch, SQS, Comprehend...) uses.
pub fn detect_protocol(model: &ServiceModel, req: &Request<'_>) -> Protocol {
    let all = model.metadata.all_protocols();
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    if all.contains(&Protocol::Cbor)
        && (header("smithy-protocol") == Some("rpc-v2-cbor") || req.path.starts_with("/service/"))
    {
        return Protocol::Cbor;
    }
    if all.contains(&Protocol::Json) && header("x-amz-target").is_some() {
        return Protocol::Json;
    }
    if all.contains(&Protocol::Query)
        && (header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
            || req.query.contains("Action="))
    {
        return Protocol::Query;
    }
    all.first().copied().unwrap_or(Protocol::Json)
}

/// Finds the operation a request addresses, or the protocol's "unknown operation" error.
pub fn find_operation<'m>(
    model: &'m ServiceModel,
    protocol: Protocol,
    req: &Request<'_>,
) -> Result<&'m Operation, AwsError> {
    match protocol {
        Protocol::Json => json::find_operation(model, req),
        Protocol::RestJson | Protocol::RestXml => rest::find_operation(model, req),
        Protocol::Query | Protocol::Ec2 => query::find_operation(model, req),
        Protocol::Cbor => cbor::find_operation(model, req),
    }
}

/// Parses a request into the canonical document of the operation's input.
pub fn parse_request(
    model: &ServiceModel,
    protocol: Protocol,
    op: &Operation,
    req: &Request<'_>,
) -> Result<serde_json::Value, AwsError> {
    match protocol {
        Protocol::Json => json::parse_request(model, op, req),
        Protocol::RestJson => rest::parse_request(model, op, req, rest::Body::Json),
        Protocol::RestXml => rest::parse_request(model, op, req, rest::Body::Xml),
        Protocol::Query | Protocol::Ec2 => query::parse_request(model, op, req),
        Protocol::Cbor => cbor::parse_request(model, op, req),
    }
}

/// Serializes an operation's canonical output.
pub fn serialize_output(
    model: &ServiceModel,
    protocol: Protocol,
    op: &Operation,
    output: &serde_json::Value,
    request_id: &str,
) -> Result<Response, AwsError> {
    match protocol {
        Protocol::Json => json::serialize_output(model, op, output),
        Protocol::RestJson => rest::serialize_output(model, op, output, rest::Body::Json),
        Protocol::RestXml => rest::serialize_output(model, op, output, rest::Body::Xml),
        Protocol::Query | Protocol::Ec2 => query::serialize_output(model, op, output, request_id),
        Protocol::Cbor => cbor::serialize_output(model, op, output),
    }
}

/// Serializes an error as the protocol does. `model` may be absent when the request could
/// not be tied to a service model; errors then take the protocol's generic form.
pub fn serialize_error(
    model: Option<&ServiceModel>,
    protocol: Protocol,
    err: &AwsError,
    request_id: &str,
) -> Response {
    let status = model
        .and_then(|m| m.shape(&err.code))
        .and_then(|s| s.error.as_ref())
        .and_then(|e| e.http_status_code)
        .unwrap_or(err.status);
    let mut resp = match protocol {
        Protocol::Json => json::serialize_error(model, err),
        Protocol::RestJson => rest::serialize_json_error(model, err),
        Protocol::RestXml | Protocol::Query | Protocol::Ec2 => {
            xml::serialize_error(model, err, request_id)
        }
        Protocol::Cbor => cbor::serialize_error(model, err),
    };
    resp.status = status;
    if let Some(model) = model
        && model.metadata.is_query_compatible()
        && matches!(protocol, Protocol::Json | Protocol::Cbor)
    {
        let code = model
            .shape(&err.code)
            .and_then(|s| s.error.as_ref())
            .and_then(|e| e.code.clone())
            .or_else(|| err.query_code.clone())
            .unwrap_or_else(|| err.code.clone());
        resp.headers.push((
            "x-amzn-query-error".into(),
            format!("{code};{}", err.fault.as_str()),
        ));
    }
    resp
}

/// The code an error has in a given protocol's "unknown operation" answer.
pub fn unknown_operation_error(protocol: Protocol, what: &str) -> AwsError {
    match protocol {
        Protocol::Query | Protocol::Ec2 => AwsError::new(
            400,
            "InvalidAction",
            format!("The action {what} is not valid for this web service."),
        ),
        Protocol::RestJson | Protocol::Cbor | Protocol::RestXml => AwsError::new(
            404,
            "UnknownOperationException",
            format!("No operation matches {what}."),
        ),
        Protocol::Json => AwsError::unknown_operation(what),
    }
}
