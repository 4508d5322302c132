//! Who may do what, as configured: bucket and object ACLs, Object Ownership, Block Public
//! Access and bucket policies (their evaluation is `crate::access`).

use super::*;
use crate::acl::{self, AclError, Grant, Grantee, Permission};

/// The ACL a write asked for: a canned ACL or `x-amz-grant-*` headers.
pub(super) struct AclRequest<'a> {
    pub canned: Option<&'a str>,
    pub full_control: Option<&'a str>,
    pub read: Option<&'a str>,
    pub read_acp: Option<&'a str>,
    pub write: Option<&'a str>,
    pub write_acp: Option<&'a str>,
}

impl AclRequest<'_> {
    fn has_grants(&self) -> bool {
        self.full_control.is_some()
            || self.read.is_some()
            || self.read_acp.is_some()
            || self.write.is_some()
            || self.write_acp.is_some()
    }
}

fn acl_error(e: AclError) -> S3Error {
    match e {
        AclError::InvalidArgument(m) => S3Error::with_message(S3ErrorCode::InvalidArgument, m),
        AclError::UnresolvableEmail => s3_error!(
            UnresolvableGrantByEmailAddress,
            "The e-mail address you provided does not match any account on record."
        ),
        AclError::Malformed => s3_error!(
            MalformedACLError,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ),
    }
}

fn acls_not_supported() -> S3Error {
    s3_error!(
        AccessControlListNotSupported,
        "The bucket does not allow ACLs"
    )
}

impl BasaltS3 {
    /// Whether a canonical id is one of an account known here.
    fn known_canonical(&self, id: &str) -> bool {
        id == self.owner_id || self.cfg.accounts.iter().any(|a| acl::canonical_id(a) == id)
    }

    /// The grants a write asked for (`None`: it named none), for a resource owned by `owner`
    /// in a bucket owned by `bucket_owner` (accounts), checked against the bucket's Object
    /// Ownership and Block Public Access.
    pub(super) fn requested_acl(
        &self,
        r: &AclRequest<'_>,
        owner: &str,
        bucket: &BucketMeta,
        creating_bucket: bool,
    ) -> S3Result<Option<Vec<Grant>>> {
        if r.canned.is_some() && r.has_grants() {
            return Err(s3_error!(
                InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed"
            ));
        }
        if r.canned.is_none() && !r.has_grants() {
            return Ok(None);
        }
        let owner_id = acl::canonical_id(owner);
        let bucket_owner_id = acl::canonical_id(bucket.owner_account(&self.cfg.account_id));
        let grants = if let Some(c) = r.canned {
            Some(acl::canned(c, &owner_id, &bucket_owner_id).map_err(acl_error)?)
        } else if r.has_grants() {
            let known = |id: &str| self.known_canonical(id);
            Some(
                acl::from_grant_headers(
                    &[
                        (Permission::FullControl, r.full_control),
                        (Permission::Read, r.read),
                        (Permission::ReadAcp, r.read_acp),
                        (Permission::Write, r.write),
                        (Permission::WriteAcp, r.write_acp),
                    ],
                    &known,
                )
                .map_err(acl_error)?,
            )
        } else {
            None
        };
        if let Some(g) = &grants {
            self.check_acl_allowed(g, r.canned, bucket, creating_bucket)?;
        }
        Ok(grants)
    }

    /// Who owns an object a request writes, and the ACL it asked for: the writer's account,
    /// except where Object Ownership gives the object to the bucket owner.
    pub(super) fn new_object_acl(
        &self,
        who: &crate::acl::Requester,
        bucket: &BucketMeta,
        asked: &AclRequest<'_>,
    ) -> S3Result<(String, Option<Vec<Grant>>)> {
        let bucket_owner = bucket.owner_account(&self.cfg.account_id);
        let mut owner = self.acting_account(who, bucket_owner);
        if bucket.acls_disabled()
            || (bucket.ownership.as_deref() == Some("BucketOwnerPreferred")
                && asked.canned == Some("bucket-owner-full-control"))
        {
            owner = bucket_owner.to_owned();
        }
        let acl = self.requested_acl(asked, &owner, bucket, false)?;
        Ok((owner, acl.filter(|_| !bucket.acls_disabled())))
    }

