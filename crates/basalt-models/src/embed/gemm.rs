//! Linear layers `y = x·Wᵀ + b` for the encoder: weights packed once at load time into the
//! layout the kernel streams, activations row-major, work split over a thread pool.
//!
//! Three kernels:
//! - **bf16** (x86-64 with AVX-512 BF16): weights and activations rounded to bfloat16 (nearest
//!   even), products accumulated in f32 by `vdpbf16ps`, twice the multiply rate of f32 FMA.
//!   On all-MiniLM-L6-v2 the sentence embeddings stay within about 1.3e-5 of the float64
//!   reference in cosine (measured over 50 sentences); Basalt's bar is 1e-4.
//! - **AMX** (x86-64 with AMX-BF16, proven to run): the same bf16 operands multiplied by the
//!   tile unit (`tdpbf16ps`, 16×16 outputs by 32 products per instruction), in the same packed
//!   layout, which is exactly the tile unit's "B" operand.
//! - **f32** everywhere else (and on request): plain f32 arithmetic the compiler vectorizes.
//!
//! The vector kernels block the same way: a tile of `MR` rows × `NR` blocks of 16 output
//! columns is accumulated in registers across the whole of `k`. A task owns a chunk of rows
//! and a range of column blocks, so tasks write disjoint parts of the output.

use rayon::prelude::*;

/// Output columns per packed block: one 512-bit register of f32.
const LANES: usize = 16;
/// Rows per task: a chunk of packed activations stays in L2 while the task sweeps the weights.
const ROWS_PER_TASK: usize = 64;
/// Below this many multiply-adds a layer runs on the calling thread (the pool's hand-off costs
/// more than it saves).
const PARALLEL_MIN_MACS: usize = 1 << 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Precision {
    /// f32 throughout: embeddings agree with sentence-transformers' to float rounding.
    #[default]
    F32,
    /// bfloat16 inputs, f32 accumulation, where the CPU has AVX-512 BF16 (f32 elsewhere):
    /// about 1.5x faster, vectors within about 1e-5 of f32 in cosine, but similarities
    /// between sentences move by up to about 2e-3.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!(
                "embedding precision {other:?}: expected f32 or bf16"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AMX tiles, bf16 operands (`tdpbf16ps`).
    Amx,
    /// AVX-512 BF16 `vdpbf16ps`.
    Bf16,
    /// AVX-512F f32 FMA.
    F32Avx512,
    /// Portable f32, vectorized by the compiler for the build's target.
    F32,
}

impl Kernel {
    pub fn select(precision: Precision) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            // Proven and allowed by BASALT_CPU_FEATURES, not only advertised (crate::cpu).
            use crate::cpu::Feature;
            let cpu = crate::cpu::selection();
            if cpu.allows(Feature::Avx512) {
                if precision == Precision::Bf16
                    && cpu.allows(Feature::Amx)
                    && cpu.allows(Feature::Avx512Bf16)
                    && amx::usable()
                {
                    return Kernel::Amx;
                }
                if precision == Precision::Bf16 && cpu.allows(Feature::Avx512Bf16) {
                    return Kernel::Bf16;
                }
                return Kernel::F32Avx512;
            }
        }
        let _ = precision;
        Kernel::F32
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Amx => "bf16 (AMX)",
            Kernel::Bf16 => "bf16 (AVX-512 BF16)",
            Kernel::F32Avx512 => "f32 (AVX-512)",
            Kernel::F32 => "f32",
        }
    }
}

enum Packed {
    /// `[n/16 blocks][k/2 pairs][16 lanes]`, each u32 two bf16: element 2p low, 2p+1 high.
    Bf16(Vec<u32>),
    /// `[n/16 blocks][k][16 lanes]`, f32 bits.
    F32(Vec<u32>),
}

pub struct Linear {
    n: usize,
    k: usize,
    bias: Vec<f32>,
    packed: Packed,
    kernel: Kernel,
}

/// Round to the nearest bfloat16, ties to even, as `vcvtneps2bf16` does (NaN stays NaN).
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

fn pairs(k: usize) -> usize {
    k.div_ceil(2)
}

/// Pairs per packed row for `kernel`: the AMX kernel reads whole tiles of 16 pairs, so its
/// rows are padded with zeros (which add nothing) to a multiple of 16.
fn steps(kernel: Kernel, k: usize) -> usize {
    match kernel {
        Kernel::Amx => pairs(k).next_multiple_of(amx::PAIRS),
        _ => pairs(k),
    }
}

