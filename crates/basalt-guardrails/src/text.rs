//! Text segmentation and Bedrock's text units.

/// Characters per text unit: Bedrock bills each policy per started 1,000 characters.
pub const UNIT_CHARS: usize = 1000;

/// The text units of `text`: one per started 1,000 characters (none for an empty text).
pub fn units(text: &str) -> u64 {
    text.chars().count().div_ceil(UNIT_CHARS) as u64
}

/// The sentences of `text`: split after `.`, `!` or `?` followed by white space, and at
/// line breaks; trimmed, empty pieces dropped.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let end_here = match c {
            b'\n' => Some(i),
            b'.' | b'!' | b'?' => {
                let next = bytes.get(i + 1).copied();
                (next.is_none() || next.is_some_and(|n| n.is_ascii_whitespace())).then_some(i + 1)
            }
            _ => None,
        };
        if let Some(end) = end_here {
            let piece = text[start..end].trim();
            if !piece.is_empty() {
                out.push(piece);
            }
            start = end.max(i + 1).min(text.len());
        }
        i += 1;
    }
    let tail = text[start.min(text.len())..].trim();
    if !tail.is_empty() {
        out.push(tail);
    }
    out
}

/// What is embedded for one text: its sentences when it has several, else the text itself.
/// The whole text's vector is then the mean of its sentences' ([`segment_vectors`]): one
/// pass of the encoder over the text's tokens instead of two, with the same verdicts on the
/// evaluation set (`bench/guardrails/`).
pub fn pieces(text: &str) -> Vec<String> {
    let s = sentences(text);
    if s.len() > 1 {
        s.into_iter().map(str::to_owned).collect()
    } else {
        vec![text.trim().to_owned()]
    }
}

/// What the meaning-based policies look at in one text, from the vectors of [`pieces`]: the
/// whole text first (the normalised mean of its sentences when it has several), then each
/// sentence (a harmful sentence inside a long benign text must still be caught, and a long
/// text's average meaning would hide it).
pub fn segment_vectors(pieces: &[Vec<f32>]) -> Vec<Vec<f32>> {
    if pieces.len() <= 1 {
        return pieces.to_vec();
    }
    let dims = pieces[0].len();
    let mut mean = vec![0.0f32; dims];
    for p in pieces {
        for (m, x) in mean.iter_mut().zip(p) {
            *m += x;
        }
    }
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        mean.iter_mut().for_each(|x| *x /= norm);
    }
    let mut out = Vec::with_capacity(pieces.len() + 1);
    out.push(mean);
    out.extend(pieces.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_count_started_thousands() {
        assert_eq!(units(""), 0);
        assert_eq!(units("a"), 1);
        assert_eq!(units(&"a".repeat(1000)), 1);
        assert_eq!(units(&"a".repeat(1001)), 2);
        assert_eq!(units(&"é".repeat(1000)), 1);
    }

    #[test]
    fn sentences_split_on_terminators_and_lines() {
        assert_eq!(
            sentences("Hello there. How are you?I am fine!\nNew line 3.5 stays"),
            vec![
                "Hello there.",
                "How are you?I am fine!",
                "New line 3.5 stays"
            ]
        );
        assert_eq!(sentences("   "), Vec::<&str>::new());
        assert_eq!(pieces("One."), vec!["One."]);
        assert_eq!(pieces("One. Two."), vec!["One.", "Two."]);
        assert_eq!(pieces(" One "), vec!["One"]);
    }

    #[test]
    fn the_whole_is_the_normalised_mean_of_the_sentences() {
        let v = segment_vectors(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(v.len(), 3);
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((v[0][0] - h).abs() < 1e-6 && (v[0][1] - h).abs() < 1e-6);
        assert_eq!(v[1], vec![1.0, 0.0]);
        assert_eq!(segment_vectors(&[vec![0.6, 0.8]]), vec![vec![0.6, 0.8]]);
        assert!(segment_vectors(&[]).is_empty());
    }
}
