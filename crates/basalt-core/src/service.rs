//! The interface between the gateway and services. Inputs and outputs are the canonical
//! document form of the operation's shapes (member names as in the service model; blobs as
//! base64 strings; timestamps as epoch seconds), so a service never sees a wire format and
//! the internal client can call any service with a plain JSON document.

use crate::{AwsError, RequestContext};
use futures::stream::BoxStream;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One event of an output event stream: `name` is the union member of the event-stream shape
/// (e.g. `chunk`, `contentBlockDelta`), `value` its canonical document.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub name: String,
    pub value: Value,
}

pub type EventStream = BoxStream<'static, Result<StreamEvent, AwsError>>;

/// An operation's result.
pub struct Output {
    pub body: Value,
    /// For operations whose output has an event-stream member, the events in order.
    pub stream: Option<EventStream>,
    /// Response headers AWS sends outside the modeled output (e.g. Bedrock's
    /// `X-Amzn-Bedrock-Input-Token-Count`).
    pub headers: Vec<(String, String)>,
}

impl Output {
    pub fn new(body: Value) -> Self {
        Output {
            body,
            stream: None,
            headers: Vec::new(),
        }
    }

    pub fn empty() -> Self {
        Output::new(Value::Object(Default::default()))
    }

    pub fn with_stream(body: Value, stream: EventStream) -> Self {
        Output {
            body,
            stream: Some(stream),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }
}

impl From<Value> for Output {
    fn from(body: Value) -> Self {
        Output::new(body)
    }
}

/// A service implementation; `name` is botocore's service name (`sts`, `bedrock-runtime`).
#[async_trait::async_trait]
pub trait Service: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Runs `operation` (the model's operation name) on `input`. Unknown operations answer
    /// [`AwsError::not_implemented`].
    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError>;
}

/// Services by botocore name. Also the in-process client: `call` takes the same path as an
/// SDK request, minus HTTP and (de)serialization.
#[derive(Clone, Default)]
pub struct ServiceRegistry {
    services: HashMap<&'static str, Arc<dyn Service>>,
}

impl ServiceRegistry {
    pub fn register(&mut self, service: Arc<dyn Service>) {
        self.services.insert(service.name(), service);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Service>> {
        self.services.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.services.keys().copied()
    }

    /// Calls another service in-process.
    pub async fn call(
        &self,
        ctx: &RequestContext,
        service: &str,
        operation: &str,
        input: Value,
    ) -> Result<Output, AwsError> {
        match self.services.get(service) {
            Some(s) => s.call(ctx, operation, input).await,
            None => Err(AwsError::new(
                501,
                "NotImplemented",
                format!("Service {service} is not implemented in Basalt yet."),
            )),
        }
    }
}
