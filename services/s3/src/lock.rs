//! S3 Object Lock's rules: retention modes, default retention, and what a lock forbids. No
//! HTTP here.

use serde::{Deserialize, Serialize};

/// A bucket's Object Lock configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LockConfig {
    /// Object Lock is on (it cannot be turned off again).
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultRetention>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DefaultRetention {
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<i32>,
}

impl DefaultRetention {
    /// The retention an object written at `now_ms` gets.
    pub fn applied(&self, now_ms: i64) -> Retention {
        let day = 86_400_000i64;
        let span = match (self.days, self.years) {
            (Some(d), _) => i64::from(d).saturating_mul(day),
            (None, Some(y)) => i64::from(y).saturating_mul(365 * day),
            (None, None) => 0,
        };
        Retention {
            mode: self.mode,
            until_ms: now_ms.saturating_add(span),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    Governance,
    Compliance,
}

impl Mode {
    /// Exactly `GOVERNANCE` or `COMPLIANCE` (S3 is case-sensitive here).
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "GOVERNANCE" => Some(Mode::Governance),
            "COMPLIANCE" => Some(Mode::Compliance),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Governance => "GOVERNANCE",
            Mode::Compliance => "COMPLIANCE",
        }
    }
}

/// An object version's retention.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Retention {
    pub mode: Mode,
    /// Epoch milliseconds.
    pub until_ms: i64,
}

/// What a lock refuses, as S3 words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// 400 InvalidRetentionPeriod.
    #[error("Default retention period must be a positive integer value.")]
    InvalidPeriod,
    /// 400 MalformedXML.
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema"
    )]
    Malformed,
    /// 403 AccessDenied.
    #[error("Access Denied because object protected by object lock.")]
    Locked,
    /// 400 InvalidArgument.
    #[error("The retain until date must be in the future!")]
    PastDate,
}

/// Checks a default retention: a mode and exactly one positive period.
pub fn check_default(
    mode: Option<&str>,
    days: Option<i32>,
    years: Option<i32>,
) -> Result<DefaultRetention, LockError> {
    let mode = mode.and_then(Mode::parse).ok_or(LockError::Malformed)?;
    // S3 keeps default retention within 100 years.
    match (days, years) {
        (Some(_), Some(_)) | (None, None) => Err(LockError::Malformed),
        (Some(d), None) if !(1..=36_500).contains(&d) => Err(LockError::InvalidPeriod),
        (None, Some(y)) if !(1..=100).contains(&y) => Err(LockError::InvalidPeriod),
        _ => Ok(DefaultRetention { mode, days, years }),
    }
}

/// Whether a version may be deleted (or overwritten in place) now.
pub fn check_delete(
    retention: Option<&Retention>,
    legal_hold: bool,
    bypass_governance: bool,
    now_ms: i64,
) -> Result<(), LockError> {
    if legal_hold {
        return Err(LockError::Locked);
    }
    match retention {
        Some(r) if r.until_ms > now_ms => match r.mode {
            Mode::Compliance => Err(LockError::Locked),
            Mode::Governance if !bypass_governance => Err(LockError::Locked),
            Mode::Governance => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Whether a version's retention may change from `old` to `new` (`None`: removed). Extending a
/// retention is always allowed; COMPLIANCE can never be shortened, removed or weakened while
/// in force; GOVERNANCE can with the bypass.
pub fn check_change(
    old: Option<&Retention>,
    new: Option<&Retention>,
    bypass_governance: bool,
    now_ms: i64,
) -> Result<(), LockError> {
    if let Some(n) = new
        && n.until_ms <= now_ms
    {
        return Err(LockError::PastDate);
    }
    let Some(o) = old.filter(|o| o.until_ms > now_ms) else {
        return Ok(());
    };
    let weakens = match new {
        None => true,
        Some(n) => n.until_ms < o.until_ms || (o.mode == Mode::Compliance && n.mode != o.mode),
    };
    let mode_changes = new.is_some_and(|n| n.mode != o.mode);
    match o.mode {
        Mode::Compliance if weakens || mode_changes => Err(LockError::Locked),
        Mode::Governance if (weakens || mode_changes) && !bypass_governance => {
            Err(LockError::Locked)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn r(mode: Mode, until_ms: i64) -> Retention {
        Retention { mode, until_ms }
    }

    #[test]
    fn defaults_need_one_positive_period() {
        assert!(check_default(Some("GOVERNANCE"), Some(1), None).is_ok());
        assert_eq!(
            check_default(Some("GOVERNANCE"), Some(1), Some(1)),
            Err(LockError::Malformed)
        );
        assert_eq!(
            check_default(Some("GOVERNANCE"), Some(0), None),
            Err(LockError::InvalidPeriod)
        );
        assert_eq!(
            check_default(Some("COMPLIANCE"), None, Some(-1)),
            Err(LockError::InvalidPeriod)
        );
        assert_eq!(
            check_default(Some("governance"), Some(1), None),
            Err(LockError::Malformed)
        );
        let d = check_default(Some("COMPLIANCE"), None, Some(1)).unwrap();
        assert_eq!(d.applied(0).until_ms, 365 * 86_400_000);
    }

    #[test]
    fn deletes_under_lock() {
        let g = r(Mode::Governance, NOW + 10);
        let c = r(Mode::Compliance, NOW + 10);
        assert_eq!(
            check_delete(Some(&g), false, false, NOW),
            Err(LockError::Locked)
        );
        assert!(check_delete(Some(&g), false, true, NOW).is_ok());
        assert_eq!(
            check_delete(Some(&c), false, true, NOW),
            Err(LockError::Locked)
        );
        assert!(check_delete(Some(&c), false, false, NOW + 10).is_ok());
        assert_eq!(check_delete(None, true, true, NOW), Err(LockError::Locked));
        assert!(check_delete(None, false, false, NOW).is_ok());
    }

    #[test]
    fn retention_changes() {
        let g = r(Mode::Governance, NOW + 100);
        let c = r(Mode::Compliance, NOW + 100);
        // Extending is always fine.
        assert!(check_change(Some(&c), Some(&r(Mode::Compliance, NOW + 200)), false, NOW).is_ok());
        assert!(check_change(Some(&g), Some(&r(Mode::Governance, NOW + 200)), false, NOW).is_ok());
        // Shortening or switching modes.
        assert!(check_change(Some(&g), Some(&r(Mode::Governance, NOW + 50)), false, NOW).is_err());
        assert!(check_change(Some(&g), Some(&r(Mode::Governance, NOW + 50)), true, NOW).is_ok());
        assert!(check_change(Some(&g), Some(&r(Mode::Compliance, NOW + 100)), false, NOW).is_err());
        assert!(check_change(Some(&g), Some(&r(Mode::Compliance, NOW + 100)), true, NOW).is_ok());
        assert!(check_change(Some(&c), Some(&r(Mode::Governance, NOW + 300)), true, NOW).is_err());
        assert!(check_change(Some(&c), Some(&r(Mode::Compliance, NOW + 50)), true, NOW).is_err());
        assert_eq!(
            check_change(None, Some(&r(Mode::Governance, NOW - 1)), false, NOW),
            Err(LockError::PastDate)
        );
        // An expired retention no longer binds.
        assert!(check_change(Some(&r(Mode::Compliance, NOW - 1)), None, false, NOW).is_ok());
    }
}
