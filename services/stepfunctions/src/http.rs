//! The HTTP Task (`arn:aws:states:::http:invoke`): one HTTP(S) request through an EventBridge
//! connection, as the Developer Guide's "Call HTTPS APIs" describes it.
//!
//! The connection authorizes the call (Basic, an API key header, or an OAuth client-credentials
//! token asked for on each call) and adds its invocation parameters, which win over the task's
//! own on a duplicate key. The answer is `{Headers (name → [values]), ResponseBody (parsed JSON
//! when the content type is JSON), StatusCode, StatusText}`; a status outside 2xx fails the
//! task with `States.Http.StatusCode.<code>` and that same object, as JSON, for its cause. A
//! request gets 60 seconds (AWS's hard limit): past them, or with no answer, it fails with
//! `States.Http.Socket`.

use basalt_core::connections::{Authorization, Connection, Parameters};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::time::Duration;

use crate::StepFunctions;
use crate::tasks::{Outcome, failed};

const TIMEOUT: Duration = Duration::from_secs(60);
/// The `Range` Step Functions sends caps an answer at 256 KiB; a server that ignores it is
/// read up to a little more than that, then the task fails as the payload would.
const MAX_BODY: usize = 262_144 + 1;
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];

/// Headers a task may not set (`States.Runtime`), and the prefixes it may not use.
const FORBIDDEN: [&str; 32] = [
    "a-im",
    "accept-charset",
    "accept-datetime",
    "accept-encoding",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-md5",
    "date",
    "expect",
    "forwarded",
    "from",
    "host",
    "http2-settings",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "max-forwards",
    "origin",
    "pragma",
    "proxy-authorization",
    "referer",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
    "warning",
];
/// Set by Step Functions itself: a task's own value is dropped.
const OWN: [&str; 3] = ["user-agent", "range", "content-length"];
const FORBIDDEN_PREFIXES: [&str; 3] = ["x-forwarded-", "x-amz-", "x-amzn-"];

fn runtime(cause: impl Into<String>) -> Outcome {
    failed("States.Runtime", cause)
}

/// A parameter's value as it goes on the wire.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Headers` or `QueryParameters`: an object of names to values (an array value repeats the
/// name), or a list of `{Key, Value}`/single-member objects.
fn pairs(v: Option<&Value>, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut push = |k: &str, v: &Value| match v {
        Value::Array(items) => {
            for i in items {
                out.push((k.to_owned(), scalar(i)));
            }
        }
        Value::Null => {}
        other => out.push((k.to_owned(), scalar(other))),
    };
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                push(k, v);
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                let Value::Object(m) = item else {
                    return Err(format!("{what} must be an object or a list of objects"));
                };
                match (m.get("Key").and_then(Value::as_str), m.get("Value")) {
                    (Some(k), Some(v)) => push(k, v),
                    _ => {
                        for (k, v) in m {
                            push(k, v);
                        }
                    }
                }
            }
        }
        Some(Value::String(s)) => {
            for part in s.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                out.push((k.to_owned(), v.to_owned()));
            }
        }
        Some(other) => return Err(format!("{what} must be an object, got {other}")),
    }
    Ok(out)
}

/// Sets `k` to `v`, replacing what a pair with the same name (case-insensitively, for headers)
/// had: the connection's parameters win over the task's.
fn overlay(into: &mut Vec<(String, String)>, from: &[(String, String)], fold_case: bool) {
    for (k, v) in from {
        into.retain(|(x, _)| {
            if fold_case {
                !x.eq_ignore_ascii_case(k)
            } else {
                x != k
            }
        });
        into.push((k.clone(), v.clone()));
    }
}