impl Linear {
    /// `weight` is `[n][k]` row-major (PyTorch's `nn.Linear` layout), `bias` has `n` entries.
    pub fn new(weight: &[f32], bias: Vec<f32>, n: usize, k: usize, kernel: Kernel) -> Linear {
        assert_eq!(weight.len(), n * k, "weight shape");
        assert_eq!(bias.len(), n, "bias shape");
        // The AMX kernel multiplies two blocks at a time: an odd count gets a block of zeros.
        let blocks = match kernel {
            Kernel::Amx => n.div_ceil(LANES).next_multiple_of(2),
            _ => n.div_ceil(LANES),
        };
        let w = |row: usize, col: usize| {
            if row < n && col < k {
                weight[row * k + col]
            } else {
                0.0
            }
        };
        let packed = match kernel {
            Kernel::Bf16 | Kernel::Amx => {
                let kp = steps(kernel, k);
                let mut data = vec![0u32; blocks * kp * LANES];
                for b in 0..blocks {
                    for p in 0..kp {
                        for l in 0..LANES {
                            let row = b * LANES + l;
                            let lo = bf16_bits(w(row, 2 * p)) as u32;
                            let hi = bf16_bits(w(row, 2 * p + 1)) as u32;
                            data[(b * kp + p) * LANES + l] = lo | (hi << 16);
                        }
                    }
                }
                Packed::Bf16(data)
            }
            Kernel::F32 | Kernel::F32Avx512 => {
                let mut data = vec![0u32; blocks * k * LANES];
                for b in 0..blocks {
                    for c in 0..k {
                        for l in 0..LANES {
                            data[(b * k + c) * LANES + l] = w(b * LANES + l, c).to_bits();
                        }
                    }
                }
                Packed::F32(data)
            }
        };
        Linear {
            n,
            k,
            bias,
            packed,
            kernel,
        }
    }

