//! Which sequence a new prompt runs in, how much of its prompt is already evaluated there,
//! and in which chunks the rest is evaluated: the automatic prefix cache.
//!
//! A finished request leaves its prompt's keys and values in its sequence; the next request
//! that starts with the same tokens takes that sequence and evaluates only what differs. The
//! cache is bounded by the engine's sequences (their memory is allocated once), and the least
//! recently used one is given up first.
//!
//! Exactness. llama.cpp's CPU matrix kernels give a token's activations bit-for-bit only when
//! the token sits in the same place of the kernels' row groups: rows are processed in groups
//! (4 for the x86 tiled kernels, up to 32 for AMX tiles), and the rows left over at the end of
//! a batch take another path whose rounding differs (measured: splitting a prompt at 301
//! instead of 300 changes the last token's logits by up to 0.3). So a prefix is reused only
//! up to a multiple of an alignment that covers the group size, never into the ragged end of
//! the earlier prompt, and the rest is evaluated in exactly the chunks a fresh evaluation uses
//! (boundaries at multiples of the batch size). Each chunk is one sequence's alone. Then every
//! token is computed as it would be without the cache, and the greedy answer is the same token
//! for token (tested over hundreds of prompt pairs in `tests/engine/prefix_cache.rs`).
//!
//! The alignment is proven on the machine, not assumed: at load the engine evaluates a prompt
//! once whole and then as a cache hit at each candidate alignment, and takes the smallest whose
//! logits are bit-identical ([`ALIGNMENTS`]); if none is, the cache stays off.

/// Candidate alignments, smallest first: the x86 kernels' row groups are 4, AMX tiles 16 or 32.
pub const ALIGNMENTS: [usize; 5] = [4, 8, 16, 32, 64];

/// What one sequence holds from its last request.
#[derive(Debug, Clone, Default)]
struct Resident {
    /// The prompt whose keys and values stay in the sequence (generated tokens follow it in
    /// the cache but are never reused: they were computed one at a time).
    prompt: Vec<i32>,
    last_used: u64,
}

/// The prefix cache's bookkeeping: one entry per sequence.
#[derive(Debug, Clone)]
pub struct PrefixCache {
    seqs: Vec<Option<Resident>>,
    tick: u64,
    /// Reuse stops at a multiple of this; `None`: the cache is off.
    align: Option<usize>,
}

/// Where a new request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub seq: i32,
    /// Prompt tokens already evaluated in `seq`: positions from here on are cleared and
    /// evaluated anew.
    pub reuse: usize,
}

