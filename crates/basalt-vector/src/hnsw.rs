//! A hierarchical navigable small-world graph (Malkov & Yashunin, 2016) over the index's
//! slots, for approximate nearest-neighbour search.
//!
//! The graph holds slot ids only; the vectors stay in the index and are lent to each call as
//! a [`Space`]. A removed slot stays in the graph as a routing node (a tombstone), its vector
//! unchanged, and is skipped by the caller's `accept`. Tombstones are taken out in batches by
//! [`Graph::consolidate`] (FreshDiskANN's delete consolidation): each node that links to one
//! is relinked to the best of its live links and the tombstones' live links, so the graph
//! stays as navigable as one built from the live nodes, and the slots can then be reused.

use crate::{Metric, dot, squared_distance};
use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Links per node above layer 0.
pub const M: usize = 16;
/// Links per node at layer 0, where most of the search happens (the paper's 2·M).
pub const M0: usize = 2 * M;
/// The candidate list's length while inserting.
pub const EF_CONSTRUCTION: usize = 100;
/// Levels are drawn from a geometric distribution; a cap keeps them in a `u8` and bounds
/// the work of an unlucky draw.
const MAX_LEVEL: u8 = 16;
/// `levels[i]` for a slot that was never inserted.
const ABSENT: u8 = u8::MAX;

/// The vectors a graph links, as the index stores them.
#[derive(Clone, Copy)]
pub struct Space<'a> {
    pub vectors: &'a [f32],
    pub dim: usize,
    pub metric: Metric,
}

