//! PutObject.

use super::*;

impl BasaltS3 {
    /// Writes a whole object in-process (batch inference's outputs), as a PutObject by
    /// Basalt itself: versioning, notifications and the bucket's rules apply. `Ok(None)` when
    /// the bucket does not exist.
    pub async fn write_object(
        &self,
        account: &str,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<Option<String>, String> {
        let sc = Scope {
            account: account.to_owned(),
            region: self.cfg.region.clone(),
        };
        let fail =
            |e: S3Error| format!("{}: {}", e.code().as_str(), e.message().unwrap_or_default());
        let snapshot = match self.bucket_snapshot(&sc, bucket) {
            Ok(s) => s,
            Err(e) if e.code() == &S3ErrorCode::NoSuchBucket => return Ok(None),
            Err(e) => return Err(fail(e)),
        };
        let blob = StreamingBlob::from(s3s::Body::from(body));
        let got = self
            .ingest(Some(blob), Some("CRC64NVME"), false, None)
            .await
            .map_err(fail)?;
        let (meta, inline) = got.object(
            content_from(
                Some(content_type.to_owned()),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
            ),
            Default::default(),
        );
        let etag_hex = meta.etag.clone();
        let origin = Origin {
            request_id: request_id(),
            host_id: basalt_core::ids::host_id(),
            source_ip: "127.0.0.1".into(),
        };
        let notice = Notice {
            event: "ObjectCreated:Put",
            reason: "PutObject",
            origin: &origin,
        };
        if let Err(e) = self
            .commit_object(
                &sc,
                bucket,
                key,
                &meta,
                &inline,
                Vec::new(),
                Some(snapshot),
                &notice,
                None,
            )
            .await
        {
            self.discard(&got.data).await;
            return Err(fail(e));
        }
        Ok(Some(etag_hex))
    }

    pub(super) async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let bucket = req.input.bucket.clone();
        let key = req.input.key.clone();
        let snapshot = self.bucket_snapshot(&sc, &bucket)?;
        let lifecycle = snapshot.meta.lifecycle.clone();
        if req.input.content_length.is_some_and(|n| n as u64 > MAX_PUT) {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size"
            ));
        }
        let condition = WriteCondition::new(
            req.input.if_match.as_ref(),
            req.input.if_none_match.as_ref(),
        );
        if let Some(c) = &condition {
            // Judged before the body is read, and again as the write commits.
            let current = self.object(&sc, &bucket, &key)?.map(|(m, _)| m);
            c.check(current.as_ref().filter(|m| !m.delete_marker))?;
        }
        let (req_algo, expected, trailer) =
            requested_checksum(&req.headers, req.input.checksum_algorithm.as_ref());
        if req_algo
            .as_deref()
            .is_some_and(|a| Hasher::new(a).is_none())
        {
            return Err(s3_error!(
                InvalidRequest,
                "Checksum algorithm provided is unsupported."
            ));
        }
        let algo = req_algo.clone().unwrap_or_else(|| "CRC64NVME".to_owned());
        let i = &req.input;
        let requested = sse_requested(
            i.server_side_encryption.as_ref(),
            i.ssekms_key_id.as_deref(),
            i.bucket_key_enabled,
            i.ssekms_encryption_context.as_deref(),
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let sealed = self.new_sse(requested, snapshot.meta.encryption.as_ref())?;
        let who = self.requester(&req);
        let i = &req.input;
        let (owner, acl) = self.new_object_acl(
            &who,
            &snapshot.meta,
            &access::AclRequest {
                canned: i.acl.as_ref().map(|a| a.as_str()),
                full_control: i.grant_full_control.as_deref(),
                read: i.grant_read.as_deref(),
                read_acp: i.grant_read_acp.as_deref(),
                write: None,
                write_acp: i.grant_write_acp.as_deref(),
            },
        )?;
        let (retention, legal_hold) = lock::requested_lock(
            &snapshot.meta,
            i.object_lock_mode.as_ref().map(|m| m.as_str()),
            i.object_lock_retain_until_date.as_ref(),
            i.object_lock_legal_hold_status.as_ref().map(|s| s.as_str()),
        )?;
        let body = req.input.body.take();
        let got = self
            .ingest(body, Some(&algo), false, sealed.as_ref().map(|s| s.0))
            .await?;
        if let Some(n) = req.input.content_length
            && n as u64 != got.size
        {
            self.discard(&got.data).await;
            return Err(s3_error!(
                IncompleteBody,
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            ));
        }
        if let Err(e) = verify_integrity(
            &req,
            req.input.content_md5.as_deref(),
            &got,
            Some(&algo),
            expected,
            trailer,
        ) {
            self.discard(&got.data).await;
            return Err(e);
        }
        let i = req.input;
        let tags = match tags::from_header(i.tagging.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                self.discard(&got.data).await;
                return Err(e);
            }
        };
        let content = content_from(
            i.content_type,
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires.as_ref(),
            i.metadata,
            i.storage_class.as_ref(),
        );
        let (mut meta, inline) = got.sealed_object(content, tags, sealed.map(|s| s.1));
        meta.owner = Some(owner);
        meta.acl = acl;
        meta.retention = retention;
        meta.legal_hold = legal_hold;
        let etag_hex = meta.etag.clone();
        let version_id = match self
            .commit_object(
                &sc,
                &bucket,
                &key,
                &meta,
                &inline,
                Vec::new(),
                Some(snapshot),
                &Notice {
                    event: "ObjectCreated:Put",
                    reason: "PutObject",
                    origin: &origin,
                },
                condition.as_ref(),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.discard(&got.data).await;
                return Err(e);
            }
        };
        let f = if req_algo.is_some() {
            checksum_fields(meta.checksum.as_ref())
        } else {
            checksum_fields(None)
        };
        let e = sse_out(meta.sse.as_ref());
        Ok(S3Response::new(PutObjectOutput {
            expiration: self.expiration_in(lifecycle.as_ref(), &key, &meta),
            e_tag: Some(etag(&etag_hex)),
            // A suspended bucket's writes replace the null version, which S3 does not name.
            version_id: version_id.filter(|v| v != versions::NULL_VERSION),
            server_side_encryption: e.sse,
            ssekms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key,
            sse_customer_algorithm: e.c_algo,
            sse_customer_key_md5: e.c_md5,
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        }))
    }
}