    /// `out[m][n] = x[m][k] · Wᵀ + b`.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32], pool: &rayon::ThreadPool) {
        assert_eq!(x.len(), m * self.k, "input shape");
        assert_eq!(out.len(), m * self.n, "output shape");
        if m == 0 {
            return;
        }
        let blocks = self.n.div_ceil(LANES);
        let row_chunks = m.div_ceil(ROWS_PER_TASK);
        let threads = pool.current_num_threads().max(1);
        let parallel = threads > 1 && m * self.n * self.k >= PARALLEL_MIN_MACS;
        // Enough tasks for every thread to have two, splitting columns when rows are few.
        let col_splits = if parallel && row_chunks < 2 * threads {
            (2 * threads).div_ceil(row_chunks).min(blocks)
        } else {
            1
        };
        let mut blocks_per_split = blocks.div_ceil(col_splits);
        if self.kernel == Kernel::Amx {
            // The AMX kernel takes column blocks two at a time from the start of its range.
            blocks_per_split = blocks_per_split.next_multiple_of(2);
        }
        let tasks = row_chunks * col_splits;
        let out_ptr = SharedOut(out.as_mut_ptr());
        let for_each_task = |run: &(dyn Fn(usize) + Sync)| {
            if parallel {
                pool.install(|| (0..tasks).into_par_iter().for_each(run));
            } else {
                (0..tasks).for_each(run);
            }
        };
        let range = |t| task_range(t, col_splits, m, blocks, blocks_per_split);
        match (&self.packed, self.kernel) {
            (Packed::F32(w), Kernel::F32) => for_each_task(&|t| {
                let (rows, cols) = range(t);
                // SAFETY: tasks cover disjoint (rows × column blocks) parts of `out`.
                unsafe { self.task_f32(x, w, rows, cols, &out_ptr) }
            }),
            #[cfg(target_arch = "x86_64")]
            (Packed::F32(w), _) => {
                // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern
                // is a valid u32.
                let a: &[u32] = unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) };
                for_each_task(&|t| {
                    let (rows, cols) = range(t);
                    // SAFETY: as above; `Kernel::select` found AVX-512F.
                    unsafe { x86::task_f32(self, a, w, self.k, rows, cols, &out_ptr) }
                })
            }
            #[cfg(target_arch = "x86_64")]
            (Packed::Bf16(w), kernel) => {
                let kp = steps(kernel, self.k);
                // The AMX kernel reads rows in whole pairs of 16-row tiles: zeros pad them.
                let padded = match kernel {
                    Kernel::Amx => m.next_multiple_of(amx::ROWS),
                    _ => m,
                };
                let mut xa = vec![0u32; padded * kp];
                let convert =
                    |(dst, src): (&mut [u32], &[f32])| to_bf16_pairs(src, self.k, kp, dst);
                if parallel {
                    pool.install(|| {
                        xa.par_chunks_mut(ROWS_PER_TASK * kp)
                            .zip(x.par_chunks(ROWS_PER_TASK * self.k))
                            .for_each(convert)
                    });
                } else {
                    convert((&mut xa, x));
                }
                for_each_task(&|t| {
                    let (rows, cols) = range(t);
                    // SAFETY: as above; `Kernel::select` proved AVX-512 BF16, and for the AMX
                    // kernel AMX with the permission to use it.
                    unsafe {
                        if kernel == Kernel::Amx {
                            amx::task(self, &xa, w, kp, rows, cols, &out_ptr)
                        } else {
                            x86::task_bf16(self, &xa, w, kp, rows, cols, &out_ptr)
                        }
                    }
                })
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("AVX-512 kernels are only selected on x86-64"),
        }
    }

    /// The portable kernel: tiles of up to 4 rows × 16 columns with fixed-size loops, which
    /// the compiler unrolls and vectorizes for whatever SIMD the build targets (AVX2, NEON).
    ///
    /// # Safety
    /// No other task may write `rows × cols` of the output concurrently.
    unsafe fn task_f32(
        &self,
        x: &[f32],
        w: &[u32],
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        out: &SharedOut,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::selection().allows(crate::cpu::Feature::Avx2)
            && crate::cpu::selection().allows(crate::cpu::Feature::Fma)
        {
            // SAFETY: the features were proven by running them; the rest is forwarded.
            return unsafe { self.task_f32_avx2(x, w, rows, cols, out) };
        }
        // Every aarch64 CPU has fused multiply-add (and `mul_add` compiles to it there).
        const FMA: bool = cfg!(target_arch = "aarch64") || cfg!(target_feature = "fma");
        // SAFETY: forwarded.
        unsafe { self.task_f32_generic::<FMA>(x, w, rows, cols, out) }
    }

    /// # Safety
    /// As `task_f32`, and the CPU has AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn task_f32_avx2(
        &self,
        x: &[f32],
        w: &[u32],
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        out: &SharedOut,
    ) {
        // SAFETY: forwarded; inlined here, so compiled with AVX2 and FMA.
        unsafe { self.task_f32_generic::<true>(x, w, rows, cols, out) }
    }

    /// # Safety
    /// As `task_f32`.
    #[inline(always)]
    unsafe fn task_f32_generic<const FMA: bool>(
        &self,
        x: &[f32],
        w: &[u32],
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        out: &SharedOut,
    ) {
        const MR: usize = 4;
        #[inline(always)]
        fn tile<const M: usize, const FMA: bool>(
            x: &[f32],
            k: usize,
            w: &[u32],
        ) -> [[f32; LANES]; M] {
            let mut acc = [[0f32; LANES]; M];
            for c in 0..k {
                let wv: &[u32; LANES] = w[c * LANES..][..LANES].try_into().unwrap();
                for (i, acc_row) in acc.iter_mut().enumerate() {
                    let a = x[i * k + c];
                    for l in 0..LANES {
                        let w = f32::from_bits(wv[l]);
                        // A fused multiply-add only where the code is compiled with FMA:
                        // elsewhere `mul_add` is a libm call per element.
                        acc_row[l] = if FMA {
                            a.mul_add(w, acc_row[l])
                        } else {
                            acc_row[l] + a * w
                        };
                    }
                }
            }
            acc
        }
        let k = self.k;
        for b in cols {
            let wb = &w[b * k * LANES..][..k * LANES];
            let mut r = rows.start;
            while r < rows.end {
                let mr = (rows.end - r).min(MR);
                let xs = &x[r * k..(r + mr) * k];
                let store = |i: usize, acc: &[f32; LANES]| {
                    for (l, v) in acc.iter().enumerate() {
                        let col = b * LANES + l;
                        if col < self.n {
                            // SAFETY: (r + i, col) lies in this task's part of `out`.
                            unsafe { *out.0.add((r + i) * self.n + col) = v + self.bias[col] };
                        }
                    }
                };
                match mr {
                    4 => tile::<4, FMA>(xs, k, wb)
                        .iter()
                        .enumerate()
                        .for_each(|(i, a)| store(i, a)),
                    3 => tile::<3, FMA>(xs, k, wb)
                        .iter()
                        .enumerate()
                        .for_each(|(i, a)| store(i, a)),
                    2 => tile::<2, FMA>(xs, k, wb)
                        .iter()
                        .enumerate()
                        .for_each(|(i, a)| store(i, a)),
                    _ => tile::<1, FMA>(xs, k, wb)
                        .iter()
                        .enumerate()
                        .for_each(|(i, a)| store(i, a)),
                }
                r += mr;
            }
        }
    }
}

