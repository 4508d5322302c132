//! CopyObject and UploadPartCopy.

use super::*;

impl BasaltS3 {
    pub(super) async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let who = self.requester(&req);
        let i = req.input;
        let CopySource::Bucket {
            bucket: sb,
            key: sk,
            version_id: source_version,
        } = &i.copy_source
        else {
            return Err(no_access_points());
        };
        let dest_bucket = self.bucket(&sc, &i.bucket)?;
        let requested = sse_requested(
            i.server_side_encryption.as_ref(),
            i.ssekms_key_id.as_deref(),
            i.bucket_key_enabled,
            i.ssekms_encryption_context.as_deref(),
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let src_customer = sse_customer(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let (owner, acl) = self.new_object_acl(
            &who,
            &dest_bucket,
            &access::AclRequest {
                canned: i.acl.as_ref().map(|a| a.as_str()),
                full_control: i.grant_full_control.as_deref(),
                read: i.grant_read.as_deref(),
                read_acp: i.grant_read_acp.as_deref(),
                write: None,
                write_acp: i.grant_write_acp.as_deref(),
            },
        )?;
        let (src, inline) = self.copy_source(
            &sc,
            &i.copy_source,
            [
                i.copy_source_if_match.as_ref(),
                i.copy_source_if_none_match.as_ref(),
            ],
            [
                i.copy_source_if_unmodified_since.as_ref(),
                i.copy_source_if_modified_since.as_ref(),
            ],
        )?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == "REPLACE");
        // Copying a key onto itself is allowed when it restores an older version.
        if **sb == i.bucket
            && **sk == i.key
            && source_version.is_none()
            && !replace
            && i.storage_class.is_none()
            && requested == crate::sse::Requested::None
        {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let content = if replace {
            content_from(
                i.content_type,
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires.as_ref(),
                i.metadata,
                i.storage_class.as_ref(),
            )
        } else {
            let mut c = src.content.clone();
            if let Some(s) = &i.storage_class {
                c.storage_class = Some(s.as_str().to_owned()).filter(|s| s != "STANDARD");
            }
            c
        };
        let tags = match i.tagging_directive.as_ref().map(|d| d.as_str()) {
            Some("REPLACE") => tags::from_header(i.tagging.as_deref())?,
            _ => src.tags.clone(),
        };
        let src_key = self.open_key(&src, src_customer.as_ref())?;
        let sealed = self.new_sse(requested, dest_bucket.encryption.as_ref())?;
        if src_key.is_some() || sealed.is_some() {
            // The bytes are sealed with another key (or unsealed): copied through plaintext.
            let algo = src.checksum.as_ref().map(|c| c.algo.clone());
            let body = self.body_of(&src, inline, None, src_key);
            let got = self
                .ingest(
                    Some(body),
                    Some(algo.as_deref().unwrap_or("CRC64NVME")),
                    false,
                    sealed.as_ref().map(|s| s.0),
                )
                .await?;
            let (mut meta, inline) = got.sealed_object(content, tags, sealed.map(|s| s.1));
            meta.owner = Some(owner);
            meta.acl = acl;
            if algo.is_none() {
                meta.checksum = None;
            }
            let now = meta.modified_ms;
            let version_id = match self
                .commit_object(
                    &sc,
                    &i.bucket,
                    &i.key,
                    &meta,
                    &inline,
                    Vec::new(),
                    None,
                    &Notice {
                        event: "ObjectCreated:Copy",
                        reason: "CopyObject",
                        origin: &origin,
                    },
                    None,
                )
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    self.discard(&got.data).await;
                    return Err(e);
                }
            };
            return Ok(copy_output(&meta, now, version_id, src.version_id.clone()));
        }
        let blob = match &src.blob {
            None => None,
            Some(b) => {
                let nk = new_blob_key();
                let blobs = self.blobs.clone();
                let (b, k2) = (b.clone(), nk.clone());
                tokio::task::spawn_blocking(move || blobs.concat(&k2, &[b.as_str()]))
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
                Some(nk)
            }
        };
        let now = now_ms();
        let meta = ObjectMeta {
            size: src.size,
            etag: src.etag.clone(),
            modified_ms: now,
            content,
            checksum: src.checksum.clone(),
            blob: blob.clone(),
            parts: src.parts,
            part_sizes: src.part_sizes.clone(),
            part_checksums: src.part_checksums.clone(),
            upload_id: None,
            tags,
            version_id: None,
            delete_marker: false,
            sse: None,
            owner: Some(owner),
            acl,
            retention: None,
            legal_hold: false,
        };
        let version_id = match self
            .commit_object(
                &sc,
                &i.bucket,
                &i.key,
                &meta,
                &inline,
                Vec::new(),
                None,
                &Notice {
                    event: "ObjectCreated:Copy",
                    reason: "CopyObject",
                    origin: &origin,
                },
                None,
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                if let Some(b) = blob {
                    self.delete_blobs_later(vec![b]);
                }
                return Err(e);
            }
        };
        Ok(copy_output(&meta, now, version_id, src.version_id.clone()))
    }
}