/// RFC 3986's unreserved characters stay; spaces become %20, as the Developer Guide's
/// examples show (not form encoding's `+`).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `RequestBody` as URL-encoded form data: nested objects as `a[b]`, arrays per `ArrayFormat`.
fn url_encoded(body: &Value, array_format: &str) -> String {
    fn walk(prefix: &str, v: &Value, format: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}[{k}]")
                    };
                    walk(&name, v, format, out);
                }
            }
            Value::Array(items) => match format {
                "REPEAT" => items.iter().for_each(|i| walk(prefix, i, format, out)),
                "COMMAS" => out.push((
                    prefix.to_owned(),
                    items.iter().map(scalar).collect::<Vec<_>>().join(","),
                )),
                "BRACKETS" => items
                    .iter()
                    .for_each(|i| walk(&format!("{prefix}[]"), i, format, out)),
                _ => items
                    .iter()
                    .enumerate()
                    .for_each(|(n, i)| walk(&format!("{prefix}[{n}]"), i, format, out)),
            },
            Value::Null => out.push((prefix.to_owned(), String::new())),
            other => out.push((prefix.to_owned(), scalar(other))),
        }
    }
    let mut out = Vec::new();
    walk("", body, array_format, &mut out);
    query_string(&out)
}

fn with_query(endpoint: &str, query: &[(String, String)]) -> String {
    if query.is_empty() {
        return endpoint.to_owned();
    }
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{}", query_string(query))
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The task's parameters, checked and merged with the connection's, as one request.
struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

fn build(params: &Value, region: &str, conn: &Connection) -> Result<Request, String> {
    let endpoint = params
        .get("ApiEndpoint")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("The field 'ApiEndpoint' is required")?;
    if !endpoint.starts_with("https://") && !endpoint.starts_with("http://") {
        return Err(format!(
            "The ApiEndpoint '{endpoint}' is not an HTTP(S) URL"
        ));
    }
    let method = params
        .get("Method")
        .and_then(Value::as_str)
        .ok_or("The field 'Method' is required")?
        .to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(format!(
            "The Method '{method}' is not one of {}",
            METHODS.join(", ")
        ));
    }
    let mut headers = pairs(params.get("Headers"), "Headers")?;
    for (k, _) in &headers {
        let lower = k.to_ascii_lowercase();
        if FORBIDDEN.contains(&lower.as_str())
            || FORBIDDEN_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            return Err(format!("The header '{k}' is not allowed in an HTTP Task"));
        }
    }
    headers.retain(|(k, _)| !OWN.contains(&k.to_ascii_lowercase().as_str()));
    let mut query = pairs(params.get("QueryParameters"), "QueryParameters")?;
    overlay(&mut headers, &conn.invocation.headers, true);
    overlay(&mut query, &conn.invocation.query, false);
    let mut body = params.get("RequestBody").cloned();
    if !conn.invocation.body.is_empty() {
        match &mut body {
            Some(Value::String(_)) => {
                return Err(
                    "A string RequestBody cannot be merged with the connection's body parameters"
                        .into(),
                );
            }
            Some(Value::Object(m)) => {
                for (k, v) in &conn.invocation.body {
                    m.insert(k.clone(), Value::String(v.clone()));
                }
            }
            None | Some(Value::Null) => {
                let m: Map<String, Value> = (conn.invocation.body.iter())
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                body = Some(Value::Object(m));
            }
            Some(other) => {
                return Err(format!(
                    "RequestBody must be an object or a string, got {other}"
                ));
            }
        }
    }
    let transform = params.get("Transform");
    let encoding = transform
        .and_then(|t| t.get("RequestBodyEncoding"))
        .and_then(Value::as_str)
        .unwrap_or("NONE");
    let bytes = match (body, encoding) {
        (None | Some(Value::Null), _) => Bytes::new(),
        (Some(Value::String(s)), _) => Bytes::from(s),
        (Some(b), "URL_ENCODED") => {
            let format = transform
                .and_then(|t| t.pointer("/RequestEncodingOptions/ArrayFormat"))
                .and_then(Value::as_str)
                .unwrap_or("INDICES");
            if !["INDICES", "REPEAT", "COMMAS", "BRACKETS"].contains(&format) {
                return Err(format!(
                    "The ArrayFormat '{format}' is not one of INDICES, REPEAT, COMMAS, BRACKETS"
                ));
            }
            Bytes::from(url_encoded(&b, format))
        }
        (Some(b), "NONE") => Bytes::from(b.to_string()),
        (_, other) => {
            return Err(format!(
                "The RequestBodyEncoding '{other}' is not one of NONE, URL_ENCODED"
            ));
        }
    };
    if !bytes.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        let content_type = if encoding == "URL_ENCODED" {
            "application/x-www-form-urlencoded"
        } else {
            "application/json; charset=UTF-8"
        };
        headers.push(("Content-Type".into(), content_type.into()));
    }
    headers.push((
        "User-Agent".into(),
        format!("Amazon|StepFunctions|HttpInvoke|{region}"),
    ));
    headers.push(("Range".into(), "bytes=0-262144".into()));
    Ok(Request {
        method,
        url: with_query(endpoint, &query),
        headers,
        body: bytes,
    })
}

