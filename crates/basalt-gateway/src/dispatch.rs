//! The request pipeline for model-driven services.

use crate::auth::{AuthMode, LookupUnavailable};
use crate::body::{Body, full};
use crate::limits;
use crate::route::{self, Target};
use crate::server::Gateway;
use crate::sigv4::{self, SigError, Signature};
use basalt_core::{AwsError, Caller, RequestContext, StreamEvent};
use basalt_protocol::{Request, Response};
use basalt_spec::{Protocol, ServiceModel};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Limited, StreamBody};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The protocol to answer in when no service model could be chosen.
fn guess_protocol(headers: &http::HeaderMap, query: &str) -> Protocol {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if h("x-amz-target").is_some() {
        Protocol::Json
    } else if h("smithy-protocol").is_some() || h("content-type") == Some("application/cbor") {
        Protocol::Cbor
    } else if h("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
        || query.contains("Action=")
    {
        Protocol::Query
    } else {
        Protocol::RestJson
    }
}

fn auth_error(protocol: Protocol, e: &SigError) -> AwsError {
    let json = matches!(protocol, Protocol::Json | Protocol::Cbor);
    match e {
        SigError::Malformed(m) => AwsError::new(
            400,
            if json {
                "IncompleteSignatureException"
            } else {
                "IncompleteSignature"
            },
            m.clone(),
        ),
        SigError::Mismatch => AwsError::new(
            403,
            if json {
                "InvalidSignatureException"
            } else {
                "SignatureDoesNotMatch"
            },
            e.to_string(),
        ),
        SigError::Expired(_) | SigError::Invalid(_) => AwsError::new(
            403,
            if json {
                "InvalidSignatureException"
            } else {
                "SignatureDoesNotMatch"
            },
            e.to_string(),
        ),
        // S3's code for a bad query-string parameter; the JSON protocols report malformed
        // authentication as an incomplete signature.
        SigError::QueryParameters(m) => AwsError::new(
            400,
            if json {
                "IncompleteSignatureException"
            } else {
                "AuthorizationQueryParametersError"
            },
            m.clone(),
        ),
    }
}

fn unknown_key(protocol: Protocol) -> AwsError {
    let code = if matches!(protocol, Protocol::Query) {
        "InvalidClientTokenId"
    } else {
        "UnrecognizedClientException"
    };
    AwsError::new(
        403,
        code,
        "The security token included in the request is invalid.",
    )
}

fn to_http(
    resp: Response,
    request_id: &str,
    protocol: Protocol,
    extra_crc: bool,
) -> http::Response<Body> {
    let mut builder = http::Response::builder().status(resp.status);
    for (k, v) in &resp.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder = builder.header("x-amzn-RequestId", request_id);
    if matches!(protocol, Protocol::RestXml) {
        builder = builder.header("x-amz-request-id", request_id);
    }
    if extra_crc {
        builder = builder.header("x-amz-crc32", crc32fast::hash(&resp.body).to_string());
    }
    builder
        .body(full(resp.body))
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}

/// DynamoDB's responses, errors included, carry the CRC32 of their body (`x-amz-crc32`),
/// which its SDKs check.
fn wants_crc32(model: Option<&ServiceModel>) -> bool {
    model.is_some_and(|m| m.metadata.target_prefix.as_deref() == Some("DynamoDB_20120810"))
}

fn error_response(
    model: Option<&ServiceModel>,
    protocol: Protocol,
    err: &AwsError,
    request_id: &str,
) -> http::Response<Body> {
    to_http(
        basalt_protocol::serialize_error(model, protocol, err, request_id),
        request_id,
        protocol,
        wants_crc32(model),
    )
}

fn internal(gw: &Gateway, path: &str) -> http::Response<Body> {
    match path {
        "/_basalt/health" => {
            let mut services = serde_json::Map::new();
            for name in basalt_spec::SERVICES {
                let state = if gw.registry.get(name).is_some() || (*name == "s3" && gw.s3.is_some())
                {
                    "running"
                } else {
                    "not_implemented"
                };
                services.insert((*name).to_owned(), state.into());
            }
            let mut body = serde_json::json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_seconds": gw.started.elapsed().as_secs_f64(),
                "services": services,
            });
            for (name, section) in &gw.health {
                body[*name] = section();
            }
            http::Response::builder()
                .header("content-type", "application/json")
                .body(full(serde_json::to_vec(&body).unwrap_or_default()))
                .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
        }
        "/_basalt/metrics" => http::Response::builder()
            .header("content-type", "text/plain; version=0.0.4")
            .body(full(gw.metrics.render()))
            .unwrap_or_else(|_| http::Response::new(full(Bytes::new()))),
        _ => http::Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(full(r#"{"message":"no such Basalt endpoint"}"#))
            .unwrap_or_else(|_| http::Response::new(full(Bytes::new()))),
    }
}

/// Picks the model among candidates sharing a signing name.
fn choose_model(
    candidates: &[&'static str],
    req: &Request<'_>,
) -> Option<(&'static str, Arc<ServiceModel>)> {
    let mut first = None;
    let mut matched: Vec<(&'static str, Arc<ServiceModel>, Protocol)> = Vec::new();
    for name in candidates {
        let Ok(model) = basalt_spec::model(name) else {
            continue;
        };
        if candidates.len() == 1 {
            return Some((name, model));
        }
        let protocol = basalt_protocol::detect_protocol(&model, req);
        let hit = match protocol {
            Protocol::RestJson | Protocol::RestXml => basalt_protocol::rest::matches(&model, req),
            _ => basalt_protocol::find_operation(&model, protocol, req).is_ok(),
        };
        if hit {
            matched.push((name, model, protocol));
        } else {
            first.get_or_insert((*name, model));
        }
    }
    match matched.len() {
        0 => first,
        1 => matched.pop().map(|(n, m, _)| (n, m)),
        // Two services can share a route (`GET /tags/{resourceArn}` is both bedrock-agent's
        // and bedrock-agent-runtime's); the one whose constraints the request meets (there,
        // the ARN's pattern) is the one it is for.
        _ => {
            let fitting = matched.iter().position(|(_, m, p)| fits(m, *p, req));
            let (n, m, _) = matched.swap_remove(fitting.unwrap_or(0));
            Some((n, m))
        }
    }
}

/// Whether the request parses and validates as an operation of `model`.
fn fits(model: &ServiceModel, protocol: Protocol, req: &Request<'_>) -> bool {
    let Ok(op) = basalt_protocol::find_operation(model, protocol, req) else {
        return false;
    };
    let Ok(input) = basalt_protocol::parse_request(model, protocol, op, req) else {
        return false;
    };
    op.input
        .as_ref()
        .is_none_or(|r| basalt_protocol::validate::validate(model, r, &input).is_none())
}

/// The model to read a request with: its service's, or for a protocol that model has left
/// (old SDKs' awsQuery to SQS) the legacy model that still describes it. Both name the same
/// members, so the service receives the same canonical input either way.
fn legacy_model(
    service: &str,
    model: Arc<ServiceModel>,
    headers: &http::HeaderMap,
    query: &str,
) -> Arc<ServiceModel> {
    let wanted = guess_protocol(headers, query);
    if wanted == Protocol::Query && !model.metadata.all_protocols().contains(&Protocol::Query) {
        return basalt_spec::legacy_model(service, Protocol::Query).unwrap_or(model);
    }
    model
}

/// SQS query clients that post to the queue's URL (the AWS SDK for Java v1, plain forms)
/// name the queue by the path instead of a `QueueUrl` parameter.
fn queue_url_from_path(
    model: &ServiceModel,
    op: &basalt_spec::Operation,
    path: &str,
    endpoint: &str,
    input: &mut serde_json::Value,
) {
    let takes_url = op
        .input
        .as_ref()
        .and_then(|r| model.shape(&r.shape))
        .is_some_and(|s| s.members.contains_key("QueueUrl"));
    let segments = path.split('/').filter(|s| !s.is_empty()).count();
    if takes_url
        && segments >= 2
        && let Some(obj) = input.as_object_mut()
        && !obj.contains_key("QueueUrl")
    {
        obj.insert("QueueUrl".into(), format!("{endpoint}{path}").into());
    }
}

/// 503 for a request whose credentials cannot be looked up now.
fn credentials_unavailable(e: LookupUnavailable) -> AwsError {
    tracing::warn!(error = %e, "credential lookup failed");
    AwsError::new(
        503,
        "ServiceUnavailable",
        "The service is unavailable. Please try again later.",
    )
}

fn caller_for(gw: &Gateway, access_key: &str) -> Result<(Caller, String), AwsError> {
    if let Some(p) = gw
        .principals
        .lookup(access_key)
        .map_err(credentials_unavailable)?
    {
        return Ok((
            Caller {
                access_key_id: access_key.to_owned(),
                arn: p.arn,
                user_id: p.user_id,
            },
            p.account_id,
        ));
    }
    // As LocalStack does: a 12-digit access key id names the account.
    let account = if access_key.len() == 12 && access_key.bytes().all(|b| b.is_ascii_digit()) {
        access_key.to_owned()
    } else {
        gw.config.account_id.clone()
    };
    Ok((
        Caller {
            access_key_id: access_key.to_owned(),
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.clone(),
        },
        account,
    ))
}

pub(crate) async fn dispatch(
    gw: &Arc<Gateway>,
    req: http::Request<crate::RequestBody>,
) -> http::Response<Body> {
    let started = Instant::now();
    let request_id = basalt_core::ids::request_id();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    if let Some((prefix, handler)) = gw.routes.iter().find(|(p, _)| path.starts_with(p)) {
        let resp = handler.handle(req).await;
        gw.metrics.record(
            prefix.trim_matches('/'),
            &path,
            resp.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        return resp;
    }
    let sig = sigv4::parse(req.headers(), &query);
    let target = route::route(
        &path,
        req.headers(),
        sig.as_ref().ok().and_then(Option::as_ref),
    );

    match target {
        Target::Internal => return internal(gw, &path),
        Target::S3 => {
            if let Some(s3) = &gw.s3 {
                let method = req.method().to_string();
                let resp = s3.handle(req).await;
                gw.metrics.record(
                    "s3",
                    &method,
                    resp.status().as_u16(),
                    started.elapsed().as_secs_f64(),
                );
                return resp;
            }
        }
        _ => {}
    }
    // S3 checks its own (smaller) header section; every other AWS protocol is checked here,
    // before the signature or the body is looked at.
    if let Err(e) = limits::check_header_section(req.headers()) {
        let protocol = guess_protocol(req.headers(), &query);
        return error_response(None, protocol, &e, &request_id);
    }
    let sig = match sig {
        Ok(s) => s,
        Err(e) => {
            let protocol = guess_protocol(req.headers(), &query);
            return error_response(None, protocol, &auth_error(protocol, &e), &request_id);
        }
    };
    let candidates = match target {
        Target::Services(c) => c,
        Target::Unknown(name) => {
            let protocol = guess_protocol(req.headers(), &query);
            let err = AwsError::new(
                400,
                "UnknownServiceException",
                format!(
                    "Basalt does not know the service '{name}' that this request is signed for."
                ),
            );
            return error_response(None, protocol, &err, &request_id);
        }
        _ => {
            let err = AwsError::new(501, "NotImplemented", "S3 is not enabled on this server.");
            return error_response(None, Protocol::RestXml, &err, &request_id);
        }
    };

    let (parts, body) = req.into_parts();
    // Query APIs (STS, SNS, IAM, legacy SQS/CloudWatch) take small forms: cap them lower.
    let max = limits::max_body(
        guess_protocol(&parts.headers, &query),
        gw.config.max_body_bytes,
    );
    let too_large = || limits::body_too_large(&candidates, max);
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let body = if declared.is_some_and(|n| n > max) {
        Err(too_large())
    } else {
        match Limited::new(body, max).collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                Err(too_large())
            }
            Err(e) => Err(AwsError::new(
                400,
                "IncompleteBody",
                format!("The request body could not be read: {e}"),
            )),
        }
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            return error_response(
                None,
                guess_protocol(&parts.headers, &query),
                &e,
                &request_id,
            );
        }
    };
    let method = parts.method.as_str().to_owned();
    let request = Request {
        method: &method,
        path: &path,
        query: &query,
        headers: &parts.headers,
        body: &body,
    };

    let Some((service_name, model)) = choose_model(&candidates, &request) else {
        let err = AwsError::internal("no service model available");
        return error_response(
            None,
            guess_protocol(&parts.headers, &query),
            &err,
            &request_id,
        );
    };
    let model = legacy_model(service_name, model, &parts.headers, &query);
    let protocol = basalt_protocol::detect_protocol(&model, &request);
    let op = match basalt_protocol::find_operation(&model, protocol, &request) {
        Ok(op) => op,
        Err(e) => {
            gw.metrics.record(
                service_name,
                "unknown",
                e.status,
                started.elapsed().as_secs_f64(),
            );
            return error_response(Some(&model), protocol, &e, &request_id);
        }
    };
    let span = tracing::info_span!("request", service = service_name, operation = %op.name, request_id = %request_id);
    let resp = async {
        let result = run(
            gw,
            &model,
            service_name,
            protocol,
            op,
            &request,
            sig.as_ref(),
            &request_id,
            started,
        )
        .await;
        match result {
            Ok(resp) => resp,
            Err(e) => {
                if e.status >= 500 {
                    tracing::warn!(code = %e.code, message = %e.message, "request failed");
                }
                error_response(Some(&model), protocol, &e, &request_id)
            }
        }
    }
    .instrument(span)
    .await;
    gw.metrics.record(
        service_name,
        &op.name,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// The base URL the client reached Basalt at (its `Host`, behind a balancer the balancer's),
/// so that URLs Basalt hands out (queue URLs, code locations) work from where the client is.
fn client_endpoint(headers: &http::HeaderMap) -> Option<String> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let plausible = !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        });
    if !plausible {
        return None;
    }
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    Some(format!("{scheme}://{host}"))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    gw: &Arc<Gateway>,
    model: &Arc<ServiceModel>,
    service_name: &'static str,
    protocol: Protocol,
    op: &basalt_spec::Operation,
    request: &Request<'_>,
    sig: Option<&Signature>,
    request_id: &str,
    started: Instant,
) -> Result<http::Response<Body>, AwsError> {
    let access_key = sig.map(|s| s.access_key.as_str()).unwrap_or("anonymous");
    if gw.config.auth == AuthMode::SigV4 {
        verify(gw, protocol, request, sig)?;
    }
    let (caller, account_id) = caller_for(gw, access_key)?;
    let region = sig
        .map(|s| s.region.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| gw.config.region.clone());

    let endpoint = client_endpoint(request.headers).unwrap_or_else(|| gw.config.endpoint.clone());
    let mut input = basalt_protocol::parse_request(model, protocol, op, request)?;
    if protocol == Protocol::Query && service_name == "sqs" {
        queue_url_from_path(model, op, request.path, &endpoint, &mut input);
    }
    if let Some(r) = &op.input
        && let Some(message) = basalt_protocol::validate::validate(model, r, &input)
    {
        let code = if matches!(protocol, Protocol::Query) {
            "ValidationError"
        } else {
            "ValidationException"
        };
        return Err(AwsError::new(400, code, message));
    }
    let Some(service) = gw.registry.get(service_name) else {
        return Err(AwsError::new(
            501,
            "NotImplemented",
            format!(
                "Basalt does not implement the {service_name} service yet (operation {}).",
                op.name
            ),
        ));
    };
    let ctx = RequestContext {
        account_id,
        region,
        request_id: request_id.to_owned(),
        caller,
        started,
        endpoint,
    };
    let output = service.call(&ctx, &op.name, input).await?;
    let mut resp =
        basalt_protocol::serialize_output(model, protocol, op, &output.body, request_id)?;
    resp.headers.extend(output.headers);
    let Some(stream) = output.stream else {
        return Ok(to_http(
            resp,
            request_id,
            protocol,
            wants_crc32(Some(model)),
        ));
    };
    Ok(stream_response(model.clone(), op, resp, stream, request_id))
}

