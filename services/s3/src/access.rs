//! Who may do what: every signed-or-anonymous request is checked here (through s3s's
//! [`S3Access`] hook, before its body is read) against the bucket policy, Block Public Access,
//! Object Ownership and the ACLs, in the order S3 evaluates them:
//!
//! 1. an explicit Deny in the bucket policy refuses (except the bucket owner's own policy
//!    operations, which S3 never lets a policy lock out);
//! 2. the bucket owner's account may do anything else;
//! 3. an Allow in the policy admits (unless RestrictPublicBuckets and the policy is public);
//! 4. the ACL of the bucket (bucket operations, writes of objects) or of the object (reads of
//!    objects and of their ACLs) admits, unless ACLs are disabled;
//! 5. otherwise 403 AccessDenied.
//!
//! The requester found here travels to the operation in the request's extensions, so that
//! what it creates is owned by its account.

use std::collections::HashMap;
use std::sync::Arc;

use basalt_store::StateStore;
use parking_lot::Mutex;
use s3s::access::{S3Access, S3AccessContext};
use s3s::dto::{
    CopyObjectInput, CopySource, DeleteObjectsInput, PostObjectInput, UploadPartCopyInput,
};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};

use crate::KeyLookup;
use crate::acl::{self, Permission, Requester};
use crate::model::{BucketMeta, ObjectMeta, T_BUCKETS, T_OBJECTS, T_VERSIONS, decode_object};
use crate::service::Scope;

/// What an operation needs: the IAM action a policy names it by, and what an ACL must grant.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// A permission on the bucket's ACL.
    Bucket(Permission),
    /// A permission on the object's ACL.
    Object(Permission),
    /// Only the owner (or a policy) may.
    Owner,
}

