//! GetObject and HeadObject.

use super::*;

impl BasaltS3 {
    pub(super) async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let (meta, inline) =
            self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        refuse_sse_header(&req.headers)?;
        // A part that is not there is refused before the key is asked for.
        if i.part_number.is_some() {
            read_window(&meta, i.range.as_ref(), i.part_number)?;
        }
        let customer = sse_customer(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let key = self.open_key(&meta, customer.as_ref())?;
        check_conditions(
            &meta,
            i.if_match.as_ref(),
            i.if_unmodified_since.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            false,
        )?;
        let (range, parts_count) = read_window(&meta, i.range.as_ref(), i.part_number)?;
        let content_range = range
            .as_ref()
            .filter(|r| r.end > r.start)
            .map(|r| format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size));
        let len = range.as_ref().map_or(meta.size, |r| r.end - r.start);
        let f = match (i.part_number, &meta.checksum) {
            // A part read answers with that part's checksum.
            (Some(n), Some(c)) => checksum_fields(
                meta.part_checksums
                    .as_ref()
                    .and_then(|p| p.get((n - 1).max(0) as usize))
                    .map(|v| Checksum {
                        algo: c.algo.clone(),
                        value: v.clone(),
                        kind: c.kind.clone(),
                    })
                    .as_ref(),
            ),
            _ if i
                .checksum_mode
                .as_ref()
                .is_some_and(|m| m.as_str() == "ENABLED")
                && range.is_none() =>
            {
                checksum_fields(meta.checksum.as_ref())
            }
            _ => checksum_fields(None),
        };
        let body = self.body_of(&meta, inline, range, key);
        let c = &meta.content;
        let e = sse_out(meta.sse.as_ref());
        let (lock_mode, lock_until, legal_hold) = lock::lock_out(&meta);
        let expiration =
            self.expiration_in(self.lifecycle_of(&sc, &i.bucket).as_deref(), &i.key, &meta);
        Ok(S3Response::new(GetObjectOutput {
            expiration,
            object_lock_mode: lock_mode,
            object_lock_retain_until_date: lock_until,
            object_lock_legal_hold_status: legal_hold,
            server_side_encryption: e.sse,
            ssekms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key,
            sse_customer_algorithm: e.c_algo,
            sse_customer_key_md5: e.c_md5,
            body: Some(body),
            accept_ranges: Some("bytes".into()),
            content_length: Some(len as i64),
            content_range,
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(ts(meta.modified_ms)),
            content_type: Some(
                c.content_type
                    .clone()
                    .unwrap_or_else(|| "binary/octet-stream".into()),
            ),
            content_encoding: c.content_encoding.clone(),
            content_disposition: c.content_disposition.clone(),
            content_language: c.content_language.clone(),
            cache_control: c.cache_control.clone(),
            expires: c.expires.map(|s| ts(s * 1000)),
            metadata: (!c.meta.is_empty()).then(|| c.meta.clone().into_iter().collect()),
            storage_class: c.storage_class.clone().map(StorageClass::from),
            parts_count,
            version_id: meta.version_id.clone(),
            tag_count: (!meta.tags.is_empty()).then_some(meta.tags.len() as i32),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        }))
    }

    pub(super) async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        refuse_sse_header(&req.headers)?;
        let customer = sse_customer(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        self.open_key(&meta, customer.as_ref())?;
        check_conditions(
            &meta,
            i.if_match.as_ref(),
            i.if_unmodified_since.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            false,
        )?;
        let (range, parts_count) = read_window(&meta, i.range.as_ref(), i.part_number)?;
        let content_range = range
            .as_ref()
            .filter(|r| r.end > r.start)
            .map(|r| format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size));
        let len = range.as_ref().map_or(meta.size, |r| r.end - r.start);
        let f = if i
            .checksum_mode
            .as_ref()
            .is_some_and(|m| m.as_str() == "ENABLED")
        {
            checksum_fields(meta.checksum.as_ref())
        } else {
            checksum_fields(None)
        };
        let content_range_set = content_range.is_some();
        let c = &meta.content;
        let e = sse_out(meta.sse.as_ref());
        let (lock_mode, lock_until, legal_hold) = lock::lock_out(&meta);
        let expiration =
            self.expiration_in(self.lifecycle_of(&sc, &i.bucket).as_deref(), &i.key, &meta);
        let mut resp = S3Response::new(HeadObjectOutput {
            expiration,
            object_lock_mode: lock_mode,
            object_lock_retain_until_date: lock_until,
            object_lock_legal_hold_status: legal_hold,
            server_side_encryption: e.sse,
            ssekms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key,
            sse_customer_algorithm: e.c_algo,
            sse_customer_key_md5: e.c_md5,
            accept_ranges: Some("bytes".into()),
            content_length: Some(len as i64),
            content_range,
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(ts(meta.modified_ms)),
            content_type: Some(
                c.content_type
                    .clone()
                    .unwrap_or_else(|| "binary/octet-stream".into()),
            ),
            content_encoding: c.content_encoding.clone(),
            content_disposition: c.content_disposition.clone(),
            content_language: c.content_language.clone(),
            cache_control: c.cache_control.clone(),
            expires: c.expires.map(|s| ts(s * 1000)),
            metadata: (!c.meta.is_empty()).then(|| c.meta.clone().into_iter().collect()),
            storage_class: c.storage_class.clone().map(StorageClass::from),
            parts_count,
            version_id: meta.version_id.clone(),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        });
        if !meta.tags.is_empty()
            && let Ok(v) = http::HeaderValue::from_str(&meta.tags.len().to_string())
        {
            // HeadObjectOutput models no tag count; S3 sends it on HEAD as on GET.
            resp.headers.insert("x-amz-tagging-count", v);
        }
        if content_range_set {
            // s3s's HeadObject ignores `resp.status`; the front applies this marker.
            resp.extensions.insert(crate::PartialContent);
        }
        Ok(resp)
    }
}

