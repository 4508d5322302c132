//! AWS Signature Version 4: parsing the credential scope (for routing, always) and verifying
//! signatures (with `--auth sigv4`), from the `Authorization` header or a presigned URL.

use basalt_core::time::parse_amz_date;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// What a request's signature claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub access_key: String,
    /// `yyyymmdd` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned URL, as sent (checked by [`verify`]).
    pub expires: Option<String>,
    /// `X-Amz-Date` (`yyyymmddThhmmssZ`).
    pub amz_date: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("{0}")]
    Malformed(String),
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    Mismatch,
    #[error("Signature expired: {0}")]
    Expired(String),
    /// A query-string authentication parameter that is missing or out of range
    /// (`X-Amz-Expires` beyond a week, negative or not a number).
    #[error("{0}")]
    QueryParameters(String),
    /// The signature cannot be valid for this request (its date is not yet current, or the
    /// credential scope's date is not the request's); the message says why.
    #[error("{0}")]
    Invalid(String),
}

/// The longest a presigned URL may be valid: a week, as AWS allows (604800 s).
pub const MAX_PRESIGN_EXPIRES: i64 = 7 * 24 * 3600;

/// How far a header-signed request's date may be from the server's clock.
const MAX_SKEW: i64 = 15 * 60;

fn scope_parts(credential: &str) -> Result<(String, String, String, String), SigError> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(SigError::Malformed(format!(
            "Credential should be scoped to a valid region, not '{credential}'."
        )));
    }
    Ok((
        parts[0].to_owned(),
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    ))
}

/// Parses the signature of a request, if it has one. `query` is the raw query string.
pub fn parse(headers: &http::HeaderMap, query: &str) -> Result<Option<Signature>, SigError> {
    if let Some(auth) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") else {
            return Ok(None);
        };
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = Some(v);
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed = Some(v);
            } else if let Some(v) = part.strip_prefix("Signature=") {
                signature = Some(v);
            }
        }
        let credential = credential.ok_or_else(|| {
            SigError::Malformed("Authorization header requires 'Credential' parameter.".into())
        })?;
        let (access_key, date, region, service) = scope_parts(credential)?;
        return Ok(Some(Signature {
            access_key,
            date,
            region,
            service,
            signed_headers: signed
                .unwrap_or("")
                .split(';')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            signature: signature.unwrap_or("").to_owned(),
            presigned: false,
            expires: None,
            amz_date: headers
                .get("x-amz-date")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }));
    }
    if !query.contains("X-Amz-Credential=") {
        return Ok(None);
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let credential = get("X-Amz-Credential").unwrap_or_default();
    let (access_key, date, region, service) = scope_parts(&credential)?;
    Ok(Some(Signature {
        access_key,
        date,
        region,
        service,
        signed_headers: get("X-Amz-SignedHeaders")
            .unwrap_or_default()
            .split(';')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        signature: get("X-Amz-Signature").unwrap_or_default(),
        presigned: true,
        expires: get("X-Amz-Expires"),
        amz_date: get("X-Amz-Date"),
    }))
}

/// RFC 3986 encoding with AWS's unreserved set; `/` kept when `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(&k.replace('+', " ")), decode(&v.replace('+', " "))),
            None => (decode(kv), String::new()),
        })
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Removes `.` and `..` segments as botocore does before signing.
fn normalize_path(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.is_empty() {
        "/".into()
    } else {
        joined
    }
}

pub struct VerifyInput<'a> {
    pub method: &'a str,
    /// Raw (as sent) path.
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
    /// S3 signs the path as sent; every other service signs it URI-encoded once more.
    pub double_encode_path: bool,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

pub fn canonical_request(sig: &Signature, input: &VerifyInput<'_>) -> String {
    let path = if input.double_encode_path {
        uri_encode(&normalize_path(input.path), true)
    } else {
        input.path.to_owned()
    };
    let mut headers = String::new();
    for name in &sig.signed_headers {
        let values: Vec<String> = input
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        path,
        canonical_query(input.query, sig.presigned),
        headers,
        sig.signed_headers.join(";"),
        input.payload_hash
    )
}

/// `X-Amz-Expires` as AWS reads it: digits (with an optional sign), at least 0, at most a week.
fn presign_expires(raw: &str) -> Result<i64, SigError> {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let value = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.strip_prefix('+').unwrap_or(raw).parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| SigError::QueryParameters("X-Amz-Expires should be a number".into()))?;
    if value < 0 {
        return Err(SigError::QueryParameters(
            "X-Amz-Expires must be non-negative".into(),
        ));
    }
    if value > MAX_PRESIGN_EXPIRES {
        return Err(SigError::QueryParameters(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds".into(),
        ));
    }
    Ok(value)
}

