//! Function URLs: Create/Get/Update/Delete/ListFunctionUrlConfigs, and the requests sent to
//! them, which arrive at the function as the payload format 2.0 event.
//!
//! A URL is `{endpoint}/_basalt/lambda-url/{url id}/` (AWS's `{id}.lambda-url.{region}.on.aws`
//! host names do not resolve on a local machine). The service sees a request as
//! [`UrlRequest`]; the HTTP side lives with the server.

use crate::functions::{load, resolve_config, save};
use crate::model::{LATEST, function_arn};
use crate::{Lambda, conflict, invalid_value, not_found, str_of};
use basalt_core::{AwsError, Output, RequestContext};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// url id → function, so a request finds its function in one read.
const URLS: &str = "lambda.urls";
pub const URL_PATH: &str = "/_basalt/lambda-url/";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct UrlRec {
    pub id: String,
    pub auth: String,
    pub cors: Option<Value>,
    pub invoke_mode: String,
    pub created: String,
    pub modified: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct UrlTarget {
    account: String,
    region: String,
    name: String,
    qualifier: String,
}

/// An HTTP request to a function URL.
#[derive(Debug, Clone)]
pub struct UrlRequest {
    pub method: String,
    /// The path below the URL's root (`/items/7`).
    pub path: String,
    pub query: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
    pub source_ip: String,
}

/// The HTTP response the function's result maps to.
#[derive(Debug, Clone)]
pub struct UrlResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

fn qualifier_of(input: &Value) -> String {
    str_of(input, "Qualifier").unwrap_or(LATEST).to_owned()
}

fn url_doc(l: &Lambda, ctx: &RequestContext, name: &str, q: &str, u: &UrlRec) -> Value {
    let mut arn = function_arn(&ctx.region, &ctx.account_id, name);
    if q != LATEST {
        arn = format!("{arn}:{q}");
    }
    let mut v = json!({
        "FunctionUrl": format!("{}{URL_PATH}{}/", l.config.endpoint, u.id),
        "FunctionArn": arn,
        "AuthType": u.auth,
        "CreationTime": u.created,
        "LastModifiedTime": u.modified,
        "InvokeMode": u.invoke_mode,
    });
    if let Some(c) = &u.cors {
        v["Cors"] = c.clone();
    }
    v
}

pub(crate) fn create(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    let q = qualifier_of(input);
    if q != LATEST {
        if q.parse::<u64>().is_ok() {
            return Err(invalid_value(
                "Function URLs can only be created for $LATEST or an alias.",
            ));
        }
        crate::versions::load_alias(l, ctx, &name, &q)?;
    }
    if rec.urls.contains_key(&q) {
        return Err(conflict(format!(
            "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
            function_arn(&ctx.region, &ctx.account_id, &name)
        )));
    }
    let now = crate::model::timestamp_now();
    let u = UrlRec {
        id: basalt_core::ids::upper_alnum(32).to_lowercase(),
        auth: str_of(input, "AuthType").unwrap_or("NONE").to_owned(),
        cors: input.get("Cors").cloned(),
        invoke_mode: str_of(input, "InvokeMode").unwrap_or("BUFFERED").to_owned(),
        created: now.clone(),
        modified: now,
    };
    let target = UrlTarget {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        name: name.clone(),
        qualifier: q.clone(),
    };
    rec.urls.insert(q.clone(), u.clone());
    let index = basalt_store::WriteOp::Put {
        table: URLS.into(),
        key: u.id.clone(),
        value: serde_json::to_vec(&target).map_err(|e| AwsError::internal(e.to_string()))?,
    };
    save(l, ctx, &rec, Some(raw), vec![index])?;
    let mut doc = url_doc(l, ctx, &name, &q, &u);
    if let Some(o) = doc.as_object_mut() {
        o.remove("LastModifiedTime");
    }
    Ok(Output::new(doc))
}

fn url_missing(ctx: &RequestContext, name: &str) -> AwsError {
    not_found(format!(
        "The resource you requested does not exist. (Service: Lambda, Status Code: 404, Request ID: {}) for function {}",
        ctx.request_id,
        function_arn(&ctx.region, &ctx.account_id, name)
    ))
}

pub(crate) fn get(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (rec, _) = load(l, ctx, &name)?;
    let q = qualifier_of(input);
    let u = rec.urls.get(&q).ok_or_else(|| url_missing(ctx, &name))?;
    Ok(Output::new(url_doc(l, ctx, &name, &q, u)))
}

pub(crate) fn update(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    let q = qualifier_of(input);
    let u = rec
        .urls
        .get_mut(&q)
        .ok_or_else(|| url_missing(ctx, &name))?;
    if let Some(a) = str_of(input, "AuthType") {
        u.auth = a.to_owned();
    }
    if let Some(c) = input.get("Cors") {
        u.cors = Some(c.clone());
    }
    if let Some(m) = str_of(input, "InvokeMode") {
        u.invoke_mode = m.to_owned();
    }
    u.modified = crate::model::timestamp_now();
    let u = u.clone();
    save(l, ctx, &rec, Some(raw), Vec::new())?;
    Ok(Output::new(url_doc(l, ctx, &name, &q, &u)))
}

pub(crate) fn delete(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (mut rec, raw) = load(l, ctx, &name)?;
    let q = qualifier_of(input);
    let u = rec.urls.remove(&q).ok_or_else(|| url_missing(ctx, &name))?;
    let index = basalt_store::WriteOp::Delete {
        table: URLS.into(),
        key: u.id,
    };
    save(l, ctx, &rec, Some(raw), vec![index])?;
    Ok(Output::empty())
}

pub(crate) fn list(l: &Lambda, ctx: &RequestContext, input: &Value) -> Result<Output, AwsError> {
    let name = crate::function_name(ctx, input)?;
    let (rec, _) = load(l, ctx, &name)?;
    let all: Vec<Value> = rec
        .urls
        .iter()
        .map(|(q, u)| url_doc(l, ctx, &name, q, u))
        .collect();
    Ok(Output::new(json!({ "FunctionUrlConfigs": all })))
}

/// The URL ids a function's deletion must drop from the index.
pub(crate) fn index_deletes(rec: &crate::model::FunctionRec) -> Vec<basalt_store::WriteOp> {
    rec.urls
        .values()
        .map(|u| basalt_store::WriteOp::Delete {
            table: URLS.into(),
            key: u.id.clone(),
        })
        .collect()
}

fn plain(status: u16, message: &str) -> UrlResponse {
    UrlResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: bytes::Bytes::from(json!({"Message": message}).to_string()),
    }
}

