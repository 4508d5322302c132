//! How a document's text becomes chunks, as a knowledge base's chunking configuration says.
//!
//! Chunks are cut at sentence boundaries where they can be: a chunk holds whole sentences up
//! to its token budget, and only a sentence longer than the budget is cut inside, at a token
//! boundary. Overlap repeats the previous chunk's last sentences (at most the overlap's
//! tokens of them), so a fact that straddles two chunks is whole in one of them.

use crate::Tokens;
use std::ops::Range;

/// A chunk: the bytes of the document's text that are embedded (`range`), and those returned
/// when it is retrieved (`context`: the parent chunk under hierarchical chunking, else the
/// same bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub range: Range<usize>,
    pub context: Range<usize>,
}

impl Chunk {
    fn flat(range: Range<usize>) -> Chunk {
        Chunk {
            context: range.clone(),
            range,
        }
    }
}

/// A data source's chunking strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunking {
    /// Bedrock's default: chunks of at most 300 tokens.
    Default,
    FixedSize {
        max_tokens: usize,
        overlap_percentage: usize,
    },
    Hierarchical {
        parent_max_tokens: usize,
        child_max_tokens: usize,
        overlap_tokens: usize,
    },
    /// Needs the embeddings of the sentence windows: see [`semantic_windows`] and [`semantic`].
    Semantic {
        max_tokens: usize,
        buffer_size: usize,
        breakpoint_percentile: usize,
    },
    /// The whole document is one chunk.
    None,
}

/// Bedrock's default chunk size, in tokens.
pub const DEFAULT_MAX_TOKENS: usize = 300;
/// The overlap Basalt gives default chunks.
pub const DEFAULT_OVERLAP_PERCENTAGE: usize = 20;

impl Chunking {
    /// The chunks of `text`, for every strategy but [`Chunking::Semantic`].
    pub fn chunks(&self, text: &str, tokens: &dyn Tokens) -> Vec<Chunk> {
        match *self {
            Chunking::Default => fixed_size(
                text,
                0..text.len(),
                tokens,
                DEFAULT_MAX_TOKENS,
                DEFAULT_MAX_TOKENS * DEFAULT_OVERLAP_PERCENTAGE / 100,
            )
            .into_iter()
            .map(Chunk::flat)
            .collect(),
            Chunking::FixedSize {
                max_tokens,
                overlap_percentage,
            } => fixed_size(
                text,
                0..text.len(),
                tokens,
                max_tokens,
                max_tokens * overlap_percentage / 100,
            )
            .into_iter()
            .map(Chunk::flat)
            .collect(),
            Chunking::Hierarchical {
                parent_max_tokens,
                child_max_tokens,
                overlap_tokens,
            } => {
                let mut out = Vec::new();
                for parent in fixed_size(
                    text,
                    0..text.len(),
                    tokens,
                    parent_max_tokens,
                    overlap_tokens,
                ) {
                    for child in fixed_size(
                        text,
                        parent.clone(),
                        tokens,
                        child_max_tokens,
                        overlap_tokens.min(child_max_tokens / 2),
                    ) {
                        out.push(Chunk {
                            range: child,
                            context: parent.clone(),
                        });
                    }
                }
                out
            }
            Chunking::Semantic { max_tokens, .. } => {
                fixed_size(text, 0..text.len(), tokens, max_tokens, 0)
                    .into_iter()
                    .map(Chunk::flat)
                    .collect()
            }
            Chunking::None => {
                let r = trim(text, 0..text.len());
                if r.is_empty() {
                    Vec::new()
                } else {
                    vec![Chunk::flat(r)]
                }
            }
        }
    }
}

/// The sentences of `text[within]`, as byte ranges without surrounding whitespace: a
/// sentence ends after `.`, `!` or `?` followed by whitespace, and at every line break (a
/// heading or a list item is a sentence of its own).
pub fn sentences(text: &str, within: Range<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = within.start;
    let slice = &text[within.clone()];
    let mut chars = slice.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at = within.start + i;
        let end = match c {
            '\n' => Some(at),
            '.' | '!' | '?' => match chars.peek() {
                Some((_, n)) if n.is_whitespace() => Some(at + 1),
                None => Some(at + 1),
                _ => None,
            },
            _ => None,
        };
        if let Some(end) = end {
            let r = trim(text, start..end);
            if !r.is_empty() {
                out.push(r);
            }
            start = end;
        }
    }
    let r = trim(text, start..within.end);
    if !r.is_empty() {
        out.push(r);
    }
    out
}