    fn check_acl_allowed(
        &self,
        grants: &[Grant],
        canned: Option<&str>,
        bucket: &BucketMeta,
        creating_bucket: bool,
    ) -> S3Result<()> {
        // With ACLs disabled, an object write may only name the bucket owner's full control
        // (and a new bucket, private).
        if bucket.acls_disabled()
            && !matches!(canned, Some("bucket-owner-full-control"))
            && !(creating_bucket && canned == Some("private"))
        {
            return Err(acls_not_supported());
        }
        if bucket.block().block_public_acls && acl::is_public(grants) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        Ok(())
    }

    /// The grants a PutBucketAcl or PutObjectAcl sets: from its headers or from its body,
    /// never both, never neither.
    fn put_acl_grants(
        &self,
        asked: &AclRequest<'_>,
        body: Option<&AccessControlPolicy>,
        owner: &str,
        bucket: &BucketMeta,
    ) -> S3Result<Vec<Grant>> {
        match (body, self.requested_acl(asked, owner, bucket, false)?) {
            (Some(_), Some(_)) => Err(s3_error!(
                UnexpectedContent,
                "This request does not support content"
            )),
            (None, Some(g)) => Ok(g),
            (Some(p), None) => {
                let g = self.policy_grants(p)?;
                self.check_acl_allowed(&g, None, bucket, false)?;
                Ok(g)
            }
            (None, None) => Err(s3_error!(
                MissingSecurityHeader,
                "Your request was missing a required header"
            )),
        }
    }

    /// The grants of an AccessControlPolicy document.
    fn policy_grants(&self, p: &AccessControlPolicy) -> S3Result<Vec<Grant>> {
        let known = |id: &str| self.known_canonical(id);
        let mut out = Vec::new();
        for g in p.grants.iter().flatten() {
            let (Some(grantee), Some(permission)) = (&g.grantee, &g.permission) else {
                return Err(acl_error(AclError::Malformed));
            };
            let permission = Permission::parse(permission.as_str())
                .ok_or_else(|| acl_error(AclError::Malformed))?;
            let grantee = match grantee.type_.as_str() {
                Type::CANONICAL_USER => acl::grantee_user(
                    grantee
                        .id
                        .as_deref()
                        .ok_or_else(|| acl_error(AclError::Malformed))?,
                    &known,
                )
                .map_err(acl_error)?,
                Type::GROUP => acl::grantee_group(
                    grantee
                        .uri
                        .as_deref()
                        .ok_or_else(|| acl_error(AclError::Malformed))?,
                )
                .map_err(acl_error)?,
                Type::AMAZON_CUSTOMER_BY_EMAIL => {
                    return Err(acl_error(AclError::UnresolvableEmail));
                }
                _ => return Err(acl_error(AclError::Malformed)),
            };
            out.push(Grant {
                grantee,
                permission,
            });
        }
        Ok(out)
    }

    /// Grants as S3-compatible stores list them: to groups first, then to users.
    fn grants_out(&self, grants: &[Grant]) -> Vec<s3s::dto::Grant> {
        let mut ordered: Vec<&Grant> = grants.iter().collect();
        ordered.sort_by_key(|g| matches!(g.grantee, Grantee::User { .. }));
        ordered
            .into_iter()
            .map(|g| s3s::dto::Grant {
                grantee: Some(match &g.grantee {
                    Grantee::User { id } => s3s::dto::Grantee {
                        display_name: Some("webfile".into()),
                        email_address: None,
                        id: Some(id.clone()),
                        type_: Type::from_static(Type::CANONICAL_USER),
                        uri: None,
                    },
                    Grantee::Group { uri } => s3s::dto::Grantee {
                        display_name: None,
                        email_address: None,
                        id: None,
                        type_: Type::from_static(Type::GROUP),
                        uri: Some(uri.clone()),
                    },
                }),
                permission: Some(s3s::dto::Permission::from(g.permission.as_str().to_owned())),
            })
            .collect()
    }

