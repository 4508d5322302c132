//! AWS's protocol test vectors (botocore's copy of the Smithy suites, in `../shared`), run
//! from the server side:
//! - input cases: the serialized HTTP request is routed and parsed by our protocol layer and
//!   must equal the case's `params`;
//! - output cases: `result` (or the error) is serialized by our protocol layer and written to
//!   a JSON-lines file that `tests/compat/test_protocol_vectors.py` parses with botocore's
//!   own parsers (what boto3 will do with a real response).
//!
//! Cases that do not apply to a server are listed in `INAPPLICABLE` with the reason.

use basalt_core::AwsError;
use basalt_spec::{
    Location, Metadata, Operation, Protocol, ServiceModel, Shape, ShapeRef, ShapeType,
};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Input cases a server cannot (or must not) reproduce, with the reason.
const INAPPLICABLE: &[(&str, &str)] = &[
    ("RestJsonQueryParamsStringListMap", QUERY_MAP),
    ("RestXmlQueryParamsStringListMap", QUERY_MAP),
    ("AllQueryStringTypes", QUERY_MAP),
    ("RestXmlQueryStringEscaping", QUERY_MAP),
    ("RestXmlSupportsNaNFloatQueryValues", QUERY_MAP),
    ("RestXmlSupportsInfinityFloatQueryValues", QUERY_MAP),
    ("RestXmlSupportsNegativeInfinityFloatQueryValues", QUERY_MAP),
    ("RestXmlZeroAndFalseQueryValues", QUERY_MAP),
    ("AwsJson10EndpointTrait", HOST_PREFIX),
    ("AwsJson10EndpointTraitWithHostLabel", HOST_PREFIX),
];

const HOST_PREFIX: &str = "endpoint-trait cases test the client's host prefix; their serialized request omits the X-Amz-Target header a real request carries";

const QUERY_MAP: &str = "the server puts every query parameter into an httpQueryParams map (Smithy: servers see all parameters; the restJson vectors RestJsonAllQueryStringTypes etc. expect exactly that), while this older client-side vector's params omit the parameters bound to other members";

/// Suites botocore marks client-only (idempotency-token auto-fill, host prefixes, request
/// compression): their `params` omit what the client adds.
const CLIENT_ONLY_SUITES: &[&str] = &[
    "Test cases for PutWithContentEncoding operation",
    "Test cases for QueryIdempotencyTokenAutoFill operation",
    "Test cases for HostWithPathOperation operation",
    "Idempotency token auto fill",
];

fn vectors_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BASALT_PROTOCOL_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/protocol-tests/botocore")
        });
    dir.is_dir().then_some(dir)
}

fn load(dir: &std::path::Path, kind: &str) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join(kind))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files {
        let suites: Vec<Value> = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        out.push((
            f.file_name().unwrap().to_string_lossy().into_owned(),
            suites,
        ));
    }
    out
}

fn model_for(suite: &Value, given: &Value) -> ServiceModel {
    let metadata: Metadata = serde_json::from_value(suite["metadata"].clone()).unwrap();
    let shapes: HashMap<String, Shape> = serde_json::from_value(suite["shapes"].clone()).unwrap();
    let op: Operation = serde_json::from_value(given.clone()).unwrap();
    ServiceModel::from_parts(metadata, HashMap::from([(op.name.clone(), op)]), shapes)
}

fn protocol_of(model: &ServiceModel) -> Protocol {
    model
        .metadata
        .protocol
        .or(model.metadata.protocols.first().copied())
        .unwrap()
}

/// Turns a case's `params`/`result` (blobs as raw strings) into our canonical form.
fn canonical(model: &ServiceModel, r: &ShapeRef, v: &Value) -> Value {
    let Some(shape) = model.shape(&r.shape) else {
        return v.clone();
    };
    match (shape.kind, v) {
        (ShapeType::Structure, Value::Object(o)) if !shape.document => {
            let mut out = Map::new();
            for (k, val) in o {
                if val.is_null() {
                    continue;
                }
                if let Some(m) = shape.members.get(k) {
                    let mut c = canonical(model, m, val);
                    if m.location == Some(Location::Headers)
                        && let Value::Object(map) = c
                    {
                        c = Value::Object(
                            map.into_iter()
                                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                                .collect(),
                        );
                    }
                    out.insert(k.clone(), c);
                }
            }
            Value::Object(out)
        }
        (ShapeType::List, Value::Array(items)) => {
            let m = shape.member.as_deref().unwrap();
            Value::Array(items.iter().map(|i| canonical(model, m, i)).collect())
        }
        (ShapeType::Map, Value::Object(o)) => {
            let m = shape.value.as_deref().unwrap();
            Value::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), canonical(model, m, v)))
                    .collect(),
            )
        }
        (ShapeType::Blob, Value::String(s)) => Value::String(B64.encode(s.as_bytes())),
        _ => v.clone(),
    }
}

/// Null, empty lists and empty maps are what a client sends as nothing at all (an empty
/// query list, an empty prefix-header map, an empty payload structure): a server cannot
/// tell them from an absent member, so they compare equal to absence.
fn nothing(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| match (x.get(k), y.get(k)) {
                (Some(v), Some(w)) => same(v, w),
                (Some(v), None) | (None, Some(v)) => nothing(v),
                (None, None) => true,
            })
        }
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-6
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

fn request_parts(serialized: &Value) -> (String, String, String, http::HeaderMap, Vec<u8>, bool) {
    let uri = serialized["uri"].as_str().unwrap_or("/");
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut headers = http::HeaderMap::new();
    if let Some(h) = serialized["headers"].as_object() {
        for (k, v) in h {
            headers.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
            );
        }
    }
    let body = serialized["body"].as_str().unwrap_or("");
    let is_cbor = headers
        .get("content-type")
        .is_some_and(|c| c == "application/cbor");
    let body = if is_cbor {
        B64.decode(body).unwrap()
    } else {
        body.as_bytes().to_vec()
    };
    (
        serialized["method"].as_str().unwrap_or("POST").to_owned(),
        path.to_owned(),
        query.to_owned(),
        headers,
        body,
        is_cbor,
    )
}

