//! Lifecycle configurations: their validation, and which rule expires an object when. No
//! HTTP here.
//!
//! The configuration is kept as s3s's DTO (serde), so every element AWS defines round-trips
//! through GetBucketLifecycleConfiguration unchanged.

use s3s::dto::{BucketLifecycleConfiguration, LifecycleRule, LifecycleRuleFilter};

/// A real day: what `x-amz-expiration` counts in.
pub const DAY_MS: i64 = 86_400_000;

/// A refusal of a configuration, as S3 words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("{0}")]
    InvalidArgument(&'static str),
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema"
    )]
    Malformed,
}

/// Checks a configuration as PutBucketLifecycleConfiguration does, naming unnamed rules.
pub fn validate(cfg: &mut BucketLifecycleConfiguration) -> Result<(), LifecycleError> {
    if cfg.rules.is_empty() || cfg.rules.len() > 1000 {
        return Err(LifecycleError::Malformed);
    }
    let mut ids = std::collections::HashSet::new();
    for rule in &mut cfg.rules {
        let id = rule
            .id
            .get_or_insert_with(|| uuid::Uuid::new_v4().simple().to_string());
        if id.len() > 255 {
            return Err(LifecycleError::InvalidArgument(
                "ID length should not exceed allowed limit of 255",
            ));
        }
        if !ids.insert(id.clone()) {
            return Err(LifecycleError::InvalidArgument(
                "Rule ID must be unique. Found same ID for more than one rule",
            ));
        }
        if !matches!(rule.status.as_str(), "Enabled" | "Disabled") {
            return Err(LifecycleError::Malformed);
        }
        if rule.prefix.is_some() && rule.filter.is_some() {
            return Err(LifecycleError::Malformed);
        }
        if let Some(e) = &rule.expiration {
            if e.days.is_some_and(|d| d <= 0) {
                return Err(LifecycleError::InvalidArgument(
                    "'Days' for Expiration action must be a positive integer",
                ));
            }
            if let Some(d) = &e.date
                && !at_midnight(d)
            {
                return Err(LifecycleError::InvalidArgument(
                    "'Date' must be at midnight GMT",
                ));
            }
        }
        if let Some(n) = &rule.noncurrent_version_expiration
            && n.noncurrent_days.is_some_and(|d| d <= 0)
        {
            return Err(LifecycleError::InvalidArgument(
                "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
            ));
        }
        if let Some(a) = &rule.abort_incomplete_multipart_upload
            && a.days_after_initiation.is_some_and(|d| d <= 0)
        {
            return Err(LifecycleError::InvalidArgument(
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
            ));
        }
        for t in rule.transitions.iter().flatten() {
            if let Some(d) = &t.date
                && !at_midnight(d)
            {
                return Err(LifecycleError::InvalidArgument(
                    "'Date' must be at midnight GMT",
                ));
            }
        }
    }
    Ok(())
}

fn at_midnight(t: &s3s::dto::Timestamp) -> bool {
    crate::model::timestamp_ms(t).is_some_and(|ms| ms.rem_euclid(DAY_MS) == 0)
}

/// What a rule looks at in an object.
pub struct Candidate<'a> {
    pub key: &'a str,
    pub tags: &'a [(String, String)],
    pub size: u64,
}

/// Whether a rule's prefix or filter selects an object.
pub fn rule_matches(rule: &LifecycleRule, o: &Candidate<'_>) -> bool {
    if let Some(p) = &rule.prefix {
        return o.key.starts_with(p.as_str());
    }
    let Some(f) = &rule.filter else {
        return true;
    };
    filter_matches(f, o)
}

fn filter_matches(f: &LifecycleRuleFilter, o: &Candidate<'_>) -> bool {
    let has_tag = |k: &Option<String>, v: &Option<String>| {
        o.tags.iter().any(|(tk, tv)| {
            Some(tk.as_str()) == k.as_deref() && tv.as_str() == v.as_deref().unwrap_or("")
        })
    };
    let size_ok = |gt: Option<i64>, lt: Option<i64>| {
        gt.is_none_or(|g| o.size as i64 > g) && lt.is_none_or(|l| (o.size as i64) < l)
    };
    if let Some(a) = &f.and {
        return a.prefix.as_deref().is_none_or(|p| o.key.starts_with(p))
            && a.tags.iter().flatten().all(|t| has_tag(&t.key, &t.value))
            && size_ok(a.object_size_greater_than, a.object_size_less_than);
    }
    f.prefix.as_deref().is_none_or(|p| o.key.starts_with(p))
        && f.tag.as_ref().is_none_or(|t| has_tag(&t.key, &t.value))
        && size_ok(f.object_size_greater_than, f.object_size_less_than)
}

