//! Static website hosting: requests to a bucket's website endpoint
//! (`<bucket>.s3-website.localhost`, `<bucket>.s3-website-<region>.amazonaws.com`,
//! `<bucket>.s3-website.<region>.amazonaws.com`) are answered from its website configuration:
//! index documents for folders, redirects (all requests, routing rules, folders without
//! their slash), the error document, and HTML error pages. Objects are read as an anonymous
//! request would read them, so a website shows only what its bucket makes public, as S3's
//! does.

use http::{HeaderValue, Method, Response, StatusCode};
use s3s::Body;
use s3s::dto::{RoutingRule, WebsiteConfiguration};

/// The bucket a website endpoint's Host names, if it is one.
pub(crate) fn website_bucket(host: &str) -> Option<&str> {
    let h = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    for marker in [".s3-website.", ".s3-website-"] {
        if let Some(i) = h.find(marker) {
            return Some(&h[..i]).filter(|b| !b.is_empty());
        }
    }
    None
}

/// An HTML error page, as the website endpoint writes them.
pub(crate) fn error_page(
    status: StatusCode,
    code: &str,
    message: &str,
    extra: &[(&str, &str)],
) -> Response<Body> {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    let mut items = format!(
        "<li>Code: {}</li><li>Message: {}</li>",
        esc(code),
        esc(message)
    );
    for (k, v) in extra {
        items.push_str(&format!("<li>{}: {}</li>", esc(k), esc(v)));
    }
    let body = format!(
        "<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<ul>\n{items}\n</ul>\n<hr/>\n</body>\n</html>\n"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// A redirect answer.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

/// What the website does with a request before reading any object.
pub(crate) enum Plan {
    Redirect(StatusCode, String),
    Serve { key: String },
    Refuse(Response<Body>),
}

/// The key a path names: folders get the index document's suffix.
pub(crate) fn plan(cfg: &WebsiteConfiguration, method: &Method, host: &str, path: &str) -> Plan {
    if method != Method::GET && method != Method::HEAD {
        return Plan::Refuse(error_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
            &[],
        ));
    }
    if let Some(all) = &cfg.redirect_all_requests_to {
        let proto = all.protocol.as_ref().map_or("http", |p| p.as_str());
        return Plan::Redirect(
            StatusCode::MOVED_PERMANENTLY,
            format!("{proto}://{}{path}", all.host_name),
        );
    }
    let mut key = percent_encoding::percent_decode_str(path.trim_start_matches('/'))
        .decode_utf8_lossy()
        .into_owned();
    if let Some(r) = routing(cfg, &key, None) {
        return Plan::Redirect(r.0, r.1.replace("{host}", host));
    }
    if key.is_empty() || key.ends_with('/') {
        let Some(index) = &cfg.index_document else {
            return Plan::Refuse(error_page(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
                &[],
            ));
        };
        key.push_str(&index.suffix);
    }
    Plan::Serve { key }
}

/// The redirect a routing rule asks for, for `key` (and, after a failed read, its status).
pub(crate) fn routing(
    cfg: &WebsiteConfiguration,
    key: &str,
    error: Option<u16>,
) -> Option<(StatusCode, String)> {
    let rules: &[RoutingRule] = cfg.routing_rules.as_deref().unwrap_or_default();
    let rule = rules.iter().find(|r| {
        let Some(c) = &r.condition else {
            return error.is_none();
        };
        let prefix_ok = c
            .key_prefix_equals
            .as_deref()
            .is_none_or(|p| key.starts_with(p));
        let code_ok = match (&c.http_error_code_returned_equals, error) {
            (None, _) => true,
            (Some(want), Some(got)) => want.as_str() == got.to_string(),
            (Some(_), None) => false,
        };
        prefix_ok && code_ok
    })?;
    let rd = &rule.redirect;
    let new_key = match (&rd.replace_key_with, &rd.replace_key_prefix_with) {
        (Some(k), _) => k.clone(),
        (None, Some(p)) => {
            let old = rule
                .condition
                .as_ref()
                .and_then(|c| c.key_prefix_equals.as_deref())
                .unwrap_or("");
            format!("{p}{}", &key[old.len().min(key.len())..])
        }
        (None, None) => key.to_owned(),
    };
    let proto = rd.protocol.as_ref().map_or("http", |p| p.as_str());
    let host = rd.host_name.as_deref().unwrap_or("{host}");
    let code = rd
        .http_redirect_code
        .as_deref()
        .and_then(|c| c.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::MOVED_PERMANENTLY);
    Some((code, format!("{proto}://{host}/{new_key}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::{Condition, IndexDocument, Redirect};

    #[test]
    fn hosts() {
        assert_eq!(
            website_bucket("site.s3-website.localhost:4566"),
            Some("site")
        );
        assert_eq!(
            website_bucket("my.site.s3-website-us-east-1.amazonaws.com"),
            Some("my.site")
        );
        assert_eq!(website_bucket("site.s3.localhost"), None);
    }

    #[test]
    fn plans_and_rules() {
        let cfg = WebsiteConfiguration {
            index_document: Some(IndexDocument {
                suffix: "index.html".into(),
            }),
            routing_rules: Some(vec![RoutingRule {
                condition: Some(Condition {
                    key_prefix_equals: Some("docs/".into()),
                    ..Default::default()
                }),
                redirect: Redirect {
                    replace_key_prefix_with: Some("documents/".into()),
                    ..Default::default()
                },
            }]),
            ..Default::default()
        };
        let h = "site.s3-website.localhost";
        assert!(
            matches!(plan(&cfg, &Method::GET, h, "/"), Plan::Serve { key } if key == "index.html")
        );
        assert!(
            matches!(plan(&cfg, &Method::GET, h, "/a/b/"), Plan::Serve { key } if key == "a/b/index.html")
        );
        match plan(&cfg, &Method::GET, h, "/docs/x.html") {
            Plan::Redirect(code, to) => {
                assert_eq!(code, StatusCode::MOVED_PERMANENTLY);
                assert_eq!(to, format!("http://{h}/documents/x.html"));
            }
            _ => panic!("expected a redirect"),
        }
        assert!(matches!(plan(&cfg, &Method::PUT, h, "/"), Plan::Refuse(_)));
    }
}
