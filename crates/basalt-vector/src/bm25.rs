//! BM25 keyword search over entries' text: an inverted index of lower-cased words, updated
//! in place on insert and delete.

use std::collections::HashMap;

/// BM25's term-frequency saturation and length normalization (the usual defaults).
pub const K1: f32 = 1.2;
pub const B: f32 = 0.75;

/// A word's inverse document frequency among `docs` entries, `n` of which hold it (BM25's,
/// kept positive by the + 1 as Lucene does).
pub fn idf(docs: f32, n: f32) -> f32 {
    ((docs - n + 0.5) / (n + 0.5) + 1.0).ln()
}

/// Words of `text` as the keyword index sees them: lower-cased runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

#[derive(Default)]
pub struct Bm25 {
    /// Word → (entry, occurrences), in insertion order.
    postings: HashMap<String, Vec<(u32, u32)>>,
    /// Entry → its length in words (0 for a free slot).
    lengths: Vec<u32>,
    docs: usize,
    total_len: u64,
}

impl Bm25 {
    pub fn insert(&mut self, id: u32, text: &str) {
        let mut counts: HashMap<String, u32> = HashMap::new();
        let mut len = 0;
        for w in words(text) {
            *counts.entry(w).or_default() += 1;
            len += 1;
        }
        for (w, n) in counts {
            self.postings.entry(w).or_default().push((id, n));
        }
        let i = id as usize;
        if self.lengths.len() <= i {
            self.lengths.resize(i + 1, 0);
        }
        self.lengths[i] = len;
        self.docs += 1;
        self.total_len += len as u64;
    }

    /// Forgets entry `id`, whose text was `text`.
    pub fn remove(&mut self, id: u32, text: &str) {
        let mut seen = std::collections::HashSet::new();
        for w in words(text) {
            if !seen.insert(w.clone()) {
                continue;
            }
            if let Some(list) = self.postings.get_mut(&w) {
                list.retain(|(d, _)| *d != id);
                if list.is_empty() {
                    self.postings.remove(&w);
                }
            }
        }
        if let Some(l) = self.lengths.get_mut(id as usize) {
            self.total_len -= *l as u64;
            *l = 0;
        }
        self.docs = self.docs.saturating_sub(1);
    }

    /// BM25 scores of the entries holding any word of `query` that `keep` accepts.
    pub fn scores(&self, query: &str, mut keep: impl FnMut(u32) -> bool) -> HashMap<u32, f32> {
        let mut out: HashMap<u32, f32> = HashMap::new();
        if self.docs == 0 {
            return out;
        }
        let avg = (self.total_len as f32 / self.docs as f32).max(1.0);
        let mut kept: HashMap<u32, bool> = HashMap::new();
        let mut terms: Vec<String> = words(query).collect();
        terms.sort();
        terms.dedup();
        for t in terms {
            let Some(list) = self.postings.get(&t) else {
                continue;
            };
            let idf = idf(self.docs as f32, list.len() as f32);
            for &(d, tf) in list {
                if !*kept.entry(d).or_insert_with(|| keep(d)) {
                    continue;
                }
                let len = self.lengths[d as usize] as f32;
                let tf = tf as f32;
                *out.entry(d).or_default() +=
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rarer_words_weigh_more_and_deletes_forget() {
        let mut b = Bm25::default();
        b.insert(0, "the jazz festival in Port Wexley");
        b.insert(1, "the coffee blend is roasted");
        b.insert(2, "the chess club mascot");
        let s = b.scores("Which festival? The one in Wexley", |_| true);
        assert!(s[&0] > 0.0);
        assert!(s.get(&1).is_none_or(|v| *v < s[&0]));
        b.remove(0, "the jazz festival in Port Wexley");
        assert!(b.scores("festival wexley", |_| true).is_empty());
        let filtered = b.scores("the", |id| id == 2);
        assert_eq!(filtered.keys().copied().collect::<Vec<_>>(), [2]);
    }
}
