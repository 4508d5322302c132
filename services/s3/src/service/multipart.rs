//! Multipart uploads: create, upload part, complete, abort, list parts and uploads.

use super::*;

impl BasaltS3 {
    pub(super) fn upload(
        &self,
        sc: &Scope,
        bucket: &str,
        upload_id: &str,
        key: &str,
    ) -> S3Result<UploadMeta> {
        let raw = self
            .state
            .get(T_UPLOADS, &sc.upload_key(bucket, upload_id))
            .map_err(internal)?;
        let no_upload = || {
            s3_error!(
                NoSuchUpload,
                "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
            )
        };
        let Some(raw) = raw else {
            self.bucket(sc, bucket)?;
            return Err(no_upload());
        };
        let u: UploadMeta = serde_json::from_slice(&raw).map_err(internal)?;
        if u.key != key {
            return Err(no_upload());
        }
        Ok(u)
    }

    /// The data key parts of `u` are sealed with; SSE-C uploads need the initiation's key on
    /// every part.
    pub(super) fn upload_key(
        &self,
        u: &UploadMeta,
        customer: Option<&crate::sse::CustomerKey>,
    ) -> S3Result<Option<[u8; 32]>> {
        let Some(rec) = &u.sse else {
            return match customer {
                Some(_) => Err(s3_error!(
                    InvalidRequest,
                    "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters."
                )),
                None => Ok(None),
            };
        };
        match crate::sse::data_key(self.state.as_ref(), rec, customer) {
            Ok(k) => Ok(Some(k)),
            Err(crate::sse::SseError::KeyMismatch) => Err(s3_error!(
                InvalidArgument,
                "The provided encryption key does not match the key the multipart upload was initiated with."
            )),
            Err(crate::sse::SseError::InvalidRequest(_)) if rec.is_customer() => Err(s3_error!(
                InvalidRequest,
                "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters."
            )),
            Err(e) => Err(sse_error(e)),
        }
    }

    /// Records an ingested part (replacing an earlier upload of the same number).
    pub(super) async fn save_part(
        &self,
        sc: &Scope,
        bucket: &str,
        upload_id: &str,
        n: i32,
        got: &Ingested,
    ) -> S3Result<PartMeta> {
        let Data::Blob(blob) = &got.data else {
            return Err(internal("a part's bytes must be in a blob"));
        };
        let part = PartMeta {
            number: n,
            size: got.size,
            etag: hex::encode(&got.md5),
            modified_ms: now_ms(),
            blob: blob.clone(),
            checksum: got.checksum.clone().map(|(algo, value)| Checksum {
                algo,
                value,
                kind: "COMPOSITE".into(),
            }),
        };
        let pk = sc.part_key(bucket, upload_id, n);
        let old = self
            .state
            .get(T_PARTS, &pk)
            .map_err(internal)?
            .and_then(|v| serde_json::from_slice::<PartMeta>(&v).ok());
        self.write(vec![WriteOp::Put {
            table: T_PARTS.into(),
            key: pk,
            value: serde_json::to_vec(&part).map_err(internal)?,
        }])
        .await?;
        if let Some(o) = old {
            self.delete_blobs_later(vec![o.blob]);
        }
        Ok(part)
    }

