//! Contextual grounding and relevance of an answer, from sentence embeddings: an answer is
//! grounded when each of its sentences is supported by some sentence of the source, and
//! relevant when it is close to the query.

use crate::topics::cosine;

/// Maps a cosine similarity to a score in [0, 1]. MiniLM puts unrelated sentences near 0.05
/// and paraphrases above 0.8; scores below 0 carry no more information than 0.
fn to_score(cos: f32) -> f64 {
    f64::from(cos.clamp(0.0, 1.0))
}

/// How well the answer's segments (`answer[0]` is the whole answer, the rest its
/// sentences) are supported by the source's segments: the weakest sentence's best support.
/// `None` without a source.
pub fn grounding_score(answer: &[&Vec<f32>], source: &[&Vec<f32>]) -> Option<f64> {
    if answer.is_empty() || source.is_empty() {
        return None;
    }
    let sentences = if answer.len() > 1 { &answer[1..] } else { answer };
    let weakest = sentences
        .iter()
        .map(|s| {
            source
                .iter()
                .map(|c| cosine(s, c))
                .fold(f32::MIN, f32::max)
        })
        .fold(f32::MAX, f32::min);
    Some(to_score(weakest))
}

/// How relevant the whole answer is to the query. `None` without a query.
pub fn relevance_score(answer: &[&Vec<f32>], query: &[&Vec<f32>]) -> Option<f64> {
    let (whole, q) = (answer.first()?, query.first()?);
    Some(to_score(cosine(whole, q)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weakest_sentence_decides_grounding() {
        let a = vec![1.0f32, 0.0];
        let b = vec![0.0f32, 1.0];
        let whole = vec![0.7071f32, 0.7071];
        let s = grounding_score(&[&whole, &a, &b], &[&a]).unwrap();
        assert!(s < 0.01, "{s}");
        let s = grounding_score(&[&whole, &a, &b], &[&a, &b]).unwrap();
        assert!(s > 0.99, "{s}");
        assert_eq!(grounding_score(&[&a], &[]), None);
        assert!(relevance_score(&[&a], &[&a]).unwrap() > 0.99);
    }
}
