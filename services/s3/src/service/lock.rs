//! Object Lock: the bucket configuration, object retention and legal holds (the rules are
//! `crate::lock`).

use super::*;
use crate::lock::{self, LockError, Mode, Retention};

pub(super) fn lock_error(e: LockError) -> S3Error {
    match e {
        LockError::InvalidPeriod => custom_error(
            "InvalidRetentionPeriod",
            e.to_string(),
            http::StatusCode::BAD_REQUEST,
        ),
        LockError::Malformed => S3Error::with_message(S3ErrorCode::MalformedXML, e.to_string()),
        LockError::Locked => S3Error::with_message(S3ErrorCode::AccessDenied, e.to_string()),
        LockError::PastDate => S3Error::with_message(S3ErrorCode::InvalidArgument, e.to_string()),
    }
}

fn missing_lock() -> S3Error {
    s3_error!(
        InvalidRequest,
        "Bucket is missing Object Lock Configuration"
    )
}

/// The lock a write asks for with `x-amz-object-lock-*` headers, else the bucket's default
/// retention; `(retention, legal hold)`.
pub(super) fn requested_lock(
    bucket: &BucketMeta,
    mode: Option<&str>,
    until: Option<&Timestamp>,
    legal_hold: Option<&str>,
) -> S3Result<(Option<Retention>, bool)> {
    let asked = mode.is_some() || until.is_some() || legal_hold.is_some();
    if asked && !bucket.lock_enabled() {
        return Err(missing_lock());
    }
    let retention = match (mode, until) {
        (Some(m), Some(u)) => {
            let mode = Mode::parse(m)
                .ok_or_else(|| s3_error!(InvalidArgument, "Unknown wormMode directive."))?;
            let until_ms = timestamp_ms(u)
                .ok_or_else(|| s3_error!(InvalidArgument, "Invalid retain until date"))?;
            if until_ms <= now_ms() {
                return Err(lock_error(LockError::PastDate));
            }
            Some(Retention { mode, until_ms })
        }
        (None, None) => bucket
            .object_lock
            .as_ref()
            .and_then(|l| l.default.as_ref())
            .map(|d| d.applied(now_ms())),
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
            ));
        }
    };
    let hold = match legal_hold {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => {
            return Err(s3_error!(
                InvalidArgument,
                "Legal Hold must be either of 'ON' or 'OFF'"
            ));
        }
    };
    Ok((retention, hold))
}

/// The `x-amz-object-lock-*` members of a read's answer.
pub(super) fn lock_out(
    meta: &ObjectMeta,
) -> (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
) {
    (
        meta.retention
            .map(|r| ObjectLockMode::from(r.mode.as_str().to_owned())),
        meta.retention.map(|r| ts(r.until_ms)),
        meta.legal_hold
            .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
    )
}

