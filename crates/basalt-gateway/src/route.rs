//! Which service a request is for, from its headers alone (so that S3 bodies can stream).

use crate::sigv4::Signature;

/// `X-Amz-Target` prefixes (and rpcv2Cbor service names) of the JSON/CBOR services.
/// Checked against the vendored models by a test.
pub const TARGET_PREFIXES: &[(&str, &str)] = &[
    ("DynamoDB_20120810", "dynamodb"),
    ("DynamoDBStreams_20120810", "dynamodbstreams"),
    ("AmazonSQS", "sqs"),
    ("AWSStepFunctions", "stepfunctions"),
    ("AWSEvents", "events"),
    ("Kinesis_20131202", "kinesis"),
    ("GraniteServiceVersion20100801", "cloudwatch"),
    ("Logs_20140328", "logs"),
    ("Comprehend_20171127", "comprehend"),
    ("RekognitionService", "rekognition"),
    ("Textract", "textract"),
    ("Transcribe", "transcribe"),
    ("SageMaker", "sagemaker"),
    ("AWSGlue", "glue"),
    ("AnyScaleFrontendService", "application-autoscaling"),
];

/// Services by SigV4 signing name; several services share `bedrock` and `sagemaker`.
pub fn services_for_signing_name(name: &str) -> &'static [&'static str] {
    match name {
        "s3" => &["s3"],
        "sts" => &["sts"],
        "iam" => &["iam"],
        // Most specific first: the runtime paths are the most frequent.
        "bedrock" => &[
            "bedrock-runtime",
            "bedrock-agent-runtime",
            "bedrock-agent",
            "bedrock",
        ],
        "sagemaker" => &[
            "sagemaker-runtime",
            "sagemaker-featurestore-runtime",
            "sagemaker",
        ],
        "states" => &["stepfunctions"],
        "monitoring" => &["cloudwatch"],
        "dynamodb" => &["dynamodb", "dynamodbstreams"],
        "sqs" => &["sqs"],
        "sns" => &["sns"],
        "kinesis" => &["kinesis"],
        "logs" => &["logs"],
        "events" => &["events"],
        "scheduler" => &["scheduler"],
        "s3vectors" => &["s3vectors"],
        "application-autoscaling" => &["application-autoscaling"],
        "lambda" => &["lambda"],
        "comprehend" => &["comprehend"],
        "rekognition" => &["rekognition"],
        "textract" => &["textract"],
        "transcribe" => &["transcribe"],
        "glue" => &["glue"],
        _ => &[],
    }
}

/// The routing decision before the body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Basalt's own endpoints (`/_basalt/...`).
    Internal,
    /// A model-driven service; several candidates are told apart by their REST routes.
    Services(Vec<&'static str>),
    /// S3 (raw handler).
    S3,
    /// A signing name Basalt does not know.
    Unknown(String),
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `host` addresses a bucket virtual-host style (`bucket.s3.localhost`, `bucket.localhost`).
fn is_virtual_host(host: &str) -> bool {
    let host = host.split(':').next().unwrap_or(host);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    host.ends_with(".localhost") || host.contains(".s3.")
}

pub fn route(path: &str, headers: &http::HeaderMap, sig: Option<&Signature>) -> Target {
    if path.starts_with("/_basalt/") {
        return Target::Internal;
    }
    if let Some(target) = header(headers, "x-amz-target") {
        let prefix = target.split('.').next().unwrap_or("");
        if let Some((_, svc)) = TARGET_PREFIXES.iter().find(|(p, _)| *p == prefix) {
            return Target::Services(vec![svc]);
        }
    }
    if let Some(rest) = path.strip_prefix("/service/") {
        let name = rest.split('/').next().unwrap_or("");
        if let Some((_, svc)) = TARGET_PREFIXES.iter().find(|(p, _)| *p == name) {
            return Target::Services(vec![svc]);
        }
    }
    if let Some(sig) = sig {
        return match services_for_signing_name(&sig.service) {
            ["s3"] => Target::S3,
            [] => Target::Unknown(sig.service.clone()),
            many => Target::Services(many.to_vec()),
        };
    }
    if header(headers, "authorization").is_some_and(|a| a.starts_with("Bearer ")) {
        return Target::Services(services_for_signing_name("bedrock").to_vec());
    }
    if header(headers, "host").is_some_and(is_virtual_host) {
        return Target::S3;
    }
    // Unsigned requests (public objects, POST policy uploads, plain curl) are S3's.
    Target::S3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_prefixes_match_models() {
        for (prefix, svc) in TARGET_PREFIXES {
            let m = basalt_spec::model(svc).unwrap();
            assert_eq!(m.metadata.target_prefix.as_deref(), Some(*prefix), "{svc}");
        }
    }

    #[test]
    fn signing_names_match_models() {
        for svc in basalt_spec::SERVICES {
            let m = basalt_spec::model(svc).unwrap();
            assert!(
                services_for_signing_name(m.signing_name()).contains(svc),
                "{svc} signs as {}",
                m.signing_name()
            );
        }
    }

    #[test]
    fn virtual_hosts() {
        assert!(is_virtual_host("demo.localhost:4566"));
        assert!(is_virtual_host("demo.s3.localhost.localstack.cloud"));
        assert!(!is_virtual_host("127.0.0.1:4566"));
        assert!(!is_virtual_host("localhost:4566"));
    }
}
