//! A vector index as a library: entries (a key, a vector, a text and a metadata object)
//! searched by meaning (nearest neighbours by cosine or euclidean distance), by keywords
//! (BM25), or both fused by reciprocal rank; a [`Filter`] on the metadata is evaluated for
//! each candidate inside the search, so a filtered search returns `k` results whenever `k`
//! entries pass, however selective the filter.
//!
//! Below [`EXACT_BELOW`] live entries a search compares the query with every entry; from
//! there on it walks an HNSW graph ([`hnsw`]) kept up to date on every upsert, and falls back
//! to the exact scan where a filter is too selective for the graph to find `k` entries.
//!
//! The index lives in memory; its host persists the entries and rebuilds it from them.

pub mod bm25;
pub mod codec;
pub mod filter;
pub mod hnsw;
mod pages;

pub use filter::{Filter, FilterError};

use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Vectors are normalized on insert; similarity is their dot product.
    Cosine,
    Euclidean,
}

/// One search result: the entry's key, its similarity to the query (higher is closer; for
/// [`Metric::Cosine`] the cosine, for [`Metric::Euclidean`] the negated distance) and the
/// distance as S3 Vectors reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub key: String,
    pub score: f32,
    pub distance: f32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("The vector has {got} dimensions; the index has {want}.")]
    Dimension { want: usize, got: usize },
    #[error("The vector has a component that is not a finite number.")]
    NotFinite,
    #[error("A zero vector has no direction to compare by cosine.")]
    Zero,
}

struct Slot {
    key: String,
    text: String,
    metadata: Map<String, Value>,
}

/// A collection of entries of one dimension and metric.
pub struct Index {
    dim: usize,
    metric: Metric,
    /// `vectors[i*dim..(i+1)*dim]` is slot `i`'s vector.
    vectors: Vec<f32>,
    slots: Vec<Option<Slot>>,
    /// One bit per slot, set while it holds an entry: the graph search asks this for every
    /// candidate, and a bit in a few kilobytes is in cache where the slot itself is not.
    live: Vec<u64>,
    /// Slots free for a new entry.
    free: Vec<u32>,
    /// Removed slots still in the graph (see [`hnsw`]): reusable once consolidated.
    tombstones: Vec<u32>,
    by_key: HashMap<String, u32>,
    keywords: bm25::Bm25,
    /// Built once the index first reaches `exact_below` entries, then kept up to date.
    graph: Option<hnsw::Graph>,
    exact_below: usize,
    ef_search: usize,
}

/// Below this many live entries, searches are exact: a scan of 10k vectors takes about a
/// millisecond, and small indexes (the common case) need no graph at all.
pub const EXACT_BELOW: usize = 10_000;

/// The graph's tombstones are consolidated when they are this fraction (1/n) of the slots:
/// the memory they hold stays under a tenth, and the cost of a consolidation (a pass over every
/// node's links) is spread over as many removals.
const TOMBSTONE_SHARE: usize = 10;

/// The graph search's default candidate list (at least `k`): recall@10 above 0.95 on the
/// 100k-vector benchmark (bench/vector_index.py).
pub const EF_SEARCH: usize = 64;

/// A filter that fewer than this share of sampled live entries pass goes to the exact scan:
/// the graph would visit most nodes to collect `k` of them anyway.
const GRAPH_MIN_SELECTIVITY: f64 = 0.05;

/// Entries sampled to estimate a filter's selectivity.
const SELECTIVITY_SAMPLE: usize = 256;

/// A candidate kept by similarity in a bounded heap (the worst on top).
struct Scored(f32, u32);

impl PartialEq for Scored {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scored {
    // Reversed, so that the max-heap's top is the lowest score (ties: the later slot).
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0).then(self.1.cmp(&o.1))
    }
}

