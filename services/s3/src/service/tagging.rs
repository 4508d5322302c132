//! Object tagging, and the amendment of object records it shares with ACLs and locks.

use super::*;

impl BasaltS3 {
    /// Changes what an object (version) records about itself (tags, ACL, retention, legal
    /// hold); data, metadata and modification time stay as they are. Written only if the record
    /// is still the one read (an unversioned PUT takes no lock), retried when a concurrent
    /// write got there first.
    pub(super) async fn amend_object(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: impl Fn(&mut ObjectMeta) -> S3Result<()>,
    ) -> S3Result<Option<String>> {
        let _guard = self.lock(sc, bucket, key).await;
        let record = sc.object_key(bucket, key);
        if let Some(vid) = version_id {
            let current = self.object(sc, bucket, key)?.map(|(m, _)| m.version_id);
            let is_current = current
                .as_ref()
                .is_some_and(|c| c.as_deref().unwrap_or(versions::NULL_VERSION) == vid);
            if !is_current {
                // An older version: its record alone changes (versioned writes hold the lock).
                let found = self
                    .versions_of(sc, bucket, key)?
                    .into_iter()
                    .find(|v| v.meta.version_id.as_deref() == Some(vid) && !v.meta.delete_marker);
                let Some(v) = found else {
                    // The lookup's own error: invalid id, no such version, or a delete marker.
                    self.object_version(sc, bucket, key, Some(vid))?;
                    return Err(s3_error!(
                        NoSuchVersion,
                        "The specified version does not exist."
                    ));
                };
                let before = self
                    .state
                    .get(T_VERSIONS, &v.row)
                    .map_err(internal)?
                    .unwrap_or_else(|| encode_object(&v.meta, &v.inline));
                let mut meta = v.meta;
                change(&mut meta)?;
                // Only while the version is still as read (another node may amend or delete it).
                let written = self
                    .write_if(vec![
                        WriteOp::Check {
                            table: T_VERSIONS.into(),
                            key: v.row.clone(),
                            expected: Some(before),
                        },
                        WriteOp::Put {
                            table: T_VERSIONS.into(),
                            key: v.row,
                            value: encode_object(&meta, &v.inline),
                        },
                    ])
                    .await?;
                if !written {
                    return Err(s3_error!(
                        OperationAborted,
                        "A conflicting conditional operation is currently in progress against this resource. Please try again."
                    ));
                }
                return Ok(Some(vid.to_owned()));
            }
        }
        for _ in 0..16 {
            let Some(raw) = self.state.get(T_OBJECTS, &record).map_err(internal)? else {
                self.object_or_404(sc, bucket, key)?;
                continue;
            };
            let (mut meta, inline) = decode_object(raw.clone())
                .ok_or_else(|| s3_error!(InternalError, "corrupt object record"))?;
            change(&mut meta)?;
            let value = encode_object(&meta, &inline);
            let mut ops = vec![
                WriteOp::Check {
                    table: T_OBJECTS.into(),
                    key: record.clone(),
                    expected: Some(raw),
                },
                WriteOp::Put {
                    table: T_OBJECTS.into(),
                    key: record.clone(),
                    value: value.clone(),
                },
            ];
            // What changed belongs to a version: the current one's record changes too.
            if let Some(vid) = &meta.version_id
                && let Some(v) = self
                    .versions_of(sc, bucket, key)?
                    .into_iter()
                    .find(|v| v.meta.version_id.as_ref() == Some(vid))
            {
                ops.push(WriteOp::Put {
                    table: T_VERSIONS.into(),
                    key: v.row,
                    value,
                });
            }
            if self.write_if(ops).await? {
                return Ok(meta.version_id);
            }
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }

    pub(super) async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let tags = tags::from_tag_set(&i.tagging.tag_set)?;
        let version_id = self
            .amend_object(&sc, &i.bucket, &i.key, i.version_id.as_deref(), |m| {
                m.tags = tags.clone();
                Ok(())
            })
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
    }

    pub(super) async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tags::to_tag_set(&meta.tags),
            version_id: meta.version_id,
        }))
    }

    pub(super) async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let sc = self.scope(&req);
        let i = req.input;
        let version_id = self
            .amend_object(&sc, &i.bucket, &i.key, i.version_id.as_deref(), |m| {
                m.tags.clear();
                Ok(())
            })
            .await?;
        Ok(no_content(DeleteObjectTaggingOutput { version_id }))
    }
}
