//! Content-filter classifiers (HATE, INSULTS, SEXUAL, VIOLENCE, MISCONDUCT, PROMPT_ATTACK) over
//! unit-length all-MiniLM-L6-v2 sentence embeddings.
//! (Filled in by the classifier work: trained heads, their calibration and provenance.)

use crate::config::{ContentType, Strength};

/// The trained heads, loaded once.
#[derive(Debug, Default)]
pub struct Classifiers {}

impl Classifiers {
    /// The heads shipped with Basalt.
    pub fn shared() -> &'static Classifiers {
        static SHARED: std::sync::OnceLock<Classifiers> = std::sync::OnceLock::new();
        SHARED.get_or_init(Classifiers::default)
    }

    /// Probability in [0, 1] that the text behind `embedding` belongs to `kind`.
    pub fn score(&self, _kind: ContentType, _embedding: &[f32]) -> f32 {
        0.0
    }

    /// The confidence Bedrock would report for a score: NONE, LOW, MEDIUM or HIGH.
    pub fn confidence(&self, _kind: ContentType, _score: f32) -> Strength {
        Strength::None
    }
}