fn verify(
    gw: &Gateway,
    protocol: Protocol,
    request: &Request<'_>,
    sig: Option<&Signature>,
) -> Result<(), AwsError> {
    if request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("Bearer "))
    {
        // Bedrock API keys: any bearer token is accepted, as with `--auth off` for keys.
        return Ok(());
    }
    let Some(sig) = sig else {
        let code = if matches!(protocol, Protocol::Json | Protocol::Cbor) {
            "MissingAuthenticationTokenException"
        } else {
            "MissingAuthenticationToken"
        };
        return Err(AwsError::new(403, code, "Missing Authentication Token"));
    };
    let principal = gw
        .principals
        .lookup(&sig.access_key)
        .map_err(credentials_unavailable)?
        .ok_or_else(|| unknown_key(protocol))?;
    let now = chrono::Utc::now().timestamp();
    if principal.expires.is_some_and(|e| e < now) {
        return Err(AwsError::new(
            400,
            "ExpiredTokenException",
            "The security token included in the request is expired",
        ));
    }
    if let Some(token) = &principal.session_token {
        let sent = request
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                form_urlencoded::parse(request.query.as_bytes())
                    .find(|(k, _)| k == "X-Amz-Security-Token")
                    .map(|(_, v)| v.into_owned())
            });
        if sent.as_deref() != Some(token.as_str()) {
            return Err(unknown_key(protocol));
        }
    }
    let payload_hash = match request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => h.to_owned(),
        // Only S3 presigns with UNSIGNED-PAYLOAD; other services hash the (empty) body.
        None => hex::encode(Sha256::digest(request.body)),
    };
    let input = sigv4::VerifyInput {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers,
        payload_hash: &payload_hash,
        double_encode_path: true,
    };
    sigv4::verify(sig, &input, &principal.secret_access_key, now)
        .map_err(|e| auth_error(protocol, &e))
}