/// When a current object written at `modified_ms` expires, and by which rule: S3 rounds
/// `modified + Days` up to the next midnight UTC (days of `day` milliseconds: [`DAY_MS`], or
/// the sweep's shortened [`day_ms`]); a `Date` rule expires at its date.
pub fn expiration(
    cfg: &BucketLifecycleConfiguration,
    o: &Candidate<'_>,
    modified_ms: i64,
    day: i64,
) -> Option<(i64, String)> {
    cfg.rules
        .iter()
        .filter(|r| r.status.as_str() == "Enabled" && rule_matches(r, o))
        .filter_map(|r| {
            let e = r.expiration.as_ref()?;
            let at = match (e.days, &e.date) {
                (Some(d), _) => {
                    let t = modified_ms + i64::from(d) * day;
                    (t + day - 1).div_euclid(day) * day
                }
                (None, Some(date)) => crate::model::timestamp_ms(date)?,
                _ => return None,
            };
            Some((at, r.id.clone().unwrap_or_default()))
        })
        .min_by_key(|(at, _)| *at)
}

/// How long a lifecycle "day" lasts (`BASALT_S3_LIFECYCLE_DAY_SECS`, default a real day):
/// tests shorten it, as RGW's `rgw_lc_debug_interval` does, so rules act within seconds.
pub fn day_ms() -> i64 {
    std::env::var("BASALT_S3_LIFECYCLE_DAY_SECS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .map_or(DAY_MS, |s| s * 1000)
}

/// The `x-amz-expiration` header value.
pub fn header(at_ms: i64, rule_id: &str) -> String {
    let t = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    format!(
        "expiry-date=\"{}\", rule-id=\"{}\"",
        t.format("%a, %d %b %Y %H:%M:%S GMT"),
        rule_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::{ExpirationStatus, LifecycleExpiration, Tag};

    fn rule(id: &str, days: i32) -> LifecycleRule {
        LifecycleRule {
            id: Some(id.into()),
            status: ExpirationStatus::from_static(ExpirationStatus::ENABLED),
            expiration: Some(LifecycleExpiration {
                days: Some(days),
                ..Default::default()
            }),
            abort_incomplete_multipart_upload: None,
            filter: None,
            noncurrent_version_expiration: None,
            noncurrent_version_transitions: None,
            prefix: None,
            transitions: None,
        }
    }

    #[test]
    fn validation() {
        let mut ok = BucketLifecycleConfiguration {
            rules: vec![
                rule("a", 1),
                LifecycleRule {
                    id: None,
                    ..rule("", 2)
                },
            ],
        };
        assert!(validate(&mut ok).is_ok());
        assert!(ok.rules[1].id.as_deref().is_some_and(|i| !i.is_empty()));
        let mut dup = BucketLifecycleConfiguration {
            rules: vec![rule("a", 1), rule("a", 2)],
        };
        assert!(matches!(
            validate(&mut dup),
            Err(LifecycleError::InvalidArgument(_))
        ));
        let mut zero = BucketLifecycleConfiguration {
            rules: vec![rule("a", 0)],
        };
        assert!(validate(&mut zero).is_err());
        let mut long = BucketLifecycleConfiguration {
            rules: vec![rule(&"x".repeat(256), 1)],
        };
        assert!(validate(&mut long).is_err());
        let mut bad_status = BucketLifecycleConfiguration {
            rules: vec![LifecycleRule {
                status: ExpirationStatus::from("enabled".to_owned()),
                ..rule("a", 1)
            }],
        };
        assert_eq!(validate(&mut bad_status), Err(LifecycleError::Malformed));
    }

    #[test]
    fn expiry_rounds_to_midnight_and_filters() {
        let mut r = rule("r1", 1);
        r.filter = Some(LifecycleRuleFilter {
            tag: Some(Tag {
                key: Some("k".into()),
                value: Some("v".into()),
            }),
            ..Default::default()
        });
        let cfg = BucketLifecycleConfiguration { rules: vec![r] };
        let tags = vec![("k".to_owned(), "v".to_owned())];
        let o = Candidate {
            key: "a",
            tags: &tags,
            size: 1,
        };
        let written = 10 * DAY_MS + 3_600_000;
        assert_eq!(
            expiration(&cfg, &o, written, DAY_MS),
            Some((12 * DAY_MS, "r1".to_owned()))
        );
        let none = Candidate {
            key: "a",
            tags: &[],
            size: 1,
        };
        assert_eq!(expiration(&cfg, &none, written, DAY_MS), None);
        assert_eq!(
            header(12 * DAY_MS, "r1"),
            "expiry-date=\"Tue, 13 Jan 1970 00:00:00 GMT\", rule-id=\"r1\""
        );
    }
}