fn common_prefix(a: &[i32], b: &[i32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    pub fn new(sequences: usize, align: Option<usize>) -> PrefixCache {
        PrefixCache {
            seqs: vec![None; sequences],
            tick: 0,
            align,
        }
    }

    /// Chooses among the `free` sequences the one holding the longest reusable prefix of
    /// `prompt`; with none, the least recently used (an empty one first).
    pub fn place(&mut self, free: &[i32], prompt: &[i32]) -> Option<Placement> {
        let mut best: Option<(usize, u64, i32)> = None;
        for &seq in free {
            let (reuse, age) = match (
                self.seqs.get(seq as usize).and_then(Option::as_ref),
                self.align,
            ) {
                (Some(r), Some(align)) => (
                    reusable(common_prefix(&r.prompt, prompt), prompt.len(), align),
                    r.last_used,
                ),
                (Some(r), None) => (0, r.last_used),
                (None, _) => (0, 0),
            };
            let better = match best {
                None => true,
                Some((b_reuse, b_age, _)) => reuse > b_reuse || (reuse == b_reuse && age < b_age),
            };
            if better {
                best = Some((reuse, age, seq));
            }
        }
        best.map(|(reuse, _, seq)| Placement { seq, reuse })
    }

    /// `seq` now holds `prompt`'s keys and values (from position 0).
    pub fn store(&mut self, seq: i32, prompt: Vec<i32>) {
        self.tick += 1;
        if let Some(entry) = self.seqs.get_mut(seq as usize) {
            *entry = Some(Resident {
                prompt,
                last_used: self.tick,
            });
        }
    }

    /// The least recently used of `among` that holds a prompt: the first to give up its cells
    /// when a shared cache is full.
    pub fn least_recent(&self, among: impl IntoIterator<Item = i32>) -> Option<i32> {
        among
            .into_iter()
            .filter_map(|seq| {
                let r = self.seqs.get(seq as usize)?.as_ref()?;
                Some((r.last_used, seq))
            })
            .min()
            .map(|(_, seq)| seq)
    }

    /// `seq`'s cache was cleared (a failed decode) or is being overwritten.
    pub fn forget(&mut self, seq: i32) {
        if let Some(entry) = self.seqs.get_mut(seq as usize) {
            *entry = None;
        }
    }
}

/// How much of a `len`-token prompt that shares `common` leading tokens with a cached one may
/// be reused: aligned down to `align`, and never the whole prompt (the last token must be
/// evaluated to give the first logits).
pub fn reusable(common: usize, len: usize, align: usize) -> usize {
    let align = align.max(1);
    let limit = common.min(len.saturating_sub(1));
    limit / align * align
}

/// The end of the prompt chunk that starts at `from`: the next multiple of `batch`, as a
/// fresh evaluation from position 0 would cut it, or the prompt's end.
pub fn chunk_end(from: usize, len: usize, batch: usize) -> usize {
    let batch = batch.max(1);
    ((from / batch + 1) * batch).min(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_is_aligned_and_leaves_the_last_token() {
        assert_eq!(reusable(0, 100, 64), 0);
        assert_eq!(reusable(63, 100, 64), 0);
        assert_eq!(reusable(64, 100, 64), 64);
        assert_eq!(reusable(130, 1000, 64), 128);
        assert_eq!(reusable(130, 1000, 4), 128);
        assert_eq!(reusable(131, 1000, 4), 128);
        assert_eq!(reusable(132, 1000, 4), 132);
        // The whole prompt is cached: the last token is still evaluated, so the reuse stops
        // at the aligned position before it.
        assert_eq!(reusable(128, 128, 64), 64);
        assert_eq!(reusable(129, 129, 64), 128);
    }

    #[test]
    fn chunks_follow_a_fresh_evaluation() {
        assert_eq!(chunk_end(0, 1000, 512), 512);
        assert_eq!(chunk_end(512, 1000, 512), 1000);
        assert_eq!(chunk_end(448, 1000, 512), 512);
        assert_eq!(chunk_end(64, 100, 512), 100);
    }

    #[test]
    fn places_on_the_longest_prefix_then_the_least_recently_used() {
        let mut c = PrefixCache::new(3, Some(64));
        let sys: Vec<i32> = (0..200).collect();
        let mut a = sys.clone();
        a.extend([900, 901]);
        let mut b = sys[..70].to_vec();
        b.extend([700; 50]);
        // Empty sequences: any is fine, nothing is reused.
        assert_eq!(c.place(&[0, 1, 2], &a).unwrap().reuse, 0);
        c.store(0, a.clone());
        c.store(1, b.clone());
        let mut q = sys.clone();
        q.extend([5, 6, 7]);
        assert_eq!(
            c.place(&[0, 1, 2], &q),
            Some(Placement { seq: 0, reuse: 192 })
        );
        // Only sequence 1 free: its shorter prefix.
        assert_eq!(c.place(&[1], &q), Some(Placement { seq: 1, reuse: 64 }));
        // No shared prefix: the empty sequence before either cached one.
        assert_eq!(
            c.place(&[0, 1, 2], &[42; 10]),
            Some(Placement { seq: 2, reuse: 0 })
        );
        // Then the least recently used of the two.
        assert_eq!(
            c.place(&[0, 1], &[42; 10]),
            Some(Placement { seq: 0, reuse: 0 })
        );
        c.forget(0);
        assert_eq!(c.place(&[0], &q).unwrap().reuse, 0);
    }

    #[test]
    fn disabled_reuses_nothing() {
        let mut c = PrefixCache::new(1, None);
        c.store(0, (0..500).collect());
        assert_eq!(
            c.place(&[0], &(0..500).collect::<Vec<_>>()).unwrap().reuse,
            0
        );
    }
}
