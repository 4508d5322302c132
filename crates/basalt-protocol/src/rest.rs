//! restJson1 and restXml: operations found by method and URI template; members bound to the
//! URI, query string, headers, status code and body (a payload member or the remaining
//! members as a JSON/XML document).

use crate::json::{self, Naming};
use crate::shapes::{B64, bad, resolve, scalar_from_text, scalar_to_text};
use crate::{Request, Response, xml};
use basalt_core::AwsError;
use basalt_spec::{
    Location, Operation, Route, Segment, ServiceModel, Shape, ShapeRef, ShapeType, TimestampFormat,
};
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Body {
    Json,
    Xml,
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Matches `segments` of a request path against a route, capturing labels.
fn match_segments(tpl: &[Segment], path: &[&str], captures: &mut Vec<(String, String)>) -> bool {
    match tpl.split_first() {
        None => path.is_empty(),
        Some((Segment::Literal(l), rest)) => {
            path.first().is_some_and(|p| *p == l || decode(p) == *l)
                && match_segments(rest, &path[1..], captures)
        }
        Some((Segment::Label(name), rest)) => match path.first() {
            Some(p) if !p.is_empty() => {
                captures.push((name.clone(), decode(p)));
                if match_segments(rest, &path[1..], captures) {
                    true
                } else {
                    captures.pop();
                    false
                }
            }
            _ => false,
        },
        Some((Segment::Greedy(name), rest)) => {
            // The greedy label takes as much as leaves the rest of the template matchable.
            for end in (1..=path.len()).rev() {
                let mut inner = Vec::new();
                if match_segments(rest, &path[end..], &mut inner) {
                    let value = path[..end]
                        .iter()
                        .map(|p| decode(p))
                        .collect::<Vec<_>>()
                        .join("/");
                    if value.is_empty() {
                        continue;
                    }
                    captures.push((name.clone(), value));
                    captures.extend(inner);
                    return true;
                }
            }
            false
        }
    }
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

fn route_matches(
    route: &Route,
    req: &Request<'_>,
    segments: &[&str],
    query: &[(String, String)],
    strict: bool,
) -> Option<Vec<(String, String)>> {
    if !route.method.eq_ignore_ascii_case(req.method) {
        return None;
    }
    if strict && route.trailing_slash && !req.path.ends_with('/') {
        return None;
    }
    for (k, v) in &route.query {
        let found = query.iter().find(|(qk, _)| qk == k)?;
        if let Some(v) = v
            && &found.1 != v
        {
            return None;
        }
    }
    let mut captures = Vec::new();
    match_segments(&route.segments, segments, &mut captures).then_some(captures)
}

fn path_segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

pub(crate) fn find_operation<'m>(
    model: &'m ServiceModel,
    req: &Request<'_>,
) -> Result<&'m Operation, AwsError> {
    let segments = path_segments(req.path);
    let query = query_pairs(req.query);
    // The exact route first; then one whose template ends in `/` for a path without it
    // (the AWS SDK for Rust sends `PUT /agents` for `PUT /agents/`, and AWS accepts both).
    for strict in [true, false] {
        for route in model.routes() {
            if route_matches(route, req, &segments, &query, strict).is_some() {
                return model
                    .operation(&route.operation)
                    .ok_or_else(|| AwsError::internal("route without operation"));
            }
        }
    }
    Err(crate::unknown_operation_error(
        basalt_spec::Protocol::RestJson,
        &format!("{} {}", req.method, req.path),
    ))
}

/// Whether a route of this model matches the request (used to tell apart services that
/// share a signing name, e.g. the four Bedrock APIs).
pub fn matches(model: &ServiceModel, req: &Request<'_>) -> bool {
    let segments = path_segments(req.path);
    let query = query_pairs(req.query);
    model
        .routes()
        .iter()
        .any(|r| route_matches(r, req, &segments, &query, false).is_some())
}