/// Reads name the encryption of what they read only through the SSE-C headers: S3 refuses
/// `x-amz-server-side-encryption` on a GET or HEAD.
fn refuse_sse_header(headers: &HeaderMap) -> S3Result<()> {
    if headers.contains_key("x-amz-server-side-encryption")
        || headers.contains_key("x-amz-server-side-encryption-aws-kms-key-id")
    {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-server-side-encryption header is not supported for this operation."
        ));
    }
    Ok(())
}

impl BasaltS3 {
    pub(super) async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        let customer = sse_customer(
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        self.open_key(&meta, customer.as_ref())?;
        // The header's list may arrive as one comma-separated value.
        let wants = |a: &str| {
            i.object_attributes
                .iter()
                .flat_map(|x| x.as_str().split(','))
                .any(|x| x.trim() == a)
        };
        let checksum = meta
            .checksum
            .as_ref()
            .filter(|_| wants("Checksum"))
            .map(|c| {
                let f = checksum_fields(Some(c));
                s3s::dto::Checksum {
                    checksum_crc32: f.crc32,
                    checksum_crc32c: f.crc32c,
                    checksum_crc64nvme: f.crc64nvme,
                    checksum_sha1: f.sha1,
                    checksum_sha256: f.sha256,
                    checksum_type: f.kind,
                }
            });
        let object_parts = match (&meta.part_sizes, wants("ObjectParts")) {
            (Some(sizes), true) => {
                let max = page_size(i.max_parts, "max-parts")?;
                let marker = i.part_number_marker.unwrap_or(0).max(0) as usize;
                let algo = meta.checksum.as_ref().map(|c| c.algo.clone());
                let parts: Vec<ObjectPart> = sizes
                    .iter()
                    .enumerate()
                    .skip(marker)
                    .take(max)
                    .map(|(n, size)| {
                        let sum = meta
                            .part_checksums
                            .as_ref()
                            .and_then(|c| c.get(n))
                            .zip(algo.as_ref())
                            .map(|(value, algo)| Checksum {
                                algo: algo.clone(),
                                value: value.clone(),
                                kind: "COMPOSITE".into(),
                            });
                        let f = checksum_fields(sum.as_ref());
                        ObjectPart {
                            part_number: Some(n as i32 + 1),
                            size: Some(*size as i64),
                            checksum_crc32: f.crc32,
                            checksum_crc32c: f.crc32c,
                            checksum_crc64nvme: f.crc64nvme,
                            checksum_sha1: f.sha1,
                            checksum_sha256: f.sha256,
                        }
                    })
                    .collect();
                let last = parts.last().and_then(|p| p.part_number);
                let truncated = marker + parts.len() < sizes.len();
                Some(GetObjectAttributesParts {
                    is_truncated: Some(truncated),
                    max_parts: Some(max as i32),
                    next_part_number_marker: last.filter(|_| truncated),
                    part_number_marker: Some(marker as i32),
                    parts: Some(parts),
                    total_parts_count: Some(sizes.len() as i32),
                })
            }
            _ => None,
        };
        Ok(S3Response::new(GetObjectAttributesOutput {
            checksum,
            e_tag: wants("ETag").then(|| etag(&meta.etag)),
            last_modified: Some(ts(meta.modified_ms)),
            object_parts,
            object_size: wants("ObjectSize").then_some(meta.size as i64),
            storage_class: wants("StorageClass").then(|| {
                StorageClass::from(
                    meta.content
                        .storage_class
                        .clone()
                        .unwrap_or_else(|| "STANDARD".into()),
                )
            }),
            version_id: meta.version_id.clone(),
            ..Default::default()
        }))
    }
}
