//! AWS Signature Version 4: parsing the credential scope (for routing, always) and verifying
//! signatures (with `--auth sigv4`), from the `Authorization` header or a presigned URL.

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
    /// `X-Amz-Expires` of a presigned URL.
    pub expires: Option<u64>,
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
}

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
        expires: get("X-Amz-Expires").and_then(|e| e.parse().ok()),
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

fn parse_amz_date(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|d| d.and_utc().timestamp())
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
    let now_text = chrono::DateTime::from_timestamp(now, 0)
        .map(|d| d.format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default();
    if sig.presigned {
        let expires = sig.expires.unwrap_or(0) as i64;
        if now > signed_at + expires {
            return Err(SigError::Expired(format!(
                "{amz_date} is now earlier than {now_text} ({amz_date} + {expires} sec.)"
            )));
        }
    } else if (now - signed_at).abs() > 15 * 60 {
        return Err(SigError::Expired(format!(
            "{amz_date} is now earlier than {now_text} ({now_text} - 15 min.)"
        )));
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