fn split_header_list(value: &str, shape: &Shape, model: &ServiceModel) -> Vec<String> {
    let member_is_http_date = shape
        .member
        .as_deref()
        .and_then(|m| model.shape(&m.shape).map(|s| (m, s)))
        .is_some_and(|(m, s)| {
            s.kind == ShapeType::Timestamp
                && crate::shapes::ts_format(s, m, TimestampFormat::Rfc822)
                    == TimestampFormat::Rfc822
        });
    let mut items = Vec::new();
    if member_is_http_date {
        // HTTP dates contain a comma themselves: every second comma separates items.
        let parts: Vec<&str> = value.split(',').collect();
        for pair in parts.chunks(2) {
            items.push(pair.join(",").trim().to_owned());
        }
        return items;
    }
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut was_quoted = false;
    for c in value.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c.is_whitespace() && !quoted && !was_quoted && current.is_empty() {
            // leading whitespace of an item
        } else if c == '"' {
            quoted = !quoted;
            was_quoted = true;
        } else if c == ',' && !quoted {
            items.push(if was_quoted {
                current.clone()
            } else {
                current.trim().to_owned()
            });
            current.clear();
            was_quoted = false;
        } else {
            current.push(c);
        }
    }
    items.push(if was_quoted {
        current
    } else {
        current.trim().to_owned()
    });
    items
}

fn header_value(
    model: &ServiceModel,
    r: &ShapeRef,
    shape: &Shape,
    raw: &str,
    name: &str,
) -> Result<Value, AwsError> {
    match shape.kind {
        ShapeType::List => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            let mshape = resolve(model, member)?;
            split_header_list(raw, shape, model)
                .iter()
                .map(|item| scalar_from_text(mshape, member, item, TimestampFormat::Rfc822, name))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        ShapeType::String if r.jsonvalue => {
            let decoded = B64
                .decode(raw.trim())
                .map_err(|_| bad(format!("Header {name} is not base64")))?;
            serde_json::from_slice(&decoded)
                .map_err(|_| bad(format!("Header {name} is not base64-encoded JSON")))
        }
        _ => scalar_from_text(shape, r, raw, TimestampFormat::Rfc822, name),
    }
}

