//! Checks S3 makes before anything else reads a request: the size of its header section, and
//! (with signatures verified) the shape of its authentication: one mechanism only, every
//! query-string parameter present and well-formed, `X-Amz-Expires` within a week, the request
//! neither expired nor not yet valid, the credential scope readable and dated like the request,
//! and every header S3 requires to be signed signed. s3s then verifies the signature itself,
//! over the method, path, every query parameter but `X-Amz-Signature`, the signed headers and
//! the payload hash.
//!
//! Codes, messages and extra members are S3's own for each case (`RequestHeaderSectionTooLarge`,
//! `AuthorizationQueryParametersError`, `AccessDenied` "Request has expired" …), in the order S3
//! applies them, so that a client sees the first fault S3 would report.

use basalt_core::time::parse_amz_date;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use s3s::Body;

/// S3's limit on a request's header section: "The PUT request header is limited to 8 KB in
/// size" (Amazon S3 User Guide, object metadata); S3 applies it to every request and answers
/// 400 `RequestHeaderSectionTooLarge` with `<MaxSizeAllowed>8192</MaxSizeAllowed>`.
pub const MAX_HEADER_SECTION: usize = 8 * 1024;

/// The longest `X-Amz-Expires` S3 takes: a week (SigV4 signing keys are scoped to a day and
/// presigned URLs may live seven days; 604800 is served and 604801 refused).
pub const MAX_PRESIGN_EXPIRES: i64 = 7 * 24 * 3600;

/// How far ahead of the server's clock a request's date may be (S3's 15-minute skew window).
const MAX_SKEW: i64 = 15 * 60;

/// Bytes of the header section as sent on the wire: `name: value\r\n` per field.
pub fn header_section_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        // Browsers send every cookie of `localhost` (cookies ignore the port) with presigned
        // GETs; AWS's endpoints never receive those, so they do not count here.
        .filter(|(n, _)| *n != http::header::COOKIE)
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

/// A request S3 refuses before verifying it: status, code, message and the extra members S3
/// adds to its `<Error>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub members: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            members: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.members.push((name, value.into()));
        self
    }

    fn query_params(message: impl Into<String>) -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "AuthorizationQueryParametersError",
            message,
        )
    }

    /// The S3 `<Error>` document (request id and host id are added by the caller's `finish`).
    pub fn into_response(self) -> Response<Body> {
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message>",
            self.code,
            xml_escape(&self.message)
        );
        for (name, value) in &self.members {
            xml.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
        }
        xml.push_str("</Error>");
        let mut r = Response::new(Body::from(Bytes::from(xml)));
        *r.status_mut() = self.status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        r
    }
}

/// XML-escaped text, with the escaping the protocol layer uses for every XML body.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    basalt_protocol::xml::escape(s, &mut out);
    out
}

/// 400 `RequestHeaderSectionTooLarge` past [`MAX_HEADER_SECTION`].
pub fn check_header_section(headers: &HeaderMap) -> Option<Refusal> {
    (header_section_size(headers) > MAX_HEADER_SECTION).then(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "RequestHeaderSectionTooLarge",
            "Your request header section exceeds the maximum allowed size.",
        )
        .with("MaxSizeAllowed", MAX_HEADER_SECTION.to_string())
    })
}

/// S3's limit on user-defined metadata: "the user-defined metadata is limited to 2 KB in size",
/// measured as the UTF-8 bytes of each key (without `x-amz-meta-`) and value.
pub const MAX_USER_METADATA: usize = 2 * 1024;

/// 400 `MetadataTooLarge` for a PUT or POST (PutObject, CopyObject, CreateMultipartUpload) whose
/// `x-amz-meta-*` headers exceed [`MAX_USER_METADATA`].
pub fn check_metadata_size(method: &http::Method, headers: &HeaderMap) -> Option<Refusal> {
    if method != http::Method::PUT && method != http::Method::POST {
        return None;
    }
    let size: usize = headers
        .iter()
        .filter_map(|(n, v)| Some(n.as_str().strip_prefix("x-amz-meta-")?.len() + v.len()))
        .sum();
    (size > MAX_USER_METADATA).then(|| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
    })
}