impl BasaltS3 {
    pub(super) async fn put_object_lock_configuration(
        &self,
        req: S3Request<PutObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
        let sc = self.scope(&req);
        let malformed = || lock_error(LockError::Malformed);
        let c = req
            .input
            .object_lock_configuration
            .as_ref()
            .ok_or_else(malformed)?;
        if c.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some("Enabled") {
            return Err(malformed());
        }
        let default = match c.rule.as_ref().and_then(|r| r.default_retention.as_ref()) {
            None => None,
            Some(d) => Some(
                lock::check_default(d.mode.as_ref().map(|m| m.as_str()), d.days, d.years)
                    .map_err(lock_error)?,
            ),
        };
        self.update_bucket(&sc, &req.input.bucket, |b| {
            if !b.lock_enabled() && b.versioning.as_deref() != Some("Enabled") {
                return Err(s3_error!(
                    InvalidBucketState,
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
                ));
            }
            b.object_lock = Some(lock::LockConfig {
                enabled: true,
                default: default.clone(),
            });
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
    }

    pub(super) async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let sc = self.scope(&req);
        let b = self.bucket(&sc, &req.input.bucket)?;
        let Some(l) = b.object_lock.filter(|l| l.enabled) else {
            return Err(s3_error!(
                ObjectLockConfigurationNotFoundError,
                "Object Lock configuration does not exist for this bucket"
            ));
        };
        Ok(S3Response::new(GetObjectLockConfigurationOutput {
            object_lock_configuration: Some(ObjectLockConfiguration {
                object_lock_enabled: Some(ObjectLockEnabled::from_static(
                    ObjectLockEnabled::ENABLED,
                )),
                rule: l.default.map(|d| ObjectLockRule {
                    default_retention: Some(DefaultRetention {
                        days: d.days,
                        mode: Some(ObjectLockRetentionMode::from(d.mode.as_str().to_owned())),
                        years: d.years,
                    }),
                }),
            }),
        }))
    }

    pub(super) async fn put_object_retention(
        &self,
        req: S3Request<PutObjectRetentionInput>,
    ) -> S3Result<S3Response<PutObjectRetentionOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let b = self.bucket(&sc, &i.bucket)?;
        if !b.lock_enabled() {
            return Err(missing_lock());
        }
        let new = match &i.retention {
            None => None,
            Some(r) => match (&r.mode, &r.retain_until_date) {
                (None, None) => None,
                (Some(m), Some(u)) => Some(Retention {
                    mode: Mode::parse(m.as_str())
                        .ok_or_else(|| lock_error(LockError::Malformed))?,
                    until_ms: timestamp_ms(u).ok_or_else(|| lock_error(LockError::Malformed))?,
                }),
                _ => return Err(lock_error(LockError::Malformed)),
            },
        };
        let bypass = i.bypass_governance_retention.unwrap_or(false);
        self.amend_object(&sc, &i.bucket, &i.key, i.version_id.as_deref(), |m| {
            lock::check_change(m.retention.as_ref(), new.as_ref(), bypass, now_ms())
                .map_err(lock_error)?;
            m.retention = new;
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutObjectRetentionOutput::default()))
    }

    pub(super) async fn get_object_retention(
        &self,
        req: S3Request<GetObjectRetentionInput>,
    ) -> S3Result<S3Response<GetObjectRetentionOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let b = self.bucket(&sc, &i.bucket)?;
        if !b.lock_enabled() {
            return Err(missing_lock());
        }
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        let Some(r) = meta.retention else {
            return Err(s3_error!(
                NoSuchObjectLockConfiguration,
                "The specified object does not have a ObjectLock configuration"
            ));
        };
        Ok(S3Response::new(GetObjectRetentionOutput {
            retention: Some(ObjectLockRetention {
                mode: Some(ObjectLockRetentionMode::from(r.mode.as_str().to_owned())),
                retain_until_date: Some(ts(r.until_ms)),
            }),
        }))
    }

    pub(super) async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let b = self.bucket(&sc, &i.bucket)?;
        if !b.lock_enabled() {
            return Err(missing_lock());
        }
        let on = match i
            .legal_hold
            .as_ref()
            .and_then(|h| h.status.as_ref())
            .map(|s| s.as_str())
        {
            Some("ON") => true,
            Some("OFF") => false,
            _ => return Err(lock_error(LockError::Malformed)),
        };
        self.amend_object(&sc, &i.bucket, &i.key, i.version_id.as_deref(), |m| {
            m.legal_hold = on;
            Ok(())
        })
        .await?;
        Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
    }

    pub(super) async fn get_object_legal_hold(
        &self,
        req: S3Request<GetObjectLegalHoldInput>,
    ) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
        let sc = self.scope(&req);
        let i = &req.input;
        let b = self.bucket(&sc, &i.bucket)?;
        if !b.lock_enabled() {
            return Err(missing_lock());
        }
        let (meta, _) = self.object_version(&sc, &i.bucket, &i.key, i.version_id.as_deref())?;
        Ok(S3Response::new(GetObjectLegalHoldOutput {
            legal_hold: Some(ObjectLockLegalHold {
                status: Some(ObjectLockLegalHoldStatus::from(
                    if meta.legal_hold { "ON" } else { "OFF" }.to_owned(),
                )),
            }),
        }))
    }
}