pub(crate) fn parse_request(
    model: &ServiceModel,
    op: &Operation,
    req: &Request<'_>,
    body_kind: Body,
) -> Result<Value, AwsError> {
    let Some(input) = &op.input else {
        return Ok(Value::Object(Map::new()));
    };
    let shape = resolve(model, input)?;
    let route = model.routes().iter().find(|r| r.operation == op.name);
    let segments = path_segments(req.path);
    let query = query_pairs(req.query);
    let labels = route
        .and_then(|r| route_matches(r, req, &segments, &query, false))
        .unwrap_or_default();
    let mut out = Map::new();
    // A query-params map sees every parameter (Smithy's server semantics), except the
    // literals of the route itself.
    let bound_query: Vec<&str> = route
        .into_iter()
        .flat_map(|r| r.query.iter().map(|(k, _)| k.as_str()))
        .collect();

    for (name, mref) in &shape.members {
        let mshape = resolve(model, mref)?;
        let key = mref.location_name.as_deref().unwrap_or(name);
        match mref.location {
            Some(Location::Uri) => {
                if let Some((_, v)) = labels.iter().find(|(l, _)| l == key) {
                    out.insert(
                        name.clone(),
                        scalar_from_text(mshape, mref, v, TimestampFormat::Iso8601, name)?,
                    );
                }
            }
            Some(Location::Querystring) => match mshape.kind {
                ShapeType::Map => {
                    let vr = mshape
                        .value
                        .as_deref()
                        .ok_or_else(|| AwsError::internal("map without value"))?;
                    let vshape = resolve(model, vr)?;
                    let mut map = Map::new();
                    for (k, v) in query
                        .iter()
                        .filter(|(k, _)| !bound_query.contains(&k.as_str()))
                    {
                        if vshape.kind == ShapeType::List {
                            let entry =
                                map.entry(k.clone()).or_insert_with(|| Value::Array(vec![]));
                            if let Value::Array(a) = entry {
                                a.push(Value::String(v.clone()));
                            }
                        } else if !map.contains_key(k) {
                            map.insert(
                                k.clone(),
                                scalar_from_text(vshape, vr, v, TimestampFormat::Iso8601, name)?,
                            );
                        }
                    }
                    if !map.is_empty() {
                        out.insert(name.clone(), map.into());
                    }
                }
                ShapeType::List => {
                    let member = mshape
                        .member
                        .as_deref()
                        .ok_or_else(|| AwsError::internal("list without member"))?;
                    let ms = resolve(model, member)?;
                    let items: Vec<Value> = query
                        .iter()
                        .filter(|(k, _)| k == key)
                        .map(|(_, v)| {
                            scalar_from_text(ms, member, v, TimestampFormat::Iso8601, name)
                        })
                        .collect::<Result<_, _>>()?;
                    if !items.is_empty() {
                        out.insert(name.clone(), Value::Array(items));
                    }
                }
                _ => {
                    if let Some((_, v)) = query.iter().find(|(k, _)| k == key) {
                        out.insert(
                            name.clone(),
                            scalar_from_text(mshape, mref, v, TimestampFormat::Iso8601, name)?,
                        );
                    }
                }
            },
            Some(Location::Header) => {
                let values: Vec<&str> = req
                    .headers
                    .get_all(key)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                if !values.is_empty() {
                    let raw = values.join(", ");
                    out.insert(name.clone(), header_value(model, mref, mshape, &raw, name)?);
                }
            }
            Some(Location::Headers) => {
                let prefix = key.to_ascii_lowercase();
                let vr = mshape
                    .value
                    .as_deref()
                    .ok_or_else(|| AwsError::internal("map without value"))?;
                let vshape = resolve(model, vr)?;
                let mut map = Map::new();
                for (hname, hvalue) in req.headers {
                    if let (Some(rest), Ok(v)) =
                        (hname.as_str().strip_prefix(&prefix), hvalue.to_str())
                    {
                        map.insert(rest.to_owned(), header_value(model, vr, vshape, v, name)?);
                    }
                }
                if !map.is_empty() {
                    out.insert(name.clone(), map.into());
                }
            }
            Some(Location::StatusCode) => {}
            None => {}
        }
    }

    match &shape.payload {
        Some(pname) => {
            let pref = shape
                .members
                .get(pname)
                .ok_or_else(|| AwsError::internal("payload member missing"))?;
            let pshape = resolve(model, pref)?;
            match pshape.kind {
                ShapeType::Blob => {
                    if !req.body.is_empty() {
                        out.insert(pname.clone(), Value::String(B64.encode(req.body)));
                    }
                }
                ShapeType::String => {
                    if !req.body.is_empty() {
                        let s = std::str::from_utf8(req.body)
                            .map_err(|_| bad("Body is not valid UTF-8"))?;
                        out.insert(pname.clone(), Value::String(s.to_owned()));
                    }
                }
                _ if req.body.iter().all(u8::is_ascii_whitespace) => {}
                _ => {
                    let v = match body_kind {
                        Body::Json => json::parse_body(model, pref, req.body, Naming::JsonName)?,
                        Body::Xml => xml::parse_body(model, pref, req.body)?,
                    };
                    out.insert(pname.clone(), v);
                }
            }
        }
        None => {
            let has_body_members = shape.members.values().any(|m| m.location.is_none());
            if has_body_members && !req.body.iter().all(u8::is_ascii_whitespace) {
                let doc = match body_kind {
                    Body::Json => json::parse_body(model, input, req.body, Naming::JsonName)?,
                    Body::Xml => xml::parse_body(model, input, req.body)?,
                };
                if let Value::Object(members) = doc {
                    for (k, v) in members {
                        if shape.members.get(&k).is_some_and(|m| m.location.is_none()) {
                            out.insert(k, v);
                        }
                    }
                }
            }
        }
    }
    Ok(out.into())
}

fn header_text(
    model: &ServiceModel,
    r: &ShapeRef,
    shape: &Shape,
    v: &Value,
) -> Result<Option<String>, AwsError> {
    Ok(match (shape.kind, v) {
        (ShapeType::List, Value::Array(items)) => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            let ms = resolve(model, member)?;
            let texts: Vec<String> = items
                .iter()
                .filter_map(|i| scalar_to_text(ms, member, i, TimestampFormat::Rfc822))
                .map(|t| {
                    if ms.kind == ShapeType::String && (t.contains(',') || t.contains('"')) {
                        format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
                    } else {
                        t
                    }
                })
                .collect();
            Some(texts.join(", "))
        }
        (ShapeType::String, v) if r.jsonvalue => {
            Some(B64.encode(serde_json::to_vec(v).unwrap_or_default()))
        }
        _ => scalar_to_text(shape, r, v, TimestampFormat::Rfc822),
    })
}

