//! Bucket operations: create, head, list, delete, location, versioning.

use super::*;

impl BasaltS3 {
    pub(super) async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let sc = self.scope(&req);
        let bucket = req.input.bucket.clone();
        let constraint = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
            .map(|c| c.as_str().to_owned())
            .filter(|c| !c.is_empty());
        match constraint.as_deref() {
            Some("us-east-1") if sc.region == "us-east-1" => {
                return Err(s3_error!(
                    InvalidLocationConstraint,
                    "The specified location-constraint is not valid"
                ));
            }
            Some(c) if c != sc.region && !(c == "EU" && sc.region == "eu-west-1") => {
                return Err(S3Error::with_message(
                    S3ErrorCode::IllegalLocationConstraintException,
                    format!(
                        "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
                    ),
                ));
            }
            None if sc.region != "us-east-1" => {
                return Err(s3_error!(
                    IllegalLocationConstraintException,
                    "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
                ));
            }
            _ => {}
        }
        let who = self.requester(&req);
        let account = who
            .account_id(&self.cfg.account_id)
            .unwrap_or(&self.cfg.account_id)
            .to_owned();
        let k = sc.bucket_key(&bucket);
        if let Some(raw) = self.state.get(T_BUCKETS, &k).map_err(internal)? {
            let existing: BucketMeta = serde_json::from_slice(&raw).map_err(internal)?;
            if existing.owner_account(&self.cfg.account_id) != account {
                return Err(s3_error!(
                    BucketAlreadyExists,
                    "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
                ));
            }
            if sc.region == "us-east-1" && existing.region == "us-east-1" {
                // us-east-1 keeps the legacy behaviour: re-creating your own us-east-1 bucket
                // there succeeds.
                let out = CreateBucketOutput {
                    location: Some(format!("/{bucket}")),
                };
                return Ok(S3Response::new(out));
            }
            return Err(s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            ));
        }
        let i = &req.input;
        let mut meta = BucketMeta {
            name: bucket.clone(),
            created_ms: now_ms(),
            region: sc.region.clone(),
            versioning: None,
            notifications: Notifications::default(),
            encryption: None,
            owner: Some(account.clone()),
            acl: None,
            policy: None,
            public_access_block: None,
            ownership: i.object_ownership.as_ref().map(|o| o.as_str().to_owned()),
            object_lock: None,
            lifecycle: None,
            cors: None,
            tags: None,
            logging: None,
            website: None,
        };
        if i.object_lock_enabled_for_bucket == Some(true) {
            // Object Lock needs versioning, which it turns on for good.
            meta.object_lock = Some(crate::lock::LockConfig {
                enabled: true,
                default: None,
            });
            meta.versioning = Some("Enabled".into());
        }
        let asked = access::AclRequest {
            canned: i.acl.as_ref().map(|a| a.as_str()),
            full_control: i.grant_full_control.as_deref(),
            read: i.grant_read.as_deref(),
            read_acp: i.grant_read_acp.as_deref(),
            write: i.grant_write.as_deref(),
            write_acp: i.grant_write_acp.as_deref(),
        };
        meta.acl = self
            .requested_acl(&asked, &account, &meta, true)
            .map_err(|e| {
                if *e.code() == S3ErrorCode::AccessControlListNotSupported {
                    s3_error!(
                        InvalidBucketAclWithObjectOwnership,
                        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
                    )
                } else {
                    e
                }
            })?;
        // Created only if the name is still free: of two accounts creating it at once, one
        // gets it and the other BucketAlreadyExists.
        let created = self
            .write_if(vec![
                WriteOp::Check {
                    table: T_BUCKETS.into(),
                    key: k.clone(),
                    expected: None,
                },
                WriteOp::Put {
                    table: T_BUCKETS.into(),
                    key: k,
                    value: serde_json::to_vec(&meta).map_err(internal)?,
                },
            ])
            .await?;
        if !created {
            return Err(s3_error!(
                BucketAlreadyExists,
                "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
            ));
        }
        let location = if sc.region == "us-east-1" {
            format!("/{bucket}")
        } else {
            format!("http://{bucket}.s3.amazonaws.com/")
        };
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(location),
        }))
    }

    pub(super) async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(b.region),
            ..Default::default()
        }))
    }

    pub(super) async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let sc = self.scope(&req);
        let who = self.requester(&req);
        let account = who
            .account_id(&self.cfg.account_id)
            .unwrap_or(&self.cfg.account_id)
            .to_owned();
        let i = &req.input;
        let max = match i.max_buckets {
            None => usize::MAX,
            Some(n @ 1..=10_000) => n as usize,
            Some(_) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "Argument max-buckets must be an integer between 1 and 10000"
                ));
            }
        };
        let after = i
            .continuation_token
            .as_deref()
            .map(|t| format!("{}{t}", sc.prefix()));
        let rows = self
            .state
            .scan(T_BUCKETS, &sc.prefix(), after.as_deref(), 100_000)
            .map_err(internal)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let mut buckets = Vec::new();
        let mut next = None;
        for (_, v) in rows {
            let b: BucketMeta = serde_json::from_slice(&v).map_err(internal)?;
            if !b.name.starts_with(&prefix) || b.owner_account(&self.cfg.account_id) != account {
                continue;
            }
            if buckets.len() == max {
                next = buckets.last().and_then(|b: &Bucket| b.name.clone());
                break;
            }
            buckets.push(Bucket {
                name: Some(b.name),
                creation_date: Some(ts(b.created_ms)),
                bucket_region: Some(b.region),
            });
        }
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(self.owner_of(Some(&account))),
            prefix: req.input.prefix,
            continuation_token: next,
        }))
    }

    pub(super) async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let sc = self.scope(&req);
        let bucket = &req.input.bucket;
        let has = |table: &str| -> S3Result<bool> {
            Ok(!self
                .state
                .scan(table, &sc.objects_prefix(bucket), None, 1)
                .map_err(internal)?
                .is_empty())
        };
        let not_empty = || {
            s3_error!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty"
            )
        };
        let snap = self.bucket_snapshot(&sc, bucket)?;
        if has(T_OBJECTS)? || has(T_VERSIONS)? {
            return Err(not_empty());
        }
        let removed = self
            .write_if(vec![
                snap.check(),
                WriteOp::Delete {
                    table: T_BUCKETS.into(),
                    key: sc.bucket_key(bucket),
                },
            ])
            .await?;
        if !removed {
            return Err(s3_error!(
                OperationAborted,
                "A conflicting conditional operation is currently in progress against this resource. Please try again."
            ));
        }
        // Writes check the bucket record, so none lands after it is gone; one that committed
        // between the emptiness check and the removal puts the bucket back.
        if has(T_OBJECTS)? || has(T_VERSIONS)? {
            self.write(vec![WriteOp::Put {
                table: T_BUCKETS.into(),
                key: snap.key,
                value: snap.raw,
            }])
            .await?;
            return Err(not_empty());
        }
        // Abandoned multipart uploads go with the bucket.
        let uploads = self
            .state
            .scan(T_UPLOADS, &sc.objects_prefix(bucket), None, 100_000)
            .map_err(internal)?;
        let mut ops = Vec::new();
        let mut blobs = Vec::new();
        for (k, _) in uploads {
            let upload_id = &k[sc.objects_prefix(bucket).len()..];
            for p in self.parts(&sc, bucket, upload_id)? {
                ops.push(WriteOp::Delete {
                    table: T_PARTS.into(),
                    key: sc.part_key(bucket, upload_id, p.number),
                });
                blobs.push(p.blob);
            }
            ops.push(WriteOp::Delete {
                table: T_UPLOADS.into(),
                key: k,
            });
        }
        // And the version heads of its keys (`versions::VersionHead`).
        for (k, _) in self
            .state
            .scan(T_VERSION_HEADS, &sc.objects_prefix(bucket), None, 1_000_000)
            .map_err(internal)?
        {
            ops.push(WriteOp::Delete {
                table: T_VERSION_HEADS.into(),
                key: k,
            });
        }
        self.write(ops).await?;
        self.delete_blobs_later(blobs);
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(super) async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let lc = (b.region != "us-east-1").then(|| BucketLocationConstraint::from(b.region));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: lc,
        }))
    }

    pub(super) async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: b.versioning.map(BucketVersioningStatus::from),
            ..Default::default()
        }))
    }

    pub(super) async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let sc = self.scope(&req);
        let mut b = self.bucket(&sc, &req.input.bucket)?;
        let status = req
            .input
            .versioning_configuration
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned());
        let first = b.versioning.is_none();
        if b.lock_enabled() && status.as_deref() == Some("Suspended") {
            return Err(s3_error!(
                InvalidBucketState,
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed."
            ));
        }
        match status.as_deref() {
            Some("Enabled" | "Suspended") => b.versioning = status,
            None => {}
            Some(_) => {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        }
        let record = WriteOp::Put {
            table: T_BUCKETS.into(),
            key: sc.bucket_key(&req.input.bucket),
            value: serde_json::to_vec(&b).map_err(internal)?,
        };
        if !(first && b.versioning.is_some()) {
            self.write(vec![record]).await?;
            return Ok(S3Response::new(PutBucketVersioningOutput {}));
        }
        // Turning versioning on: the objects written so far become null versions, in the
        // same transaction, retried if a write changed one of them meanwhile.
        for _ in 0..16 {
            let mut ops = self.adopt_unversioned(&sc, &req.input.bucket)?;
            ops.push(record.clone());
            if self.write_if(ops).await? {
                return Ok(S3Response::new(PutBucketVersioningOutput {}));
            }
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }
}