impl Space<'_> {
    fn vector(&self, id: u32) -> &[f32] {
        let at = id as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    /// Asks the CPU to start loading slot `id`'s vector: the search then computes the
    /// distances of a node's neighbours while their vectors arrive, instead of stalling on
    /// each in turn (the vectors are scattered over the whole array).
    #[inline]
    fn prefetch(&self, id: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let at = id as usize * self.dim;
            if let Some(v) = self.vectors.get(at..at + self.dim) {
                // The first 256 bytes; the hardware prefetcher follows the rest.
                for line in v.chunks(16).take(4) {
                    // SAFETY: a prefetch never faults, and the address is inside the slice.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = id;
    }

    /// Lower is nearer: for cosine (unit vectors) `1 - cos`, for euclidean the squared
    /// distance, which orders as the distance does without a square root.
    fn distance(&self, q: &[f32], id: u32) -> f32 {
        let v = self.vector(id);
        match self.metric {
            Metric::Cosine => 1.0 - dot(q, v),
            Metric::Euclidean => squared_distance(q, v),
        }
    }
}

/// A node at a distance, ordered by distance (then id, so that runs are deterministic).
#[derive(Clone, Copy, Debug)]
struct Near(f32, u32);

impl PartialEq for Near {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Near {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

thread_local! {
    /// Visit marks, reused across searches so that a search on a large graph does not clear
    /// (or allocate) a mark per node: a node is visited when its mark equals the epoch.
    static VISITED: RefCell<(Vec<u32>, u32)> = const { RefCell::new((Vec::new(), 0)) };
}

/// Runs `f` with a fresh visited set for `n` nodes.
fn with_visited<T>(n: usize, f: impl FnOnce(&mut Visited<'_>) -> T) -> T {
    VISITED.with(|cell| {
        // A search inside a search (not done today) would find the cell borrowed; it gets a
        // private set instead of a panic.
        let Ok(mut guard) = cell.try_borrow_mut() else {
            let mut marks = vec![0; n];
            return f(&mut Visited {
                marks: &mut marks,
                epoch: 1,
            });
        };
        let (marks, epoch) = &mut *guard;
        if marks.len() < n {
            marks.resize(n, 0);
        }
        *epoch = epoch.wrapping_add(1);
        if *epoch == 0 {
            // Wrapped: old marks could equal a new epoch.
            marks.fill(0);
            *epoch = 1;
        }
        f(&mut Visited {
            marks,
            epoch: *epoch,
        })
    })
}

struct Visited<'a> {
    marks: &'a mut [u32],
    epoch: u32,
}

impl Visited<'_> {
    /// Marks `id`; whether it was unmarked.
    fn insert(&mut self, id: u32) -> bool {
        let m = &mut self.marks[id as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }
}

pub struct Graph {
    /// Each slot's top level, `ABSENT` for a slot never inserted.
    levels: Vec<u8>,
    /// Layer 0's links: for slot `i`, `layer0[i*(M0+1)]` is the count and the links follow,
    /// in one allocation so that a search reads each list from one place.
    layer0: Vec<u32>,
    /// Links above layer 0: for slot `i` at level `l >= 1`, `upper[i][(l-1)*(M+1)..]` holds
    /// the count and the links. Empty for most nodes (level 0 only).
    upper: Vec<Vec<u32>>,
    entry: Option<u32>,
    top: u8,
    rng: u64,
    ef_construction: usize,
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new(EF_CONSTRUCTION)
    }
}

impl Graph {
    pub fn new(ef_construction: usize) -> Graph {
        Graph {
            levels: Vec::new(),
            layer0: Vec::new(),
            upper: Vec::new(),
            entry: None,
            top: 0,
            // A fixed seed: the same inserts build the same graph, so results reproduce.
            rng: 0x9e37_79b9_7f4a_7c15,
            ef_construction: ef_construction.max(1),
        }
    }

    /// A level drawn with P(level >= l) = M^-l (xorshift64*; no dependency for this).
    fn draw_level(&mut self) -> u8 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let bits = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        // In (0, 1]: the logarithm stays finite.
        let u = (bits as f64 + 1.0) / (1u64 << 53) as f64;
        let l = (-u.ln() / (M as f64).ln()).floor();
        (l as u8).min(MAX_LEVEL)
    }

    fn links(&self, id: u32, level: u8) -> &[u32] {
        let list = if level == 0 {
            let at = id as usize * (M0 + 1);
            &self.layer0[at..at + M0 + 1]
        } else {
            let at = (level as usize - 1) * (M + 1);
            &self.upper[id as usize][at..at + M + 1]
        };
        &list[1..1 + list[0] as usize]
    }

    fn set_links(&mut self, id: u32, level: u8, to: impl Iterator<Item = u32>) {
        let list = if level == 0 {
            let at = id as usize * (M0 + 1);
            &mut self.layer0[at..at + M0 + 1]
        } else {
            let at = (level as usize - 1) * (M + 1);
            &mut self.upper[id as usize][at..at + M + 1]
        };
        let mut n = 0;
        for (dst, t) in list[1..].iter_mut().zip(to) {
            *dst = t;
            n += 1;
        }
        list[0] = n;
    }

    fn grow(&mut self, slots: usize) {
        if self.levels.len() < slots {
            self.levels.resize(slots, ABSENT);
            let more = slots * (M0 + 1) - self.layer0.len();
            crate::pages::reserve_huge(&mut self.layer0, more);
            self.layer0.resize(slots * (M0 + 1), 0);
            self.upper.resize_with(slots, Vec::new);
        }
    }

    /// Links slot `id` (whose vector `space` now holds) into the graph. The index reuses a
    /// slot only after [`Graph::consolidate`] took it out (its level `ABSENT`, no link to it
    /// left), so it enters as a new node. A slot still in the graph (a caller relinking a node
    /// in place) keeps its level, since other nodes' links at every level up to it may point
    /// to it, and gets new links found from its vector.
    pub fn insert(&mut self, space: Space<'_>, id: u32) {
        self.grow(id as usize + 1);
        let old = self.levels[id as usize];
        let level = if old == ABSENT {
            let l = self.draw_level();
            self.levels[id as usize] = l;
            self.upper[id as usize] = vec![0; l as usize * (M + 1)];
            self.set_links(id, 0, std::iter::empty());
            l
        } else {
            old
        };
        let Some(entry) = self.entry else {
            self.entry = Some(id);
            self.top = level;
            return;
        };
        let q = space.vector(id);
        let slots = self.levels.len();
        let mut cur = Near(space.distance(q, entry), entry);
        for l in (level + 1..=self.top).rev() {
            cur = self.greedy(space, q, cur, l);
        }
        // A node relinked in place still routes the searches below through its old links (it
        // may be the entry point); it is never its own neighbour.
        for l in (0..=level.min(self.top)).rev() {
            let found = with_visited(slots, |v| {
                self.search_layer(space, q, &[cur], self.ef_construction, l, |n| n != id, v)
            });
            let Some(&nearest) = found.first() else {
                self.set_links(id, l, std::iter::empty());
                continue;
            };
            let max = if l == 0 { M0 } else { M };
            let chosen = select(space, found, M);
            self.set_links(id, l, chosen.iter().map(|n| n.1));
            for n in &chosen {
                self.link(space, n.1, id, l, max);
            }
            cur = nearest;
        }
        if level > self.top {
            self.entry = Some(id);
            self.top = level;
        }
    }

    /// Adds the link `from → to` at `level`, pruning `from`'s list back to `max` by the
    /// selection heuristic when it is full.
    fn link(&mut self, space: Space<'_>, from: u32, to: u32, level: u8, max: usize) {
        let current = self.links(from, level);
        if current.contains(&to) {
            return;
        }
        if current.len() < max {
            let next: Vec<u32> = current.iter().copied().chain([to]).collect();
            self.set_links(from, level, next.into_iter());
            return;
        }
        let base = space.vector(from);
        let mut all: Vec<Near> = current
            .iter()
            .chain([&to])
            .map(|&n| Near(space.distance(base, n), n))
            .collect();
        all.sort();
        let kept = select(space, all, max);
        self.set_links(from, level, kept.into_iter().map(|n| n.1));
    }

    /// Takes the tombstones `dead` out of the graph: every other node that links to one of
    /// them at some level is relinked, at that level, to the nearest of its live links and the
    /// dead nodes' live links (pruned by the selection heuristic); then the dead nodes lose
    /// their links and levels, so that a slot reused afterwards is inserted as a new node.
    /// Their vectors must still be in `space` (a dead node is never measured, but its links are
    /// read).
    pub fn consolidate(&mut self, space: Space<'_>, dead: &[u32]) {
        let mut is_dead = vec![false; self.levels.len()];
        for &d in dead {
            if let Some(x) = is_dead.get_mut(d as usize) {
                *x = true;
            }
        }
        let gone = |n: u32| is_dead[n as usize];
        for p in 0..self.levels.len() as u32 {
            let top = self.levels[p as usize];
            if top == ABSENT || gone(p) {
                continue;
            }
            for l in 0..=top {
                let links = self.links(p, l);
                if !links.iter().any(|&n| gone(n)) {
                    continue;
                }
                let mut candidates: Vec<u32> =
                    links.iter().copied().filter(|&n| !gone(n)).collect();
                for &d in links.iter().filter(|&&n| gone(n)) {
                    for &n in self.links(d, l) {
                        if n != p && !gone(n) && !candidates.contains(&n) {
                            candidates.push(n);
                        }
                    }
                }
                let base = space.vector(p);
                let mut near: Vec<Near> = candidates
                    .into_iter()
                    .map(|n| Near(space.distance(base, n), n))
                    .collect();
                near.sort();
                let kept = select(space, near, if l == 0 { M0 } else { M });
                self.set_links(p, l, kept.into_iter().map(|n| n.1));
            }
        }
        for &d in dead {
            let Some(&level) = self.levels.get(d as usize) else {
                continue;
            };
            if level != ABSENT {
                self.set_links(d, 0, std::iter::empty());
                self.upper[d as usize] = Vec::new();
                self.levels[d as usize] = ABSENT;
            }
        }
        if self.entry.is_some_and(gone) {
            // The highest live node enters the graph now (the first of them: deterministic).
            let mut best: Option<(u8, u32)> = None;
            for (i, &l) in self.levels.iter().enumerate() {
                if l != ABSENT && best.is_none_or(|(b, _)| l > b) {
                    best = Some((l, i as u32));
                }
            }
            self.entry = best.map(|(_, i)| i);
            self.top = best.map_or(0, |(l, _)| l);
        }
    }

    /// The nearest node to `q` reachable from `from` at `level` by always moving nearer.
    fn greedy(&self, space: Space<'_>, q: &[f32], mut cur: Near, level: u8) -> Near {
        loop {
            let mut moved = false;
            for &n in self.links(cur.1, level) {
                let d = space.distance(q, n);
                if d < cur.0 {
                    cur = Near(d, n);
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Up to `ef` nodes nearest `q` among those `accept` takes, nearest first. Every node
    /// routes (a tombstone or a node the filter refuses still leads to its neighbours); only
    /// accepted ones are collected.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        space: Space<'_>,
        q: &[f32],
        from: &[Near],
        ef: usize,
        level: u8,
        accept: impl Fn(u32) -> bool,
        visited: &mut Visited<'_>,
    ) -> Vec<Near> {
        let mut candidates: BinaryHeap<Reverse<Near>> = BinaryHeap::with_capacity(ef * 2);
        let mut found: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
        for &n in from {
            if visited.insert(n.1) {
                candidates.push(Reverse(n));
                if accept(n.1) {
                    found.push(n);
                }
            }
        }
        while let Some(Reverse(c)) = candidates.pop() {
            // Until `ef` nodes are accepted the search goes on: with tombstones or a filter,
            // the nearest nodes need not be the acceptable ones.
            let bound = if found.len() >= ef {
                found.peek().map_or(f32::INFINITY, |w| w.0)
            } else {
                f32::INFINITY
            };
            if c.0 > bound {
                break;
            }
            // The unvisited neighbours first, their vectors prefetched, then the distances.
            let mut fresh = [0u32; M0];
            let mut count = 0;
            for &n in self.links(c.1, level) {
                if count < M0 && visited.insert(n) {
                    space.prefetch(n);
                    fresh[count] = n;
                    count += 1;
                }
            }
            for &n in &fresh[..count] {
                let d = space.distance(q, n);
                let bound = if found.len() >= ef {
                    found.peek().map_or(f32::INFINITY, |w| w.0)
                } else {
                    f32::INFINITY
                };
                if d < bound {
                    candidates.push(Reverse(Near(d, n)));
                    if accept(n) {
                        found.push(Near(d, n));
                        if found.len() > ef {
                            found.pop();
                        }
                    }
                }
            }
        }
        found.into_sorted_vec()
    }

    /// Up to `k` nodes nearest `q` that `accept` takes, nearest first, with their
    /// distances (as [`Space`] measures them); the search keeps `ef` (at least `k`) candidates.
    pub fn search(
        &self,
        space: Space<'_>,
        q: &[f32],
        k: usize,
        ef: usize,
        accept: impl Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        if k == 0 {
            return Vec::new();
        }
        let mut cur = Near(space.distance(q, entry), entry);
        for l in (1..=self.top).rev() {
            cur = self.greedy(space, q, cur, l);
        }
        let found = with_visited(self.levels.len(), |v| {
            self.search_layer(space, q, &[cur], ef.max(k), 0, accept, v)
        });
        found.into_iter().take(k).map(|n| (n.1, n.0)).collect()
    }
}

/// The paper's neighbour-selection heuristic (its algorithm 4, as hnswlib runs it): nearest
/// first, a candidate is kept only if it is nearer the base than any kept one, so the links
/// spread in different directions instead of crowding one cluster.
fn select(space: Space<'_>, sorted: Vec<Near>, max: usize) -> Vec<Near> {
    if sorted.len() <= max {
        return sorted;
    }
    let mut kept: Vec<Near> = Vec::with_capacity(max);
    for c in sorted {
        let cv = space.vector(c.1);
        if kept.iter().all(|k| space.distance(cv, k.1) > c.0) {
            kept.push(c);
            if kept.len() >= max {
                break;
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use crate::{Filter, Index, Metric};
    use serde_json::{Map, json};
    use std::collections::HashSet;

    use crate::testdata::{meta, vectors};

    fn keys(hits: &[crate::Hit]) -> Vec<String> {
        hits.iter().map(|h| h.key.clone()).collect()
    }

    /// The share of the exact top 10 that the graph finds, over `queries`.
    fn recall(idx: &Index, queries: &[Vec<f32>], filter: Option<&Filter>) -> f64 {
        let (mut found, mut total) = (0, 0);
        for q in queries {
            let want: HashSet<String> = keys(&idx.nearest_exact(q, 10, filter).unwrap())
                .into_iter()
                .collect();
            let got = idx.nearest(q, 10, filter).unwrap();
            assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
            found += got.iter().filter(|h| want.contains(&h.key)).count();
            total += want.len();
        }
        found as f64 / total as f64
    }

    #[test]
    fn recall_at_10_on_random_vectors() {
        for metric in [Metric::Cosine, Metric::Euclidean] {
            let (n, dim) = if metric == Metric::Cosine {
                (20_000, 64)
            } else {
                (5_000, 32)
            };
            let mut idx = Index::new(dim, metric);
            idx.set_exact_below(0);
            // Uniform random vectors are the hard case (no clusters to route by): hnswlib
            // with the same M and ef_construction reaches 0.74 at ef 64 and 0.96 at 200.
            idx.set_ef_search(200);
            for (i, v) in vectors(n, dim, 11).iter().enumerate() {
                idx.upsert(&format!("k{i}"), v, "", Map::new()).unwrap();
            }
            let r = recall(&idx, &vectors(200, dim, 12345), None);
            assert!(r >= 0.95, "{metric:?}: recall@10 {r}");
        }
    }

    #[test]
    fn removed_entries_never_come_back_and_reused_slots_are_found() {
        let dim = 16;
        let data = vectors(3_000, dim, 5);
        let mut idx = Index::new(dim, Metric::Cosine);
        idx.set_exact_below(0);
        for (i, v) in data.iter().enumerate() {
            idx.upsert(&format!("k{i}"), v, "", Map::new()).unwrap();
        }
        // A third removed, the entry point among them (slot 0 is the first inserted).
        let removed: HashSet<String> = (0..3_000)
            .filter(|i| i % 3 == 0)
            .map(|i| format!("k{i}"))
            .collect();
        for k in &removed {
            assert!(idx.remove(k));
        }
        let queries = vectors(100, dim, 77);
        for q in &queries {
            let hits = idx.nearest(q, 10, None).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| !removed.contains(&h.key)));
        }
        assert!(recall(&idx, &queries, None) >= 0.95);
        // The freed slots take new vectors: each must be found at its new place (its own
        // nearest neighbour), never at its old one.
        let fresh = vectors(1_000, dim, 999);
        for (i, v) in fresh.iter().enumerate() {
            idx.upsert(&format!("new{i}"), v, "", Map::new()).unwrap();
        }
        assert!(
            idx.vectors.len() <= 3_000 * dim * 11 / 10,
            "freed slots are reused once the graph has let them go: {} slots for 3,000 entries",
            idx.vectors.len() / dim
        );
        let mut own = 0;
        for (i, v) in fresh.iter().enumerate() {
            let hits = idx.nearest(v, 10, None).unwrap();
            assert!(hits.iter().all(|h| !removed.contains(&h.key)));
            own += usize::from(hits[0].key == format!("new{i}"));
        }
        assert!(
            own >= 990,
            "{own} of 1000 reused slots found at their new vector"
        );
        // Re-upserting a key moves its vector.
        idx.upsert("k1", &fresh[0], "", Map::new()).unwrap();
        let hits = idx.nearest(&fresh[0], 2, None).unwrap();
        let two: HashSet<String> = keys(&hits).into_iter().collect();
        assert_eq!(two, HashSet::from(["k1".to_owned(), "new0".to_owned()]));
        assert!(idx.nearest(&data[1], 10, None).unwrap()[0].key != "k1");
    }

    /// Rounds of deletes and inserts, as re-ingesting changed documents makes: the graph must
    /// stay as good as one built from the surviving entries.
    #[test]
    fn recall_holds_through_churn() {
        let dim = 32;
        let mut idx = Index::new(dim, Metric::Cosine);
        idx.set_exact_below(0);
        idx.set_ef_search(64);
        let mut live: Vec<String> = Vec::new();
        let mut next = 0u64;
        let mut add = |idx: &mut Index, live: &mut Vec<String>, n: usize| {
            for v in vectors(n, dim, 1000 + next) {
                let k = format!("k{next}");
                idx.upsert(&k, &v, "", Map::new()).unwrap();
                live.push(k);
                next += 1;
            }
        };
        add(&mut idx, &mut live, 8_000);
        let queries = vectors(200, dim, 31337);
        let fresh = recall(&idx, &queries, None);
        for round in 0..10u64 {
            // A pseudo-random quarter goes, as many new ones come.
            let mut kept = Vec::new();
            for (i, k) in live.drain(..).enumerate() {
                if (i as u64 * 2654435761 + round * 97).is_multiple_of(4) {
                    assert!(idx.remove(&k));
                } else {
                    kept.push(k);
                }
            }
            live = kept;
            let n = 8_000 - live.len();
            add(&mut idx, &mut live, n);
        }
        assert_eq!(idx.len(), 8_000);
        let churned = recall(&idx, &queries, None);
        assert!(
            churned >= fresh - 0.02,
            "recall@10 {churned} after churn, {fresh} when freshly built"
        );
        assert!(
            idx.vectors.len() <= 8_000 * dim * 12 / 10,
            "{} slots for 8,000 entries",
            idx.vectors.len() / dim
        );
    }

    #[test]
    fn an_emptied_graph_takes_new_entries() {
        let dim = 8;
        let mut idx = Index::new(dim, Metric::Euclidean);
        idx.set_exact_below(0);
        let data = vectors(500, dim, 3);
        for round in 0..3 {
            for (i, v) in data.iter().enumerate() {
                idx.upsert(&format!("r{round}-{i}"), v, "", Map::new())
                    .unwrap();
            }
            assert_eq!(
                idx.nearest(&data[7], 1, None).unwrap()[0].key,
                format!("r{round}-7")
            );
            for i in 0..data.len() {
                assert!(idx.remove(&format!("r{round}-{i}")));
            }
            assert!(idx.nearest(&data[7], 5, None).unwrap().is_empty());
        }
        assert!(
            idx.vectors.len() <= 2 * 500 * dim,
            "{} slots",
            idx.vectors.len() / dim
        );
    }

    #[test]
    fn filtered_searches_return_exactly_the_passing_top_k() {
        let dim = 24;
        let data = vectors(12_000, dim, 21);
        let mut idx = Index::new(dim, Metric::Euclidean);
        for (i, v) in data.iter().enumerate() {
            idx.upsert(&format!("k{i}"), v, "", meta(json!({"bucket": i % 100})))
                .unwrap();
        }
        assert!(idx.graph.is_some(), "12k entries are past EXACT_BELOW");
        let queries = vectors(50, dim, 4242);
        // 1%: the exact fallback, so exactly the true top 10 of the passing entries.
        let one = Filter::Equals("bucket".into(), json!(42));
        for q in &queries {
            let got = idx.nearest(q, 10, Some(&one)).unwrap();
            assert_eq!(
                keys(&got),
                keys(&idx.nearest_exact(q, 10, Some(&one)).unwrap())
            );
        }
        // 30%: through the graph; every result passes, and nearly all are the true ones.
        let wide = Filter::LessThan("bucket".into(), json!(30));
        for q in &queries {
            let got = idx.nearest(q, 10, Some(&wide)).unwrap();
            assert_eq!(got.len(), 10);
            for h in &got {
                let b = idx.metadata(&h.key).unwrap()["bucket"].as_u64().unwrap();
                assert!(b < 30, "{} has bucket {b}", h.key);
            }
        }
        assert!(recall(&idx, &queries, Some(&wide)) >= 0.95);
        // A filter nothing passes, and k larger than what passes.
        let none = Filter::Equals("bucket".into(), json!(1000));
        assert!(
            idx.nearest(&queries[0], 10, Some(&none))
                .unwrap()
                .is_empty()
        );
        let got = idx.nearest(&queries[0], 500, Some(&one)).unwrap();
        assert_eq!(got.len(), 120);
    }

    #[test]
    fn level_draws_are_deterministic_and_geometric() {
        let mut a = super::Graph::default();
        let mut b = super::Graph::default();
        let draws: Vec<u8> = (0..100_000).map(|_| a.draw_level()).collect();
        assert!(draws.iter().all(|&l| l == b.draw_level()));
        let above = draws.iter().filter(|&&l| l >= 1).count() as f64 / draws.len() as f64;
        assert!((above - 1.0 / 16.0).abs() < 0.01, "{above}");
    }
}