const ONE_MECHANISM: &str = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified";
const V4_QUERY_PARAMS: [&str; 6] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
];
const SERVER_TIME: &str = "%Y-%m-%dT%H:%M:%SZ";

fn server_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format(SERVER_TIME).to_string())
        .unwrap_or_default()
}

/// An `X-Amz-Expires` or SigV2 `Expires` read as S3 reads it: an optional sign, then digits.
fn parse_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// Headers S3 requires a SigV4 signature to cover: `host`, `content-md5` and every `x-amz-*`
/// header but `x-amz-content-sha256`; the ones sent but not in `signed`, sorted.
fn unsigned_headers(headers: &HeaderMap, signed: &str) -> Vec<String> {
    let signed: Vec<&str> = signed.split(';').collect();
    let mut names: Vec<String> = headers
        .keys()
        .map(|n| n.as_str())
        .filter(|n| {
            (*n == "host"
                || *n == "content-md5"
                || (n.starts_with("x-amz-") && *n != "x-amz-content-sha256"))
                && !signed.contains(n)
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn headers_not_signed(names: Vec<String>) -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        "AccessDenied",
        "There were headers present in the request which were not signed",
    )
    .with("HeadersNotSigned", names.join(", "))
}

/// What is wrong with a SigV4 credential scope `AKID/yyyymmdd/region/s3/aws4_request`, in S3's
/// words. Any region is accepted (Basalt serves every region on one endpoint).
fn credential_fault(credential: &str) -> Option<String> {
    let bits: Vec<&str> = credential.split('/').collect();
    if bits.len() != 5 {
        return Some(
            "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."
                .into(),
        );
    }
    if chrono::NaiveDate::parse_from_str(bits[1], "%Y%m%d").is_err() || bits[1].len() != 8 {
        return Some(format!(
            "incorrect date format \"{}\". This date in the credential must be in the format \"yyyyMMdd\".",
            bits[1]
        ));
    }
    if bits[2].is_empty() {
        return Some("a non-empty region must be provided in the credential.".into());
    }
    if bits[3] != "s3" {
        return Some(format!(
            "incorrect service \"{}\". This endpoint belongs to \"s3\".",
            bits[3]
        ));
    }
    if bits[4] != "aws4_request" {
        return Some(format!(
            "incorrect terminal \"{}\". This endpoint uses \"aws4_request\".",
            bits[4]
        ));
    }
    None
}

/// The authentication checks S3 makes before looking up the key and verifying the signature.
/// `now` is epoch seconds.
pub fn check_auth<B>(req: &Request<B>, now: i64) -> Option<Refusal> {
    let headers = req.headers();
    let params: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let v4_query = param("X-Amz-Algorithm").is_some()
        || param("X-Amz-Signature").is_some()
        || param("X-Amz-Credential").is_some();
    let v2_query = param("Signature").is_some();
    if let Some(auth) = headers.get(http::header::AUTHORIZATION) {
        if v4_query || v2_query {
            return Some(
                Refusal::new(StatusCode::BAD_REQUEST, "InvalidArgument", ONE_MECHANISM)
                    .with("ArgumentName", "Authorization")
                    .with("ArgumentValue", String::from_utf8_lossy(auth.as_bytes())),
            );
        }
        return check_v4_header(headers, auth.to_str().ok()?, now);
    }
    if v4_query && v2_query {
        return Some(
            Refusal::new(StatusCode::BAD_REQUEST, "InvalidArgument", ONE_MECHANISM)
                .with("ArgumentName", "Authorization"),
        );
    }
    if v4_query {
        return check_v4_query(headers, &param, now);
    }
    if v2_query {
        return check_v2_query(&param, now);
    }
    None
}

/// `Authorization: AWS4-HMAC-SHA256 …` once its date is readable and within the skew window (s3s
/// reports a missing, unreadable or skewed date): the credential's date must be the request's,
/// and every header S3 requires to be signed must be.
fn check_v4_header(headers: &HeaderMap, auth: &str, now: i64) -> Option<Refusal> {
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let amz_date = headers.get("x-amz-date")?.to_str().ok()?;
    let t = parse_amz_date(amz_date)?;
    if (now - t).abs() > MAX_SKEW {
        return None;
    }
    let (mut credential, mut signed) = (None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        }
    }
    let (credential, signed) = (credential?, signed?);
    let malformed = |m: &str| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "AuthorizationHeaderMalformed",
            format!("The authorization header is malformed; {m}"),
        )
    };
    if let Some(fault) = credential_fault(credential) {
        return Some(malformed(&fault));
    }
    if credential.split('/').nth(1) != Some(&amz_date[..8]) {
        return Some(malformed(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    let unsigned = unsigned_headers(headers, signed);
    (!unsigned.is_empty()).then(|| headers_not_signed(unsigned))
}

fn check_v4_query<'a>(
    headers: &HeaderMap,
    param: &dyn Fn(&str) -> Option<&'a str>,
    now: i64,
) -> Option<Refusal> {
    if let Some(alg) = param("X-Amz-Algorithm")
        && alg != "AWS4-HMAC-SHA256"
    {
        return Some(Refusal::query_params(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256 and AWS4-ECDSA-P256-SHA256\"",
        ));
    }
    if V4_QUERY_PARAMS.iter().any(|p| param(p).is_none()) {
        return Some(Refusal::query_params(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        ));
    }
    let amz_date = param("X-Amz-Date").unwrap_or_default();
    let Some(signed_at) = parse_amz_date(amz_date) else {
        return Some(Refusal::query_params(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        ));
    };
    let raw_expires = param("X-Amz-Expires").unwrap_or_default();
    let Some(expires) = parse_integer(raw_expires) else {
        return Some(Refusal::query_params("X-Amz-Expires should be a number"));
    };
    if expires < 0 {
        return Some(Refusal::query_params("X-Amz-Expires must be non-negative"));
    }
    if expires > MAX_PRESIGN_EXPIRES {
        return Some(Refusal::query_params(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ));
    }
    let expires_at = server_time(signed_at + expires);
    if signed_at - now > MAX_SKEW {
        return Some(
            Refusal::new(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Request is not yet valid",
            )
            .with("X-Amz-Date", amz_date)
            .with("Expires", expires_at)
            .with("ServerTime", server_time(now)),
        );
    }
    if now - signed_at > expires {
        return Some(
            Refusal::new(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
                .with("X-Amz-Expires", raw_expires)
                .with("Expires", expires_at)
                .with("ServerTime", server_time(now)),
        );
    }
    let credential = param("X-Amz-Credential").unwrap_or_default();
    if let Some(fault) = credential_fault(credential) {
        return Some(Refusal::query_params(format!(
            "Error parsing the X-Amz-Credential parameter; {fault}"
        )));
    }
    let scope_date = credential.split('/').nth(1).unwrap_or_default();
    if scope_date != &amz_date[..8] {
        return Some(Refusal::query_params(format!(
            "Invalid credential date \"{scope_date}\". This date is not the same as X-Amz-Date: \"{}\".",
            &amz_date[..8]
        )));
    }
    let unsigned = unsigned_headers(headers, param("X-Amz-SignedHeaders").unwrap_or_default());
    (!unsigned.is_empty()).then(|| headers_not_signed(unsigned))
}

/// SigV2 query authentication (`AWSAccessKeyId`, `Expires`, `Signature`): `Expires` is an
/// absolute time in epoch seconds, with no upper bound (S3 serves V2 URLs until they expire).
fn check_v2_query<'a>(param: &dyn Fn(&str) -> Option<&'a str>, now: i64) -> Option<Refusal> {
    let (Some(raw), Some(_)) = (param("Expires"), param("AWSAccessKeyId")) else {
        return Some(Refusal::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        ));
    };
    let Some(expires) = parse_integer(raw).filter(|e| *e <= i64::from(i32::MAX)) else {
        return Some(Refusal::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!("Invalid date (should be seconds since epoch): {raw}"),
        ));
    };
    (now > expires).then(|| {
        Refusal::new(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
            .with("Expires", server_time(expires))
            .with("ServerTime", server_time(now))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn amz(t: i64) -> String {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%Y%m%dT%H%M%SZ")
            .to_string()
    }

    fn presigned(overrides: &[(&str, &str)], drop: &[&str]) -> Request<()> {
        let date = amz(NOW - 10);
        let cred = format!("AK/{}/us-east-1/s3/aws4_request", &date[..8]);
        let mut params = vec![
            ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("X-Amz-Credential".to_owned(), cred),
            ("X-Amz-Date".to_owned(), date),
            ("X-Amz-Expires".to_owned(), "60".to_owned()),
            ("X-Amz-SignedHeaders".to_owned(), "host".to_owned()),
            ("X-Amz-Signature".to_owned(), "ab".repeat(32)),
        ];
        for (k, v) in overrides {
            match params.iter_mut().find(|(n, _)| n == k) {
                Some(p) => p.1 = (*v).to_owned(),
                None => params.push(((*k).to_owned(), (*v).to_owned())),
            }
        }
        params.retain(|(k, _)| !drop.contains(&k.as_str()));
        let q: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        Request::builder()
            .uri(format!("/b/k?{q}"))
            .header("host", "localhost")
            .body(())
            .unwrap()
    }

    fn code(r: Option<Refusal>) -> Option<(u16, &'static str, String)> {
        r.map(|r| (r.status.as_u16(), r.code, r.message))
    }

    #[test]
    fn header_section() {
        let mut h = HeaderMap::new();
        h.insert("host", "localhost".parse().unwrap());
        assert_eq!(header_section_size(&h), "host: localhost\r\n".len());
        assert!(check_header_section(&h).is_none());
        // Exactly at the limit passes, one byte more fails.
        let pad = MAX_HEADER_SECTION - header_section_size(&h) - "x-pad: \r\n".len();
        h.insert("x-pad", "a".repeat(pad).parse().unwrap());
        assert_eq!(header_section_size(&h), MAX_HEADER_SECTION);
        assert!(check_header_section(&h).is_none());
        h.insert("x-pad", "a".repeat(pad + 1).parse().unwrap());
        let r = check_header_section(&h).unwrap();
        assert_eq!(
            (r.status.as_u16(), r.code),
            (400, "RequestHeaderSectionTooLarge")
        );
        assert_eq!(r.members, vec![("MaxSizeAllowed", "8192".to_owned())]);
        let resp = r.into_response();
        assert_eq!(resp.status(), 400);
        let body = resp.body().bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>RequestHeaderSectionTooLarge</Code><Message>Your request header section exceeds the maximum allowed size.</Message><MaxSizeAllowed>8192</MaxSizeAllowed></Error>"
        );
    }

    #[test]
    fn metadata_size() {
        let mut h = HeaderMap::new();
        // 2048 bytes of key + value: allowed
        h.insert("x-amz-meta-k", "v".repeat(2047).parse().unwrap());
        assert!(check_metadata_size(&http::Method::PUT, &h).is_none());
        h.insert("x-amz-meta-j", "".parse().unwrap());
        let r = check_metadata_size(&http::Method::PUT, &h).unwrap();
        assert_eq!((r.status.as_u16(), r.code), (400, "MetadataTooLarge"));
        // only writes carry metadata
        assert!(check_metadata_size(&http::Method::GET, &h).is_none());
        assert!(check_metadata_size(&http::Method::POST, &h).is_some());
    }

    #[test]
    fn presigned_v4_valid_passes() {
        assert_eq!(code(check_auth(&presigned(&[], &[]), NOW)), None);
        // a week exactly is allowed
        assert_eq!(
            code(check_auth(
                &presigned(&[("X-Amz-Expires", "604800")], &[]),
                NOW
            )),
            None
        );
        // unrelated extra parameters are the signature's business, not these checks'
        assert_eq!(
            code(check_auth(&presigned(&[("versionId", "3")], &[]), NOW)),
            None
        );
    }

    #[test]
    fn presigned_v4_expires_bounds() {
        let q = "AuthorizationQueryParametersError";
        for (v, msg) in [
            (
                "604801",
                "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
            ),
            (
                "9999999999999",
                "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
            ),
            ("-1", "X-Amz-Expires must be non-negative"),
            ("abc", "X-Amz-Expires should be a number"),
            ("", "X-Amz-Expires should be a number"),
            ("1e3", "X-Amz-Expires should be a number"),
            (" 60", "X-Amz-Expires should be a number"),
        ] {
            assert_eq!(
                code(check_auth(&presigned(&[("X-Amz-Expires", v)], &[]), NOW)),
                Some((400, q, msg.to_owned())),
                "{v:?}"
            );
        }
        assert_eq!(parse_integer("+60"), Some(60));
        assert_eq!(parse_integer("0060"), Some(60));
    }

    #[test]
    fn presigned_v4_expiry_and_dates() {
        // signed 10 s ago, valid 5 s
        let r = check_auth(&presigned(&[("X-Amz-Expires", "5")], &[]), NOW).unwrap();
        assert_eq!(
            (r.status.as_u16(), r.code, r.message.as_str()),
            (403, "AccessDenied", "Request has expired")
        );
        assert_eq!(r.members[0], ("X-Amz-Expires", "5".to_owned()));
        assert_eq!(
            r.members[2],
            ("ServerTime", "2023-11-14T22:13:20Z".to_owned())
        );
        // zero seconds: expired at once
        assert!(check_auth(&presigned(&[("X-Amz-Expires", "0")], &[]), NOW).is_some());
        // an hour in the future
        let ahead = amz(NOW + 3600);
        let cred = format!("AK/{}/us-east-1/s3/aws4_request", &ahead[..8]);
        assert_eq!(
            code(check_auth(
                &presigned(&[("X-Amz-Date", &ahead), ("X-Amz-Credential", &cred)], &[]),
                NOW
            )),
            Some((403, "AccessDenied", "Request is not yet valid".to_owned()))
        );
        // malformed date
        assert_eq!(
            code(check_auth(
                &presigned(&[("X-Amz-Date", "2023-11-14")], &[]),
                NOW
            ))
            .map(|c| c.1),
            Some("AuthorizationQueryParametersError")
        );
        // credential dated another day
        let r = check_auth(
            &presigned(
                &[("X-Amz-Credential", "AK/20231113/us-east-1/s3/aws4_request")],
                &[],
            ),
            NOW,
        )
        .unwrap();
        assert_eq!(r.code, "AuthorizationQueryParametersError");
        assert!(
            r.message
                .starts_with("Invalid credential date \"20231113\"")
        );
        for bad in [
            "AK/20231114/us-east-1/s3",
            "AK/2023111/us-east-1/s3/aws4_request",
            "AK/20231114//s3/aws4_request",
            "AK/20231114/us-east-1/sqs/aws4_request",
            "AK/20231114/us-east-1/s3/aws5_request",
        ] {
            let r = check_auth(&presigned(&[("X-Amz-Credential", bad)], &[]), NOW).unwrap();
            assert_eq!(r.code, "AuthorizationQueryParametersError", "{bad}");
            assert!(
                r.message
                    .starts_with("Error parsing the X-Amz-Credential parameter; "),
                "{bad}: {}",
                r.message
            );
        }
    }

    #[test]
    fn presigned_v4_params() {
        for p in V4_QUERY_PARAMS.iter().filter(|p| **p != "X-Amz-Algorithm") {
            assert_eq!(
                code(check_auth(&presigned(&[], &[p]), NOW)).map(|c| c.1),
                Some("AuthorizationQueryParametersError"),
                "{p}"
            );
        }
        assert_eq!(
            code(check_auth(
                &presigned(&[("X-Amz-Algorithm", "AWS4-HMAC-SHA512")], &[]),
                NOW
            ))
            .map(|c| c.1),
            Some("AuthorizationQueryParametersError")
        );
        // Authorization header beside a presigned query
        let mut req = presigned(&[], &[]);
        req.headers_mut()
            .insert("authorization", "AWS4-HMAC-SHA256 x".parse().unwrap());
        assert_eq!(
            code(check_auth(&req, NOW)).map(|c| (c.0, c.1)),
            Some((400, "InvalidArgument"))
        );
        // SigV2 and SigV4 query parameters together
        assert_eq!(
            code(check_auth(&presigned(&[("Signature", "x")], &[]), NOW)).map(|c| c.1),
            Some("InvalidArgument")
        );
    }

    #[test]
    fn unsigned_headers_refused() {
        let mut req = presigned(&[], &[]);
        req.headers_mut()
            .insert("x-amz-meta-a", "1".parse().unwrap());
        req.headers_mut()
            .insert("content-md5", "x".parse().unwrap());
        req.headers_mut()
            .insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        req.headers_mut()
            .insert("range", "bytes=0-1".parse().unwrap());
        let r = check_auth(&req, NOW).unwrap();
        assert_eq!((r.status.as_u16(), r.code), (403, "AccessDenied"));
        assert_eq!(
            r.members,
            vec![("HeadersNotSigned", "content-md5, x-amz-meta-a".to_owned())]
        );
        // signing them satisfies the check
        let req2 = {
            let mut r = presigned(
                &[("X-Amz-SignedHeaders", "content-md5;host;x-amz-meta-a")],
                &[],
            );
            *r.headers_mut() = req.headers().clone();
            r
        };
        assert_eq!(code(check_auth(&req2, NOW)), None);
        // and an unsigned Host is refused too
        assert_eq!(
            check_auth(
                &presigned(&[("X-Amz-SignedHeaders", "x-amz-date")], &[]),
                NOW
            )
            .unwrap()
            .members,
            vec![("HeadersNotSigned", "host".to_owned())]
        );
    }

    #[test]
    fn header_auth() {
        let date = amz(NOW);
        let mut h = HeaderMap::new();
        h.insert("host", "localhost".parse().unwrap());
        h.insert("x-amz-date", date.parse().unwrap());
        h.insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        let auth = |scope_date: &str, signed: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential=AK/{scope_date}/us-east-1/s3/aws4_request, SignedHeaders={signed}, Signature=00"
            )
        };
        let req = |h: &HeaderMap, a: String| {
            let mut r = Request::builder().uri("/b/k").body(()).unwrap();
            *r.headers_mut() = h.clone();
            r.headers_mut().insert("authorization", a.parse().unwrap());
            r
        };
        let ok = auth(&date[..8], "host;x-amz-content-sha256;x-amz-date");
        assert_eq!(code(check_auth(&req(&h, ok.clone()), NOW)), None);
        assert_eq!(
            code(check_auth(
                &req(&h, auth("20200101", "host;x-amz-date")),
                NOW
            ))
            .map(|c| c.1),
            Some("AuthorizationHeaderMalformed")
        );
        let mut h2 = h.clone();
        h2.insert("x-amz-meta-added", "v".parse().unwrap());
        h2.insert("x-foo", "not required".parse().unwrap());
        let r = check_auth(&req(&h2, ok.clone()), NOW).unwrap();
        assert_eq!(
            r.members,
            vec![("HeadersNotSigned", "x-amz-meta-added".to_owned())]
        );
        // a skewed date is left to s3s (RequestTimeTooSkewed)
        assert_eq!(code(check_auth(&req(&h2, ok), NOW + 3600)), None);
    }

    #[test]
    fn v2_query() {
        let req = |q: &str| {
            Request::builder()
                .uri(format!("/b/k?{q}"))
                .body(())
                .unwrap()
        };
        let later = NOW + 60;
        assert_eq!(
            code(check_auth(
                &req(&format!("AWSAccessKeyId=AK&Expires={later}&Signature=x")),
                NOW
            )),
            None
        );
        let r = check_auth(
            &req(&format!(
                "AWSAccessKeyId=AK&Expires={}&Signature=x",
                NOW - 1
            )),
            NOW,
        )
        .unwrap();
        assert_eq!(
            (r.status.as_u16(), r.code, r.message.as_str()),
            (403, "AccessDenied", "Request has expired")
        );
        assert_eq!(
            code(check_auth(
                &req("AWSAccessKeyId=AK&Expires=soon&Signature=x"),
                NOW
            )),
            Some((
                403,
                "AccessDenied",
                "Invalid date (should be seconds since epoch): soon".to_owned()
            ))
        );
        assert_eq!(
            code(check_auth(&req("Expires=1&Signature=x"), NOW)).map(|c| c.1),
            Some("AccessDenied")
        );
        assert_eq!(code(check_auth(&req("versionId=1"), NOW)), None);
    }

    #[test]
    fn escaping() {
        let r = Refusal::query_params("a<b").with("X", "\"&'>");
        let b = r.into_response().into_body().bytes().unwrap();
        assert!(
            std::str::from_utf8(&b)
                .unwrap()
                .contains("<Message>a&lt;b</Message><X>&quot;&amp;&apos;&gt;</X>")
        );
    }
}