/// Rows and column blocks of task `t`.
fn task_range(
    t: usize,
    col_splits: usize,
    m: usize,
    blocks: usize,
    blocks_per_split: usize,
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let (rc, cs) = (t / col_splits, t % col_splits);
    let rows = rc * ROWS_PER_TASK..((rc + 1) * ROWS_PER_TASK).min(m);
    let cols = (cs * blocks_per_split).min(blocks)..((cs + 1) * blocks_per_split).min(blocks);
    (rows, cols)
}

/// `src`'s rows of `k` as bf16 pairs, a row every `kp` entries of `dst` (the rest of a padded
/// row, and padding rows, stay as they are: zero). Only the bf16 kernels call it, and they
/// run where the CPU has AVX-512 BF16.
#[cfg(target_arch = "x86_64")]
fn to_bf16_pairs(src: &[f32], k: usize, kp: usize, dst: &mut [u32]) {
    // SAFETY: both bf16 kernels are selected only where AVX-512 BF16 is proven.
    unsafe { x86::to_bf16_pairs(src, k, kp, dst) }
}

/// The output pointer shared by tasks that write disjoint parts of it.
struct SharedOut(*mut f32);
// SAFETY: tasks only write disjoint elements (see `Linear::forward`).
unsafe impl Sync for SharedOut {}
unsafe impl Send for SharedOut {}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX-512 kernels. Packed activations and weights are 32-bit elements either way: one
    //! f32 (`vfmadd231ps`), or a pair of bf16 (`vdpbf16ps` multiplies two pairs and adds both
    //! products to the f32 accumulator).

    use super::{LANES, Linear, SharedOut};
    use std::arch::x86_64::*;

    const MR: usize = 8;
    const NR: usize = 3;

    /// `super::to_bf16_pairs` by `vcvtneps2bf16`, 16 values at a time: a row of bf16 pairs is
    /// the row's bf16 values in order (element 2p in the low half of pair p).
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX-512 BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn to_bf16_pairs(src: &[f32], k: usize, kp: usize, dst: &mut [u32]) {
        for (row, out) in src.chunks(k).zip(dst.chunks_mut(kp)) {
            let whole = k / LANES * LANES;
            let halves = out.as_mut_ptr().cast::<u16>();
            for c in (0..whole).step_by(LANES) {
                // SAFETY: c + 16 <= k, and pair c/2 + 8 <= kp, so 16 halves fit in `out`.
                unsafe {
                    let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(row.as_ptr().add(c)));
                    _mm256_storeu_si256(
                        halves.add(c).cast(),
                        std::mem::transmute::<__m256bh, __m256i>(v),
                    );
                }
            }
            for (c, &x) in row.iter().enumerate().skip(whole) {
                // SAFETY: c < k <= 2·kp halves.
                unsafe { *halves.add(c) = super::bf16_bits(x) };
            }
        }
    }

    #[derive(Clone, Copy)]
    struct Tile {
        a: *const u32,
        lda: usize,
        w: *const u32,
        steps: usize,
        bias: *const f32,
        out: *mut f32,
        ldo: usize,
        /// Output columns that exist from this tile's first column on.
        valid: usize,
    }

    /// Sweeps `rows × cols` in tiles of `MR` rows × `NR` blocks.
    ///
    /// # Safety
    /// `rows × cols` owned by this task; `a` holds the rows' packed activations, `steps`
    /// 32-bit elements each; `w` the packed weights, `steps × 16` elements per block; `tile`
    /// runs on this CPU.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn sweep(
        lin: &Linear,
        a: &[u32],
        w: &[u32],
        steps: usize,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        out: &SharedOut,
        tile: impl Fn(usize, usize, &Tile),
    ) {
        let mut b = cols.start;
        while b < cols.end {
            let nr = (cols.end - b).min(NR);
            let mut r = rows.start;
            while r < rows.end {
                let mr = (rows.end - r).min(MR);
                let t = Tile {
                    a: a[r * steps..].as_ptr(),
                    lda: steps,
                    w: w[b * steps * LANES..].as_ptr(),
                    steps,
                    // SAFETY: b < blocks and r < m, so both offsets are in bounds; the tile's
                    // masks keep every access inside.
                    bias: unsafe { lin.bias.as_ptr().add(b * LANES) },
                    out: unsafe { out.0.add(r * lin.n + b * LANES) },
                    ldo: lin.n,
                    valid: lin.n - b * LANES,
                };
                tile(mr, nr, &t);
                r += mr;
            }
            b += nr;
        }
    }

    /// One kernel: a task entry point, its tile shapes and the multiply-accumulate step.
    macro_rules! kernel {
        ($task:ident, $features:literal, |$c:ident, $a:ident, $w:ident| $step:expr) => {
            /// # Safety
            /// As `sweep`, and the CPU has the features this kernel is compiled for.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $task(
                lin: &Linear,
                a: &[u32],
                w: &[u32],
                steps: usize,
                rows: std::ops::Range<usize>,
                cols: std::ops::Range<usize>,
                out: &SharedOut,
            ) {
                #[target_feature(enable = $features)]
                unsafe fn tile<const M: usize, const N: usize>(t: &Tile) {
                    let mut acc = [[_mm512_setzero_ps(); N]; M];
                    let block = t.steps * LANES;
                    for p in 0..t.steps {
                        let mut wv = [_mm512_setzero_si512(); N];
                        for (j, v) in wv.iter_mut().enumerate() {
                            // SAFETY: block j of the packed weights has steps × 16 entries.
                            *v = unsafe {
                                _mm512_loadu_si512(t.w.add(j * block + p * LANES).cast())
                            };
                        }
                        for (i, acc_row) in acc.iter_mut().enumerate() {
                            // SAFETY: row i of the packed activations has `steps` entries.
                            let $a = _mm512_set1_epi32(unsafe { *t.a.add(i * t.lda + p) } as i32);
                            for (j, $c) in acc_row.iter_mut().enumerate() {
                                let $w = wv[j];
                                *$c = $step;
                            }
                        }
                    }
                    for (i, acc_row) in acc.iter().enumerate() {
                        for (j, c) in acc_row.iter().enumerate() {
                            let left = t.valid.saturating_sub(j * LANES).min(LANES);
                            let mask: __mmask16 = if left == LANES {
                                0xffff
                            } else {
                                (1u16 << left) - 1
                            };
                            // SAFETY: masked to the columns that exist; row i is this task's.
                            unsafe {
                                let bias = _mm512_maskz_loadu_ps(mask, t.bias.add(j * LANES));
                                _mm512_mask_storeu_ps(
                                    t.out.add(i * t.ldo + j * LANES),
                                    mask,
                                    _mm512_add_ps(*c, bias),
                                );
                            }
                        }
                    }
                }
                let dispatch = |mr: usize, nr: usize, t: &Tile| {
                    // SAFETY: this function runs only where its features exist.
                    unsafe {
                        match (mr, nr) {
                            (8, 3) => tile::<8, 3>(t),
                            (8, 2) => tile::<8, 2>(t),
                            (8, 1) => tile::<8, 1>(t),
                            (4..=7, n) => {
                                tile_rows::<4>(t, n);
                                let rest = Tile {
                                    a: t.a.add(4 * t.lda),
                                    out: t.out.add(4 * t.ldo),
                                    ..*t
                                };
                                tile_any(mr - 4, n, &rest);
                            }
                            (m, n) => tile_any(m, n, t),
                        }
                    }
                };
                #[target_feature(enable = $features)]
                unsafe fn tile_rows<const M: usize>(t: &Tile, n: usize) {
                    // SAFETY: forwarded.
                    unsafe {
                        match n {
                            3 => tile::<M, 3>(t),
                            2 => tile::<M, 2>(t),
                            _ => tile::<M, 1>(t),
                        }
                    }
                }
                #[target_feature(enable = $features)]
                unsafe fn tile_any(m: usize, n: usize, t: &Tile) {
                    // SAFETY: forwarded.
                    unsafe {
                        match m {
                            0 => {}
                            1 => tile_rows::<1>(t, n),
                            2 => tile_rows::<2>(t, n),
                            3 => tile_rows::<3>(t, n),
                            _ => tile_rows::<4>(t, n),
                        }
                    }
                }
                // SAFETY: forwarded from the caller.
                unsafe { sweep(lin, a, w, steps, rows, cols, out, dispatch) }
            }
        };
    }

    kernel!(task_f32, "avx512f", |c, a, w| _mm512_fmadd_ps(
        _mm512_castsi512_ps(a),
        _mm512_castsi512_ps(w),
        *c
    ));
    kernel!(task_bf16, "avx512f,avx512bf16", |c, a, w| {
        // SAFETY: same size; a 32-bit lane holds two bf16.
        let (a, w) = unsafe {
            (
                std::mem::transmute::<__m512i, __m512bh>(a),
                std::mem::transmute::<__m512i, __m512bh>(w),
            )
        };
        _mm512_dpbf16_ps(*c, a, w)
    });
}