/// The access token of an OAuth client-credentials connection, asked for now.
async fn oauth_token(
    client: &basalt_outbound::Client,
    endpoint: &str,
    method: &str,
    client_id: &str,
    client_secret: &str,
    p: &Parameters,
) -> Result<String, String> {
    let mut headers = p.headers.clone();
    headers.push(("Authorization".into(), basic(client_id, client_secret)));
    let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
    overlay(&mut form, &p.body, false);
    let (url, body) = if method == "GET" {
        let mut q = p.query.clone();
        overlay(&mut q, &form, false);
        (with_query(endpoint, &q), Bytes::new())
    } else {
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        (
            with_query(endpoint, &p.query),
            Bytes::from(query_string(&form)),
        )
    };
    let r = client
        .request(method, &url, &headers, body, TIMEOUT, 1 << 20)
        .await
        .map_err(|e| format!("the authorization endpoint: {e}"))?;
    if !(200..300).contains(&r.status) {
        return Err(format!("the authorization endpoint answered {}", r.status));
    }
    let v: Value = serde_json::from_slice(&r.body)
        .map_err(|_| "the authorization endpoint's answer is not JSON".to_owned())?;
    v.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "the authorization endpoint's answer has no access_token".to_owned())
}

fn is_binary(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.starts_with("application/octet-stream")
        || ct.starts_with("image/")
        || ct.starts_with("video/")
        || ct.starts_with("audio/")
}

pub async fn invoke(sf: &StepFunctions, account: &str, region: &str, params: &Value) -> Outcome {
    invoke_traced(sf, account, region, params, None).await
}

