//! Bucket configurations kept in the bucket record: default encryption, lifecycle, CORS and
//! tags (and the read-modify-write every configuration shares).

use super::*;

impl BasaltS3 {
    /// Changes a bucket's record under a precondition on what was read, retried when another
    /// write changed it meanwhile (two configurations set at once both survive).
    pub(super) async fn update_bucket<T>(
        &self,
        sc: &Scope,
        bucket: &str,
        mut change: impl FnMut(&mut BucketMeta) -> S3Result<T>,
    ) -> S3Result<T> {
        let key = sc.bucket_key(bucket);
        for _ in 0..32 {
            let raw = self
                .state
                .get(T_BUCKETS, &key)
                .map_err(internal)?
                .ok_or_else(|| s3_error!(NoSuchBucket, "The specified bucket does not exist"))?;
            let mut b: BucketMeta = serde_json::from_slice(&raw).map_err(internal)?;
            let out = change(&mut b)?;
            let ops = vec![
                WriteOp::Check {
                    table: T_BUCKETS.into(),
                    key: key.clone(),
                    expected: Some(raw),
                },
                WriteOp::Put {
                    table: T_BUCKETS.into(),
                    key: key.clone(),
                    value: serde_json::to_vec(&b).map_err(internal)?,
                },
            ];
            if self.write_if(ops).await? {
                return Ok(out);
            }
        }
        Err(s3_error!(
            OperationAborted,
            "A conflicting conditional operation is currently in progress against this resource. Please try again."
        ))
    }