fn classify(op: &str, versioned: bool) -> (&'static str, Need) {
    use Need::*;
    use Permission::*;
    match op {
        "GetObject" | "HeadObject" if versioned => ("s3:GetObjectVersion", Object(Read)),
        "GetObject" | "HeadObject" => ("s3:GetObject", Object(Read)),
        "GetObjectAttributes" => ("s3:GetObjectAttributes", Object(Read)),
        "GetObjectAcl" if versioned => ("s3:GetObjectVersionAcl", Object(ReadAcp)),
        "GetObjectAcl" => ("s3:GetObjectAcl", Object(ReadAcp)),
        "PutObjectAcl" if versioned => ("s3:PutObjectVersionAcl", Object(WriteAcp)),
        "PutObjectAcl" => ("s3:PutObjectAcl", Object(WriteAcp)),
        "GetObjectTagging" if versioned => ("s3:GetObjectVersionTagging", Object(Read)),
        "GetObjectTagging" => ("s3:GetObjectTagging", Object(Read)),
        "PutObjectTagging" if versioned => ("s3:PutObjectVersionTagging", Owner),
        "PutObjectTagging" => ("s3:PutObjectTagging", Owner),
        "DeleteObjectTagging" if versioned => ("s3:DeleteObjectVersionTagging", Owner),
        "DeleteObjectTagging" => ("s3:DeleteObjectTagging", Owner),
        "GetObjectRetention" => ("s3:GetObjectRetention", Owner),
        "PutObjectRetention" => ("s3:PutObjectRetention", Owner),
        "GetObjectLegalHold" => ("s3:GetObjectLegalHold", Owner),
        "PutObjectLegalHold" => ("s3:PutObjectLegalHold", Owner),
        "PutObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload"
        | "PostObject" => ("s3:PutObject", Bucket(Write)),
        "AbortMultipartUpload" => ("s3:AbortMultipartUpload", Bucket(Write)),
        "DeleteObject" if versioned => ("s3:DeleteObjectVersion", Bucket(Write)),
        "DeleteObject" | "DeleteObjects" => ("s3:DeleteObject", Bucket(Write)),
        "ListParts" => ("s3:ListMultipartUploadParts", Bucket(Read)),
        "ListObjects" | "ListObjectsV2" | "HeadBucket" => ("s3:ListBucket", Bucket(Read)),
        "ListObjectVersions" => ("s3:ListBucketVersions", Bucket(Read)),
        "ListMultipartUploads" => ("s3:ListBucketMultipartUploads", Bucket(Read)),
        "GetBucketAcl" => ("s3:GetBucketAcl", Bucket(ReadAcp)),
        "PutBucketAcl" => ("s3:PutBucketAcl", Bucket(WriteAcp)),
        "GetBucketLocation" => ("s3:GetBucketLocation", Owner),
        "GetBucketPolicy" => ("s3:GetBucketPolicy", Owner),
        "PutBucketPolicy" => ("s3:PutBucketPolicy", Owner),
        "DeleteBucketPolicy" => ("s3:DeleteBucketPolicy", Owner),
        "GetBucketPolicyStatus" => ("s3:GetBucketPolicyStatus", Owner),
        "DeleteBucket" => ("s3:DeleteBucket", Owner),
        "GetBucketVersioning" => ("s3:GetBucketVersioning", Owner),
        "PutBucketVersioning" => ("s3:PutBucketVersioning", Owner),
        "GetBucketTagging" => ("s3:GetBucketTagging", Owner),
        "PutBucketTagging" | "DeleteBucketTagging" => ("s3:PutBucketTagging", Owner),
        "GetBucketEncryption" => ("s3:GetEncryptionConfiguration", Owner),
        "PutBucketEncryption" | "DeleteBucketEncryption" => {
            ("s3:PutEncryptionConfiguration", Owner)
        }
        "GetBucketCors" => ("s3:GetBucketCORS", Owner),
        "PutBucketCors" | "DeleteBucketCors" => ("s3:PutBucketCORS", Owner),
        "GetBucketLifecycleConfiguration" => ("s3:GetLifecycleConfiguration", Owner),
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => {
            ("s3:PutLifecycleConfiguration", Owner)
        }
        "GetPublicAccessBlock" => ("s3:GetBucketPublicAccessBlock", Owner),
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => {
            ("s3:PutBucketPublicAccessBlock", Owner)
        }
        "GetBucketOwnershipControls" => ("s3:GetBucketOwnershipControls", Owner),
        "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => {
            ("s3:PutBucketOwnershipControls", Owner)
        }
        "GetBucketLogging" => ("s3:GetBucketLogging", Owner),
        "PutBucketLogging" => ("s3:PutBucketLogging", Owner),
        "GetBucketNotificationConfiguration" => ("s3:GetBucketNotification", Owner),
        "PutBucketNotificationConfiguration" => ("s3:PutBucketNotification", Owner),
        "GetObjectLockConfiguration" => ("s3:GetBucketObjectLockConfiguration", Owner),
        "PutObjectLockConfiguration" => ("s3:PutBucketObjectLockConfiguration", Owner),
        "GetBucketWebsite" => ("s3:GetBucketWebsite", Owner),
        "PutBucketWebsite" | "DeleteBucketWebsite" => ("s3:PutBucketWebsite", Owner),
        _ => ("s3:*", Owner),
    }
}

/// Operations the bucket owner's account may always perform, whatever its policy says.
fn policy_lockout_exempt(action: &str) -> bool {
    matches!(
        action,
        "s3:GetBucketPolicy" | "s3:PutBucketPolicy" | "s3:DeleteBucketPolicy"
    )
}

/// The access checker.
pub(crate) struct Gatekeeper {
    state: Arc<dyn StateStore>,
    lookup: KeyLookup,
    /// Where bucket records live (bucket names are global, kept under the server's account).
    scope: Scope,
    /// Parsed bucket policies by bucket, with the text they were parsed from.
    policies: Mutex<HashMap<String, (String, Arc<basalt_policy::Policy>)>>,
}

