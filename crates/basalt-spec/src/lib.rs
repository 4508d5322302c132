//! botocore service models, the source of truth for every shape, member name, HTTP binding
//! and error code. Models are vendored gzipped (documentation stripped, see `vendor.py`) and
//! parsed on first use, so start-up costs nothing.
//!
//! The same types load the shapes embedded in AWS's protocol test vectors, which use the
//! `service-2.json` format.

use indexmap::IndexMap;
use parking_lot::RwLock;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The wire protocols we speak, named as in botocore's `metadata.protocol(s)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Protocol {
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "rest-json")]
    RestJson,
    #[serde(rename = "rest-xml")]
    RestXml,
    #[serde(rename = "query")]
    Query,
    #[serde(rename = "ec2")]
    Ec2,
    #[serde(rename = "smithy-rpc-v2-cbor")]
    Cbor,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub protocol: Option<Protocol>,
    #[serde(default)]
    pub protocols: Vec<Protocol>,
    pub api_version: Option<String>,
    pub json_version: Option<String>,
    pub target_prefix: Option<String>,
    pub signing_name: Option<String>,
    pub endpoint_prefix: Option<String>,
    pub service_id: Option<String>,
    pub xml_namespace: Option<String>,
    /// Present (as an empty object) on services that moved from awsQuery and keep its error codes.
    pub aws_query_compatible: Option<serde_json::Value>,
}

impl Metadata {
    pub fn is_query_compatible(&self) -> bool {
        self.aws_query_compatible.is_some()
    }

    /// Every protocol the service accepts, the preferred one first.
    pub fn all_protocols(&self) -> Vec<Protocol> {
        let mut all = self.protocols.clone();
        if let Some(p) = self.protocol
            && !all.contains(&p)
        {
            all.insert(0, p);
        }
        all
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Http {
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_uri")]
    pub request_uri: String,
    pub response_code: Option<u16>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_uri() -> String {
    "/".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub host_prefix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    #[serde(default)]
    pub http: Http,
    pub input: Option<ShapeRef>,
    pub output: Option<ShapeRef>,
    #[serde(default)]
    pub errors: Vec<ShapeRef>,
    pub endpoint: Option<Endpoint>,
}

/// A reference to a shape with the traits the referencing member adds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShapeRef {
    pub shape: String,
    pub location: Option<Location>,
    pub location_name: Option<String>,
    pub query_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub xml_attribute: bool,
    pub xml_namespace: Option<XmlNamespace>,
    #[serde(default)]
    pub streaming: bool,
    #[serde(default)]
    pub eventpayload: bool,
    #[serde(default)]
    pub eventheader: bool,
    #[serde(default)]
    pub jsonvalue: bool,
    #[serde(default)]
    pub host_label: bool,
    #[serde(default)]
    pub idempotency_token: bool,
    pub timestamp_format: Option<TimestampFormat>,
    pub result_wrapper: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    Header,
    Headers,
    Querystring,
    Uri,
    StatusCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimestampFormat {
    Iso8601,
    Rfc822,
    #[serde(alias = "unixTimestamp")]
    UnixTimestamp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum XmlNamespace {
    Uri(String),
    Full { uri: String, prefix: Option<String> },
}

impl XmlNamespace {
    pub fn uri(&self) -> &str {
        match self {
            XmlNamespace::Uri(u) => u,
            XmlNamespace::Full { uri, .. } => uri,
        }
    }
    pub fn prefix(&self) -> Option<&str> {
        match self {
            XmlNamespace::Uri(_) => None,
            XmlNamespace::Full { prefix, .. } => prefix.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeType {
    Structure,
    List,
    Map,
    String,
    Integer,
    Long,
    Short,
    Byte,
    Float,
    Double,
    #[serde(alias = "bigdecimal")]
    BigDecimal,
    #[serde(alias = "biginteger")]
    BigInteger,
    Boolean,
    Blob,
    Timestamp,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorTrait {
    pub code: Option<String>,
    pub http_status_code: Option<u16>,
    #[serde(default)]
    pub sender_fault: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: ShapeType,
    #[serde(default)]
    pub members: IndexMap<String, ShapeRef>,
    #[serde(default)]
    pub required: Vec<String>,
    pub member: Option<Box<ShapeRef>>,
    pub key: Option<Box<ShapeRef>>,
    pub value: Option<Box<ShapeRef>>,
    #[serde(default)]
    pub flattened: bool,
    pub payload: Option<String>,
    #[serde(default)]
    pub exception: bool,
    #[serde(default)]
    pub fault: bool,
    pub error: Option<ErrorTrait>,
    #[serde(default)]
    pub event: bool,
    #[serde(default)]
    pub eventstream: bool,
    #[serde(default)]
    pub union: bool,
    #[serde(default)]
    pub document: bool,
    #[serde(default)]
    pub streaming: bool,
    pub timestamp_format: Option<TimestampFormat>,
    pub location_name: Option<String>,
    pub xml_namespace: Option<XmlNamespace>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no model for service {0}")]
    UnknownService(String),
    #[error("model of {0} is corrupt: {1}")]
    Corrupt(String, String),
}

/// One service's model.
#[derive(Debug, Deserialize)]
pub struct ServiceModel {
    pub metadata: Metadata,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
    /// Operation name by (`X-Amz-Target` suffix is the name itself; this maps upper-cased
    /// request URIs for REST routing) — built on load.
    #[serde(skip)]
    routes: Vec<Route>,
}

/// A compiled REST route: method + path template segments + fixed query parameters.
#[derive(Debug, Clone)]
pub struct Route {
    pub operation: String,
    pub method: String,
    pub segments: Vec<Segment>,
    /// `?foo=bar` or `?foo` literals in the requestUri that must be present.
    pub query: Vec<(String, Option<String>)>,
    /// A trailing slash on the template is significant (`POST /agents/{agentId}/`).
    pub trailing_slash: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Label(String),
    Greedy(String),
}

impl Route {
    fn compile(operation: &str, http: &Http) -> Route {
        let (path, query) = http
            .request_uri
            .split_once('?')
            .unwrap_or((&http.request_uri, ""));
        let trailing_slash = path.len() > 1 && path.ends_with('/');
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                if let Some(name) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Label(name.to_owned()),
                    }
                } else {
                    Segment::Literal(s.to_owned())
                }
            })
            .collect();
        let query = query
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (kv.to_owned(), None),
            })
            .collect();
        Route {
            operation: operation.to_owned(),
            method: http.method.clone(),
            segments,
            query,
            trailing_slash,
        }
    }

    /// How specific the route is, to prefer `/a/b` over `/a/{x}` and fixed queries over none.
    pub fn specificity(&self) -> (usize, usize, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let labels = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Label(_)))
            .count();
        (
            literals,
            self.query.len(),
            labels,
            self.trailing_slash as usize,
        )
    }
}