/// The payload format 2.0 event of a request.
fn event(id: &str, account: &str, req: &UrlRequest, request_id: &str) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for (k, v) in &req.headers {
        if k == "cookie" {
            cookies.extend(v.split(';').map(|c| json!(c.trim())));
            continue;
        }
        match headers.get_mut(k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(v);
            }
            _ => {
                headers.insert(k.clone(), json!(v));
            }
        }
    }
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(req.query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), json!(v));
            }
        }
    }
    let text = std::str::from_utf8(&req.body).ok().filter(|_| {
        let ct = headers
            .get("content-type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        !ct.starts_with("application/octet-stream") && !ct.starts_with("image/")
    });
    let now = chrono::Utc::now();
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut e = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.path,
        "rawQueryString": req.query,
        "headers": headers,
        "requestContext": {
            "accountId": if account.is_empty() { "anonymous" } else { account },
            "apiId": id,
            "domainName": host,
            "domainPrefix": id,
            "http": {
                "method": req.method,
                "path": req.path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip,
                "userAgent": req.headers.iter().find(|(k, _)| k == "user-agent").map(|(_, v)| v.as_str()).unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": text.is_none() && !req.body.is_empty(),
    });
    if !cookies.is_empty() {
        e["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        e["queryStringParameters"] = Value::Object(query);
    }
    if !req.body.is_empty() {
        e["body"] = json!(match text {
            Some(t) => t.to_owned(),
            None => B64.encode(&req.body),
        });
    }
    e
}

/// The HTTP response of a function's result: a `{statusCode, headers, body, cookies,
/// isBase64Encoded}` object is taken as it says; anything else is a 200 JSON body.
fn response_of(result: &[u8]) -> UrlResponse {
    let parsed: Option<Value> = serde_json::from_slice(result).ok();
    match parsed {
        Some(Value::Object(o)) if o.contains_key("statusCode") => {
            let status = o.get("statusCode").and_then(Value::as_u64).unwrap_or(200) as u16;
            let mut headers: Vec<(String, String)> = o
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter()
                        .map(|(k, v)| {
                            (
                                k.to_lowercase(),
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            for c in o
                .get("cookies")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(c) = c.as_str() {
                    headers.push(("set-cookie".into(), c.to_owned()));
                }
            }
            let body = match o.get("body") {
                Some(Value::String(s))
                    if o.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) =>
                {
                    B64.decode(s).unwrap_or_default().into()
                }
                Some(Value::String(s)) => bytes::Bytes::from(s.clone()),
                Some(Value::Null) | None => bytes::Bytes::new(),
                Some(other) => bytes::Bytes::from(other.to_string()),
            };
            if !headers.iter().any(|(k, _)| k == "content-type") {
                headers.push(("content-type".into(), "application/json".into()));
            }
            UrlResponse {
                status,
                headers,
                body,
            }
        }
        _ => UrlResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: bytes::Bytes::copy_from_slice(result),
        },
    }
}

/// Serves a request to a function URL.
pub(crate) async fn serve(l: &Lambda, id: &str, req: UrlRequest) -> UrlResponse {
    let target: UrlTarget = match l.state.get(URLS, id) {
        Ok(Some(raw)) => match serde_json::from_slice(&raw) {
            Ok(t) => t,
            Err(_) => return plain(404, "Not Found"),
        },
        Ok(None) => return plain(404, "Not Found"),
        Err(_) => return plain(503, "Service Unavailable"),
    };
    let ctx = RequestContext::internal(&target.account, &target.region, &l.config.endpoint);
    let Ok((rec, _)) = load(l, &ctx, &target.name) else {
        return plain(404, "Not Found");
    };
    let Some(url) = rec.urls.get(&target.qualifier) else {
        return plain(404, "Not Found");
    };
    // AWS_IAM URLs want a SigV4-signed request; the signature itself is checked only when
    // the server checks signatures (the gateway's --auth), not here.
    if url.auth == "AWS_IAM"
        && !req
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.starts_with("AWS4-HMAC-SHA256"))
    {
        return plain(403, "Forbidden");
    }
    let qualifier = (target.qualifier != LATEST).then_some(target.qualifier.as_str());
    let config = match resolve_config(l, &ctx, &rec, qualifier) {
        Ok(c) => c,
        Err(_) => return plain(404, "Not Found"),
    };
    let payload = bytes::Bytes::from(event(id, "", &req, &ctx.request_id).to_string());
    let mut arn = function_arn(&target.region, &target.account, &target.name);
    if let Some(q) = qualifier {
        arn = format!("{arn}:{q}");
    }
    let outcome = crate::invoke::run(
        l,
        &target.account,
        &target.region,
        &target.name,
        &config,
        rec.reserved_concurrency,
        arn,
        payload,
        ctx.request_id.clone(),
    )
    .await;
    match outcome {
        Ok(o) => match o.result {
            Ok(body) => response_of(&body),
            Err(_) => plain(502, "Internal Server Error"),
        },
        Err(e) if e.status == 429 => plain(429, "Rate Exceeded."),
        Err(_) => plain(502, "Internal Server Error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_http_responses() {
        let r = response_of(
            br#"{"statusCode": 201, "headers": {"X-A": "1"}, "body": "hi", "cookies": ["a=b"]}"#,
        );
        assert_eq!(r.status, 201);
        assert_eq!(&r.body[..], b"hi");
        assert!(r.headers.contains(&("x-a".into(), "1".into())));
        assert!(r.headers.contains(&("set-cookie".into(), "a=b".into())));
        let r = response_of(br#"{"statusCode": 200, "body": "aGk=", "isBase64Encoded": true}"#);
        assert_eq!(&r.body[..], b"hi");
        let r = response_of(br#"{"answer": 42}"#);
        assert_eq!((r.status, &r.body[..]), (200, &br#"{"answer": 42}"#[..]));
    }

    #[test]
    fn requests_become_version_2_events() {
        let req = UrlRequest {
            method: "POST".into(),
            path: "/items/7".into(),
            query: "a=1&a=2&b=x".into(),
            headers: vec![
                ("host".into(), "h".into()),
                ("cookie".into(), "s=1; t=2".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: bytes::Bytes::from_static(b"{\"k\":1}"),
            source_ip: "127.0.0.1".into(),
        };
        let e = event("abc", "", &req, "rid");
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawPath"], "/items/7");
        assert_eq!(e["queryStringParameters"]["a"], "1,2");
        assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert_eq!(e["body"], "{\"k\":1}");
        assert_eq!(e["isBase64Encoded"], false);
    }
}