fn trim(text: &str, r: Range<usize>) -> Range<usize> {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead == s.len() {
        return r.start..r.start;
    }
    r.start + lead..r.end - trail
}

/// Pieces of `text[within]` of at most `max` tokens each: its sentences, with a sentence
/// longer than `max` cut at token boundaries. Each with its token count.
fn pieces(
    text: &str,
    within: Range<usize>,
    spans: &[Range<usize>],
    max: usize,
) -> Vec<(Range<usize>, usize)> {
    let mut out = Vec::new();
    for s in sentences(text, within) {
        let lo = spans.partition_point(|t| t.start < s.start);
        let hi = spans.partition_point(|t| t.start < s.end);
        let inner = &spans[lo..hi];
        if inner.len() <= max {
            out.push((s, inner.len().max(1)));
            continue;
        }
        for group in inner.chunks(max) {
            let start = if out.is_empty() || group[0].start < s.start {
                s.start
            } else {
                group[0].start
            };
            let start = start.max(s.start);
            let end = group[group.len() - 1].end.min(s.end);
            out.push((start..end, group.len()));
        }
        // The first cut starts at the sentence (text before its first token, e.g. a quote
        // mark, stays in).
        if let Some(first) = out.iter_mut().rev().nth(inner.len().div_ceil(max) - 1) {
            first.0.start = s.start;
        }
    }
    out
}

/// Chunks of at most `max_tokens` tokens of `text[within]`, whole sentences where they fit,
/// each starting with up to `overlap` tokens of the previous chunk's last sentences.
pub fn fixed_size(
    text: &str,
    within: Range<usize>,
    tokens: &dyn Tokens,
    max_tokens: usize,
    overlap: usize,
) -> Vec<Range<usize>> {
    let max_tokens = max_tokens.max(1);
    let spans: Vec<Range<usize>> = tokens
        .spans(&text[within.clone()])
        .into_iter()
        .map(|r| r.start + within.start..r.end + within.start)
        .collect();
    let pieces = pieces(text, within, &spans, max_tokens);
    let mut out = Vec::new();
    let mut first = 0;
    while first < pieces.len() {
        let mut last = first;
        let mut total = pieces[first].1;
        while last + 1 < pieces.len() && total + pieces[last + 1].1 <= max_tokens {
            last += 1;
            total += pieces[last].1;
        }
        out.push(pieces[first].0.start..pieces[last].0.end);
        if last + 1 >= pieces.len() {
            break;
        }
        // Step back over the trailing pieces that fit in the overlap, never to where this
        // chunk started.
        let mut next = last + 1;
        let mut carried = 0;
        while next - 1 > first && carried + pieces[next - 1].1 <= overlap {
            next -= 1;
            carried += pieces[next].1;
        }
        first = next;
    }
    out
}

/// The sentences of `text` and, for each, the text of its window: the sentence with
/// `buffer_size` sentences on either side, which semantic chunking embeds.
pub fn semantic_windows(text: &str, buffer_size: usize) -> (Vec<Range<usize>>, Vec<String>) {
    let sentences = sentences(text, 0..text.len());
    let windows = (0..sentences.len())
        .map(|i| {
            let lo = i.saturating_sub(buffer_size);
            let hi = (i + buffer_size).min(sentences.len() - 1);
            text[sentences[lo].start..sentences[hi].end].to_owned()
        })
        .collect();
    (sentences, windows)
}

/// Semantic chunks: a new chunk starts where the distance between consecutive sentence
/// windows' embeddings (`1 - cosine`) exceeds the `percentile`-th percentile of all such
/// distances; a chunk over `max_tokens` is cut further as fixed-size chunks are.
pub fn semantic(
    text: &str,
    sentences: &[Range<usize>],
    window_embeddings: &[Vec<f32>],
    tokens: &dyn Tokens,
    max_tokens: usize,
    percentile: usize,
) -> Vec<Chunk> {
    if sentences.is_empty() {
        return Vec::new();
    }
    let distances: Vec<f32> = window_embeddings
        .windows(2)
        .map(|w| 1.0 - cosine(&w[0], &w[1]))
        .collect();
    let threshold = percentile_of(&distances, percentile);
    let mut out = Vec::new();
    let mut start = sentences[0].start;
    for (i, d) in distances.iter().enumerate() {
        if *d > threshold {
            out.extend(fixed_size(
                text,
                start..sentences[i].end,
                tokens,
                max_tokens,
                0,
            ));
            start = sentences[i + 1].start;
        }
    }
    out.extend(fixed_size(
        text,
        start..sentences[sentences.len() - 1].end,
        tokens,
        max_tokens,
        0,
    ));
    out.into_iter().map(Chunk::flat).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa.sqrt() * bb.sqrt())
}

