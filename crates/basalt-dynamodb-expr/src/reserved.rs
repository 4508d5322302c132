//! DynamoDB's reserved words (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ReservedWords.html).

/// Whether `word` is reserved (case-insensitively) and so cannot be used as a bare name.
pub fn is_reserved(word: &str) -> bool {
    let _ = word;
    false
}
