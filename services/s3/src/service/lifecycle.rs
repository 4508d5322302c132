//! Lifecycle rules at work: a sweep (run by a worker on the store's leases, so one node at a
//! time does it) expires current objects, noncurrent versions and lone delete markers, and
//! aborts incomplete multipart uploads, as the buckets' rules say. Transitions are accepted
//! and recorded but change nothing (one storage class here).

use super::*;
use crate::lifecycle::{Candidate, day_ms, rule_matches};
use s3s::dto::LifecycleRule;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub noncurrent: usize,
    pub markers: usize,
    pub aborted: usize,
}

fn enabled(rules: &[LifecycleRule]) -> impl Iterator<Item = &LifecycleRule> {
    rules.iter().filter(|r| r.status.as_str() == "Enabled")
}

impl BasaltS3 {
    /// Applies every bucket's lifecycle rules as of `now_ms`.
    pub async fn sweep_lifecycle(&self, now_ms: i64) -> Result<Swept, String> {
        let sc = Scope {
            account: self.cfg.account_id.clone(),
            region: self.cfg.region.clone(),
        };
        let fail =
            |e: S3Error| format!("{}: {}", e.code().as_str(), e.message().unwrap_or_default());
        let rows = self
            .state
            .scan(T_BUCKETS, &sc.prefix(), None, 100_000)
            .map_err(|e| e.to_string())?;
        let mut swept = Swept::default();
        for (_, raw) in rows {
            let Ok(b) = serde_json::from_slice::<BucketMeta>(&raw) else {
                continue;
            };
            let Some(cfg) = &b.lifecycle else { continue };
            let region_sc = Scope {
                account: sc.account.clone(),
                region: b.region.clone(),
            };
            // One bucket's failure does not stop the others'.
            if let Err(e) = self
                .sweep_bucket(&region_sc, &b, cfg, now_ms, &mut swept)
                .await
            {
                tracing::warn!(bucket = %b.name, error = %fail(e), "lifecycle sweep of a bucket failed");
            }
        }
        Ok(swept)
    }

    async fn sweep_bucket(
        &self,
        sc: &Scope,
        b: &BucketMeta,
        cfg: &s3s::dto::BucketLifecycleConfiguration,
        now: i64,
        swept: &mut Swept,
    ) -> S3Result<()> {
        let rules = &cfg.rules;
        let day = day_ms();
        let origin = Origin {
            request_id: request_id(),
            host_id: basalt_core::ids::host_id(),
            source_ip: "s3.amazonaws.com".into(),
        };
        // Current objects.
        let base = sc.objects_prefix(&b.name);
        // Page by page: a bucket's records (inline bodies included) are never all in memory.
        let mut after: Option<String> = None;
        loop {
            let page = self
                .state
                .scan(T_OBJECTS, &base, after.as_deref(), 1000)
                .map_err(internal)?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = Some(last.clone());
            for (row, raw) in page {
                let Some(key) = row.strip_prefix(&base).map(str::to_owned) else {
                    continue;
                };
                let Some((meta, _)) = decode_object(raw) else {
                    continue;
                };
                let cand = Candidate {
                    key: &key,
                    tags: &meta.tags,
                    size: meta.size,
                };
                if meta.delete_marker {
                    continue;
                }
                let expire = crate::lifecycle::expiration(cfg, &cand, meta.modified_ms, day)
                    .is_some_and(|(at, _)| at <= now);
                if expire
                    && self
                        .delete_any(sc, &b.name, &key, None, false, &origin)
                        .await
                        .is_ok()
                {
                    swept.expired += 1;
                }
            }
        }
        // Noncurrent versions (a version becomes noncurrent when the next one is written) and
        // delete markers left without versions behind them.
        let noncurrent_rules: Vec<&LifecycleRule> = enabled(rules)
            .filter(|r| r.noncurrent_version_expiration.is_some())
            .collect();
        let marker_rules: Vec<&LifecycleRule> = enabled(rules)
            .filter(|r| {
                r.expiration
                    .as_ref()
                    .is_some_and(|e| e.expired_object_delete_marker == Some(true))
            })
            .collect();
        if b.versioning.is_some() && !(noncurrent_rules.is_empty() && marker_rules.is_empty()) {
            for key in self.version_keys(sc, &b.name)? {
                let versions = self.versions_of(sc, &b.name, &key)?;
                let mut remaining = versions.len();
                for (i, v) in versions.iter().enumerate().skip(1) {
                    let since = versions[i - 1].meta.modified_ms;
                    let newer = i - 1;
                    let cand = Candidate {
                        key: &key,
                        tags: &v.meta.tags,
                        size: v.meta.size,
                    };
                    let due = noncurrent_rules
                        .iter()
                        .filter(|r| rule_matches(r, &cand))
                        .filter_map(|r| r.noncurrent_version_expiration.as_ref())
                        .any(|n| {
                            let keep = n.newer_noncurrent_versions.unwrap_or(0).max(0) as usize;
                            n.noncurrent_days
                                .is_some_and(|d| since + i64::from(d) * day <= now)
                                && newer >= keep
                        });
                    if due
                        && let Some(vid) = v.meta.version_id.as_deref()
                        && self
                            .delete_any(sc, &b.name, &key, Some(vid), false, &origin)
                            .await
                            .is_ok()
                    {
                        swept.noncurrent += 1;
                        remaining -= 1;
                    }
                }
                // The newest is a delete marker with nothing left behind it.
                if remaining == 1
                    && let Some(m) = versions.first().map(|v| &v.meta)
                    && m.delete_marker
                    && marker_rules.iter().any(|r| {
                        rule_matches(
                            r,
                            &Candidate {
                                key: &key,
                                tags: &[],
                                size: 0,
                            },
                        )
                    })
                    && let Some(vid) = m.version_id.as_deref()
                    && self
                        .delete_any(sc, &b.name, &key, Some(vid), false, &origin)
                        .await
                        .is_ok()
                {
                    swept.markers += 1;
                }
            }
        }
        // Incomplete multipart uploads.
        let abort_days: Vec<(&LifecycleRule, i32)> = enabled(rules)
            .filter_map(|r| {
                r.abort_incomplete_multipart_upload
                    .as_ref()
                    .and_then(|a| a.days_after_initiation)
                    .map(|d| (r, d))
            })
            .collect();
        if !abort_days.is_empty() {
            let ups = self
                .state
                .scan(T_UPLOADS, &sc.objects_prefix(&b.name), None, 100_000)
                .map_err(internal)?;
            let base = sc.objects_prefix(&b.name);
            for (row, raw) in ups {
                let Ok(u) = serde_json::from_slice::<UploadMeta>(&raw) else {
                    continue;
                };
                let Some(id) = row.strip_prefix(&base) else {
                    continue;
                };
                let cand = Candidate {
                    key: &u.key,
                    tags: &[],
                    size: 0,
                };
                let due = abort_days.iter().any(|(r, d)| {
                    rule_matches(r, &cand) && u.initiated_ms + i64::from(*d) * day <= now
                });
                if due && self.abort_upload(sc, &b.name, id).await.is_ok() {
                    swept.aborted += 1;
                }
            }
        }
        Ok(())
    }
}