/// The `k` best of `scored`, best first (ties by slot order).
fn top_k(scored: impl Iterator<Item = (u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (id, s) in scored {
        if heap.len() < k {
            heap.push(Scored(s, id));
        } else if let Some(worst) = heap.peek()
            && (s > worst.0 || (s == worst.0 && id < worst.1))
        {
            heap.pop();
            heap.push(Scored(s, id));
        }
    }
    let mut v: Vec<(u32, f32)> = heap.into_iter().map(|Scored(s, id)| (id, s)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Reciprocal rank fusion's constant (Cormack et al.; OpenSearch's default).
pub const RRF_K: f32 = 60.0;

/// `v` as an index of `dim` dimensions and `metric` stores it (normalized for
/// [`Metric::Cosine`]), or why it cannot enter one: the checks of [`Index::upsert`], for
/// stores that keep vectors elsewhere (pgvector) and must refuse what this index refuses.
pub fn prepare(v: &[f32], dim: usize, metric: Metric) -> Result<Vec<f32>, IndexError> {
    if v.len() != dim {
        return Err(IndexError::Dimension {
            want: dim,
            got: v.len(),
        });
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(IndexError::NotFinite);
    }
    Ok(match metric {
        Metric::Euclidean => v.to_vec(),
        Metric::Cosine => {
            let n = dot(v, v).sqrt();
            if n == 0.0 {
                return Err(IndexError::Zero);
            }
            v.iter().map(|x| x / n).collect()
        }
    })
}

/// Two ranked lists (best first) fused by reciprocal rank: the `k` best entries, best first,
/// ties in the entries' order. The score is the fused one divided by its maximum (first in
/// both lists), so it lies in (0, 1]. Every hybrid search (this index's, pgvector's) ranks
/// by this one function.
pub fn fuse<T: Clone + Eq + std::hash::Hash + Ord>(
    semantic: &[T],
    keyword: &[T],
    k: usize,
) -> Vec<(T, f32)> {
    let mut fused: HashMap<&T, f32> = HashMap::new();
    for list in [semantic, keyword] {
        for (rank, id) in list.iter().enumerate() {
            *fused.entry(id).or_default() += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let best = 2.0 / (RRF_K + 1.0);
    let mut v: Vec<(&T, f32)> = fused.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(k);
    v.into_iter()
        .map(|(id, s)| (id.clone(), s / best))
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::avx512() {
        // SAFETY: the CPU has AVX-512F (detected at run time).
        return unsafe { simd::dot512(a, b) };
    }
    #[cfg(target_arch = "x86_64")]
    if simd::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (detected at run time).
        return unsafe { simd::dot(a, b) };
    }
    dot_portable(a, b)
}

fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    // Eight lanes let the compiler vectorize without reassociation flags.
    let mut acc = [0.0f32; 8];
    let (ca, ra) = a.split_at(a.len() - a.len() % 8);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(8).zip(cb.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd::avx512() {
        // SAFETY: the CPU has AVX-512F (detected at run time).
        return unsafe { simd::squared_distance512(a, b) };
    }
    #[cfg(target_arch = "x86_64")]
    if simd::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (detected at run time).
        return unsafe { simd::squared_distance(a, b) };
    }
    squared_distance_portable(a, b)
}

fn squared_distance_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, ra) = a.split_at(a.len() - a.len() % 8);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(8).zip(cb.chunks_exact(8)) {
        for i in 0..8 {
            let d = x[i] - y[i];
            acc[i] += d * d;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

/// Distance kernels for x86-64 CPUs with AVX2 and FMA, picked at run time: the workspace
/// builds for the baseline CPU (see .cargo/config.toml), and the graph search spends most of
/// its time here.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    pub fn avx2_fma() -> bool {
        // The macro caches the CPUID result in an atomic: cheap enough per call.
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// The macro also checks that the OS saves the 512-bit registers (XCR0), so an
    /// advertised but disabled AVX-512 is not taken.
    pub fn avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// As `reduce`, with twice the lanes and a masked load for the tail, so that a
    /// 384-dimension vector is 24 loads and no scalar loop.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn reduce512<const DIFF: bool>(a: &[f32], b: &[f32]) -> f32 {
        #[inline(always)]
        fn step<const DIFF: bool>(x: __m512, y: __m512, c: __m512) -> __m512 {
            // SAFETY: inlined into `reduce512`, compiled with its features.
            unsafe {
                if DIFF {
                    let d = _mm512_sub_ps(x, y);
                    _mm512_fmadd_ps(d, d, c)
                } else {
                    _mm512_fmadd_ps(x, y, c)
                }
            }
        }
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i + 64 <= n {
            for (j, c) in acc.iter_mut().enumerate() {
                // SAFETY: i + 16j + 16 <= n, within both slices.
                let (x, y) = unsafe {
                    (
                        _mm512_loadu_ps(pa.add(i + 16 * j)),
                        _mm512_loadu_ps(pb.add(i + 16 * j)),
                    )
                };
                *c = step::<DIFF>(x, y, *c);
            }
            i += 64;
        }
        while i + 16 <= n {
            // SAFETY: i + 16 <= n.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i))) };
            acc[1] = step::<DIFF>(x, y, acc[1]);
            i += 16;
        }
        if i < n {
            let m: __mmask16 = (1u16 << (n - i)) - 1;
            // SAFETY: the mask reads only lanes below n - i; masked-off lanes never fault
            // (and load as zero in both, adding nothing).
            let (x, y) = unsafe {
                (
                    _mm512_maskz_loadu_ps(m, pa.add(i)),
                    _mm512_maskz_loadu_ps(m, pb.add(i)),
                )
            };
            acc[2] = step::<DIFF>(x, y, acc[2]);
        }
        let v = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(v)
    }

    /// # Safety
    /// The CPU has AVX-512F.
    pub unsafe fn dot512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: forwarded.
        unsafe { reduce512::<false>(a, b) }
    }

    /// # Safety
    /// The CPU has AVX-512F.
    pub unsafe fn squared_distance512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: forwarded.
        unsafe { reduce512::<true>(a, b) }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sum(v: __m256) -> f32 {
        let hi = _mm256_extractf128_ps::<1>(v);
        let s = _mm_add_ps(_mm256_castps256_ps128(v), hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<1>(s, s));
        _mm_cvtss_f32(s)
    }

    /// `Σ aᵢ·bᵢ`, or with `DIFF` `Σ (aᵢ-bᵢ)²`: one loop for both, four accumulators to hide
    /// the fused multiply-add's latency.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce<const DIFF: bool>(a: &[f32], b: &[f32]) -> f32 {
        #[inline(always)]
        fn step<const DIFF: bool>(x: __m256, y: __m256, c: __m256) -> __m256 {
            // SAFETY: inlined into `reduce`, compiled with its features.
            unsafe {
                if DIFF {
                    let d = _mm256_sub_ps(x, y);
                    _mm256_fmadd_ps(d, d, c)
                } else {
                    _mm256_fmadd_ps(x, y, c)
                }
            }
        }
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, c) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8j + 8 <= n, within both slices.
                let (x, y) = unsafe {
                    (
                        _mm256_loadu_ps(pa.add(i + 8 * j)),
                        _mm256_loadu_ps(pb.add(i + 8 * j)),
                    )
                };
                *c = step::<DIFF>(x, y, *c);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: i + 8 <= n.
            let (x, y) = unsafe { (_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i))) };
            acc[0] = step::<DIFF>(x, y, acc[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        // SAFETY: same features.
        let mut s = unsafe { sum(v) };
        for k in i..n {
            let (x, y) = (a[k], b[k]);
            s += if DIFF { (x - y) * (x - y) } else { x * y };
        }
        s
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: forwarded.
        unsafe { reduce::<false>(a, b) }
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    pub unsafe fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: forwarded.
        unsafe { reduce::<true>(a, b) }
    }
}