    pub(super) async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let sc = self.scope(&req);
        let rules = &req.input.server_side_encryption_configuration.rules;
        let [rule] = rules.as_slice() else {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        };
        let Some(d) = &rule.apply_server_side_encryption_by_default else {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        };
        let algorithm = d.sse_algorithm.as_str();
        if !matches!(algorithm, "AES256" | "aws:kms" | "aws:kms:dsse") {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        if algorithm == "AES256" && d.kms_master_key_id.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse"
            ));
        }
        let enc = DefaultEncryption {
            algorithm: algorithm.to_owned(),
            kms_key_id: d.kms_master_key_id.clone(),
            bucket_key: rule.bucket_key_enabled.unwrap_or(false),
        };
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.encryption = Some(enc.clone());
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutBucketEncryptionOutput {}))
    }

    pub(super) async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(enc) = b.encryption else {
            let mut e = s3_error!(
                ServerSideEncryptionConfigurationNotFoundError,
                "The server side encryption configuration was not found"
            );
            e.set_status_code(http::StatusCode::NOT_FOUND);
            return Err(e);
        };
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        kms_master_key_id: enc.kms_key_id,
                        sse_algorithm: ServerSideEncryption::from(enc.algorithm),
                    }),
                    bucket_key_enabled: Some(enc.bucket_key),
                }],
            }),
        }))
    }

    pub(super) async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        let sc = self.scope(&req);
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.encryption = None;
            Ok(())
        })
        .await?;
        Ok(S3Response::new(DeleteBucketEncryptionOutput {}))
    }

    pub(super) async fn put_bucket_lifecycle_configuration(
        &self,
        req: S3Request<PutBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
        let sc = self.scope(&req);
        let mut cfg = req.input.lifecycle_configuration.clone().ok_or_else(|| {
            s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )
        })?;
        self.lifecycles.lock().remove(req.input.bucket.as_str());
        crate::lifecycle::validate(&mut cfg).map_err(|e| match e {
            crate::lifecycle::LifecycleError::InvalidArgument(m) => {
                s3_error!(InvalidArgument, "{m}")
            }
            crate::lifecycle::LifecycleError::Malformed => {
                S3Error::with_message(S3ErrorCode::MalformedXML, e.to_string())
            }
        })?;
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.lifecycle = Some(cfg.clone());
            Ok(())
        })
        .await?;
        Ok(S3Response::new(
            PutBucketLifecycleConfigurationOutput::default(),
        ))
    }

    pub(super) async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(cfg) = b.lifecycle else {
            return Err(s3_error!(
                NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist"
            ));
        };
        Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
            rules: Some(cfg.rules),
            ..Default::default()
        }))
    }

    pub(super) async fn delete_bucket_lifecycle(
        &self,
        req: S3Request<DeleteBucketLifecycleInput>,
    ) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
        let sc = self.scope(&req);
        self.lifecycles.lock().remove(req.input.bucket.as_str());
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.lifecycle = None;
            Ok(())
        })
        .await?;
        Ok(no_content(DeleteBucketLifecycleOutput {}))
    }

    /// A bucket's lifecycle rules, as the reads' `x-amz-expiration` sees them (cached).
    pub(super) fn lifecycle_of(
        &self,
        sc: &Scope,
        bucket: &str,
    ) -> Option<Arc<s3s::dto::BucketLifecycleConfiguration>> {
        if let Some((at, cfg)) = self.lifecycles.lock().get(bucket)
            && at.elapsed() < Duration::from_secs(1)
        {
            return cfg.clone();
        }
        let cfg = self
            .bucket(sc, bucket)
            .ok()
            .and_then(|b| b.lifecycle)
            .map(Arc::new);
        let mut cache = self.lifecycles.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(bucket.to_owned(), (std::time::Instant::now(), cfg.clone()));
        cfg
    }

    /// The `x-amz-expiration` a current object answers with, if a lifecycle rule expires it.
    pub(super) fn expiration_in(
        &self,
        cfg: Option<&s3s::dto::BucketLifecycleConfiguration>,
        key: &str,
        meta: &ObjectMeta,
    ) -> Option<String> {
        let cfg = cfg?;
        let (at, rule) = crate::lifecycle::expiration(
            cfg,
            &crate::lifecycle::Candidate {
                key,
                tags: &meta.tags,
                size: meta.size,
            },
            meta.modified_ms,
            crate::lifecycle::DAY_MS,
        )?;
        Some(crate::lifecycle::header(at, &rule))
    }

    pub(super) async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let sc = self.scope(&req);
        let cfg = req.input.cors_configuration.clone();
        if cfg.cors_rules.is_empty() || cfg.cors_rules.len() > 100 {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        for r in &cfg.cors_rules {
            for m in &r.allowed_methods {
                if !matches!(m.as_str(), "GET" | "PUT" | "POST" | "DELETE" | "HEAD") {
                    return Err(s3_error!(
                        InvalidRequest,
                        "Found unsupported HTTP method in CORS config. Unsupported method is {}",
                        m.as_str()
                    ));
                }
            }
        }
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.cors = Some(cfg.clone());
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutBucketCorsOutput {}))
    }

    pub(super) async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(cfg) = b.cors else {
            return Err(s3_error!(
                NoSuchCORSConfiguration,
                "The CORS configuration does not exist"
            ));
        };
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(cfg.cors_rules),
        }))
    }

    pub(super) async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let sc = self.scope(&req);
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.cors = None;
            Ok(())
        })
        .await?;
        Ok(no_content(DeleteBucketCorsOutput {}))
    }

    pub(super) async fn put_bucket_tagging(
        &self,
        req: S3Request<PutBucketTaggingInput>,
    ) -> S3Result<S3Response<PutBucketTaggingOutput>> {
        let sc = self.scope(&req);
        let t = tags::from_tag_set(&req.input.tagging.tag_set)?;
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.tags = Some(t.clone());
            Ok(())
        })
        .await?;
        Ok(no_content(PutBucketTaggingOutput {}))
    }

    pub(super) async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(t) = b.tags else {
            return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
        };
        Ok(S3Response::new(GetBucketTaggingOutput {
            tag_set: tags::to_tag_set(&t),
        }))
    }

    pub(super) async fn delete_bucket_tagging(
        &self,
        req: S3Request<DeleteBucketTaggingInput>,
    ) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
        let sc = self.scope(&req);
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.tags = None;
            Ok(())
        })
        .await?;
        Ok(no_content(DeleteBucketTaggingOutput {}))
    }

    pub(super) async fn put_bucket_logging(
        &self,
        req: S3Request<PutBucketLoggingInput>,
    ) -> S3Result<S3Response<PutBucketLoggingOutput>> {
        let sc = self.scope(&req);
        let source = self.bucket(&sc, &req.input.bucket)?;
        let enabled = req.input.bucket_logging_status.logging_enabled.clone();
        if let Some(l) = &enabled {
            let target = self.bucket(&sc, &l.target_bucket).map_err(|_| {
                s3_error!(
                    InvalidTargetBucketForLogging,
                    "The target bucket for logging does not exist"
                )
            })?;
            if target.region != source.region {
                return Err(s3_error!(
                    InvalidTargetBucketForLogging,
                    "The target bucket for logging must be in the same region as the source bucket"
                ));
            }
            if target.owner_account(&self.cfg.account_id)
                != source.owner_account(&self.cfg.account_id)
            {
                return Err(s3_error!(
                    InvalidTargetBucketForLogging,
                    "The owner for the bucket to be logged and the target bucket must be the same."
                ));
            }
            if let Some(src) = l
                .target_object_key_format
                .as_ref()
                .and_then(|f| f.partitioned_prefix.as_ref())
                .and_then(|p| p.partition_date_source.as_ref())
                && !matches!(src.as_str(), "EventTime" | "DeliveryTime")
            {
                return Err(s3_error!(
                    MalformedXML,
                    "The XML you provided was not well-formed or did not validate against our published schema"
                ));
            }
        }
        let target = enabled.map(|l| LoggingTarget {
            bucket: l.target_bucket,
            prefix: l.target_prefix,
            key_format: l.target_object_key_format.map(|f| {
                f.partitioned_prefix
                    .and_then(|p| p.partition_date_source.map(|s| s.as_str().to_owned()))
            }),
        });
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.logging = target.clone();
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutBucketLoggingOutput {}))
    }

    pub(super) async fn get_bucket_logging(
        &self,
        req: S3Request<GetBucketLoggingInput>,
    ) -> S3Result<S3Response<GetBucketLoggingOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        Ok(S3Response::new(GetBucketLoggingOutput {
            logging_enabled: b.logging.map(|l| LoggingEnabled {
                target_bucket: l.bucket,
                target_prefix: l.prefix,
                target_grants: None,
                // Without a key format, the default (a simple prefix) is reported.
                target_object_key_format: Some(match l.key_format.flatten() {
                    None => TargetObjectKeyFormat {
                        simple_prefix: Some(SimplePrefix::default()),
                        partitioned_prefix: None,
                    },
                    Some(s) => TargetObjectKeyFormat {
                        simple_prefix: None,
                        partitioned_prefix: Some(PartitionedPrefix {
                            partition_date_source: Some(PartitionDateSource::from(s)),
                        }),
                    },
                }),
            }),
        }))
    }

    pub(super) async fn put_bucket_website(
        &self,
        req: S3Request<PutBucketWebsiteInput>,
    ) -> S3Result<S3Response<PutBucketWebsiteOutput>> {
        let sc = self.scope(&req);
        let cfg = req.input.website_configuration.clone();
        let suffix_ok = cfg
            .index_document
            .as_ref()
            .is_none_or(|i| !i.suffix.is_empty() && !i.suffix.contains('/'));
        if !suffix_ok {
            return Err(s3_error!(
                InvalidArgument,
                "The IndexDocument Suffix is not well formed"
            ));
        }
        if cfg.redirect_all_requests_to.is_none() && cfg.index_document.is_none() {
            return Err(s3_error!(
                InvalidArgument,
                "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty"
            ));
        }
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.website = Some(cfg.clone());
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutBucketWebsiteOutput {}))
    }

    pub(super) async fn get_bucket_website(
        &self,
        req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(w) = b.website else {
            return Err(s3_error!(
                NoSuchWebsiteConfiguration,
                "The specified bucket does not have a website configuration"
            ));
        };
        Ok(S3Response::new(GetBucketWebsiteOutput {
            error_document: w.error_document,
            index_document: w.index_document,
            redirect_all_requests_to: w.redirect_all_requests_to,
            routing_rules: w.routing_rules,
        }))
    }

    pub(super) async fn delete_bucket_website(
        &self,
        req: S3Request<DeleteBucketWebsiteInput>,
    ) -> S3Result<S3Response<DeleteBucketWebsiteOutput>> {
        let sc = self.scope(&req);
        self.update_bucket(&sc, &req.input.bucket, |b| {
            b.website = None;
            Ok(())
        })
        .await?;
        Ok(no_content(DeleteBucketWebsiteOutput {}))
    }
}