/// Verifies `sig` with `secret`. `now` is epoch seconds.
pub fn verify(
    sig: &Signature,
    input: &VerifyInput<'_>,
    secret: &str,
    now: i64,
) -> Result<(), SigError> {
    let amz_date = sig
        .amz_date
        .clone()
        .or_else(|| input.headers.get("x-amz-date").and_then(|v| v.to_str().ok()).map(str::to_owned))
        .ok_or_else(|| SigError::Malformed("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into()))?;
    let signed_at = parse_amz_date(&amz_date)
        .ok_or_else(|| SigError::Malformed(format!("Invalid X-Amz-Date: {amz_date}")))?;
    let text = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default()
    };
    let now_text = text(now);
    let expires = match (sig.presigned, sig.expires.as_deref()) {
        (true, Some(raw)) => Some(presign_expires(raw)?),
        // Query authentication without `X-Amz-Expires` lives as long as a signed header does.
        _ => None,
    };
    if signed_at - now > MAX_SKEW {
        return Err(SigError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({now_text} + 15 min.)",
            text(now + MAX_SKEW)
        )));
    }
    match expires {
        Some(expires) if now - signed_at > expires => {
            return Err(SigError::Expired(format!(
                "{amz_date} is now earlier than {now_text} ({amz_date} + {expires} sec.)"
            )));
        }
        None if now - signed_at > MAX_SKEW => {
            return Err(SigError::Expired(format!(
                "{amz_date} is now earlier than {} ({now_text} - 15 min.)",
                text(now - MAX_SKEW)
            )));
        }
        _ => {}
    }
    if !amz_date.starts_with(&sig.date) || sig.date.len() != 8 {
        return Err(SigError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            sig.date,
            &amz_date[..8]
        )));
    }
    if !sig.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Malformed(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let creq = canonical_request(sig, input);
    let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let key = signing_key(secret, &sig.date, &sig.region, &sig.service);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    // Constant-time comparison: the signature is a secret-derived value.
    let ok = expected.len() == sig.signature.len()
        && expected
            .bytes()
            .zip(sig.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok { Ok(()) } else { Err(SigError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla-query-order-key-case` case of AWS's SigV4 test suite.
    #[test]
    fn aws_test_suite_vanilla_query_order() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
                .parse()
                .unwrap(),
        );
        let sig = parse(&headers, "Param2=value2&Param1=value1")
            .unwrap()
            .unwrap();
        assert_eq!(sig.service, "service");
        let input = VerifyInput {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            payload_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            double_encode_path: true,
        };
        let now = parse_amz_date("20150830T123600Z").unwrap();
        verify(
            &sig,
            &input,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            now,
        )
        .unwrap();
        assert_eq!(verify(&sig, &input, "wrong", now), Err(SigError::Mismatch));
        assert!(matches!(
            verify(
                &sig,
                &input,
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                now + 3600
            ),
            Err(SigError::Expired(_))
        ));
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const T0: &str = "20150830T123600Z";

    /// A presigned GET signed here the way botocore presigns (`SigV4QueryAuth`), so that each
    /// of its parts can be tampered with afterwards.
    fn presign(path: &str, extra: &str, expires: &str) -> String {
        let q = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date={T0}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host{extra}"
        );
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        let sig = parse(&headers, &q).unwrap().unwrap();
        let input = VerifyInput {
            method: "GET",
            path,
            query: &q,
            headers: &headers,
            payload_hash: "UNSIGNED-PAYLOAD",
            double_encode_path: true,
        };
        let creq = canonical_request(&sig, &input);
        let sts = format!(
            "AWS4-HMAC-SHA256\n{T0}\n20150830/us-east-1/sts/aws4_request\n{}",
            hex::encode(Sha256::digest(creq.as_bytes()))
        );
        let key = signing_key(SECRET, "20150830", "us-east-1", "sts");
        format!(
            "{q}&X-Amz-Signature={}",
            hex::encode(hmac(&key, sts.as_bytes()))
        )
    }

    fn check(method: &str, path: &str, query: &str, host: &str, now: i64) -> Result<(), SigError> {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", host.parse().unwrap());
        let sig = parse(&headers, query)?.unwrap();
        let input = VerifyInput {
            method,
            path,
            query,
            headers: &headers,
            payload_hash: "UNSIGNED-PAYLOAD",
            double_encode_path: true,
        };
        verify(&sig, &input, SECRET, now)
    }

    #[test]
    fn presigned_covers_every_part() {
        let t0 = parse_amz_date(T0).unwrap();
        let host = "example.amazonaws.com";
        let url = presign("/", "&Action=GetCallerIdentity", "60");
        check("GET", "/", &url, host, t0 + 30).unwrap();
        let tampered = [
            url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"),
            url.replace("X-Amz-Date=20150830T123600Z", "X-Amz-Date=20150830T123601Z"),
            url.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host%3Bx-a"),
            url.replace("us-east-1", "us-west-2"),
            url.replace("AKIDEXAMPLE", "AKIDEXAMPLF"),
            url.replace("Action=GetCallerIdentity", "Action=GetSessionToken"),
            format!("{url}&Extra=1"),
        ];
        for q in &tampered {
            assert_eq!(
                check("GET", "/", q, host, t0 + 30),
                Err(SigError::Mismatch),
                "{q}"
            );
        }
        assert_eq!(
            check("POST", "/", &url, host, t0 + 30),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            check("GET", "/x", &url, host, t0 + 30),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            check("GET", "/", &url, "other.example.com", t0 + 30),
            Err(SigError::Mismatch)
        );
        // expiry is the signed X-Amz-Expires, not a longer tampered one
        assert!(matches!(
            check("GET", "/", &url, host, t0 + 61),
            Err(SigError::Expired(_))
        ));
        assert!(matches!(
            check(
                "GET",
                "/",
                &url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"),
                host,
                t0 + 61
            ),
            Err(SigError::Mismatch)
        ));
    }

    #[test]
    fn presigned_expires_bounds() {
        let t0 = parse_amz_date(T0).unwrap();
        let host = "example.amazonaws.com";
        // a week is the longest validity, and a week-long URL works until its end
        let week = presign("/", "", "604800");
        check("GET", "/", &week, host, t0 + 604_800).unwrap();
        assert!(matches!(
            check("GET", "/", &week, host, t0 + 604_801),
            Err(SigError::Expired(_))
        ));
        for (raw, msg) in [
            ("604801", "less than a week"),
            ("-1", "non-negative"),
            ("soon", "should be a number"),
            ("", "should be a number"),
        ] {
            let url = presign("/", "", raw);
            match check("GET", "/", &url, host, t0) {
                Err(SigError::QueryParameters(m)) => assert!(m.contains(msg), "{raw}: {m}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
        // signed more than 15 minutes in the future
        assert!(matches!(
            check("GET", "/", &presign("/", "", "60"), host, t0 - 16 * 60),
            Err(SigError::Invalid(m)) if m.starts_with("Signature not yet current")
        ));
    }

    #[test]
    fn header_auth_scope_date_and_host() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150831T000000Z".parse().unwrap());
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
                .parse()
                .unwrap(),
        );
        let sig = parse(&headers, "").unwrap().unwrap();
        let input = VerifyInput {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            double_encode_path: true,
        };
        let now = parse_amz_date("20150831T000000Z").unwrap();
        assert!(matches!(
            verify(&sig, &input, SECRET, now),
            Err(SigError::Invalid(m)) if m.starts_with("Date in Credential scope does not match")
        ));
        let mut sig = sig;
        sig.date = "20150831".into();
        sig.signed_headers = vec!["x-amz-date".into()];
        assert!(matches!(
            verify(&sig, &input, SECRET, now),
            Err(SigError::Malformed(m)) if m.contains("'Host'")
        ));
        // a header-signed request is valid 15 minutes either side of its date
        sig.signed_headers = vec!["host".into(), "x-amz-date".into()];
        assert_eq!(
            verify(&sig, &input, SECRET, now + 900),
            Err(SigError::Mismatch)
        );
        assert!(matches!(
            verify(&sig, &input, SECRET, now + 901),
            Err(SigError::Expired(_))
        ));
        assert!(matches!(
            verify(&sig, &input, SECRET, now - 901),
            Err(SigError::Invalid(_))
        ));
    }

    #[test]
    fn rejects_malformed_scopes() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AK/2015/us-east-1, Signature=x"
                .parse()
                .unwrap(),
        );
        assert!(parse(&headers, "").is_err());
        assert!(parse(&http::HeaderMap::new(), "X-Amz-Credential=garbage").is_err());
        assert_eq!(parse(&http::HeaderMap::new(), "").unwrap(), None);
    }
}
