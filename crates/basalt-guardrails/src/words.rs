//! The word policy: custom words and phrases, and the managed profanity list.
//! (Filled in by the word-policy work: whole-word, case-insensitive matching.)

use crate::Source;
use crate::config::{Action, WordPolicy};

/// One match of the word policy in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct WordHit {
    /// The text as it appears in the input.
    pub matched: String,
    /// Byte range of the match in the input.
    pub start: usize,
    pub end: usize,
    /// True for a match of the managed PROFANITY list, false for a custom word.
    pub managed: bool,
    pub action: Action,
}

/// A word policy compiled for matching.
#[derive(Debug, Default)]
pub struct WordFilter {}

impl WordFilter {
    pub fn new(_policy: &WordPolicy) -> WordFilter {
        WordFilter {}
    }

    /// Every match in `text` of a word enabled for `source`, in text order.
    pub fn find(&self, _text: &str, _source: Source) -> Vec<WordHit> {
        Vec::new()
    }
}