/// The AMX kernel. Tile registers are not operands the compiler allocates, so each
/// instruction names its tiles: `tmm0..tmm3` accumulate a 32-row × 32-column output tile
/// (two row tiles × two column blocks), `tmm4`/`tmm5` hold the activations' row tiles and
/// `tmm6`/`tmm7` the weights' blocks, 16 pairs (32 products) deep.
mod amx {
    /// Pairs of bf16 per tile row (64 bytes).
    pub const PAIRS: usize = 16;
    /// Rows the kernel computes at once: two tiles of 16.
    pub const ROWS: usize = 32;

    #[cfg(target_arch = "x86_64")]
    pub use imp::{task, usable};

    #[cfg(not(target_arch = "x86_64"))]
    pub fn usable() -> bool {
        false
    }

    #[cfg(target_arch = "x86_64")]
    mod imp {
        use super::super::{LANES, Linear, SharedOut};
        use super::{PAIRS, ROWS};
        use std::arch::asm;
        use std::sync::OnceLock;

        /// AMX-BF16 advertised, Linux lets this process use the tile data, and this kernel
        /// really runs: a product on two threads in a forked child must survive and be right.
        /// `crate::cpu` proved the tile instructions already, but on one Intel KVM guest
        /// those probes passed and llama.cpp's AMX kernel still died of SIGILL; a kernel that
        /// kills the embedding worker (or the server, with in-process engines) on every
        /// request is worse than a slower one.
        pub fn usable() -> bool {
            static USABLE: OnceLock<bool> = OnceLock::new();
            *USABLE.get_or_init(|| {
                let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
                const AMX_BF16: u32 = 1 << 22;
                const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
                const XFEATURE_XTILEDATA: libc::c_long = 18;
                let permitted = leaf7.edx & AMX_BF16 != 0
                    // SAFETY: a plain system call; it only grants this process a permission.
                    && unsafe {
                        libc::syscall(
                            libc::SYS_arch_prctl,
                            ARCH_REQ_XCOMP_PERM,
                            XFEATURE_XTILEDATA,
                        )
                    } == 0;
                // SAFETY: the child builds its own thread pool and takes no lock another
                // thread of this process could hold (malloc is reset by fork).
                let proven = permitted
                    && matches!(
                        unsafe { crate::cpu::in_child(std::time::Duration::from_secs(30), proof) },
                        Ok(0)
                    );
                if permitted && !proven {
                    tracing::warn!(
                        "AMX advertised and permitted, but its kernel failed in a child: not used"
                    );
                }
                proven
            })
        }