/// An event-stream response: the initial response's headers, then one frame per event.
fn stream_response(
    model: Arc<ServiceModel>,
    op: &basalt_spec::Operation,
    initial: Response,
    stream: basalt_core::EventStream,
    request_id: &str,
) -> http::Response<Body> {
    let stream_ref = op.output.as_ref().and_then(|r| {
        let shape = model.shape(&r.shape)?;
        shape
            .members
            .values()
            .find(|m| model.shape(&m.shape).is_some_and(|s| s.eventstream))
            .cloned()
    });
    let frames = stream.map(move |item: Result<StreamEvent, AwsError>| {
        let message = match (item, &stream_ref) {
            (Ok(ev), Some(r)) => basalt_protocol::eventstream::event_message(&model, r, &ev)
                .unwrap_or_else(|e| basalt_protocol::eventstream::exception_message(&e)),
            (Ok(_), None) => basalt_protocol::eventstream::exception_message(&AwsError::internal(
                "operation has no event stream",
            )),
            (Err(e), _) => basalt_protocol::eventstream::exception_message(&e),
        };
        Ok::<_, crate::body::BoxError>(hyper::body::Frame::data(Bytes::from(message.encode())))
    });
    let mut builder = http::Response::builder().status(initial.status);
    for (k, v) in &initial.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if !initial
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        builder = builder.header("content-type", "application/vnd.amazon.eventstream");
    }
    builder = builder.header("x-amzn-RequestId", request_id);
    builder
        .body(BodyExt::boxed_unsync(StreamBody::new(frames)))
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}
