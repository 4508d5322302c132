//! Why a policy document was refused. S3 answers every one of these as `400 MalformedPolicy`;
//! `Display` is the message S3 puts next to that code, so a service can hand `to_string()`
//! straight to its error body.
//!
//! The texts come from what S3 answers PutBucketPolicy (as recorded by S3-compatible servers
//! that test against it, e.g. versitygw's and CORTX's conformance suites).

/// A policy document that S3's PutBucketPolicy would refuse with `MalformedPolicy`.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The body is empty or does not start with `{` (S3 checks the raw first byte, so even
    /// leading whitespace is refused).
    #[error("Policies must be valid JSON and the first byte must be '{{'")]
    NotAnObject,
    /// Not JSON, or JSON of the wrong shape where no more specific message applies.
    #[error("This policy contains invalid Json")]
    InvalidJson,
    /// A member name that is not a policy element (names are case-sensitive: `condition` is
    /// unknown).
    #[error("Unknown field {0}")]
    UnknownField(String),
    /// `Version` is present but is neither `2012-10-17` nor `2008-10-17`.
    #[error("The policy must contain a valid version string")]
    InvalidVersion,
    #[error("Missing required field Statement")]
    MissingStatement,
    /// `Statement` is an empty array.
    #[error("Could not parse the policy: Statement is empty!")]
    EmptyStatement,
    #[error("Missing required field Effect")]
    MissingEffect,
    /// `Effect` other than `Allow` or `Deny` (case-sensitive).
    #[error("Invalid effect: {0}")]
    InvalidEffect(String),
    /// Neither `Principal` nor `NotPrincipal`: resource policies must name who they apply to.
    #[error("Missing required field Principal")]
    MissingPrincipal,
    /// A principal of an unknown type or form, a partial wildcard, or both `Principal` and
    /// `NotPrincipal`.
    #[error("Invalid principal in policy")]
    InvalidPrincipal,
    #[error("Missing required field Action")]
    MissingAction,
    /// Not `*` or `s3:<name>`, or both `Action` and `NotAction`.
    #[error("Policy has invalid action")]
    InvalidAction,
    #[error("Missing required field Resource")]
    MissingResource,
    /// Not an S3 ARN, another bucket's ARN (see [`crate::Policy::parse_for_bucket`]), or both
    /// `Resource` and `NotResource`.
    #[error("Policy has invalid resource")]
    InvalidResource,
    /// An object action listed only with bucket resources, or the other way round.
    #[error("Action does not apply to any resource(s) in statement")]
    ActionResourceMismatch,
    /// A condition key that is not `<service>:<name>`.
    #[error("Policy has an invalid condition key")]
    InvalidConditionKey,
    /// A condition operator IAM does not define (the name as written).
    #[error("Invalid Condition type : {0}")]
    InvalidConditionOperator(String),
    /// An `IpAddress`/`NotIpAddress` value that is not an IPv4 or IPv6 address or CIDR block.
    #[error("Invalid IP address in Conditions")]
    InvalidIpAddress,
}