impl ServiceModel {
    pub fn from_json(json: &[u8]) -> Result<ServiceModel, serde_json::Error> {
        let mut model: ServiceModel = serde_json::from_slice(json)?;
        model.compile_routes();
        Ok(model)
    }

    /// Builds a model from parts (protocol test suites carry metadata and shapes separately).
    pub fn from_parts(
        metadata: Metadata,
        operations: HashMap<String, Operation>,
        shapes: HashMap<String, Shape>,
    ) -> ServiceModel {
        let mut model = ServiceModel {
            metadata,
            operations,
            shapes,
            routes: Vec::new(),
        };
        model.compile_routes();
        model
    }

    fn compile_routes(&mut self) {
        let mut routes: Vec<Route> = self
            .operations
            .iter()
            .map(|(name, op)| Route::compile(name, &op.http))
            .collect();
        // Most specific first so the first match wins.
        routes.sort_by(|a, b| {
            b.specificity()
                .cmp(&a.specificity())
                .then(a.operation.cmp(&b.operation))
        });
        self.routes = routes;
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }

    /// The SigV4 service name clients sign with.
    pub fn signing_name(&self) -> &str {
        self.metadata
            .signing_name
            .as_deref()
            .or(self.metadata.endpoint_prefix.as_deref())
            .unwrap_or("")
    }
}

/// Names of the vendored models.
pub const SERVICES: &[&str] = &[
    "bedrock",
    "bedrock-runtime",
    "bedrock-agent",
    "bedrock-agent-runtime",
    "sagemaker",
    "sagemaker-runtime",
    "sagemaker-featurestore-runtime",
    "stepfunctions",
    "events",
    "lambda",
    "s3",
    "dynamodb",
    "sqs",
    "sns",
    "kinesis",
    "cloudwatch",
    "logs",
    "comprehend",
    "rekognition",
    "textract",
    "transcribe",
    "sts",
    "glue",
    "iam",
    "dynamodbstreams",
    "scheduler",
    "s3vectors",
    "application-autoscaling",
];

/// Models of protocols a service has since left, which older SDKs still speak, by service:
/// `(service, model)`. SQS moved from awsQuery to JSON in 2023 and its current model lost the
/// query traits (flattened lists, `locationName`), so the last query model (botocore 1.31.63)
/// is vendored beside it. They are not in [`SERVICES`]: each answers as its service.
pub const LEGACY_MODELS: &[(&str, &str)] = &[("sqs", "sqs-query")];