/// The facts of one request a policy's conditions can ask about.
pub(crate) struct Facts<'a> {
    pub op: &'a str,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub query: Option<&'a str>,
    /// The connection's address (`aws:SourceIp`).
    pub peer: Option<std::net::SocketAddr>,
    /// The header naming the account the bucket must belong to: the destination's, or for
    /// a copy's source, `x-amz-source-expected-bucket-owner`.
    pub expected_owner_header: &'static str,
}

impl Gatekeeper {
    pub(crate) fn new(state: Arc<dyn StateStore>, lookup: KeyLookup, scope: Scope) -> Gatekeeper {
        Gatekeeper {
            state,
            lookup,
            scope,
            policies: Mutex::default(),
        }
    }

    pub(crate) fn requester(&self, access_key: Option<&str>) -> S3Result<Requester> {
        let Some(ak) = access_key else {
            return Ok(Requester::Anonymous);
        };
        match (self.lookup)(ak) {
            Ok(Some(k)) => Ok(Requester::account(&k.account_id, &k.arn)),
            // s3s has verified the signature with this key: it was known a moment ago.
            Ok(None) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
            Err(e) => {
                tracing::warn!(error = %e, "credential lookup failed");
                Err(s3_error!(
                    ServiceUnavailable,
                    "Service is unable to handle request."
                ))
            }
        }
    }

    fn bucket(&self, bucket: &str) -> S3Result<Option<BucketMeta>> {
        let raw = self
            .state
            .get(T_BUCKETS, &self.scope.bucket_key(bucket))
            .map_err(|e| s3_error!(InternalError, "{e}"))?;
        match raw {
            None => Ok(None),
            Some(r) => serde_json::from_slice(&r)
                .map(Some)
                .map_err(|_| s3_error!(InternalError, "corrupt bucket record")),
        }
    }

    /// The version a request names (`None`: the current one); delete markers count as absent.
    fn object_at(&self, bucket: &str, key: &str, version: Option<&str>) -> Option<ObjectMeta> {
        let Some(vid) = version else {
            return self.object(bucket, key);
        };
        let prefix = format!("{}\u{1}", self.scope.object_key(bucket, key));
        let rows = self
            .state
            .scan(T_VERSIONS, &prefix, None, usize::MAX)
            .ok()?;
        let found = rows
            .into_iter()
            .filter_map(|(_, raw)| decode_object(raw).map(|(m, _)| m))
            .find(|m| m.version_id.as_deref().unwrap_or("null") == vid);
        match found {
            Some(m) => Some(m).filter(|m| !m.delete_marker),
            // A bucket versioned after the object was written: the null version is current.
            None if vid == "null" => self
                .object(bucket, key)
                .filter(|m| m.version_id.as_deref().is_none_or(|v| v == "null")),
            None => None,
        }
    }

    fn object(&self, bucket: &str, key: &str) -> Option<ObjectMeta> {
        let raw = self
            .state
            .get(T_OBJECTS, &self.scope.object_key(bucket, key))
            .ok()??;
        decode_object(raw)
            .map(|(m, _)| m)
            .filter(|m| !m.delete_marker)
    }

    fn policy(&self, bucket: &str, text: &str) -> Option<Arc<basalt_policy::Policy>> {
        let mut cache = self.policies.lock();
        if let Some((t, p)) = cache.get(bucket)
            && t == text
        {
            return Some(p.clone());
        }
        let p = Arc::new(basalt_policy::Policy::parse(text).ok()?);
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(bucket.to_owned(), (text.to_owned(), p.clone()));
        Some(p)
    }