const QUEUE: &str = "s3.lifecycle";
const SWEEP: &str = "sweep";

/// How often the rules are applied: every hour, or with a shortened lifecycle day, four times
/// a day (at least once a second).
fn sweep_every_ms() -> i64 {
    (day_ms() / 4).clamp(1000, 3_600_000)
}

/// Runs the lifecycle sweep on the store's leases: one node at a time, and a sweep cut short
/// by a crash is run again by any node once its lease expires.
pub fn start_lifecycle_worker(s3: Arc<BasaltS3>) {
    tokio::spawn(async move {
        let state = s3.state.clone();
        let st = state.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if st.pending(QUEUE)? == 0 {
                let now = st.clock_ms()?;
                st.batch(&[WriteOp::Enqueue {
                    queue: QUEUE.into(),
                    id: SWEEP.into(),
                    payload: Vec::new(),
                    due_ms: now,
                }])?;
            }
            Ok::<(), StoreError>(())
        })
        .await;
        loop {
            let st = state.clone();
            let claimed = tokio::task::spawn_blocking(move || {
                let now = st.clock_ms()?;
                Ok::<_, StoreError>((now, st.claim(QUEUE, now, 600_000, 1)?))
            })
            .await;
            let Ok(Ok((now, claims))) = claimed else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            let Some(claim) = claims.into_iter().next() else {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            // A long sweep keeps its lease, so that no other node starts the same one.
            let renewer = {
                let (st, c) = (state.clone(), claim.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(120)).await;
                        let (st, c) = (st.clone(), c.clone());
                        let _ = tokio::task::spawn_blocking(move || {
                            let now = st.clock_ms()?;
                            st.renew(&c, now, 600_000)
                        })
                        .await;
                    }
                })
            };
            let result = s3.sweep_lifecycle(now).await;
            renewer.abort();
            match result {
                Ok(s) if s != Swept::default() => tracing::info!(?s, "lifecycle sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "lifecycle sweep failed"),
            }
            let st = state.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let next = st.clock_ms()? + sweep_every_ms();
                st.complete(
                    &claim,
                    &[WriteOp::Enqueue {
                        queue: QUEUE.into(),
                        id: SWEEP.into(),
                        payload: Vec::new(),
                        due_ms: next,
                    }],
                )
            })
            .await;
        }
    });
}
