//! How much of a request the gateway reads: the HTTP head (hyper's limits, below which every
//! oversized request gets an AWS error rather than a bare HTTP one), the header section of the
//! model-driven protocols, and their bodies. S3 applies its own documented limits in
//! `basalt-s3` (8 KiB header section, 2 KiB user metadata, 5 GiB single PUT, streamed bodies).

use basalt_core::AwsError;
use basalt_spec::Protocol;

/// hyper's HTTP/1 read buffer, which bounds a request's head (request line and headers): hyper's
/// own default (8 KiB + 400 KiB), kept explicitly. Heads up to this size are parsed and then
/// refused by the protocol limits below with an AWS error; past it hyper answers 431 itself.
/// Bodies stream through the buffer and are not bound by it.
pub const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;

/// Header fields hyper parses per HTTP/1 request. hyper's default of 100 is less than a legal
/// S3 PUT may carry (2 KiB of user metadata alone can be ~150 `x-amz-meta-*` fields), so
/// requests within S3's 8 KiB header section could be refused with a bare 431; 512 covers any
/// header section S3 accepts with typical field sizes.
pub const MAX_HEADERS: usize = 512;

/// Largest header section of a request to a model-driven (non-S3) service, counted as on the
/// wire (`name: value\r\n`). AWS documents no general figure outside S3 (8 KiB); API
/// Gateway-fronted APIs allow 10 KiB of request line and headers, CloudFront 20 KiB of headers.
/// The biggest legitimate headers here are session tokens (`x-amz-security-token`, a few KiB),
/// Bedrock bearer tokens and Lambda's base64 `X-Amz-Client-Context` (at most 3,583 bytes), so
/// 16 KiB leaves room for all of them together.
pub const MAX_HEADER_SECTION: usize = 16 * 1024;

/// Largest form body of an awsQuery request. The largest documented query payloads are about
/// 1 MiB (SQS SendMessageBatch, CloudWatch PutMetricData's 1 MB POST limit; SNS messages are
/// 256 KiB), which form encoding can roughly triple; 16 MiB is well above any of them.
pub const QUERY_MAX_BODY: usize = 16 * 1024 * 1024;

/// Bytes of a header section as sent: `name: value\r\n` per field.
pub fn header_section_size(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        // Browsers send every cookie of `localhost` (cookies ignore the port) with presigned
        // GETs; AWS's endpoints never receive those, so they do not count here.
        .filter(|(n, _)| *n != http::header::COOKIE)
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum()
}

/// The error for a header section over [`MAX_HEADER_SECTION`]: S3's `RequestHeaderSectionTooLarge`
/// (400, "Your request header section exceeds the maximum allowed size."), the one code AWS
/// documents for this condition; the other services model no error for it.
pub fn check_header_section(headers: &http::HeaderMap) -> Result<(), AwsError> {
    let size = header_section_size(headers);
    if size <= MAX_HEADER_SECTION {
        return Ok(());
    }
    Err(AwsError::new(
        400,
        "RequestHeaderSectionTooLarge",
        "Your request header section exceeds the maximum allowed size.",
    ))
}

/// Largest body read for a request in `protocol`, under the configured ceiling
/// (`GatewayConfig::max_body_bytes`, 64 MiB by default: above Bedrock's 25 MB InvokeModel body
/// and Converse requests with inline images and documents, Textract's 10 MB documents and
/// SageMaker's 25 MB streaming payloads, all base64-inflated where JSON carries them).
pub fn max_body(protocol: Protocol, configured: usize) -> usize {
    match protocol {
        Protocol::Query | Protocol::Ec2 => configured.min(QUERY_MAX_BODY),
        _ => configured,
    }
}

/// The error for a body over `max` bytes. A service whose model has an error for it (HTTP 413,
/// such as Lambda's `RequestTooLargeException`) answers with that; the others with 413
/// `RequestEntityTooLarge`, the status and name AWS's front ends use for an oversized body.
pub fn body_too_large(candidates: &[&'static str], max: usize) -> AwsError {
    let code = candidates
        .iter()
        .filter_map(|name| basalt_spec::model(name).ok())
        .find_map(|model| {
            let mut names: Vec<&String> = model
                .shapes
                .iter()
                .filter(|(_, s)| {
                    s.error
                        .as_ref()
                        .is_some_and(|e| e.http_status_code == Some(413))
                })
                .map(|(n, _)| n)
                .collect();
            names.sort();
            names.first().map(|n| (*n).clone())
        })
        .unwrap_or_else(|| "RequestEntityTooLarge".to_owned());
    AwsError::new(
        413,
        code,
        format!("Request body must be smaller than {max} bytes."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_counts_wire_bytes() {
        let mut h = http::HeaderMap::new();
        h.insert("host", "localhost:4566".parse().unwrap());
        h.append("x-a", "1".parse().unwrap());
        h.append("x-a", "22".parse().unwrap());
        assert_eq!(
            header_section_size(&h),
            "host: localhost:4566\r\nx-a: 1\r\nx-a: 22\r\n".len()
        );
        assert!(check_header_section(&h).is_ok());
    }

    #[test]
    fn header_section_limit_is_exact() {
        let mut h = http::HeaderMap::new();
        let fill = |n: usize| "v".repeat(n).parse::<http::HeaderValue>().unwrap();
        let overhead = "x-big: \r\n".len();
        h.insert("x-big", fill(MAX_HEADER_SECTION - overhead));
        assert_eq!(header_section_size(&h), MAX_HEADER_SECTION);
        assert!(check_header_section(&h).is_ok());
        h.insert("x-big", fill(MAX_HEADER_SECTION - overhead + 1));
        let e = check_header_section(&h).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (400, "RequestHeaderSectionTooLarge")
        );
        assert_eq!(
            e.message,
            "Your request header section exceeds the maximum allowed size."
        );
    }

    #[test]
    fn body_caps_by_protocol() {
        let configured = 64 * 1024 * 1024;
        assert_eq!(max_body(Protocol::Query, configured), QUERY_MAX_BODY);
        assert_eq!(max_body(Protocol::Json, configured), configured);
        assert_eq!(max_body(Protocol::RestJson, configured), configured);
        assert_eq!(max_body(Protocol::Cbor, configured), configured);
        // a lower configured ceiling wins everywhere
        assert_eq!(max_body(Protocol::Query, 1024), 1024);
    }

    #[test]
    fn body_error_uses_the_modeled_413() {
        let e = body_too_large(&["lambda"], 10);
        assert_eq!(
            (e.status, e.code.as_str()),
            (413, "RequestTooLargeException")
        );
        let e = body_too_large(&["dynamodb"], 10);
        assert_eq!((e.status, e.code.as_str()), (413, "RequestEntityTooLarge"));
        assert_eq!(e.message, "Request body must be smaller than 10 bytes.");
        let e = body_too_large(&[], 10);
        assert_eq!(e.code, "RequestEntityTooLarge");
    }
}