        /// A product large enough to be split over two threads, against f32 arithmetic.
        fn proof() -> i32 {
            let (m, n, k) = (64, 512, 64);
            let x: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
            let w: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
            let lin = Linear::new(&w, vec![0.0; n], n, k, super::super::Kernel::Amx);
            let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(2).build() else {
                return 3;
            };
            let mut out = vec![0f32; m * n];
            lin.forward(&x, m, &mut out, &pool);
            // These operands are exact in bf16, so the tile unit must match f32 exactly.
            for (i, got) in out.iter().enumerate() {
                let (r, c) = (i / n, i % n);
                let want: f32 = (0..k).map(|j| x[r * k + j] * w[c * k + j]).sum();
                if (got - want).abs() > 1e-3 {
                    return 4;
                }
            }
            0
        }

        /// Palette 1, all eight tiles 16 rows of 64 bytes.
        fn config() -> [u8; 64] {
            let mut cfg = [0u8; 64];
            cfg[0] = 1;
            for t in 0..8 {
                cfg[16 + 2 * t] = 64;
                cfg[48 + t] = 16;
            }
            cfg
        }

        /// `rows × cols` of the output from `a` (the activations as bf16 pairs, `kp` per
        /// row, zero rows up to a multiple of [`ROWS`]) and `w` (packed weights, `kp × 16`
        /// pairs per block, an even number of blocks).
        ///
        /// # Safety
        /// `usable()` returned true; `rows × cols` is this task's alone; `kp` is a multiple of
        /// [`PAIRS`]; `a` and `w` are laid out as above.
        #[allow(clippy::too_many_arguments)]
        pub unsafe fn task(
            lin: &Linear,
            a: &[u32],
            w: &[u32],
            kp: usize,
            rows: std::ops::Range<usize>,
            cols: std::ops::Range<usize>,
            out: &SharedOut,
        ) {
            debug_assert!(kp.is_multiple_of(PAIRS));
            let cfg = config();
            let mut acc = [0f32; 4 * 256];
            let (sa, sw, sc) = (kp * 4, LANES * 4, LANES * 4);
            // SAFETY: loads the tile configuration above.
            unsafe {
                asm!(
                    "ldtilecfg [{}]",
                    in(reg) cfg.as_ptr(),
                    out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _, out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
                    options(nostack)
                )
            };
            let mut r = rows.start;
            while r < rows.end {
                let mut b = cols.start;
                while b < cols.end {
                    let a0 = a[r * kp..].as_ptr();
                    // SAFETY: `a` has ROWS rows from any multiple of 16 below m, and kp each.
                    let a1 = unsafe { a0.add(16 * kp) };
                    let w0 = w[b * kp * LANES..].as_ptr();
                    // SAFETY: the block count is even, so block b + 1 exists.
                    let w1 = unsafe { w0.add(kp * LANES) };
                    // SAFETY: every tile load reads 16 rows of 64 bytes inside `a` or `w` (see
                    // above); the stores write 16 rows of 64 bytes inside `acc`.
                    unsafe {
                        asm!(
                            "tilezero tmm0",
                            "tilezero tmm1",
                            "tilezero tmm2",
                            "tilezero tmm3",
                            out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
                            options(nostack)
                        );
                        for p in (0..kp).step_by(PAIRS) {
                            asm!(
                                "tileloadd tmm4, [{a0} + {sa}*1]",
                                "tileloadd tmm5, [{a1} + {sa}*1]",
                                "tileloadd tmm6, [{w0} + {sw}*1]",
                                "tileloadd tmm7, [{w1} + {sw}*1]",
                                "tdpbf16ps tmm0, tmm4, tmm6",
                                "tdpbf16ps tmm1, tmm4, tmm7",
                                "tdpbf16ps tmm2, tmm5, tmm6",
                                "tdpbf16ps tmm3, tmm5, tmm7",
                                a0 = in(reg) a0.add(p),
                                a1 = in(reg) a1.add(p),
                                w0 = in(reg) w0.add(p * LANES),
                                w1 = in(reg) w1.add(p * LANES),
                                sa = in(reg) sa,
                                sw = in(reg) sw,
                                out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _,
                                out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _,
                                options(nostack, readonly)
                            );
                        }
                        asm!(
                            "tilestored [{c0} + {sc}*1], tmm0",
                            "tilestored [{c1} + {sc}*1], tmm1",
                            "tilestored [{c2} + {sc}*1], tmm2",
                            "tilestored [{c3} + {sc}*1], tmm3",
                            c0 = in(reg) acc.as_mut_ptr(),
                            c1 = in(reg) acc.as_mut_ptr().add(256),
                            c2 = in(reg) acc.as_mut_ptr().add(512),
                            c3 = in(reg) acc.as_mut_ptr().add(768),
                            sc = in(reg) sc,
                            options(nostack)
                        );
                    }
                    // acc[t]: t = 2·(row tile) + (column block).
                    for (t, tile) in acc.chunks_exact(256).enumerate() {
                        let (rt, bt) = (t / 2, t % 2);
                        let block = b + bt;
                        let first = r + 16 * rt;
                        if block >= cols.end || first >= rows.end {
                            continue;
                        }
                        let valid = (lin.n - block * LANES).min(LANES);
                        // SAFETY: rows first..rows.end (at most 16) and the block's valid
                        // columns lie in this task's part of `out`; AVX-512F comes with AMX.
                        unsafe {
                            store(
                                tile,
                                (rows.end - first).min(16),
                                lin.bias.as_ptr().add(block * LANES),
                                out.0.add(first * lin.n + block * LANES),
                                lin.n,
                                valid,
                            )
                        };
                    }
                    b += 2;
                }
                r += ROWS;
            }
            // SAFETY: returns the tile state to its initial (unused) configuration.
            unsafe {
                asm!("tilerelease", out("tmm0") _, out("tmm1") _, out("tmm2") _, out("tmm3") _, out("tmm4") _, out("tmm5") _, out("tmm6") _, out("tmm7") _, options(nostack))
            };
        }