/// Puts header-bound members of `shape` from `doc` into `headers`; returns the status code
/// member's value if any.
pub(crate) fn bind_headers(
    model: &ServiceModel,
    shape: &Shape,
    doc: &Map<String, Value>,
    headers: &mut Vec<(String, String)>,
) -> Result<Option<u16>, AwsError> {
    let mut status = None;
    for (name, mref) in &shape.members {
        let Some(v) = doc.get(name) else { continue };
        let mshape = resolve(model, mref)?;
        let key = mref.location_name.as_deref().unwrap_or(name);
        match mref.location {
            Some(Location::Header) => {
                if let Some(t) = header_text(model, mref, mshape, v)? {
                    headers.push((key.to_owned(), t));
                }
            }
            Some(Location::Headers) => {
                if let (Value::Object(map), Some(vr)) = (v, mshape.value.as_deref()) {
                    let vshape = resolve(model, vr)?;
                    for (k, item) in map {
                        if let Some(t) = header_text(model, vr, vshape, item)? {
                            headers.push((format!("{key}{k}"), t));
                        }
                    }
                }
            }
            Some(Location::StatusCode) => status = v.as_u64().and_then(|s| u16::try_from(s).ok()),
            _ => {}
        }
    }
    Ok(status)
}

/// The body of a structure per rest protocol (payload member or the unbound members), with
/// its content type; `None` when there is nothing to send.
pub(crate) fn body_of(
    model: &ServiceModel,
    r: &ShapeRef,
    shape: &Shape,
    doc: &Map<String, Value>,
    kind: Body,
) -> Result<Option<(Vec<u8>, &'static str)>, AwsError> {
    if let Some(pname) = &shape.payload {
        let pref = shape
            .members
            .get(pname)
            .ok_or_else(|| AwsError::internal("payload member missing"))?;
        let pshape = resolve(model, pref)?;
        let Some(v) = doc.get(pname).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        return Ok(Some(match (pshape.kind, v) {
            (ShapeType::Blob, Value::String(s)) => (
                B64.decode(s)
                    .map_err(|_| AwsError::internal("payload blob is not base64"))?,
                "application/octet-stream",
            ),
            (ShapeType::String, Value::String(s)) => (s.as_bytes().to_vec(), "text/plain"),
            _ => match kind {
                Body::Json => (
                    serde_json::to_vec(&json::to_wire(model, pref, v, Naming::JsonName)?)
                        .unwrap_or_default(),
                    "application/json",
                ),
                Body::Xml => {
                    let mut out = String::new();
                    let name = pref
                        .location_name
                        .as_deref()
                        .or(pshape.location_name.as_deref())
                        .unwrap_or(&pref.shape);
                    xml::write_element(model, name, pref, v, &mut out)?;
                    (out.into_bytes(), "application/xml")
                }
            },
        }));
    }
    if !shape.members.values().any(crate::shapes::in_output_body) {
        return Ok(None);
    }
    let body_doc: Map<String, Value> = doc
        .iter()
        .filter(|(k, _)| {
            shape
                .members
                .get(*k)
                .is_some_and(crate::shapes::in_output_body)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Some(match kind {
        Body::Json => (
            serde_json::to_vec(&json::to_wire(
                model,
                r,
                &Value::Object(body_doc),
                Naming::JsonName,
            )?)
            .unwrap_or_default(),
            "application/json",
        ),
        Body::Xml => {
            if body_doc.is_empty() {
                return Ok(None);
            }
            let mut out = String::new();
            let name = r
                .location_name
                .as_deref()
                .or(shape.location_name.as_deref())
                .unwrap_or(&r.shape);
            xml::write_element(model, name, r, &Value::Object(body_doc), &mut out)?;
            (out.into_bytes(), "application/xml")
        }
    }))
}

pub(crate) fn serialize_output(
    model: &ServiceModel,
    op: &Operation,
    output: &Value,
    kind: Body,
) -> Result<Response, AwsError> {
    let mut resp = Response {
        status: op.http.response_code.unwrap_or(200),
        ..Default::default()
    };
    let Some(r) = &op.output else {
        return Ok(resp);
    };
    let shape = resolve(model, r)?;
    let empty = Map::new();
    let doc = output.as_object().unwrap_or(&empty);
    if let Some(status) = bind_headers(model, shape, doc, &mut resp.headers)? {
        resp.status = status;
    }
    // An event-stream payload is written by the gateway frame by frame.
    let stream_payload = shape
        .payload
        .as_ref()
        .and_then(|p| shape.members.get(p))
        .and_then(|m| model.shape(&m.shape))
        .is_some_and(|s| s.eventstream);
    if stream_payload {
        resp.headers.push((
            "Content-Type".into(),
            "application/vnd.amazon.eventstream".into(),
        ));
        return Ok(resp);
    }
    if let Some((body, content_type)) = body_of(model, r, shape, doc, kind)? {
        if !resp
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            resp.headers
                .push(("Content-Type".into(), content_type.into()));
        }
        resp.body = body;
    }
    Ok(resp)
}

