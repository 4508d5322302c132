//! Cross-origin resource sharing: preflight `OPTIONS` requests answered from the bucket's CORS
//! rules, and `Access-Control-*` headers on the answers to requests that carry an `Origin`.
//! S3 answers both before (and whatever) authorization decides, so this sits in the front.

use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use s3s::Body;
use s3s::dto::{CORSConfiguration, CORSRule};

/// Whether `origin` matches an AllowedOrigin pattern (at most one `*`, matching any run).
fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == origin,
        Some((pre, post)) => {
            origin.len() >= pre.len() + post.len()
                && origin.starts_with(pre)
                && origin.ends_with(post)
        }
    }
}

fn header_allowed(rule: &CORSRule, header: &str) -> bool {
    rule.allowed_headers
        .iter()
        .flatten()
        .any(|p| origin_matches(&p.to_ascii_lowercase(), &header.to_ascii_lowercase()))
}

/// The first rule that admits `origin` for `method` and every requested header.
fn find_rule<'a>(
    cfg: &'a CORSConfiguration,
    origin: &str,
    method: &str,
    request_headers: &[String],
) -> Option<&'a CORSRule> {
    cfg.cors_rules.iter().find(|r| {
        r.allowed_origins.iter().any(|o| origin_matches(o, origin))
            && r.allowed_methods.iter().any(|m| m.as_str() == method)
            && request_headers.iter().all(|h| header_allowed(r, h))
    })
}

fn requested_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Adds the `Access-Control-*` headers of `rule` for `origin` and `method`.
fn apply(h: &mut HeaderMap, rule: &CORSRule, origin: &str, method: &str, allow_headers: &[String]) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    let set = |h: &mut HeaderMap, name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    set(
        h,
        "access-control-allow-origin",
        if any { "*" } else { origin },
    );
    set(h, "access-control-allow-methods", method);
    if !any {
        set(h, "access-control-allow-credentials", "true");
    }
    if !allow_headers.is_empty() {
        set(h, "access-control-allow-headers", &allow_headers.join(", "));
    }
    if let Some(e) = &rule.expose_headers
        && !e.is_empty()
    {
        set(h, "access-control-expose-headers", &e.join(", "));
    }
    if let Some(age) = rule.max_age_seconds {
        set(h, "access-control-max-age", &age.to_string());
    }
    h.append(
        http::header::VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    );
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// Answers a preflight `OPTIONS` request; `cfg` is the bucket's configuration (`Err(())`: no
/// such bucket).
pub(crate) fn preflight(
    headers: &HeaderMap,
    cfg: Result<Option<&CORSConfiguration>, ()>,
) -> Response<Body> {
    let origin = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let method = headers
        .get("access-control-request-method")
        .and_then(|v| v.to_str().ok());
    let (Some(origin), Some(method)) = (origin, method) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        );
    };
    let cfg = match cfg {
        Err(()) => {
            return error(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The specified bucket does not exist",
            );
        }
        Ok(None) => {
            return error(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: CORS is not enabled for this bucket.",
            );
        }
        Ok(Some(c)) => c,
    };
    let wanted = requested_headers(headers);
    match find_rule(cfg, origin, method, &wanted) {
        Some(rule) => {
            let mut r = Response::new(Body::empty());
            apply(r.headers_mut(), rule, origin, method, &wanted);
            r
        }
        None => error(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        ),
    }
}

/// Adds CORS headers to the answer of an actual request with an `Origin`, when a rule admits it
/// (for the method the request names in `Access-Control-Request-Method`, else its own).
pub(crate) fn decorate(
    resp: &mut Response<Body>,
    req_method: &Method,
    req_headers: &HeaderMap,
    cfg: &CORSConfiguration,
) {
    let Some(origin) = req_headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let method = req_headers
        .get("access-control-request-method")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(req_method.as_str());
    if let Some(rule) = find_rule(cfg, origin, method, &[]) {
        apply(resp.headers_mut(), rule, origin, method, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns() {
        assert!(origin_matches("*suffix", "foo.suffix"));
        assert!(!origin_matches("*suffix", "foo.suffix.get"));
        assert!(origin_matches("start*end", "startend"));
        assert!(origin_matches("start*end", "start12end"));
        assert!(!origin_matches("start*end", "0start12end"));
        assert!(origin_matches("prefix*", "prefix"));
        assert!(!origin_matches("prefix*", "bla.prefix"));
        assert!(origin_matches("*", "anything"));
        assert!(origin_matches("http://a.com", "http://a.com"));
    }

    #[test]
    fn preflights() {
        let cfg = CORSConfiguration {
            cors_rules: vec![CORSRule {
                allowed_methods: vec!["GET".into()],
                allowed_origins: vec!["*".into()],
                allowed_headers: Some(vec!["x-amz-*".into()]),
                ..Default::default()
            }],
        };
        let mut h = HeaderMap::new();
        assert_eq!(
            preflight(&h, Ok(Some(&cfg))).status(),
            StatusCode::BAD_REQUEST
        );
        h.insert("origin", HeaderValue::from_static("o"));
        h.insert(
            "access-control-request-method",
            HeaderValue::from_static("GET"),
        );
        let r = preflight(&h, Ok(Some(&cfg)));
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        h.insert(
            "access-control-request-headers",
            HeaderValue::from_static("x-amz-date, range"),
        );
        assert_eq!(
            preflight(&h, Ok(Some(&cfg))).status(),
            StatusCode::FORBIDDEN
        );
        h.insert(
            "access-control-request-headers",
            HeaderValue::from_static("X-Amz-Date"),
        );
        assert_eq!(preflight(&h, Ok(Some(&cfg))).status(), StatusCode::OK);
        assert_eq!(preflight(&h, Ok(None)).status(), StatusCode::FORBIDDEN);
    }
}