    /// Decides one request, and the extra permissions some of its headers need: Object Lock
    /// headers and the governance bypass take `s3:PutObjectRetention`,
    /// `s3:PutObjectLegalHold` and `s3:BypassGovernanceRetention`, which only the bucket
    /// owner has unless its policy grants them (no ACL does).
    pub(crate) fn authorize(&self, who: &Requester, f: &Facts<'_>) -> S3Result<()> {
        self.decide(who, f)?;
        let h = |n: &str| f.headers.contains_key(n);
        let mut extra = Vec::new();
        if f.headers
            .get("x-amz-bypass-governance-retention")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            extra.push("s3:BypassGovernanceRetention");
        }
        if h("x-amz-object-lock-mode") || h("x-amz-object-lock-retain-until-date") {
            extra.push("s3:PutObjectRetention");
        }
        if h("x-amz-object-lock-legal-hold") {
            extra.push("s3:PutObjectLegalHold");
        }
        if extra.is_empty() || *who == Requester::Trusted {
            return Ok(());
        }
        let Some(b) = self.bucket(f.bucket)? else {
            return Ok(());
        };
        if who.account_id("") == Some(b.owner_account(&self.scope.account)) {
            return Ok(());
        }
        let policy = b.policy.as_deref().and_then(|t| self.policy(f.bucket, t));
        let resource = match f.key {
            Some(k) => format!("arn:aws:s3:::{}/{k}", f.bucket),
            None => format!("arn:aws:s3:::{}", f.bucket),
        };
        let ctx = context(who, f, None);
        for action in extra {
            let allowed = policy.as_ref().is_some_and(|p| {
                p.evaluate(&basalt_policy::Request {
                    principal: principal_of(who),
                    action,
                    resource: &resource,
                    context: &ctx,
                }) == basalt_policy::Decision::Allow
            });
            if !allowed {
                return Err(denied());
            }
        }
        Ok(())
    }

    /// Decides one request by policy, ownership and ACLs.
    fn decide(&self, who: &Requester, f: &Facts<'_>) -> S3Result<()> {
        if *who == Requester::Trusted {
            return Ok(());
        }
        let Some(b) = self.bucket(f.bucket)? else {
            return Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist"
            ));
        };
        let version: Option<String> = f.query.and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "versionId")
                .map(|(_, v)| v.into_owned())
        });
        let versioned = version.is_some();
        let (action, need) = classify(f.op, versioned);
        let owner_account = b.owner_account(&self.scope.account);
        if let Some(expected) = f
            .headers
            .get(f.expected_owner_header)
            .and_then(|v| v.to_str().ok())
            && expected != owner_account
        {
            return Err(denied());
        }
        let is_owner = who.account_id("") == Some(owner_account);
        let block = b.block();
        let mut object: Option<Option<ObjectMeta>> = None;
        let mut allowed = false;
        if let Some(text) = &b.policy
            && let Some(policy) = self.policy(f.bucket, text)
        {
            let resource = match f.key {
                Some(k) => format!("arn:aws:s3:::{}/{k}", f.bucket),
                None => format!("arn:aws:s3:::{}", f.bucket),
            };
            let needs_object = text.to_ascii_lowercase().contains("s3:existingobjecttag");
            if needs_object && let Some(k) = f.key {
                object = Some(self.object_at(f.bucket, k, version.as_deref()));
            }
            let context = context(who, f, object.as_ref().and_then(Option::as_ref));
            let req = basalt_policy::Request {
                principal: principal_of(who),
                action,
                resource: &resource,
                context: &context,
            };
            match policy.evaluate(&req) {
                basalt_policy::Decision::Deny if !(is_owner && policy_lockout_exempt(action)) => {
                    return Err(denied());
                }
                basalt_policy::Decision::Allow => {
                    allowed = !(block.restrict_public_buckets && policy.is_public() && !is_owner);
                }
                _ => {}
            }
        }
        if allowed {
            return Ok(());
        }
        if is_owner {
            // An object another account wrote (Object Ownership ObjectWriter) is that
            // account's: the bucket owner reads it, and its ACL, only as the ACL grants.
            let foreign = matches!(need, Need::Object(_))
                && !b.acls_disabled()
                && f.key.is_some_and(|k| {
                    object
                        .get_or_insert_with(|| self.object_at(f.bucket, k, version.as_deref()))
                        .as_ref()
                        .is_some_and(|o| o.owner.as_deref().is_some_and(|x| x != owner_account))
                });
            if !foreign {
                return Ok(());
            }
        }
        if b.acls_disabled() {
            return Err(denied());
        }
        let owner_canonical = acl::canonical_id(owner_account);
        let bucket_grants = b
            .acl
            .clone()
            .unwrap_or_else(|| owner_only(&owner_canonical));
        let ok = match need {
            Need::Owner => false,
            Need::Bucket(p) => acl::allows(&bucket_grants, who, p, block.ignore_public_acls),
            Need::Object(p) => {
                let key = f.key.unwrap_or_default();
                let object =
                    object.unwrap_or_else(|| self.object_at(f.bucket, key, version.as_deref()));
                match object {
                    Some(o) => {
                        let grants = o.acl.clone().unwrap_or_else(|| {
                            owner_only(&acl::canonical_id(
                                o.owner.as_deref().unwrap_or(owner_account),
                            ))
                        });
                        acl::allows(&grants, who, p, block.ignore_public_acls)
                    }
                    // No such object (or version): a read by who may list the bucket (for this
                    // key as prefix) learns so (404); anything else is 403.
                    None if p == Permission::Read => {
                        acl::allows(
                            &bucket_grants,
                            who,
                            Permission::Read,
                            block.ignore_public_acls,
                        ) || self.may_list_key(who, &b, f, key)
                    }
                    None => false,
                }
            }
        };
        if ok { Ok(()) } else { Err(denied()) }
    }

    /// Whether the bucket policy lets `who` list the bucket with `key` as the prefix.
    fn may_list_key(&self, who: &Requester, b: &BucketMeta, f: &Facts<'_>, key: &str) -> bool {
        let Some(text) = &b.policy else {
            return false;
        };
        let Some(policy) = self.policy(f.bucket, text) else {
            return false;
        };
        let mut ctx = context(who, f, None);
        ctx.insert("s3:prefix".into(), vec![key.to_owned()]);
        let resource = format!("arn:aws:s3:::{}", f.bucket);
        let req = basalt_policy::Request {
            principal: principal_of(who),
            action: "s3:ListBucket",
            resource: &resource,
            context: &ctx,
        };
        policy.evaluate(&req) == basalt_policy::Decision::Allow
    }

    fn copy_source(
        &self,
        who: &Requester,
        source: &CopySource,
        headers: &http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> S3Result<()> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Ok(());
        };
        let query = version_id.as_ref().map(|v| {
            form_urlencoded::Serializer::new(String::new())
                .append_pair("versionId", v)
                .finish()
        });
        self.authorize(
            who,
            &Facts {
                op: "GetObject",
                bucket,
                key: Some(key),
                headers,
                query: query.as_deref(),
                peer,
                expected_owner_header: "x-amz-source-expected-bucket-owner",
            },
        )
    }
}