fn ignored(ignore: &Value, file: &str, kind: &str, suite: &Value, id: &str) -> Option<String> {
    let desc = suite["description"].as_str().unwrap_or("");
    if ignore["general"][kind]["suites"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s == desc))
    {
        return Some(format!("botocore ignore-list (suite '{desc}')"));
    }
    let proto = file.trim_end_matches(".json");
    if ignore["protocols"][proto][kind]["cases"]
        .as_array()
        .is_some_and(|a| a.iter().any(|c| c == id))
    {
        return Some("botocore ignore-list".into());
    }
    None
}

#[test]
fn input_vectors_parse_to_params() {
    let Some(dir) = vectors_dir() else {
        eprintln!("skipped: ../shared/protocol-tests absent");
        return;
    };
    let ignore: Value = serde_json::from_slice(
        &std::fs::read(dir.join("protocol-tests-ignore-list.json")).unwrap(),
    )
    .unwrap();
    let (mut passed, mut skipped, mut failures) = (0, 0, Vec::new());
    for (file, suites) in load(&dir, "input") {
        for suite in &suites {
            let desc = suite["description"].as_str().unwrap_or("");
            for (ci, case) in suite["cases"].as_array().unwrap().iter().enumerate() {
                let id = case["id"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{file}#{desc}#{ci}"));
                if CLIENT_ONLY_SUITES.contains(&desc)
                    || ignored(&ignore, &file, "input", suite, &id).is_some()
                    || INAPPLICABLE.iter().any(|(i, _)| *i == id)
                {
                    skipped += 1;
                    continue;
                }
                let model = model_for(suite, &case["given"]);
                let protocol = protocol_of(&model);
                let (method, path, query, headers, body, _) = request_parts(&case["serialized"]);
                let req = basalt_protocol::Request {
                    method: &method,
                    path: &path,
                    query: &query,
                    headers: &headers,
                    body: &body,
                };
                let op_name = case["given"]["name"].as_str().unwrap();
                let result =
                    basalt_protocol::find_operation(&model, protocol, &req).and_then(|op| {
                        if op.name != op_name {
                            return Err(AwsError::internal(format!("routed to {}", op.name)));
                        }
                        basalt_protocol::parse_request(&model, protocol, op, &req)
                    });
                let expected = match &model.operation(op_name).unwrap().input {
                    Some(r) => canonical(&model, r, &case["params"]),
                    None => json!({}),
                };
                match result {
                    Ok(parsed) if same(&parsed, &expected) => passed += 1,
                    Ok(parsed) => {
                        failures.push(format!("{file} {id}: parsed {parsed} expected {expected}"))
                    }
                    Err(e) => failures.push(format!("{file} {id}: error {e}")),
                }
            }
        }
    }
    eprintln!(
        "input vectors: {passed} passed, {skipped} skipped, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} input vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn output_vectors_serialize() {
    let Some(dir) = vectors_dir() else {
        eprintln!("skipped: ../shared/protocol-tests absent");
        return;
    };
    let out_path = std::env::var_os("BASALT_VECTOR_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/protocol-vectors/output.jsonl")
        });
    std::fs::create_dir_all(out_path.parent().unwrap()).unwrap();
    let mut out = std::fs::File::create(&out_path).unwrap();
    let mut failures = Vec::new();
    let mut written = 0;
    for (file, suites) in load(&dir, "output") {
        for (si, suite) in suites.iter().enumerate() {
            for (ci, case) in suite["cases"].as_array().unwrap().iter().enumerate() {
                let model = model_for(suite, &case["given"]);
                let protocol = protocol_of(&model);
                let op = model
                    .operation(case["given"]["name"].as_str().unwrap())
                    .unwrap();
                let resp = if let Some(code) = case["errorCode"].as_str() {
                    let mut err = AwsError::new(
                        case["response"]["status_code"].as_u64().unwrap_or(400) as u16,
                        code,
                        case["errorMessage"].as_str().unwrap_or(""),
                    );
                    let r = ShapeRef {
                        shape: code.to_owned(),
                        ..Default::default()
                    };
                    if let Value::Object(fields) = canonical(&model, &r, &case["error"]) {
                        err.fields = fields
                            .into_iter()
                            .filter(|(k, _)| !k.eq_ignore_ascii_case("message"))
                            .collect();
                    }
                    Ok(basalt_protocol::serialize_error(
                        Some(&model),
                        protocol,
                        &err,
                        "request-id",
                    ))
                } else {
                    let result = match &op.output {
                        Some(r) => canonical(&model, r, &case["result"]),
                        None => json!({}),
                    };
                    basalt_protocol::serialize_output(&model, protocol, op, &result, "request-id")
                };
                let line = match resp {
                    Ok(r) => {
                        let headers: Map<String, Value> = r
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                            .collect();
                        json!({"file": file, "suite": si, "case": ci, "id": case["id"], "status": r.status, "headers": headers, "body_b64": B64.encode(&r.body)})
                    }
                    Err(e) => {
                        failures.push(format!("{file} {}: {e}", case["id"]));
                        json!({"file": file, "suite": si, "case": ci, "id": case["id"], "error": e.to_string()})
                    }
                };
                writeln!(out, "{line}").unwrap();
                written += 1;
            }
        }
    }
    eprintln!(
        "output vectors: {written} serialized to {}",
        out_path.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