/// The request and the response as TestState's TRACE inspection shows them (every member a
/// string; headers as `[name: value, ...]`).
fn trace_of(req: &Request, r: Option<&basalt_outbound::Response>) -> Value {
    let protocol = req.url.split(':').next().unwrap_or("https").to_owned();
    let headers = |h: &[(String, String)]| {
        format!(
            "[{}]",
            h.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut out = json!({"request": {
        "protocol": protocol, "method": req.method, "url": req.url,
        "headers": headers(&req.headers), "body": String::from_utf8_lossy(&req.body),
    }});
    if let Some(r) = r {
        out["response"] = json!({
            "protocol": protocol, "statusCode": r.status.to_string(), "statusMessage": r.reason,
            "headers": headers(&r.headers), "body": String::from_utf8_lossy(&r.body),
        });
    }
    out
}

/// What TestState asks to see of the exchange: with `reveal_secrets` (its `revealSecrets`)
/// the request as sent, authorization and the connection's parameters included; without,
/// the request as the task's own parameters make it.
pub struct Trace {
    pub reveal_secrets: bool,
    pub exchange: Option<Value>,
}

/// [`invoke`], recording the exchange in `trace` (for TestState).
pub async fn invoke_traced(
    sf: &StepFunctions,
    account: &str,
    region: &str,
    params: &Value,
    trace: Option<&mut Trace>,
) -> Outcome {
    let arn = params
        .pointer("/InvocationConfig/ConnectionArn")
        .or_else(|| params.pointer("/Authentication/ConnectionArn"))
        .and_then(Value::as_str);
    let Some(arn) = arn else {
        return runtime(
            "An HTTP Task needs a connection: Authentication.ConnectionArn or InvocationConfig.ConnectionArn",
        );
    };
    let Some(connections) = sf.connections() else {
        return failed(
            "Events.ConnectionResource.InternalError",
            "EventBridge connections are not available",
        );
    };
    // A connection of this account and region only: another account's credentials must not
    // go wherever this task's ApiEndpoint points.
    let owned = arn.split(':').nth(3) == Some(region) && arn.split(':').nth(4) == Some(account);
    let conn = match connections.connection(arn) {
        Ok(Some(_)) if !owned => {
            return failed(
                "Events.ConnectionResource.AccessDenied",
                format!("The connection {arn} belongs to another account or region"),
            );
        }
        Ok(Some(c)) => c,
        Ok(None) => {
            return failed(
                "Events.ConnectionResource.ResourceNotFound",
                format!("The connection {arn} does not exist"),
            );
        }
        Err(e) => return failed("Events.ConnectionResource.InternalError", e),
    };
    if conn.state != "AUTHORIZED" {
        return failed(
            "Events.ConnectionResource.InvalidConnectionState",
            format!("The connection {arn} is {}", conn.state),
        );
    }
    let mut req = match build(params, region, &conn) {
        Ok(r) => r,
        Err(cause) => return runtime(cause),
    };
    let client = sf.outbound();
    let auth = match &conn.authorization {
        Authorization::Basic { username, password } => {
            ("Authorization".into(), basic(username, password))
        }
        Authorization::ApiKey { name, value } => (name.clone(), value.clone()),
        Authorization::OAuthClientCredentials {
            endpoint,
            method,
            client_id,
            client_secret,
            parameters,
        } => match oauth_token(
            client,
            endpoint,
            method,
            client_id,
            client_secret,
            parameters,
        )
        .await
        {
            Ok(t) => ("Authorization".into(), format!("Bearer {t}")),
            Err(e) => {
                return failed(
                    "Events.ConnectionResource.AccessDenied",
                    format!("The connection {arn} could not be authorized: {e}"),
                );
            }
        },
    };
    overlay(&mut req.headers, &[auth], true);
    let answer = client
        .request(
            &req.method,
            &req.url,
            &req.headers,
            req.body.clone(),
            TIMEOUT,
            MAX_BODY,
        )
        .await;
    if let Some(t) = trace {
        t.exchange = Some(if t.reveal_secrets {
            trace_of(&req, answer.as_ref().ok())
        } else {
            // The task's own request, without the connection's authorization and parameters.
            let public = Connection {
                invocation: Parameters::default(),
                ..conn.clone()
            };
            match build(params, region, &public) {
                Ok(r) => trace_of(&r, answer.as_ref().ok()),
                Err(_) => trace_of(&req, answer.as_ref().ok()),
            }
        });
    }
    let r = match answer {
        Ok(r) => r,
        Err(basalt_outbound::Failure::TimedOut) => {
            return failed(
                "States.Http.Socket",
                "The HTTP request timed out after 60 seconds",
            );
        }
        Err(basalt_outbound::Failure::TooLarge) => {
            return failed(
                "States.DataLimitExceeded",
                "The HTTP response is larger than 256 KiB",
            );
        }
        Err(basalt_outbound::Failure::BadRequest(e)) => return runtime(e),
        Err(basalt_outbound::Failure::Unreachable(e)) => {
            // The task's endpoint, not the URL with the connection's (maybe secret) query.
            let endpoint = params["ApiEndpoint"].as_str().unwrap_or_default();
            return failed("States.Http.Socket", format!("{endpoint}: {e}"));
        }
    };
    let content_type = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if is_binary(&content_type) {
        return runtime(format!(
            "The HTTP response has the content type {content_type}, which an HTTP Task cannot read"
        ));
    }
    let Ok(text) = std::str::from_utf8(&r.body) else {
        return runtime("The HTTP response body is not a valid string");
    };
    let body = if content_type.to_ascii_lowercase().contains("json") {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    } else {
        Value::String(text.to_owned())
    };
    let mut headers = Map::new();
    for (k, v) in r.headers {
        let e = headers.entry(k).or_insert_with(|| json!([]));
        if let Value::Array(a) = e {
            a.push(Value::String(v));
        }
    }
    let out = json!({
        "Headers": headers,
        "ResponseBody": body,
        "StatusCode": r.status,
        "StatusText": r.reason,
    });
    if (200..300).contains(&r.status) {
        Outcome::Done(Ok(out))
    } else {
        failed(
            format!("States.Http.StatusCode.{}", r.status),
            out.to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(invocation: Parameters) -> Connection {
        Connection {
            arn: "arn:aws:events:us-east-1:000000000000:connection/c/1".into(),
            state: "AUTHORIZED".into(),
            authorization: Authorization::ApiKey {
                name: "ApiKey".into(),
                value: "k".into(),
            },
            invocation,
        }
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn array_formats_encode_as_the_guide_shows() {
        let body = json!({"array": ["a", "b", "c", "d"]});
        let cases = [
            (
                "INDICES",
                "array%5B0%5D=a&array%5B1%5D=b&array%5B2%5D=c&array%5B3%5D=d",
            ),
            ("REPEAT", "array=a&array=b&array=c&array=d"),
            ("COMMAS", "array=a%2Cb%2Cc%2Cd"),
            (
                "BRACKETS",
                "array%5B%5D=a&array%5B%5D=b&array%5B%5D=c&array%5B%5D=d",
            ),
        ];
        for (format, want) in cases {
            assert_eq!(url_encoded(&body, format), want, "{format}");
        }
        assert_eq!(
            url_encoded(
                &json!({"metadata": {"order_details": "monthly report data"}}),
                "INDICES"
            ),
            "metadata%5Border_details%5D=monthly%20report%20data"
        );
    }

    /// The Developer Guide's merging example: the connection's header, query and body
    /// parameters join the task's and win on a duplicate key.
    #[test]
    fn the_connection_parameters_win() {
        let c = conn(Parameters {
            headers: kv(&[("Header-Param", "connection_header_param")]),
            query: kv(&[("QueryParam", "connection_query_param")]),
            body: kv(&[("BodyParam", "connection_body_param")]),
        });
        let params = json!({
            "ApiEndpoint": "https://example.com/path", "Method": "post",
            "Headers": {"Request-Id": "my_request_id", "header-param": "task"},
            "QueryParameters": {"QueryParam": "task"},
            "RequestBody": {"Job": "Software Engineer", "Company": "AnyCompany", "BodyParam": "task"},
        });
        let r = build(&params, "us-east-1", &c).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.url,
            "https://example.com/path?QueryParam=connection_query_param"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap(),
            json!({"Job": "Software Engineer", "Company": "AnyCompany", "BodyParam": "connection_body_param"})
        );
        let h: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(h.contains(&("Header-Param", "connection_header_param")));
        assert!(!h.iter().any(|(_, v)| *v == "task"));
        assert!(h.contains(&("Request-Id", "my_request_id")));
        assert!(h.contains(&("User-Agent", "Amazon|StepFunctions|HttpInvoke|us-east-1")));
        assert!(h.contains(&("Content-Type", "application/json; charset=UTF-8")));
    }

    #[test]
    fn what_a_task_may_not_send() {
        let c = conn(Parameters::default());
        let refused = |params: Value| build(&params, "us-east-1", &c).err().unwrap_or_default();
        let base = json!({"ApiEndpoint": "https://example.com", "Method": "GET"});
        for h in [
            "Authorization",
            "host",
            "X-Amz-Date",
            "x-amzn-trace-id",
            "X-Forwarded-For",
        ] {
            let mut p = base.clone();
            p["Headers"] = json!({ h: "x" });
            assert!(refused(p).contains("not allowed"), "{h}");
        }
        let mut p = base.clone();
        p["Method"] = json!("TRACE");
        assert!(refused(p).contains("Method"));
        assert!(refused(json!({"Method": "GET"})).contains("ApiEndpoint"));
        let with_body = conn(Parameters {
            body: kv(&[("k", "v")]),
            ..Default::default()
        });
        let mut p = base.clone();
        p["RequestBody"] = json!("raw text");
        assert!(
            build(&p, "us-east-1", &with_body).is_err(),
            "a string body cannot take the connection's body"
        );
        p["Headers"] = json!({"Content-Type": "text/plain"});
        let r = build(&p, "us-east-1", &c).unwrap();
        assert_eq!(&r.body[..], b"raw text");
        assert_eq!(
            r.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .count(),
            1
        );
    }
}
