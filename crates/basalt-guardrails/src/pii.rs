//! The sensitive-information policy: PII recognizers and custom regexes.
//! (Filled in by the PII work: validated recognizers for every entity type.)

use crate::config::{PiiAction, PiiType, SensitiveInformationPolicy};
use crate::{ConfigError, Source};

/// What matched: a PII entity type, or a custom regex (its index in the policy).
#[derive(Debug, Clone, PartialEq)]
pub enum PiiKind {
    Entity(PiiType),
    Regex(usize),
}

/// One match of the policy in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct PiiHit {
    pub kind: PiiKind,
    pub matched: String,
    /// Byte range of the match in the input.
    pub start: usize,
    pub end: usize,
    pub action: PiiAction,
}

/// A sensitive-information policy compiled for matching.
#[derive(Debug, Default)]
pub struct PiiFilter {}

impl PiiFilter {
    pub fn new(_policy: &SensitiveInformationPolicy) -> Result<PiiFilter, ConfigError> {
        Ok(PiiFilter {})
    }

    /// Every match in `text` of an entity or regex enabled for `source`, in text order,
    /// without overlaps.
    pub fn find(&self, _text: &str, _source: Source) -> Vec<PiiHit> {
        Vec::new()
    }
}