fn requester_of<T>(req: &S3Request<T>) -> (Requester, Option<std::net::SocketAddr>) {
    (
        req.extensions
            .get::<Requester>()
            .cloned()
            .unwrap_or(Requester::Anonymous),
        req.extensions
            .get::<basalt_core::context::PeerAddr>()
            .map(|p| p.0),
    )
}

fn principal_of(who: &Requester) -> basalt_policy::Principal<'_> {
    match who {
        Requester::Account {
            account_id,
            arn,
            canonical_id,
        } => basalt_policy::Principal::Account {
            account_id,
            arn,
            canonical_id,
        },
        _ => basalt_policy::Principal::Anonymous,
    }
}

fn owner_only(canonical: &str) -> Vec<acl::Grant> {
    vec![acl::Grant {
        grantee: acl::Grantee::User {
            id: canonical.to_owned(),
        },
        permission: Permission::FullControl,
    }]
}

fn denied() -> s3s::S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

/// The condition keys of a request (lowercase, as IAM compares them).
fn context(
    who: &Requester,
    f: &Facts<'_>,
    object: Option<&ObjectMeta>,
) -> HashMap<String, Vec<String>> {
    let mut c: HashMap<String, Vec<String>> = HashMap::new();
    let mut put = |k: String, v: String| c.entry(k).or_default().push(v);
    let now = chrono::Utc::now();
    put(
        "aws:currenttime".into(),
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    put("aws:epochtime".into(), now.timestamp().to_string());
    put("aws:securetransport".into(), "false".into());
    put("aws:sourceip".into(), source_ip(f.peer, f.headers));
    if let Requester::Account {
        account_id, arn, ..
    } = who
    {
        put("aws:principalaccount".into(), account_id.clone());
        put("aws:principalarn".into(), arn.clone());
        put("aws:userid".into(), account_id.clone());
    }
    for (name, header) in [("aws:referer", "referer"), ("aws:useragent", "user-agent")] {
        if let Some(v) = f.headers.get(header).and_then(|v| v.to_str().ok()) {
            put(name.into(), v.to_owned());
        }
    }
    for (name, value) in f.headers {
        let n = name.as_str();
        if n.starts_with("x-amz-")
            && !n.starts_with("x-amz-meta-")
            && let Ok(v) = value.to_str()
        {
            // Both the raw header and, for copies, the source without its leading slash.
            let v = if n == "x-amz-copy-source" {
                percent_decode(v.trim_start_matches('/'))
            } else {
                v.to_owned()
            };
            put(format!("s3:{n}"), v);
        }
        if n == "x-amz-tagging"
            && let Ok(v) = value.to_str()
        {
            for (k, v) in form_urlencoded::parse(v.as_bytes()) {
                put("s3:requestobjecttagkeys".into(), k.to_string());
                put(
                    format!("s3:requestobjecttag/{}", k.to_ascii_lowercase()),
                    v.to_string(),
                );
            }
        }
    }
    if let Some(q) = f.query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            match k.as_ref() {
                "prefix" | "delimiter" | "max-keys" => put(format!("s3:{k}"), v.to_string()),
                "versionId" => put("s3:versionid".into(), v.to_string()),
                _ => {}
            }
        }
    }
    if let Some(o) = object {
        for (k, v) in &o.tags {
            put(
                format!("s3:existingobjecttag/{}", k.to_ascii_lowercase()),
                v.clone(),
            );
        }
    }
    let auth = if f.headers.contains_key("authorization") {
        "REST-HEADER"
    } else {
        "REST-QUERY-STRING"
    };
    put("s3:authtype".into(), auth.into());
    c
}

