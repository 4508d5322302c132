//! Prompt-lookup drafting for speculative decoding: the tokens that followed the latest
//! earlier occurrence of what was just generated, in the prompt or the answer so far.
//!
//! Answers grounded in their prompt (RAG answers, summaries, tool results quoted back, code
//! edits) copy long runs of it. When the last few generated tokens occur earlier, the tokens
//! that followed them there are a good guess of what comes next; the engine evaluates the
//! guess in the same forward pass as the next token and keeps the part the model itself
//! would have produced ([`super`]: verification). A wrong guess costs a wider forward pass.
//! The answer stays the one plain decoding gives as far as the engine's load-time proof
//! reaches: passes bit-identical to single tokens at the positions it checks, on this
//! machine's kernels (speculation is off where they are not).
//!
//! The search is a plain scan from the end: a history is at most one context window (a few
//! thousand tokens), and a scan of it costs microseconds against a forward pass's tens of
//! milliseconds.

/// The longest suffix tried as the key, and the shortest: a one-token key matches too often
/// by chance (a space, a comma) to be worth a wider pass.
pub const MAX_KEY: usize = 4;
pub const MIN_KEY: usize = 2;

/// Up to `max` tokens that followed the most recent earlier occurrence of the longest suffix
/// of `history` (from [`MAX_KEY`] down to [`MIN_KEY`] tokens) that occurs earlier. Empty when
/// none does.
pub fn draft(history: &[i32], max: usize) -> Vec<i32> {
    if max == 0 {
        return Vec::new();
    }
    let len = history.len();
    for key_len in (MIN_KEY..=MAX_KEY.min(len.saturating_sub(1))).rev() {
        let key = &history[len - key_len..];
        // Occurrences starting at `start` with at least one token after them, the suffix
        // itself excluded; the latest one first.
        for start in (0..len - key_len).rev() {
            if &history[start..start + key_len] == key {
                let from = start + key_len;
                let to = (from + max).min(len);
                return history[from..to].to_vec();
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_the_latest_earlier_occurrence() {
        // "a b c d e ... a b" -> "c d e"
        let h = [1, 2, 3, 4, 5, 9, 9, 1, 2];
        assert_eq!(draft(&h, 3), vec![3, 4, 5]);
        assert_eq!(draft(&h, 10), vec![3, 4, 5, 9, 9, 1, 2]);
        // Two earlier occurrences: the later one wins.
        let h = [1, 2, 7, 0, 1, 2, 8, 0, 1, 2];
        assert_eq!(draft(&h, 2), vec![8, 0]);
    }

    #[test]
    fn prefers_the_longest_key() {
        // The 2-token key (5, 6) occurs at the start followed by 1; the 3-token key (4, 5, 6)
        // occurs later followed by 2.
        let h = [5, 6, 1, 0, 4, 5, 6, 2, 0, 4, 5, 6];
        assert_eq!(draft(&h, 1), vec![2]);
        let h = [4, 5, 6, 2, 0, 5, 6, 1, 0, 4, 5, 6];
        assert_eq!(draft(&h, 1), vec![2]);
    }

    #[test]
    fn nothing_without_a_match_of_the_minimum_key() {
        assert!(draft(&[], 4).is_empty());
        assert!(draft(&[1], 4).is_empty());
        assert!(draft(&[1, 2, 3, 4], 4).is_empty());
        // Only a one-token key repeats: too weak to draft on.
        assert!(draft(&[7, 1, 8, 2, 9, 1], 4).is_empty());
        assert!(draft(&[1, 2, 1, 2], 0).is_empty());
    }

    #[test]
    fn a_repeated_token_drafts_from_its_latest_occurrence() {
        // The key (3, 3, 3) last occurred one step back: one token follows it there.
        assert_eq!(draft(&[3, 3, 3, 3], 4), vec![3]);
    }
}