/// The `p`-th percentile (nearest rank) of `values`; infinity for none, so nothing breaks.
fn percentile_of(values: &[f32], p: usize) -> f32 {
    if values.is_empty() {
        return f32::INFINITY;
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    let rank = (p as f32 / 100.0 * v.len() as f32).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WordTokens;

    fn texts<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn sentences_end_at_stops_and_lines() {
        let t = "# Title\n\nFirst one. Second one!  Third? v1.2 stays.\nLast";
        assert_eq!(
            texts(t, &sentences(t, 0..t.len())),
            [
                "# Title",
                "First one.",
                "Second one!",
                "Third?",
                "v1.2 stays.",
                "Last"
            ]
        );
    }

    #[test]
    fn fixed_size_packs_whole_sentences_with_overlap() {
        let t = "a b c. d e f. g h i. j k l.";
        // Four tokens per sentence (the stop is a token).
        let chunks = fixed_size(t, 0..t.len(), &WordTokens, 8, 4);
        assert_eq!(
            texts(t, &chunks),
            ["a b c. d e f.", "d e f. g h i.", "g h i. j k l."]
        );
        let none = fixed_size(t, 0..t.len(), &WordTokens, 8, 0);
        assert_eq!(texts(t, &none), ["a b c. d e f.", "g h i. j k l."]);
    }

    #[test]
    fn long_sentences_are_cut_at_token_boundaries() {
        let t = "one two three four five six seven";
        let chunks = fixed_size(t, 0..t.len(), &WordTokens, 3, 0);
        assert_eq!(
            texts(t, &chunks),
            ["one two three", "four five six", "seven"]
        );
        for c in &chunks {
            assert!(WordTokens.count(&t[c.clone()]) <= 3);
        }
    }

    #[test]
    fn every_token_is_in_some_chunk() {
        let t = "Alpha beta gamma. Delta epsilon zeta eta theta iota kappa lambda. Mu nu.\nXi omicron pi rho sigma tau.";
        for max in 1..12 {
            for overlap in [0, 1, 3] {
                let chunks = fixed_size(t, 0..t.len(), &WordTokens, max, overlap);
                for tok in WordTokens.spans(t) {
                    assert!(
                        chunks
                            .iter()
                            .any(|c| c.start <= tok.start && tok.end <= c.end),
                        "max {max} overlap {overlap}: {:?} lost",
                        &t[tok]
                    );
                }
                for c in &chunks {
                    assert!(
                        WordTokens.count(&t[c.clone()]) <= max,
                        "{:?}",
                        &t[c.clone()]
                    );
                }
            }
        }
    }

    #[test]
    fn hierarchical_children_point_at_their_parent() {
        let t = "a b c. d e f. g h i. j k l.";
        let chunks = Chunking::Hierarchical {
            parent_max_tokens: 8,
            child_max_tokens: 4,
            overlap_tokens: 0,
        }
        .chunks(t, &WordTokens);
        assert_eq!(chunks.len(), 4);
        assert_eq!(&t[chunks[1].range.clone()], "d e f.");
        assert_eq!(&t[chunks[1].context.clone()], "a b c. d e f.");
        assert_eq!(&t[chunks[2].context.clone()], "g h i. j k l.");
    }

    #[test]
    fn no_chunking_is_one_chunk() {
        let c = Chunking::None.chunks("  whole text \n", &WordTokens);
        assert_eq!(c, vec![Chunk::flat(2..12)]);
        assert!(Chunking::None.chunks("  ", &WordTokens).is_empty());
    }

    #[test]
    fn semantic_breaks_where_meaning_changes() {
        let t = "Cats purr. Cats nap. Stocks fell. Bonds rose.";
        let (sentences, windows) = semantic_windows(t, 0);
        assert_eq!(windows.len(), 4);
        let e = vec![
            vec![1.0, 0.0],
            vec![0.9, 0.1],
            vec![0.0, 1.0],
            vec![0.1, 0.9],
        ];
        let chunks = semantic(t, &sentences, &e, &WordTokens, 100, 60);
        let got: Vec<&str> = chunks.iter().map(|c| &t[c.range.clone()]).collect();
        assert_eq!(got, ["Cats purr. Cats nap.", "Stocks fell. Bonds rose."]);
        let (_, w1) = semantic_windows(t, 1);
        assert_eq!(w1[1], "Cats purr. Cats nap. Stocks fell.");
    }
}