impl Index {
    pub fn new(dim: usize, metric: Metric) -> Index {
        Index {
            dim,
            metric,
            vectors: Vec::new(),
            slots: Vec::new(),
            live: Vec::new(),
            free: Vec::new(),
            tombstones: Vec::new(),
            by_key: HashMap::new(),
            keywords: bm25::Bm25::default(),
            graph: None,
            exact_below: EXACT_BELOW,
            ef_search: EF_SEARCH,
        }
    }

    /// Searches of an index with fewer than `n` live entries are exact; from `n` on they
    /// use the graph (built now if the index is already that large). 0 always uses it.
    pub fn set_exact_below(&mut self, n: usize) {
        self.exact_below = n;
        self.build_graph_if_due();
    }

    /// The graph search's candidate list length (it is at least `k`): higher finds more of
    /// the true nearest neighbours, slower.
    pub fn set_ef_search(&mut self, ef: usize) {
        self.ef_search = ef.max(1);
    }

    fn space(&self) -> hnsw::Space<'_> {
        hnsw::Space {
            vectors: &self.vectors,
            dim: self.dim,
            metric: self.metric,
        }
    }

    /// Builds the graph over every live slot once the index is large enough to use it.
    fn build_graph_if_due(&mut self) {
        if self.graph.is_some() || self.len() < self.exact_below || self.dim == 0 {
            return;
        }
        let mut graph = hnsw::Graph::default();
        let space = hnsw::Space {
            vectors: &self.vectors,
            dim: self.dim,
            metric: self.metric,
        };
        for (id, slot) in self.slots.iter().enumerate() {
            if slot.is_some() {
                graph.insert(space, id as u32);
            }
        }
        self.graph = Some(graph);
    }

    pub fn dimension(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// The vector as the index compares it (normalized for cosine).
    fn prepare(&self, v: &[f32]) -> Result<Vec<f32>, IndexError> {
        prepare(v, self.dim, self.metric)
    }

    /// Adds an entry, replacing the entry of the same key.
    pub fn upsert(
        &mut self,
        key: &str,
        vector: &[f32],
        text: &str,
        metadata: Map<String, Value>,
    ) -> Result<(), IndexError> {
        let v = self.prepare(vector)?;
        self.remove(key);
        let id = match self.free.pop() {
            Some(id) => {
                let at = id as usize * self.dim;
                self.vectors[at..at + self.dim].copy_from_slice(&v);
                id
            }
            None => {
                pages::reserve_huge(&mut self.vectors, self.dim);
                self.vectors.extend_from_slice(&v);
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.keywords.insert(id, text);
        self.slots[id as usize] = Some(Slot {
            key: key.to_owned(),
            text: text.to_owned(),
            metadata,
        });
        self.set_live(id, true);
        self.by_key.insert(key.to_owned(), id);
        if self.graph.is_some() {
            let space = hnsw::Space {
                vectors: &self.vectors,
                dim: self.dim,
                metric: self.metric,
            };
            if let Some(g) = self.graph.as_mut() {
                g.insert(space, id);
            }
        } else {
            self.build_graph_if_due();
        }
        Ok(())
    }

    /// Removes the entry `key`; whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(id) = self.by_key.remove(key) else {
            return false;
        };
        if let Some(slot) = self.slots[id as usize].take() {
            self.keywords.remove(id, &slot.text);
        }
        self.set_live(id, false);
        if self.graph.is_none() {
            self.free.push(id);
            return true;
        }
        // Reusing the slot at once would leave the links that other nodes keep to it pointing
        // at the new vector, and every removal would make the graph a little worse; its links
        // are mended first, in a batch once a tenth of the slots are tombstones.
        self.tombstones.push(id);
        if self.tombstones.len() * TOMBSTONE_SHARE >= self.slots.len() {
            self.consolidate();
        }
        true
    }

    /// Takes the tombstones out of the graph and frees their slots.
    fn consolidate(&mut self) {
        let space = hnsw::Space {
            vectors: &self.vectors,
            dim: self.dim,
            metric: self.metric,
        };
        if let Some(g) = self.graph.as_mut() {
            g.consolidate(space, &self.tombstones);
        }
        self.free.append(&mut self.tombstones);
    }

    pub fn metadata(&self, key: &str) -> Option<&Map<String, Value>> {
        let id = *self.by_key.get(key)?;
        self.slots[id as usize].as_ref().map(|s| &s.metadata)
    }

    fn set_live(&mut self, id: u32, live: bool) {
        let (word, bit) = (id as usize / 64, id % 64);
        if self.live.len() <= word {
            self.live.resize(word + 1, 0);
        }
        if live {
            self.live[word] |= 1 << bit;
        } else {
            self.live[word] &= !(1 << bit);
        }
    }

    fn is_live(&self, id: u32) -> bool {
        self.live
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn passes(&self, id: u32, filter: Option<&Filter>) -> bool {
        let Some(filter) = filter else {
            return self.is_live(id);
        };
        match &self.slots[id as usize] {
            Some(s) => filter.matches(&s.metadata),
            None => false,
        }
    }

    fn hit(&self, id: u32, score: f32) -> Hit {
        let key = self.slots[id as usize]
            .as_ref()
            .map_or_else(String::new, |s| s.key.clone());
        let distance = match self.metric {
            Metric::Cosine => 1.0 - score,
            Metric::Euclidean => -score,
        };
        Hit {
            key,
            score,
            distance,
        }
    }

    /// The similarity of slot `id` to the prepared query, as results report it.
    fn similarity(&self, q: &[f32], id: u32) -> f32 {
        let at = id as usize * self.dim;
        let v = &self.vectors[at..at + self.dim];
        match self.metric {
            Metric::Cosine => dot(q, v),
            Metric::Euclidean => -squared_distance(q, v).sqrt(),
        }
    }

    /// Whether fewer than [`GRAPH_MIN_SELECTIVITY`] of a sample of live entries pass
    /// `filter`: a sample evenly spread over the slots costs a few hundred filter checks.
    fn too_selective(&self, filter: &Filter) -> bool {
        let step = (self.slots.len() / SELECTIVITY_SAMPLE).max(1);
        let (mut live, mut pass) = (0usize, 0usize);
        for slot in self.slots.iter().step_by(step).flatten() {
            live += 1;
            pass += usize::from(filter.matches(&slot.metadata));
        }
        (pass as f64) < GRAPH_MIN_SELECTIVITY * live as f64
    }

    /// The `k` slots nearest the prepared query among those that pass `filter`, nearest
    /// first, with their similarities: from the graph when the index is large enough and
    /// the filter lets enough entries through, else (or when the graph finds fewer than
    /// `k`) by the exact scan, which finds `k` whenever `k` entries pass.
    fn vector_top(&self, q: &[f32], k: usize, filter: Option<&Filter>) -> Vec<(u32, f32)> {
        if let Some(graph) = &self.graph
            && self.len() >= self.exact_below
            && k > 0
            && !filter.is_some_and(|f| self.too_selective(f))
        {
            let found = graph.search(self.space(), q, k, self.ef_search.max(k), |id| {
                self.passes(id, filter)
            });
            if found.len() >= k.min(self.len()) {
                return found
                    .into_iter()
                    .map(|(id, _)| (id, self.similarity(q, id)))
                    .collect();
            }
        }
        top_k(self.similarities(q, filter), k)
    }

    /// Similarities of every entry that passes `filter` to the prepared query.
    fn similarities<'a>(
        &'a self,
        q: &'a [f32],
        filter: Option<&'a Filter>,
    ) -> impl Iterator<Item = (u32, f32)> + 'a {
        (0..self.slots.len() as u32)
            .filter(move |&id| self.passes(id, filter))
            .map(move |id| (id, self.similarity(q, id)))
    }

    /// The `k` entries nearest `query` among those that pass `filter`, nearest first: exact
    /// below [`EXACT_BELOW`] entries (see [`Index::set_exact_below`]), approximate (HNSW)
    /// from there on, exact again for a filter that few entries pass.
    pub fn nearest(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let q = self.prepare(query)?;
        Ok(self
            .vector_top(&q, k, filter)
            .into_iter()
            .map(|(id, s)| self.hit(id, s))
            .collect())
    }

    /// As [`Index::nearest`], always by comparing the query with every entry that passes
    /// `filter`: the ground truth the graph search is measured against.
    pub fn nearest_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let q = self.prepare(query)?;
        Ok(top_k(self.similarities(&q, filter), k)
            .into_iter()
            .map(|(id, s)| self.hit(id, s))
            .collect())
    }

    /// The `k` entries whose text best matches `query` by BM25, among those that pass
    /// `filter`; the score is BM25's.
    pub fn keywords(&self, query: &str, k: usize, filter: Option<&Filter>) -> Vec<Hit> {
        let scores = self.keywords.scores(query, |id| self.passes(id, filter));
        top_k(scores.into_iter(), k)
            .into_iter()
            .map(|(id, s)| Hit {
                distance: 0.0,
                ..self.hit(id, s)
            })
            .collect()
    }

    /// Semantic and keyword results fused by reciprocal rank (each list `depth` deep), best
    /// first. The score is the fused one divided by its maximum (first in both lists), so it
    /// lies in (0, 1].
    pub fn hybrid(
        &self,
        query: &[f32],
        text: &str,
        k: usize,
        filter: Option<&Filter>,
    ) -> Result<Vec<Hit>, IndexError> {
        let depth = (k * 4).max(50);
        let q = self.prepare(query)?;
        let semantic = self.vector_top(&q, depth, filter);
        let keyword = top_k(
            self.keywords
                .scores(text, |id| self.passes(id, filter))
                .into_iter(),
            depth,
        );
        let ids = |l: &[(u32, f32)]| l.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        let cosine: HashMap<u32, f32> = semantic.iter().copied().collect();
        Ok(fuse(&ids(&semantic), &ids(&keyword), k)
            .into_iter()
            .map(|(id, s)| {
                let semantic = cosine.get(&id).copied();
                Hit {
                    distance: semantic.map_or(f32::NAN, |c| self.hit(id, c).distance),
                    ..self.hit(id, s)
                }
            })
            .collect())
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.by_key.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::testdata::{meta, vectors};

    /// Every kernel the CPU offers agrees with the portable one, at every length from 0
    /// past two full AVX-512 rounds, so each tail (masked or scalar) is covered.
    #[test]
    fn simd_kernels_agree_with_the_portable_ones() {
        for n in 0..=140 {
            let v = vectors(2, n.max(1), n as u64 + 1);
            let (a, b) = (&v[0][..n], &v[1][..n]);
            let (d, e) = (dot_portable(a, b), squared_distance_portable(a, b));
            let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * (1.0 + y.abs());
            assert!(close(dot(a, b), d), "dot, n={n}");
            assert!(close(squared_distance(a, b), e), "squared distance, n={n}");
            #[cfg(target_arch = "x86_64")]
            {
                if simd::avx2_fma() {
                    // SAFETY: detected just above.
                    let (x, y) = unsafe { (simd::dot(a, b), simd::squared_distance(a, b)) };
                    assert!(close(x, d) && close(y, e), "AVX2, n={n}");
                }
                if simd::avx512() {
                    // SAFETY: detected just above.
                    let (x, y) = unsafe { (simd::dot512(a, b), simd::squared_distance512(a, b)) };
                    assert!(close(x, d) && close(y, e), "AVX-512, n={n}");
                }
            }
        }
    }

    #[test]
    fn nearest_matches_a_naive_scan() {
        let data = vectors(300, 13, 7);
        let mut idx = Index::new(13, Metric::Cosine);
        for (i, v) in data.iter().enumerate() {
            idx.upsert(&format!("k{i}"), v, "", meta(json!({"i": i})))
                .unwrap();
        }
        let q = &vectors(1, 13, 99)[0];
        let norm = |v: &[f32]| dot(v, v).sqrt();
        let mut naive: Vec<(usize, f32)> = data
            .iter()
            .enumerate()
            .map(|(i, v)| (i, dot(q, v) / (norm(q) * norm(v))))
            .collect();
        naive.sort_by(|a, b| b.1.total_cmp(&a.1));
        let got = idx.nearest(q, 10, None).unwrap();
        let want: Vec<String> = naive[..10].iter().map(|(i, _)| format!("k{i}")).collect();
        assert_eq!(got.iter().map(|h| h.key.clone()).collect::<Vec<_>>(), want);
        assert!((got[0].score - naive[0].1).abs() < 1e-5);
        assert!((got[0].distance - (1.0 - naive[0].1)).abs() < 1e-5);
    }

    #[test]
    fn filters_apply_inside_the_search() {
        let data = vectors(1000, 8, 3);
        let mut idx = Index::new(8, Metric::Euclidean);
        for (i, v) in data.iter().enumerate() {
            idx.upsert(&format!("k{i}"), v, "", meta(json!({"bucket": i % 100})))
                .unwrap();
        }
        // 1% selectivity: exactly ten entries pass, and all ten come back.
        let f = Filter::Equals("bucket".into(), json!(42));
        let hits = idx.nearest(&data[0], 10, Some(&f)).unwrap();
        assert_eq!(hits.len(), 10);
        for h in &hits {
            assert_eq!(idx.metadata(&h.key).unwrap()["bucket"], json!(42));
        }
        assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
    }

    #[test]
    fn upserts_replace_and_removes_free_slots() {
        let mut idx = Index::new(2, Metric::Cosine);
        idx.upsert("a", &[1.0, 0.0], "alpha", Map::new()).unwrap();
        idx.upsert("b", &[0.0, 1.0], "beta", Map::new()).unwrap();
        idx.upsert("a", &[0.0, 2.0], "alpha again", Map::new())
            .unwrap();
        assert_eq!(idx.len(), 2);
        let hits = idx.nearest(&[0.0, 1.0], 5, None).unwrap();
        assert_eq!(hits.len(), 2);
        assert!((hits[0].score - 1.0).abs() < 1e-6 && (hits[1].score - 1.0).abs() < 1e-6);
        assert!(idx.remove("a"));
        assert!(!idx.remove("a"));
        assert_eq!(idx.nearest(&[1.0, 0.0], 5, None).unwrap().len(), 1);
        assert!(idx.keywords("alpha", 5, None).is_empty());
        idx.upsert("c", &[1.0, 1.0], "gamma", Map::new()).unwrap();
        assert_eq!(idx.vectors.len(), 4, "the freed slot is reused");
    }

    #[test]
    fn bad_vectors_are_refused() {
        let mut idx = Index::new(3, Metric::Cosine);
        assert_eq!(
            idx.upsert("a", &[1.0], "", Map::new()),
            Err(IndexError::Dimension { want: 3, got: 1 })
        );
        assert_eq!(
            idx.upsert("a", &[f32::NAN, 0.0, 0.0], "", Map::new()),
            Err(IndexError::NotFinite)
        );
        assert_eq!(
            idx.upsert("a", &[0.0; 3], "", Map::new()),
            Err(IndexError::Zero)
        );
    }

    #[test]
    fn hybrid_rewards_agreement_of_both_lists() {
        let mut idx = Index::new(2, Metric::Cosine);
        idx.upsert("near-no-words", &[1.0, 0.05], "unrelated text", Map::new())
            .unwrap();
        idx.upsert(
            "near-and-words",
            &[1.0, 0.1],
            "the marigold blend roast",
            Map::new(),
        )
        .unwrap();
        idx.upsert(
            "far-with-words",
            &[0.0, 1.0],
            "marigold marigold",
            Map::new(),
        )
        .unwrap();
        let hits = idx.hybrid(&[1.0, 0.0], "marigold roast", 3, None).unwrap();
        assert_eq!(hits[0].key, "near-and-words");
        assert!(hits[0].score <= 1.0 && hits[0].score > hits[2].score);
        assert!(hits.iter().all(|h| h.score > 0.0));
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    use serde_json::{Map, Value};

    pub fn meta(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// Deterministic pseudo-random vectors in [-1, 1) (xorshift).
    pub fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                (0..dim)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s % 20_000) as f32 / 10_000.0 - 1.0
                    })
                    .collect()
            })
            .collect()
    }
}