        /// Writes `rows` rows of a 16×16 tile plus the bias to `out` (row stride `ldo`), the
        /// first `valid` columns.
        ///
        /// # Safety
        /// The CPU has AVX-512F; `out` and `bias` hold what is written and read.
        #[target_feature(enable = "avx512f")]
        unsafe fn store(
            tile: &[f32],
            rows: usize,
            bias: *const f32,
            out: *mut f32,
            ldo: usize,
            valid: usize,
        ) {
            use std::arch::x86_64::*;
            let mask: __mmask16 = if valid >= LANES {
                0xffff
            } else {
                (1u16 << valid) - 1
            };
            // SAFETY: masked to the valid columns, as the caller promises.
            unsafe {
                let b = _mm512_maskz_loadu_ps(mask, bias);
                for (i, row) in tile.chunks_exact(LANES).take(rows).enumerate() {
                    let v = _mm512_add_ps(_mm512_loadu_ps(row.as_ptr()), b);
                    _mm512_mask_storeu_ps(out.add(i * ldo), mask, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// A deterministic pseudo-random matrix in [-1, 1).
    fn matrix(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn reference(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = b[j] as f64;
                for c in 0..k {
                    s += x[i * k + c] as f64 * w[j * k + c] as f64;
                }
                out[i * n + j] = s;
            }
        }
        out
    }

    fn check(kernel: Kernel, m: usize, n: usize, k: usize, threads: usize, tol: f64) {
        let x = matrix(m * k, 1 + m as u64);
        let w = matrix(n * k, 2 + n as u64);
        let b = matrix(n, 3);
        let lin = Linear::new(&w, b.clone(), n, k, kernel);
        let mut out = vec![f32::NAN; m * n];
        lin.forward(&x, m, &mut out, &pool(threads));
        let want = reference(&x, &w, &b, m, n, k);
        // Error of a k-term dot product of values in [-1, 1) scales like sqrt(k).
        let bound = tol * (k as f64).sqrt();
        for (i, (g, r)) in out.iter().zip(&want).enumerate() {
            assert!(
                (*g as f64 - r).abs() <= bound,
                "{kernel:?} m={m} n={n} k={k} at {i}: {g} vs {r}"
            );
        }
    }

    const SHAPES: [(usize, usize, usize); 7] = [
        (1, 16, 2),
        (17, 384, 384),
        (3, 5, 7),
        (130, 1152, 384),
        (9, 50, 33),
        (65, 1536, 64),
        (200, 384, 1536),
    ];

    /// Every shape on 1, 2 and 3 threads, if this CPU runs `kernel`.
    fn check_all(kernel: Kernel, precision: Precision, tol: f64) {
        if kernel != Kernel::F32 && Kernel::select(precision) != kernel {
            eprintln!("{kernel:?} not available on this CPU: not tested");
            return;
        }
        for (m, n, k) in SHAPES {
            for threads in [1, 2, 3] {
                check(kernel, m, n, k, threads, tol);
            }
        }
    }

    #[test]
    fn f32_kernel_matches_float64() {
        check_all(Kernel::F32, Precision::F32, 1e-5);
    }

    #[test]
    fn avx512_f32_kernel_matches_float64() {
        check_all(Kernel::F32Avx512, Precision::F32, 1e-5);
    }

    #[test]
    fn bf16_kernel_matches_float64_within_bf16_rounding() {
        // Two operands rounded to 8 significant bits: relative error about 2^-8 per product,
        // random in sign.
        check_all(Kernel::Bf16, Precision::Bf16, 8e-3);
    }

    #[test]
    fn amx_kernel_matches_float64_within_bf16_rounding() {
        // The same operands as the bf16 kernel, multiplied by the tile unit.
        check_all(Kernel::Amx, Precision::Bf16, 8e-3);
    }

    #[test]
    fn bf16_rounding_is_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3·2^-8 is halfway too: ties go up to the even mantissa.
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16_bits(-2.0), 0xc000);
        assert!(f32::from_bits((bf16_bits(f32::NAN) as u32) << 16).is_nan());
    }
}
