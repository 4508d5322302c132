//! The error a malformed query is refused with.

/// Why a query was refused. `Display` is the message CloudWatch Logs puts in its
/// `MalformedQueryException`.
///
/// The service's grammar errors read `unexpected symbol found <token> at line <l> and position
/// <p>` (quoted from real responses in public reports, e.g. "unexpected symbol found ( at line 1
/// and position 12" for `sort bin(1d) desc`, "unexpected symbol found <EOF> at line 1 and position
/// 0" for an empty query, and "Ephemeral field is already defined" for a field named twice). Lines
/// count from 1 and positions from 0, as ANTLR (which the wording comes from) counts them. Errors
/// the service raises after parsing (an unknown function, a wrong argument count, ...) were not
/// found quoted anywhere; their wording here is this crate's own, kept short and in the same
/// style.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    message: String,
    /// Character (not byte) offsets of the offending text, end exclusive.
    span: Option<(usize, usize)>,
}

impl QueryError {
    /// The message, as `Display` writes it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Character offsets `(start, end)` of the offending text in the query, end exclusive, when
    /// the error points at one; `StartQuery` reports them as `queryCompileError.location`.
    pub fn span(&self) -> Option<(usize, usize)> {
        self.span
    }

    /// An error that points at no particular text.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        QueryError {
            message: message.into(),
            span: None,
        }
    }

    /// An error about the text at byte offsets `start..end` of `src`.
    pub(crate) fn at(message: impl Into<String>, src: &str, start: usize, end: usize) -> Self {
        let start = start.min(src.len());
        let end = end.clamp(start, src.len());
        QueryError {
            message: message.into(),
            span: Some((char_offset(src, start), char_offset(src, end))),
        }
    }

    /// The grammar's own error for a token it did not expect. `text` is the token as written
    /// (`None` for the end of the query).
    pub(crate) fn unexpected(src: &str, text: Option<&str>, start: usize, end: usize) -> Self {
        let (line, pos) = line_and_position(src, start);
        let shown = text.unwrap_or("<EOF>");
        Self::at(
            format!("unexpected symbol found {shown} at line {line} and position {pos}"),
            src,
            start,
            end,
        )
    }
}

/// Number of characters in `src[..byte]`, tolerating a `byte` that is not on a boundary.
fn char_offset(src: &str, byte: usize) -> usize {
    src.char_indices().take_while(|(i, _)| *i < byte).count()
}

/// 1-based line and 0-based character position of byte offset `at`.
fn line_and_position(src: &str, at: usize) -> (usize, usize) {
    let at = at.min(src.len());
    let before = &src.as_bytes()[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    (line, char_offset(src, at) - char_offset(src, line_start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_symbol_wording_matches_the_service() {
        // Quoted in public reports of real MalformedQueryException responses.
        let q = "sort bin(1d) desc";
        let e = QueryError::unexpected(q, Some("("), 8, 9);
        assert_eq!(
            e.to_string(),
            "unexpected symbol found ( at line 1 and position 8"
        );
        assert_eq!(e.span(), Some((8, 9)));
        let e = QueryError::unexpected("", None, 0, 0);
        assert_eq!(
            e.to_string(),
            "unexpected symbol found <EOF> at line 1 and position 0"
        );
    }

    #[test]
    fn positions_are_per_line_and_in_characters() {
        let q = "fields a\n| filter é x";
        let at = q.find('x').unwrap();
        let e = QueryError::unexpected(q, Some("x"), at, at + 1);
        assert_eq!(
            e.message(),
            "unexpected symbol found x at line 2 and position 11"
        );
        assert_eq!(e.span(), Some((20, 21)));
    }

    #[test]
    fn out_of_range_offsets_do_not_panic() {
        let e = QueryError::at("m", "abc", 10, 2);
        assert_eq!(e.span(), Some((3, 3)));
        let e = QueryError::unexpected("é", Some("x"), 1, 1);
        assert_eq!(e.span(), Some((1, 1)));
    }
}