/// The client's address: the connection's, or behind a proxy on this machine (a loopback
/// peer) the first `X-Forwarded-For` hop; a remote client cannot choose its own address.
pub(crate) fn source_ip(peer: Option<std::net::SocketAddr>, headers: &http::HeaderMap) -> String {
    let forwarded = || {
        headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    match peer {
        Some(p) if !p.ip().is_loopback() => p.ip().to_string(),
        Some(p) => forwarded().unwrap_or_else(|| p.ip().to_string()),
        None => forwarded().unwrap_or_else(|| "127.0.0.1".into()),
    }
}

fn percent_decode(s: &str) -> String {
    let path = s.split('?').next().unwrap_or(s);
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// The entries (by position) of a DeleteObjects request that the access check refused.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeniedKeys(pub Vec<usize>);

/// The gatekeeper as s3s's access hook (shared with the bad-range route).
pub(crate) struct SharedGate(pub Arc<Gatekeeper>);

#[async_trait::async_trait]
impl S3Access for SharedGate {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        self.0.check(cx).await
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.0.copy_object(req).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.0.upload_part_copy(req).await
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        self.0.delete_objects(req).await
    }

    async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
        self.0.post_object(req).await
    }
}

#[async_trait::async_trait]
impl S3Access for Gatekeeper {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let who = self.requester(cx.credentials().map(|c| c.access_key.as_str()))?;
        cx.extensions_mut().insert(who.clone());
        let peer = cx
            .extensions_mut()
            .get::<basalt_core::context::PeerAddr>()
            .map(|p| p.0);
        let op = cx.s3_op().name().to_owned();
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let Some(bucket) = bucket else {
            // ListBuckets and the like: any signed request, never an anonymous one.
            return match who {
                Requester::Anonymous => Err(denied()),
                _ => Ok(()),
            };
        };
        if op == "CreateBucket" {
            return match who {
                Requester::Anonymous => Err(denied()),
                _ => Ok(()),
            };
        }
        self.authorize(
            &who,
            &Facts {
                op: &op,
                bucket: &bucket,
                key: key.as_deref(),
                headers: cx.headers(),
                query: cx.uri().query(),
                peer,
                expected_owner_header: "x-amz-expected-bucket-owner",
            },
        )
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let (who, peer) = requester_of(req);
        self.copy_source(&who, &req.input.copy_source, &req.headers, peer)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        let (who, peer) = requester_of(req);
        self.copy_source(&who, &req.input.copy_source, &req.headers, peer)
    }

    /// Each key of a multi-object delete is decided as a DeleteObject of it would be (a
    /// policy on some keys binds there too); the refused ones are reported in the answer's
    /// errors, as S3 reports them, and the others are deleted.
    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let (who, peer) = requester_of(req);
        let mut denied = DeniedKeys::default();
        for (i, o) in req.input.delete.objects.iter().enumerate() {
            let query = o.version_id.as_ref().map(|v| {
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("versionId", v)
                    .finish()
            });
            let decision = self.authorize(
                &who,
                &Facts {
                    op: "DeleteObject",
                    bucket: &req.input.bucket,
                    key: Some(&o.key),
                    headers: &req.headers,
                    query: query.as_deref(),
                    peer,
                    expected_owner_header: "x-amz-expected-bucket-owner",
                },
            );
            match decision {
                Ok(()) => {}
                Err(e) if *e.code() == s3s::S3ErrorCode::AccessDenied => denied.0.push(i),
                Err(e) => return Err(e),
            }
        }
        req.extensions.insert(denied);
        Ok(())
    }

    /// A browser upload is decided as a PutObject of its key.
    async fn post_object(&self, req: &mut S3Request<PostObjectInput>) -> S3Result<()> {
        let (who, peer) = requester_of(req);
        self.authorize(
            &who,
            &Facts {
                op: "PutObject",
                bucket: &req.input.bucket,
                key: Some(&req.input.key),
                headers: &req.headers,
                query: None,
                peer,
                expected_owner_header: "x-amz-expected-bucket-owner",
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BucketMeta, ObjectMeta, encode_object};
    use basalt_store::{MemoryState, WriteOp};

    const OWNER: &str = "111111111111";
    const OTHER: &str = "222222222222";

    fn gate() -> (Gatekeeper, Arc<dyn StateStore>) {
        let state: Arc<dyn StateStore> = Arc::new(MemoryState::default());
        let lookup: KeyLookup = Arc::new(|_: &str| Ok(None));
        let scope = Scope {
            account: "000000000000".into(),
            region: "us-east-1".into(),
        };
        (Gatekeeper::new(state.clone(), lookup, scope), state)
    }

    fn bucket(state: &Arc<dyn StateStore>, policy: Option<&str>, acl: Option<Vec<acl::Grant>>) {
        let mut b: BucketMeta = serde_json::from_value(serde_json::json!({
            "name": "b", "created_ms": 0, "region": "us-east-1", "owner": OWNER
        }))
        .unwrap();
        b.policy = policy.map(str::to_owned);
        b.acl = acl;
        state
            .batch(&[WriteOp::Put {
                table: T_BUCKETS.into(),
                key: "000000000000/b".into(),
                value: serde_json::to_vec(&b).unwrap(),
            }])
            .unwrap();
    }

    fn object(state: &Arc<dyn StateStore>, key: &str, owner: &str, acl: Option<Vec<acl::Grant>>) {
        let m = ObjectMeta {
            owner: Some(owner.into()),
            acl,
            ..Default::default()
        };
        state
            .batch(&[WriteOp::Put {
                table: T_OBJECTS.into(),
                key: format!("000000000000/b/{key}"),
                value: encode_object(&m, b""),
            }])
            .unwrap();
    }

    fn ask(g: &Gatekeeper, who: &Requester, op: &str, key: Option<&str>) -> bool {
        let headers = http::HeaderMap::new();
        g.authorize(
            who,
            &Facts {
                op,
                bucket: "b",
                key,
                headers: &headers,
                query: None,
                peer: None,
                expected_owner_header: "x-amz-expected-bucket-owner",
            },
        )
        .is_ok()
    }

    fn account(a: &str) -> Requester {
        Requester::account(a, &format!("arn:aws:iam::{a}:root"))
    }

    #[test]
    fn private_unless_granted() {
        let (g, state) = gate();
        bucket(&state, None, None);
        object(&state, "k", OWNER, None);
        assert!(ask(&g, &account(OWNER), "GetObject", Some("k")));
        assert!(!ask(&g, &account(OTHER), "GetObject", Some("k")));
        assert!(!ask(&g, &Requester::Anonymous, "GetObject", Some("k")));
        assert!(!ask(&g, &Requester::Anonymous, "ListObjectsV2", None));
        assert!(!ask(&g, &account(OTHER), "PutBucketPolicy", None));
        let public = acl::canned(
            "public-read",
            &acl::canonical_id(OWNER),
            &acl::canonical_id(OWNER),
        )
        .unwrap();
        object(&state, "pub", OWNER, Some(public));
        assert!(ask(&g, &Requester::Anonymous, "GetObject", Some("pub")));
        assert!(!ask(&g, &Requester::Anonymous, "PutObjectAcl", Some("pub")));
        assert!(!ask(&g, &Requester::Anonymous, "DeleteObject", Some("pub")));
    }

    #[test]
    fn policy_allows_and_deny_wins() {
        let (g, state) = gate();
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Effect":"Allow","Principal":{{"AWS":"{OTHER}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}},
              {{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/secret/*"}}]}}"#
        );
        bucket(&state, Some(&policy), None);
        object(&state, "a", OWNER, None);
        object(&state, "secret/x", OWNER, None);
        assert!(ask(&g, &account(OTHER), "GetObject", Some("a")));
        assert!(!ask(&g, &account(OTHER), "PutObject", Some("a")));
        assert!(!ask(&g, &account(OTHER), "GetObject", Some("secret/x")));
        // The owner is bound by an explicit deny too, but may always manage the policy.
        assert!(!ask(&g, &account(OWNER), "GetObject", Some("secret/x")));
        assert!(ask(&g, &account(OWNER), "DeleteBucketPolicy", None));
    }

    #[test]
    fn objects_written_by_others_need_their_acl() {
        let (g, state) = gate();
        bucket(&state, None, None);
        object(&state, "theirs", OTHER, None);
        assert!(!ask(&g, &account(OWNER), "GetObject", Some("theirs")));
        assert!(ask(&g, &account(OWNER), "DeleteObject", Some("theirs")));
        assert!(ask(&g, &account(OTHER), "GetObject", Some("theirs")));
    }

    #[test]
    fn expected_bucket_owner() {
        let (g, state) = gate();
        bucket(&state, None, None);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-amz-expected-bucket-owner", OTHER.parse().unwrap());
        let f = Facts {
            op: "ListObjectsV2",
            bucket: "b",
            key: None,
            headers: &headers,
            query: None,
            peer: None,
            expected_owner_header: "x-amz-expected-bucket-owner",
        };
        assert!(g.authorize(&account(OWNER), &f).is_err());
    }
}