impl BasaltS3 {
    /// The source of a copy, as its `x-amz-copy-source-if-*` conditions allow.
    fn copy_source(
        &self,
        sc: &Scope,
        source: &CopySource,
        [if_match, if_none_match]: [Option<&ETagCondition>; 2],
        [if_unmodified_since, if_modified_since]: [Option<&Timestamp>; 2],
    ) -> S3Result<(ObjectMeta, Bytes)> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(no_access_points());
        };
        let (src, inline) = self
            .object_version(sc, bucket, key, version_id.as_deref())
            .map_err(|e| {
                if *e.code() == S3ErrorCode::MethodNotAllowed {
                    s3_error!(
                        InvalidRequest,
                        "The source of a copy request may not specifically refer to a delete marker by version id."
                    )
                } else {
                    e
                }
            })?;
        check_conditions(
            &src,
            if_match,
            if_unmodified_since,
            if_none_match,
            if_modified_since,
            true,
        )?;
        Ok((src, inline))
    }

    pub(super) async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let n = i.part_number;
        if !(1..=10_000).contains(&n) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let u = self.upload(&sc, &i.bucket, &i.upload_id, &i.key)?;
        let (src, inline) = self.copy_source(
            &sc,
            &i.copy_source,
            [
                i.copy_source_if_match.as_ref(),
                i.copy_source_if_none_match.as_ref(),
            ],
            [
                i.copy_source_if_unmodified_since.as_ref(),
                i.copy_source_if_modified_since.as_ref(),
            ],
        )?;
        let range = match &i.copy_source_range {
            None => None,
            Some(r) => Some(copy_range(r, src.size)?),
        };
        if range.as_ref().map_or(src.size, |r| r.end - r.start) > MAX_PUT {
            return Err(s3_error!(
                InvalidRequest,
                "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
            ));
        }
        let src_customer = sse_customer(
            i.copy_source_sse_customer_algorithm.as_deref(),
            i.copy_source_sse_customer_key.as_deref(),
            i.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let src_key = self.open_key(&src, src_customer.as_ref())?;
        let customer = sse_customer(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let seal = self.upload_key(&u, customer.as_ref())?;
        let body = self.body_of(&src, inline, range, src_key);
        let got = self
            .ingest(Some(body), u.checksum_algo.as_deref(), true, seal)
            .await?;
        let part = self
            .save_part(&sc, &i.bucket, &i.upload_id, n, &got)
            .await?;
        let f = checksum_fields(part.checksum.as_ref());
        let e = sse_out(u.sse.as_ref());
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&part.etag)),
                last_modified: Some(ts(part.modified_ms)),
                checksum_crc32: f.crc32,
                checksum_crc32c: f.crc32c,
                checksum_crc64nvme: f.crc64nvme,
                checksum_sha1: f.sha1,
                checksum_sha256: f.sha256,
            }),
            copy_source_version_id: src.version_id.clone(),
            server_side_encryption: e.sse,
            ssekms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key,
            sse_customer_algorithm: e.c_algo,
            sse_customer_key_md5: e.c_md5,
            ..Default::default()
        }))
    }
}

/// `x-amz-copy-source-range`: exactly `bytes=first-last`, inside the source.
fn copy_range(r: &str, size: u64) -> S3Result<std::ops::Range<u64>> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = r
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return Err(bad());
    }
    let (first, last): (u64, u64) = (
        first.parse().map_err(|_| bad())?,
        last.parse().map_err(|_| bad())?,
    );
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok(first..last + 1)
}

fn no_access_points() -> S3Error {
    s3_error!(
        NotImplemented,
        "Access point copy sources are not supported"
    )
}

fn copy_output(
    meta: &ObjectMeta,
    now: i64,
    version_id: Option<String>,
    source_version: Option<String>,
) -> S3Response<CopyObjectOutput> {
    let f = checksum_fields(meta.checksum.as_ref());
    let e = sse_out(meta.sse.as_ref());
    S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(ts(now)),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
        }),
        version_id,
        copy_source_version_id: source_version,
        server_side_encryption: e.sse,
        ssekms_key_id: e.kms_key_id,
        bucket_key_enabled: e.bucket_key,
        sse_customer_algorithm: e.c_algo,
        sse_customer_key_md5: e.c_md5,
        ..Default::default()
    })
}
