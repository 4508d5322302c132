//! Documents for Bedrock knowledge bases, as a library without I/O: the text of a file
//! ([`parse`]), the metadata of its `<name>.metadata.json` sidecar ([`metadata`]), and the
//! chunks it is indexed as ([`chunk`]).
//!
//! Sizes are counted in the embedding model's tokens through [`Tokens`], which the host
//! implements with the model's tokenizer; [`WordTokens`] stands in where no model is at hand
//! (tests, a server without models).

pub mod chunk;
pub mod metadata;
pub mod parse;

pub use chunk::{Chunk, Chunking};
pub use metadata::{Attribute, Metadata};
pub use parse::{Format, Page, ParseError, Parsed};

use std::ops::Range;

/// Splits text into the tokens an embedding model sees, as byte ranges of the text (special
/// tokens left out).
pub trait Tokens: Send + Sync {
    fn spans(&self, text: &str) -> Vec<Range<usize>>;

    fn count(&self, text: &str) -> usize {
        self.spans(text).len()
    }
}

/// Words and punctuation marks as tokens: a WordPiece tokenizer's pre-tokenization, which
/// undercounts a WordPiece model's tokens by the words it splits into several pieces.
pub struct WordTokens;

impl Tokens for WordTokens {
    fn spans(&self, text: &str) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices() {
            if c.is_alphanumeric() {
                start.get_or_insert(i);
                continue;
            }
            if let Some(s) = start.take() {
                out.push(s..i);
            }
            if !c.is_whitespace() {
                out.push(i..i + c.len_utf8());
            }
        }
        if let Some(s) = start {
            out.push(s..text.len());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_tokens_split_words_and_punctuation() {
        let t = "Héllo, wörld 42!";
        let words: Vec<&str> = WordTokens.spans(t).into_iter().map(|r| &t[r]).collect();
        assert_eq!(words, ["Héllo", ",", "wörld", "42", "!"]);
        assert_eq!(WordTokens.count(""), 0);
    }
}