/// The legacy model in which `service` speaks `protocol`, if its own model does not.
pub fn legacy_model(service: &str, protocol: Protocol) -> Option<Arc<ServiceModel>> {
    LEGACY_MODELS
        .iter()
        .filter(|(s, _)| *s == service)
        .filter_map(|(_, m)| model(m).ok())
        .find(|m| m.metadata.all_protocols().contains(&protocol))
}

fn vendored(service: &str) -> Option<&'static [u8]> {
    macro_rules! models {
        ($($name:literal),*) => {
            match service {
                $($name => Some(include_bytes!(concat!("../models/", $name, ".json.gz")).as_slice()),)*
                _ => None,
            }
        };
    }
    models!(
        "bedrock",
        "bedrock-runtime",
        "bedrock-agent",
        "bedrock-agent-runtime",
        "sagemaker",
        "sagemaker-runtime",
        "sagemaker-featurestore-runtime",
        "stepfunctions",
        "events",
        "lambda",
        "s3",
        "dynamodb",
        "sqs",
        "sns",
        "kinesis",
        "cloudwatch",
        "logs",
        "comprehend",
        "rekognition",
        "textract",
        "transcribe",
        "sts",
        "glue",
        "iam",
        "dynamodbstreams",
        "sqs-query",
        "scheduler",
        "s3vectors",
        "application-autoscaling"
    )
}

/// Lazily parsed models, shared process-wide.
pub fn model(service: &str) -> Result<Arc<ServiceModel>, SpecError> {
    static CACHE: OnceLock<RwLock<HashMap<String, Arc<ServiceModel>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(m) = cache.read().get(service) {
        return Ok(m.clone());
    }
    let gz = vendored(service).ok_or_else(|| SpecError::UnknownService(service.to_owned()))?;
    let mut json = Vec::with_capacity(gz.len() * 8);
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut json)
        .map_err(|e| SpecError::Corrupt(service.to_owned(), e.to_string()))?;
    let parsed = Arc::new(
        ServiceModel::from_json(&json)
            .map_err(|e| SpecError::Corrupt(service.to_owned(), e.to_string()))?,
    );
    cache.write().insert(service.to_owned(), parsed.clone());
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendored_model_parses() {
        let legacy = LEGACY_MODELS.iter().map(|(_, m)| m);
        for s in SERVICES.iter().chain(legacy) {
            let m = model(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(!m.operations.is_empty(), "{s}");
            for (name, op) in &m.operations {
                for r in op
                    .input
                    .iter()
                    .chain(op.output.iter())
                    .chain(op.errors.iter())
                {
                    assert!(
                        m.shapes.contains_key(&r.shape),
                        "{s}.{name}: missing shape {}",
                        r.shape
                    );
                }
            }
        }
    }

    #[test]
    fn sqs_speaks_query_through_its_legacy_model() {
        assert!(
            !model("sqs")
                .unwrap()
                .metadata
                .all_protocols()
                .contains(&Protocol::Query)
        );
        let q = legacy_model("sqs", Protocol::Query).unwrap();
        assert_eq!(q.signing_name(), "sqs");
        assert_eq!(q.metadata.api_version.as_deref(), Some("2012-11-05"));
        assert!(legacy_model("sqs", Protocol::Cbor).is_none());
        assert!(legacy_model("sns", Protocol::Query).is_none());
        // Same operations in both, so the service sees one input whichever model parsed it.
        let mut json: Vec<_> = model("sqs").unwrap().operations.keys().cloned().collect();
        let mut query: Vec<_> = q.operations.keys().cloned().collect();
        json.sort();
        query.sort();
        assert_eq!(json, query);
    }

    #[test]
    fn signing_names() {
        assert_eq!(model("stepfunctions").unwrap().signing_name(), "states");
        assert_eq!(
            model("bedrock-agent-runtime").unwrap().signing_name(),
            "bedrock"
        );
        assert_eq!(model("cloudwatch").unwrap().signing_name(), "monitoring");
        assert!(model("nope").is_err());
    }

    #[test]
    fn routes_prefer_specific_templates() {
        let m = model("bedrock-agent").unwrap();
        let first_prepare = m
            .routes()
            .iter()
            .position(|r| r.operation == "PrepareAgent")
            .unwrap();
        assert!(m.routes()[first_prepare].trailing_slash);
        let r = Route::compile(
            "X",
            &Http {
                method: "GET".into(),
                request_uri: "/{Bucket}/{Key+}?uploads".into(),
                response_code: None,
            },
        );
        assert_eq!(
            r.segments,
            vec![
                Segment::Label("Bucket".into()),
                Segment::Greedy("Key".into())
            ]
        );
        assert_eq!(r.query, vec![("uploads".into(), None)]);
    }
}