pub(crate) fn serialize_json_error(model: Option<&ServiceModel>, err: &AwsError) -> Response {
    let mut headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("x-amzn-ErrorType".into(), err.code.clone()),
    ];
    let mut doc = json::error_document(model, err, Naming::JsonName);
    if let Some((m, shape)) = model.and_then(|m| m.shape(&err.code).map(|s| (m, s))) {
        let _ = bind_headers(m, shape, &err.fields, &mut headers);
        for (name, mref) in &shape.members {
            if !crate::shapes::in_output_body(mref) {
                doc.remove(mref.location_name.as_deref().unwrap_or(name));
                doc.remove(name);
            }
        }
    }
    Response {
        status: err.status,
        headers,
        body: serde_json::to_vec(&doc).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_trailing_slash_still_finds_the_operation() {
        let m = basalt_spec::model("bedrock-agent").unwrap();
        let headers = http::HeaderMap::new();
        let req = |method, path| Request {
            method,
            path,
            query: "",
            headers: &headers,
            body: b"",
        };
        for (method, path, op) in [
            ("PUT", "/agents/", "CreateAgent"),
            ("PUT", "/agents", "CreateAgent"),
            ("POST", "/agents/ABCDEFGHIJ", "PrepareAgent"),
            (
                "GET",
                "/agents/ABCDEFGHIJ/agentversions/DRAFT/actiongroups/ABCDEFGHIJ",
                "GetAgentActionGroup",
            ),
        ] {
            assert_eq!(
                find_operation(&m, &req(method, path)).unwrap().name,
                op,
                "{method} {path}"
            );
            assert!(matches(&m, &req(method, path)));
        }
    }

    #[test]
    fn greedy_labels_capture_the_rest() {
        let tpl = vec![
            Segment::Label("Bucket".into()),
            Segment::Greedy("Key".into()),
        ];
        let mut caps = Vec::new();
        assert!(match_segments(&tpl, &["b", "a%20b", "c"], &mut caps));
        assert_eq!(
            caps,
            vec![
                ("Bucket".into(), "b".into()),
                ("Key".into(), "a b/c".into())
            ]
        );
        let tpl = vec![
            Segment::Greedy("P".into()),
            Segment::Literal("suffix".into()),
        ];
        let mut caps = Vec::new();
        assert!(match_segments(&tpl, &["x", "y", "suffix"], &mut caps));
        assert_eq!(caps, vec![("P".into(), "x/y".into())]);
        assert!(!match_segments(&tpl, &["suffix"], &mut Vec::new()));
    }

    #[test]
    fn header_lists_split_like_smithy() {
        let shape: Shape =
            serde_json::from_value(serde_json::json!({"type":"list","member":{"shape":"S"}}))
                .unwrap();
        let model = ServiceModel::from_parts(
            Default::default(),
            Default::default(),
            [(
                "S".to_string(),
                serde_json::from_value(serde_json::json!({"type":"string"})).unwrap(),
            )]
            .into(),
        );
        assert_eq!(
            split_header_list("a, \"b,c\", \"d\\\"e\"", &shape, &model),
            vec!["a", "b,c", "d\"e"]
        );
    }
}
