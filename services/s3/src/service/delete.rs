//! DeleteObject and DeleteObjects.

use super::*;

impl BasaltS3 {
    /// DeleteObject's semantics for the bucket's versioning state.
    pub(super) async fn delete_any(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
        origin: &Origin,
    ) -> S3Result<versions::Deleted> {
        for _ in 0..16 {
            let snap = self.bucket_snapshot(sc, bucket)?;
            if let Some(status) = &snap.versioning {
                return self
                    .delete_versioned(
                        sc,
                        bucket,
                        key,
                        status,
                        version_id,
                        bypass_governance,
                        &snap,
                        origin,
                    )
                    .await;
            }
            if version_id.is_some_and(|v| v != versions::NULL_VERSION) {
                return Err(s3_error!(InvalidArgument, "Invalid version id specified"));
            }
            let Some((meta, _)) = self.object(sc, bucket, key)? else {
                return Ok(versions::Deleted::default());
            };
            let notice = Notice {
                event: "ObjectRemoved:Delete",
                reason: "DeleteObject",
                origin,
            };
            let change = Change::Deleted { version: None };
            let announced = self.announce(
                sc,
                bucket,
                &snap.region,
                &snap.notifications,
                key,
                &change,
                &notice,
            );
            // Committed only while the bucket stays unversioned.
            let mut ops = vec![
                snap.check(),
                WriteOp::Delete {
                    table: T_OBJECTS.into(),
                    key: sc.object_key(bucket, key),
                },
            ];
            ops.extend(announced.ops.iter().cloned());
            if !self.write_if(ops).await? {
                continue;
            }
            if let Some(b) = meta.blob {
                self.delete_blobs_later(vec![b]);
            }
            self.announced(announced);
            return Ok(versions::Deleted::default());
        }
        Err(s3_error!(SlowDown, "Please reduce your request rate."))
    }

    pub(super) async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let i = &req.input;
        let d = self
            .delete_any(
                &sc,
                &i.bucket,
                &i.key,
                i.version_id.as_deref(),
                i.bypass_governance_retention.unwrap_or(false),
                &origin,
            )
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: d.delete_marker.then_some(true),
            version_id: d.version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let sc = self.scope(&req);
        let origin = Origin::of(&req);
        let bucket = &req.input.bucket;
        self.bucket(&sc, bucket)?;
        let objs = &req.input.delete.objects;
        if objs.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let quiet = req.input.delete.quiet.unwrap_or(false);
        let bypass = req.input.bypass_governance_retention.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        let denied = req
            .extensions
            .get::<crate::access::DeniedKeys>()
            .cloned()
            .unwrap_or_default();
        for (n, o) in objs.iter().enumerate() {
            if denied.0.contains(&n) {
                errors.push(Error {
                    key: Some(o.key.clone()),
                    code: Some("AccessDenied".to_owned()),
                    message: Some("Access Denied".to_owned()),
                    version_id: o.version_id.clone(),
                });
                continue;
            }
            match self
                .delete_any(
                    &sc,
                    bucket,
                    &o.key,
                    o.version_id.as_deref(),
                    bypass,
                    &origin,
                )
                .await
            {
                Ok(d) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(o.key.clone()),
                            version_id: o.version_id.clone(),
                            delete_marker: d.delete_marker.then_some(true),
                            delete_marker_version_id: d
                                .delete_marker
                                .then(|| d.version_id.clone())
                                .flatten(),
                        });
                    }
                }
                Err(e) => errors.push(Error {
                    key: Some(o.key.clone()),
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                    version_id: o.version_id.clone(),
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }
}