    pub(super) fn parts(
        &self,
        sc: &Scope,
        bucket: &str,
        upload_id: &str,
    ) -> S3Result<Vec<PartMeta>> {
        let prefix = format!("{}/", sc.upload_key(bucket, upload_id));
        let rows = self
            .state
            .scan(T_PARTS, &prefix, None, 10_001)
            .map_err(internal)?;
        rows.into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(internal))
            .collect()
    }

    pub(super) async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let bucket = self.bucket(&sc, &i.bucket)?;
        let requested = sse_requested(
            i.server_side_encryption.as_ref(),
            i.ssekms_key_id.as_deref(),
            i.bucket_key_enabled,
            i.ssekms_encryption_context.as_deref(),
            i.sse_customer_algorithm.as_deref(),
            i.sse_customer_key.as_deref(),
            i.sse_customer_key_md5.as_deref(),
        )?;
        let sse = self
            .new_sse(requested, bucket.encryption.as_ref())?
            .map(|s| s.1);
        let (retention, legal_hold) = lock::requested_lock(
            &bucket,
            i.object_lock_mode.as_ref().map(|m| m.as_str()),
            i.object_lock_retain_until_date.as_ref(),
            i.object_lock_legal_hold_status.as_ref().map(|s| s.as_str()),
        )?;
        let who = self.requester_of(&req.extensions);
        let (owner, acl) = self.new_object_acl(
            &who,
            &bucket,
            &access::AclRequest {
                canned: i.acl.as_ref().map(|a| a.as_str()),
                full_control: i.grant_full_control.as_deref(),
                read: i.grant_read.as_deref(),
                read_acp: i.grant_read_acp.as_deref(),
                write: None,
                write_acp: i.grant_write_acp.as_deref(),
            },
        )?;
        let algo = i
            .checksum_algorithm
            .as_ref()
            .map(|a| a.as_str().to_ascii_uppercase());
        let ctype = i.checksum_type.as_ref().map(|t| t.as_str().to_owned());
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let u = UploadMeta {
            key: i.key.clone(),
            initiated_ms: now_ms(),
            content: content_from(
                i.content_type,
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires.as_ref(),
                i.metadata,
                i.storage_class.as_ref(),
            ),
            checksum_algo: algo.clone(),
            checksum_type: ctype.clone(),
            tags: tags::from_header(i.tagging.as_deref())?,
            sse,
            owner: Some(owner),
            acl,
            retention,
            legal_hold,
        };
        self.write(vec![WriteOp::Put {
            table: T_UPLOADS.into(),
            key: sc.upload_key(&i.bucket, &upload_id),
            value: serde_json::to_vec(&u).map_err(internal)?,
        }])
        .await?;
        let e = sse_out(u.sse.as_ref());
        Ok(S3Response::new(CreateMultipartUploadOutput {
            server_side_encryption: e.sse,
            ssekms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key,
            sse_customer_algorithm: e.c_algo,
            sse_customer_key_md5: e.c_md5,
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(upload_id),
            checksum_algorithm: algo.map(ChecksumAlgorithm::from),
            checksum_type: algo_type(u.checksum_algo.as_deref(), ctype.as_deref())
                .map(ChecksumType::from),
            ..Default::default()
        }))
    }

    pub(super) async fn upload_part(
        &self,
        mut req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let sc = self.scope(&req);
        let (bucket, key, upload_id, n) = (
            req.input.bucket.clone(),
            req.input.key.clone(),
            req.input.upload_id.clone(),
            req.input.part_number,
        );
        if !(1..=10_000).contains(&n) {
            return Err(s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            ));
        }
        let u = self.upload(&sc, &bucket, &upload_id, &key)?;
        let customer = sse_customer(
            req.input.sse_customer_algorithm.as_deref(),
            req.input.sse_customer_key.as_deref(),
            req.input.sse_customer_key_md5.as_deref(),
        )?;
        let seal = self.upload_key(&u, customer.as_ref())?;
        let (req_algo, expected, trailer) =
            requested_checksum(&req.headers, req.input.checksum_algorithm.as_ref());
        let algo = req_algo.clone().or(u.checksum_algo.clone());
        let body = req.input.body.take();
        let got = self.ingest(body, algo.as_deref(), true, seal).await?;
        if let Err(e) = verify_integrity(
            &req,
            req.input.content_md5.as_deref(),
            &got,
            algo.as_deref(),
            expected,
            trailer,
        ) {
            self.discard(&got.data).await;
            return Err(e);
        }
        let part = self.save_part(&sc, &bucket, &upload_id, n, &got).await?;
        let etag_hex = part.etag.clone();
        let f = checksum_fields(part.checksum.as_ref());
        let e = sse_out(u.sse.as_ref());
        Ok(S3Response::new(UploadPartOutput {
            server_side_encryption: e.sse,
            ssekms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key,
            sse_customer_algorithm: e.c_algo,
            sse_customer_key_md5: e.c_md5,
            e_tag: Some(etag(&etag_hex)),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            ..Default::default()
        }))
    }

    pub(super) async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let i = &req.input;
        let u = match self.upload(&sc, &i.bucket, &i.upload_id, &i.key) {
            Ok(u) => u,
            Err(e) if *e.code() == S3ErrorCode::NoSuchUpload => {
                // Completed already: a retry answers as the completion did.
                let Some((m, _)) = self
                    .object(&sc, &i.bucket, &i.key)?
                    .filter(|(m, _)| m.upload_id.as_deref() == Some(i.upload_id.as_str()))
                else {
                    return Err(e);
                };
                let f = checksum_fields(m.checksum.as_ref());
                return Ok(S3Response::new(CompleteMultipartUploadOutput {
                    version_id: m.version_id.clone(),
                    bucket: Some(i.bucket.clone()),
                    key: Some(i.key.clone()),
                    e_tag: Some(etag(&m.etag)),
                    location: Some(format!("/{}/{}", i.bucket, i.key)),
                    checksum_crc32: f.crc32,
                    checksum_crc32c: f.crc32c,
                    checksum_crc64nvme: f.crc64nvme,
                    checksum_sha1: f.sha1,
                    checksum_sha256: f.sha256,
                    checksum_type: f.kind,
                    ..Default::default()
                }));
            }
            Err(e) => return Err(e),
        };
        if u.sse.as_ref().is_some_and(|r| r.is_customer()) {
            // The completion of an SSE-C upload presents the upload's key too.
            let customer = sse_customer(
                i.sse_customer_algorithm.as_deref(),
                i.sse_customer_key.as_deref(),
                i.sse_customer_key_md5.as_deref(),
            )?;
            self.upload_key(&u, customer.as_ref())?;
        }
        let requested: Vec<CompletedPart> = i
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.clone())
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let stored = self.parts(&sc, &i.bucket, &i.upload_id)?;
        let invalid_part = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let mut chosen: Vec<&PartMeta> = Vec::with_capacity(requested.len());
        let mut last = 0;
        for p in &requested {
            let n = p.part_number.ok_or_else(invalid_part)?;
            if n <= last {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. The parts list must be specified in order by part number."
                ));
            }
            last = n;
            let sp = stored
                .iter()
                .find(|s| s.number == n)
                .ok_or_else(invalid_part)?;
            if let Some(e) = &p.e_tag
                && e.value().trim_matches('"') != sp.etag
            {
                return Err(invalid_part());
            }
            // A part's checksum, when the completion names it, must be the one stored.
            if let Some(algo) = &u.checksum_algo {
                let named = match algo.as_str() {
                    "CRC32" => p.checksum_crc32.as_deref(),
                    "CRC32C" => p.checksum_crc32c.as_deref(),
                    "CRC64NVME" => p.checksum_crc64nvme.as_deref(),
                    "SHA1" => p.checksum_sha1.as_deref(),
                    "SHA256" => p.checksum_sha256.as_deref(),
                    _ => None,
                };
                let stored = sp.checksum.as_ref().map(|c| c.value.as_str());
                if named.is_some_and(|v| Some(v) != stored) {
                    return Err(invalid_part());
                }
            }
            chosen.push(sp);
        }
        for (idx, p) in chosen.iter().enumerate() {
            if idx + 1 < chosen.len() && p.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed object size."
                ));
            }
        }
        let etag_hex = multipart_etag(chosen.iter().map(|p| p.etag.as_str()))
            .ok_or_else(|| internal("bad part etag"))?;
        let full_object = u.checksum_type.as_deref() == Some("FULL_OBJECT");
        let checksum = u.checksum_algo.as_ref().and_then(|a| {
            let values: Option<Vec<(&str, u64)>> = chosen
                .iter()
                .map(|p| p.checksum.as_ref().map(|c| (c.value.as_str(), p.size)))
                .collect();
            let values = values?;
            let (value, kind) = if full_object {
                (full_object_checksum(a, values)?, "FULL_OBJECT")
            } else {
                (
                    composite_checksum(a, values.into_iter().map(|(v, _)| v))?,
                    "COMPOSITE",
                )
            };
            Some(Checksum {
                algo: a.clone(),
                value,
                kind: kind.into(),
            })
        });
        // The whole object's checksum, when the request states it, must be the one computed.
        if let Some(c) = &checksum {
            let stated = match c.algo.as_str() {
                "CRC32" => i.checksum_crc32.as_deref(),
                "CRC32C" => i.checksum_crc32c.as_deref(),
                "CRC64NVME" => i.checksum_crc64nvme.as_deref(),
                "SHA1" => i.checksum_sha1.as_deref(),
                "SHA256" => i.checksum_sha256.as_deref(),
                _ => None,
            };
            if stated.is_some_and(|s| s != c.value) {
                return Err(bad_digest(&c.algo));
            }
        }
        let size: u64 = chosen.iter().map(|p| p.size).sum();
        let nk = new_blob_key();
        {
            let blobs = self.blobs.clone();
            let srcs: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
            let k2 = nk.clone();
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = srcs.iter().map(String::as_str).collect();
                blobs.concat(&k2, &refs)
            })
            .await
            .map_err(internal)?
            .map_err(internal)?;
        }
        let meta = ObjectMeta {
            size,
            etag: etag_hex.clone(),
            modified_ms: now_ms(),
            content: u.content.clone(),
            checksum,
            blob: Some(nk.clone()),
            parts: Some(chosen.len() as u32),
            part_sizes: Some(chosen.iter().map(|p| p.size).collect()),
            part_checksums: chosen
                .iter()
                .map(|p| p.checksum.as_ref().map(|c| c.value.clone()))
                .collect(),
            upload_id: Some(i.upload_id.clone()),
            tags: u.tags.clone(),
            version_id: None,
            delete_marker: false,
            sse: u.sse.clone(),
            owner: u.owner.clone(),
            acl: u.acl.clone(),
            retention: u.retention,
            legal_hold: u.legal_hold,
        };
        let mut ops: Vec<WriteOp> = stored
            .iter()
            .map(|p| WriteOp::Delete {
                table: T_PARTS.into(),
                key: sc.part_key(&i.bucket, &i.upload_id, p.number),
            })
            .collect();
        // Completed only while the upload is still there, as read: of a completion racing an
        // abort or another completion, one commits.
        let upload_record = self
            .state
            .get(T_UPLOADS, &sc.upload_key(&i.bucket, &i.upload_id))
            .map_err(internal)?;
        ops.push(WriteOp::Check {
            table: T_UPLOADS.into(),
            key: sc.upload_key(&i.bucket, &i.upload_id),
            expected: upload_record,
        });
        ops.push(WriteOp::Delete {
            table: T_UPLOADS.into(),
            key: sc.upload_key(&i.bucket, &i.upload_id),
        });
        let version_id = match self
            .commit_object(
                &sc,
                &i.bucket,
                &i.key,
                &meta,
                &[],
                ops,
                None,
                &Notice {
                    event: "ObjectCreated:CompleteMultipartUpload",
                    reason: "CompleteMultipartUpload",
                    origin: &origin,
                },
                WriteCondition::new(i.if_match.as_ref(), i.if_none_match.as_ref()).as_ref(),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.delete_blobs_later(vec![nk]);
                return Err(e);
            }
        };
        self.delete_blobs_later(stored.into_iter().map(|p| p.blob).collect());
        let f = checksum_fields(meta.checksum.as_ref());
        let e = sse_out(meta.sse.as_ref());
        let mut headers = HeaderMap::new();
        // The output shape has no SSE-C members; S3 sends the headers all the same.
        if let (Some(a), Some(m)) = (&e.c_algo, &e.c_md5)
            && let (Ok(a), Ok(m)) = (a.parse(), m.parse())
        {
            headers.insert("x-amz-server-side-encryption-customer-algorithm", a);
            headers.insert("x-amz-server-side-encryption-customer-key-md5", m);
        }
        let mut resp = S3Response::new(CompleteMultipartUploadOutput {
            server_side_encryption: e.sse,
            ssekms_key_id: e.kms_key_id,
            bucket_key_enabled: e.bucket_key,
            version_id: version_id.filter(|v| v != versions::NULL_VERSION),
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&etag_hex)),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            checksum_crc32: f.crc32,
            checksum_crc32c: f.crc32c,
            checksum_crc64nvme: f.crc64nvme,
            checksum_sha1: f.sha1,
            checksum_sha256: f.sha256,
            checksum_type: f.kind,
            ..Default::default()
        });
        resp.headers = headers;
        Ok(resp)
    }

    pub(super) async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        self.upload(&sc, &i.bucket, &i.upload_id, &i.key)?;
        self.abort_upload(&sc, &i.bucket, &i.upload_id).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    /// Drops an upload and its parts.
    pub(super) async fn abort_upload(
        &self,
        sc: &Scope,
        bucket: &str,
        upload_id: &str,
    ) -> S3Result<()> {
        let parts = self.parts(sc, bucket, upload_id)?;
        let mut ops: Vec<WriteOp> = parts
            .iter()
            .map(|p| WriteOp::Delete {
                table: T_PARTS.into(),
                key: sc.part_key(bucket, upload_id, p.number),
            })
            .collect();
        ops.push(WriteOp::Delete {
            table: T_UPLOADS.into(),
            key: sc.upload_key(bucket, upload_id),
        });
        self.write(ops).await?;
        self.delete_blobs_later(parts.into_iter().map(|p| p.blob).collect());
        Ok(())
    }

    pub(super) async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let u = self.upload(&sc, &i.bucket, &i.upload_id, &i.key)?;
        let marker = i.part_number_marker.unwrap_or(0);
        let max = page_size(i.max_parts, "max-parts")?;
        let all: Vec<PartMeta> = self
            .parts(&sc, &i.bucket, &i.upload_id)?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = all.len() > max;
        let page: Vec<PartMeta> = all.into_iter().take(max).collect();
        let next = page.last().map(|p| p.number);
        let parts = page
            .iter()
            .map(|p| {
                let f = checksum_fields(p.checksum.as_ref());
                Part {
                    part_number: Some(p.number),
                    e_tag: Some(etag(&p.etag)),
                    size: Some(p.size as i64),
                    last_modified: Some(ts(p.modified_ms)),
                    checksum_crc32: f.crc32,
                    checksum_crc32c: f.crc32c,
                    checksum_crc64nvme: f.crc64nvme,
                    checksum_sha1: f.sha1,
                    checksum_sha256: f.sha256,
                }
            })
            .collect();
        let owner = self.owner_of(u.owner.as_deref());
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(i.upload_id.clone()),
            part_number_marker: Some(marker),
            next_part_number_marker: next,
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
            storage_class: Some(StorageClass::from(
                u.content
                    .storage_class
                    .clone()
                    .unwrap_or_else(|| "STANDARD".into()),
            )),
            initiator: Some(Initiator {
                display_name: owner.display_name.clone(),
                id: owner.id.clone(),
            }),
            owner: Some(owner),
            checksum_algorithm: u.checksum_algo.clone().map(ChecksumAlgorithm::from),
            checksum_type: algo_type(u.checksum_algo.as_deref(), u.checksum_type.as_deref())
                .map(ChecksumType::from),
            ..Default::default()
        }))
    }

    pub(super) async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        self.bucket(&sc, &i.bucket)?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let rows = self
            .state
            .scan(T_UPLOADS, &sc.objects_prefix(&i.bucket), None, 100_000)
            .map_err(internal)?;
        let base = sc.objects_prefix(&i.bucket).len();
        let mut ups: Vec<(String, UploadMeta)> = rows
            .into_iter()
            .filter_map(|(k, v)| {
                Some((
                    k[base..].to_owned(),
                    serde_json::from_slice::<UploadMeta>(&v).ok()?,
                ))
            })
            .filter(|(_, u)| u.key.starts_with(&prefix))
            .collect();
        ups.sort_by(|a, b| {
            (a.1.key.as_str(), a.1.initiated_ms).cmp(&(b.1.key.as_str(), b.1.initiated_ms))
        });
        let key_marker = i.key_marker.clone().unwrap_or_default();
        let id_marker = i.upload_id_marker.clone();
        ups.retain(|(id, u)| {
            if key_marker.is_empty() {
                return true;
            }
            match u.key.as_str().cmp(key_marker.as_str()) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => {
                    id_marker.as_ref().is_some_and(|m| id.as_str() > m.as_str())
                }
            }
        });
        let max = page_size(i.max_uploads, "max-uploads")?;
        let delimiter = i.delimiter.clone().filter(|d| !d.is_empty());
        let mut uploads = Vec::new();
        let mut cps: Vec<String> = Vec::new();
        let mut truncated = false;
        let mut next: Option<(String, String)> = None;
        for (id, u) in ups {
            let owner = self.owner_of(u.owner.as_deref());
            if let Some(d) = &delimiter
                && let Some(pos) = u.key[prefix.len()..].find(d.as_str())
            {
                let cp = u.key[..prefix.len() + pos + d.len()].to_owned();
                if cps.last() != Some(&cp) {
                    if uploads.len() + cps.len() == max {
                        truncated = true;
                        break;
                    }
                    cps.push(cp);
                }
                continue;
            }
            if uploads.len() + cps.len() == max {
                truncated = true;
                break;
            }
            next = Some((u.key.clone(), id.clone()));
            uploads.push(MultipartUpload {
                key: Some(u.key.clone()),
                upload_id: Some(id),
                initiated: Some(ts(u.initiated_ms)),
                storage_class: Some(StorageClass::from(
                    u.content
                        .storage_class
                        .clone()
                        .unwrap_or_else(|| "STANDARD".into()),
                )),
                initiator: Some(Initiator {
                    display_name: owner.display_name.clone(),
                    id: owner.id.clone(),
                }),
                owner: Some(owner.clone()),
                checksum_algorithm: u.checksum_algo.clone().map(ChecksumAlgorithm::from),
                checksum_type: algo_type(u.checksum_algo.as_deref(), u.checksum_type.as_deref())
                    .map(ChecksumType::from),
            });
        }
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket.clone()),
            key_marker: Some(key_marker),
            upload_id_marker: i.upload_id_marker.clone(),
            next_key_marker: if truncated {
                next.as_ref().map(|n| n.0.clone())
            } else {
                None
            },
            next_upload_id_marker: if truncated { next.map(|n| n.1) } else { None },
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            uploads: Some(uploads),
            prefix: Some(prefix),
            delimiter,
            common_prefixes: (!cps.is_empty()).then(|| {
                cps.into_iter()
                    .map(|p| CommonPrefix { prefix: Some(p) })
                    .collect()
            }),
            ..Default::default()
        }))
    }
}

fn bad_digest(algo: &str) -> S3Error {
    s3_error!(
        BadDigest,
        "The {} you specified did not match the calculated checksum.",
        algo.to_ascii_lowercase()
    )
}