    fn owner_grant(&self, account: &str) -> Vec<Grant> {
        vec![Grant {
            grantee: Grantee::User {
                id: acl::canonical_id(account),
            },
            permission: Permission::FullControl,
        }]
    }

    pub(super) async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let owner = b.owner_account(&self.cfg.account_id).to_owned();
        let grants = match (&b.acl, b.acls_disabled()) {
            (Some(g), false) => g.clone(),
            _ => self.owner_grant(&owner),
        };
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(self.grants_out(&grants)),
            owner: Some(self.owner_of(Some(&owner))),
        }))
    }

    pub(super) async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let b = self.bucket(&sc, &i.bucket)?;
        if b.acls_disabled() {
            return Err(acls_not_supported());
        }
        let owner = b.owner_account(&self.cfg.account_id).to_owned();
        let asked = AclRequest {
            canned: i.acl.as_ref().map(|a| a.as_str()),
            full_control: i.grant_full_control.as_deref(),
            read: i.grant_read.as_deref(),
            read_acp: i.grant_read_acp.as_deref(),
            write: i.grant_write.as_deref(),
            write_acp: i.grant_write_acp.as_deref(),
        };
        let grants = self.put_acl_grants(&asked, i.access_control_policy.as_ref(), &owner, &b)?;
        self.update_bucket(&sc, &i.bucket, |b| {
            b.acl = Some(grants.clone());
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutBucketAclOutput {}))
    }

    pub(super) async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let b = self.bucket(&sc, &i.bucket)?;
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        let bucket_owner = b.owner_account(&self.cfg.account_id);
        let owner = meta.owner.as_deref().unwrap_or(bucket_owner).to_owned();
        let grants = match (&meta.acl, b.acls_disabled()) {
            (Some(g), false) => g.clone(),
            _ => self.owner_grant(&owner),
        };
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(self.grants_out(&grants)),
            owner: Some(self.owner_of(Some(&owner))),
            ..Default::default()
        }))
    }

    pub(super) async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let b = self.bucket(&sc, &i.bucket)?;
        if b.acls_disabled() {
            return Err(acls_not_supported());
        }
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        let owner = meta
            .owner
            .clone()
            .unwrap_or_else(|| b.owner_account(&self.cfg.account_id).to_owned());
        let asked = AclRequest {
            canned: i.acl.as_ref().map(|a| a.as_str()),
            full_control: i.grant_full_control.as_deref(),
            read: i.grant_read.as_deref(),
            read_acp: i.grant_read_acp.as_deref(),
            write: i.grant_write.as_deref(),
            write_acp: i.grant_write_acp.as_deref(),
        };
        let grants = self.put_acl_grants(&asked, i.access_control_policy.as_ref(), &owner, &b)?;
        let version_id = self
            .amend_object(&sc, &i.bucket, &i.key, i.version_id.as_deref(), |m| {
                m.acl = Some(grants.clone());
                Ok(())
            })
            .await?;
        let _ = version_id;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    pub(super) async fn put_bucket_ownership_controls(
        &self,
        req: S3Request<PutBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
        let sc = self.scope(&req);
        let rules = &req.input.ownership_controls.rules;
        let [rule] = rules.as_slice() else {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        };
        let ownership = rule.object_ownership.as_str().to_owned();
        if !matches!(
            ownership.as_str(),
            "BucketOwnerEnforced" | "BucketOwnerPreferred" | "ObjectWriter"
        ) {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let default = self.cfg.account_id.clone();
        self.update_bucket(&sc, &req.input.bucket, |b| {
            if ownership == "BucketOwnerEnforced"
                && b.acl
                    .as_ref()
                    .is_some_and(|g| *g != self.owner_grant(b.owner_account(&default)))
            {
                return Err(s3_error!(
                    InvalidBucketAclWithObjectOwnership,
                    "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
                ));
            }
            b.ownership = Some(ownership.clone());
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutBucketOwnershipControlsOutput {}))
    }

    pub(super) async fn get_bucket_ownership_controls(
        &self,
        req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(o) = b.ownership else {
            return Err(s3_error!(
                OwnershipControlsNotFoundError,
                "The bucket ownership controls were not found"
            ));
        };
        Ok(S3Response::new(GetBucketOwnershipControlsOutput {
            ownership_controls: Some(OwnershipControls {
                rules: vec![OwnershipControlsRule {
                    object_ownership: ObjectOwnership::from(o),
                }],
            }),
        }))
    }

    pub(super) async fn delete_bucket_ownership_controls(
        &self,
        req: S3Request<DeleteBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
        let sc = self.scope(&req);
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.ownership = None;
            Ok(())
        })
        .await?;
        Ok(S3Response::new(DeleteBucketOwnershipControlsOutput {}))
    }

    pub(super) async fn put_public_access_block(
        &self,
        req: S3Request<PutPublicAccessBlockInput>,
    ) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
        let sc = self.scope(&req);
        let c = &req.input.public_access_block_configuration;
        let block = PublicAccessBlock {
            block_public_acls: c.block_public_acls.unwrap_or(false),
            ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
            block_public_policy: c.block_public_policy.unwrap_or(false),
            restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
        };
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.public_access_block = Some(block);
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutPublicAccessBlockOutput {}))
    }

    pub(super) async fn get_public_access_block(
        &self,
        req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(p) = b.public_access_block else {
            return Err(custom_error(
                "NoSuchPublicAccessBlockConfiguration",
                "The public access block configuration was not found",
                http::StatusCode::NOT_FOUND,
            ));
        };
        Ok(S3Response::new(GetPublicAccessBlockOutput {
            public_access_block_configuration: Some(PublicAccessBlockConfiguration {
                block_public_acls: Some(p.block_public_acls),
                ignore_public_acls: Some(p.ignore_public_acls),
                block_public_policy: Some(p.block_public_policy),
                restrict_public_buckets: Some(p.restrict_public_buckets),
            }),
        }))
    }

    pub(super) async fn delete_public_access_block(
        &self,
        req: S3Request<DeletePublicAccessBlockInput>,
    ) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
        let sc = self.scope(&req);
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.public_access_block = None;
            Ok(())
        })
        .await?;
        Ok(no_content(DeletePublicAccessBlockOutput {}))
    }

    pub(super) async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let sc = self.scope(&req);
        let text = req.input.policy.clone();
        let policy = basalt_policy::Policy::parse(&text)
            .map_err(|e| S3Error::with_message(S3ErrorCode::MalformedPolicy, e.to_string()))?;
        let b = self.bucket(&sc, &req.input.bucket)?;
        if b.block().block_public_policy && policy.is_public() {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.policy = Some(text.clone());
            Ok(())
        })
        .await?;
        Ok(no_content(PutBucketPolicyOutput {}))
    }

    pub(super) async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(policy) = b.policy else {
            return Err(s3_error!(
                NoSuchBucketPolicy,
                "The bucket policy does not exist"
            ));
        };
        Ok(S3Response::new(GetBucketPolicyOutput {
            policy: Some(policy),
        }))
    }

    pub(super) async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let sc = self.scope(&req);
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.policy = None;
            Ok(())
        })
        .await?;
        Ok(no_content(DeleteBucketPolicyOutput {}))
    }

    pub(super) async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(text) = b.policy else {
            return Err(s3_error!(
                NoSuchBucketPolicy,
                "The bucket policy does not exist"
            ));
        };
        let public = basalt_policy::Policy::parse(&text).is_ok_and(|p| p.is_public());
        Ok(S3Response::new(GetBucketPolicyStatusOutput {
            policy_status: Some(PolicyStatus {
                is_public: Some(public),
            }),
        }))
    }
}
