//! Contextual grounding and relevance of an answer, from sentence embeddings: an answer is
//! grounded when each of its sentences is supported by some sentence of the source, and
//! relevant when it is close to the query.

use crate::topics::cosine;

/// Logistic maps from a cosine similarity to a score in [0, 1], set by
/// `bench/guardrails/calibrate_grounding.py` from the training split of its labelled
/// source/query/answer cases: the split's best cut maps to 0.5 and a cosine of 1 (the answer
/// restates its source, or is its query) to 0.99, so thresholds near 0.5 separate best and
/// higher ones are stricter. Grounding: 0.5 at cosine 0.45. Sentence embeddings do not see a
/// changed number or name, so an answer that contradicts its source on a detail can still
/// score high (accuracy at 0.5: 0.79 train, 0.69 test; half of the test's ungrounded answers
/// caught, 7 of 8 grounded ones kept). Relevance: 0.5 at cosine 0.24 (test accuracy 1.0:
/// answers on another subject sit below cosine 0.15).
const GROUNDING_MAP: (f64, f64) = (8.319, -3.724);
const RELEVANCE_MAP: (f64, f64) = (6.077, -1.482);

fn to_score(cos: f32, (a, b): (f64, f64)) -> f64 {
    let x = f64::from(cos.clamp(-1.0, 1.0));
    1.0 / (1.0 + (-(a * x + b)).exp())
}

/// How well the answer's segments (`answer[0]` is the whole answer, the rest its
/// sentences) are supported by the source's segments: the weakest sentence's best support.
/// `None` without a source.
pub fn grounding_score(answer: &[&Vec<f32>], source: &[&Vec<f32>]) -> Option<f64> {
    if answer.is_empty() || source.is_empty() {
        return None;
    }
    let sentences = if answer.len() > 1 {
        &answer[1..]
    } else {
        answer
    };
    let weakest = sentences
        .iter()
        .map(|s| source.iter().map(|c| cosine(s, c)).fold(f32::MIN, f32::max))
        .fold(f32::MAX, f32::min);
    Some(to_score(weakest, GROUNDING_MAP))
}

/// How relevant the whole answer is to the query. `None` without a query.
pub fn relevance_score(answer: &[&Vec<f32>], query: &[&Vec<f32>]) -> Option<f64> {
    let (whole, q) = (answer.first()?, query.first()?);
    Some(to_score(cosine(whole, q), RELEVANCE_MAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weakest_sentence_decides_grounding() {
        let a = vec![1.0f32, 0.0];
        let b = vec![0.0f32, 1.0];
        let whole = vec![std::f32::consts::FRAC_1_SQRT_2; 2];
        let s = grounding_score(&[&whole, &a, &b], &[&a]).unwrap();
        assert!(s < 0.1, "{s}");
        let s = grounding_score(&[&whole, &a, &b], &[&a, &b]).unwrap();
        assert!(s > 0.85, "{s}");
        assert_eq!(grounding_score(&[&a], &[]), None);
        assert!(relevance_score(&[&a], &[&a]).unwrap() > 0.98);
        assert!(relevance_score(&[&a], &[&b]).unwrap() < 0.25);
    }
}
