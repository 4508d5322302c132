//! Element-wise math of the encoder, written so the compiler vectorizes it: no calls to libm in
//! the hot loops (a scalar `expf`/`erff` per element would cost more than the matrix products
//! for short sentences).

/// `erf(x)` as a rational approximation on [-4, 4] (beyond it erf is ±1 in f32); the
/// polynomial Eigen and XLA use for float erf. Max abs error about 1e-7 (tested below).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_5e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_600_5e-3;
    p = p * x2 + -1.609_603_3e-2;
    let p = p * x;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_3e-3;
    q = q * x2 + -1.426_474e-2;
    p / q
}

/// BERT's GELU, the exact (erf) form that `hidden_act: "gelu"` means.
pub fn gelu_in_place(xs: &mut [f32]) {
    const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    for x in xs {
        *x = 0.5 * *x * (1.0 + erf(*x * FRAC_1_SQRT_2));
    }
}

/// `e^x` for x <= 0 (softmax after subtracting the row max): Cody–Waite range reduction and
/// Cephes' minimax polynomial for `expf`; relative error about 1e-7 (tested below).
/// Clamped at -87, where e^x is about 1.6e-38, the smallest normal f32.
#[inline(always)]
pub fn exp_neg(x: f32) -> f32 {
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    // ln 2 split so that n · C1 is exact in f32 (C1 has 9 significant bits).
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let p = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// Softmax of one row, in place.
pub fn softmax_in_place(row: &mut [f32]) {
    let max = reduce16(row, f32::NEG_INFINITY, f32::max);
    for v in row.iter_mut() {
        *v = exp_neg(*v - max);
    }
    let inv = 1.0 / reduce16(row, 0.0, |a, b| a + b);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// `f` folded over `xs` in 16 interleaved lanes, then across them: the lanes vectorize (a
/// single running fold would have to follow f32 order element by element).
#[inline(always)]
fn reduce16(xs: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [init; 16];
    let mut chunks = xs.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            lanes[l] = f(lanes[l], c[l]);
        }
    }
    let mut acc = lanes.into_iter().fold(init, &f);
    for &x in chunks.remainder() {
        acc = f(acc, x);
    }
    acc
}

/// `row = LayerNorm(row + residual)` with the model's weight, bias and epsilon.
pub fn add_layer_norm(row: &mut [f32], residual: &[f32], w: &[f32], b: &[f32], eps: f32) {
    for (x, r) in row.iter_mut().zip(residual) {
        *x += r;
    }
    layer_norm(row, w, b, eps);
}

pub fn layer_norm(row: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = reduce16(row, 0.0, |a, b| a + b) / n;
    let mut var = [0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            var[l] += (c[l] - mean) * (c[l] - mean);
        }
    }
    let var = var.iter().sum::<f32>()
        + chunks
            .remainder()
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum::<f32>();
    let inv = 1.0 / (var / n + eps).sqrt();
    for ((x, w), b) in row.iter_mut().zip(w).zip(b) {
        *x = (*x - mean) * inv * w + b;
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums so the reduction vectorizes (f32 addition is not associative, so the
    // compiler will not reorder a single running sum on its own).
    let mut acc = [0.0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (converges fast for |x| <= 4 with enough terms).
    fn erf_ref(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // Asymptotic complement for the tails, where the series loses precision.
            let t = 1.0 / (1.0 + 0.5 * x.abs());
            let y = t
                * (-x * x - 1.265_512_23
                    + t * (1.000_023_68
                        + t * (0.374_091_96
                            + t * (0.096_784_18
                                + t * (-0.186_288_06
                                    + t * (0.278_868_07
                                        + t * (-1.135_203_98
                                            + t * (1.488_515_87
                                                + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
                    .exp();
            return if x >= 0.0 { 1.0 - y } else { y - 1.0 };
        }
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while n < 200.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_accurate() {
        let mut worst: f64 = 0.0;
        for i in -6000..=6000 {
            let x = i as f64 / 1000.0;
            worst = worst.max((erf(x as f32) as f64 - erf_ref(x)).abs());
        }
        assert!(worst < 5e-7, "max abs error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst: f64 = 0.0;
        for i in 0..=87_000 {
            // The f32 argument itself, so its rounding is not counted as the function's error.
            let x = -(i as f32) / 1000.0;
            let got = exp_neg(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "max rel error {worst}");
        assert_eq!(exp_neg(0.0), 1.0);
        assert_eq!(exp_neg(-1000.0), exp_neg(-87.0));
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row = vec![1.0, 3.0, -2.0, 0.5, 3.0];
        softmax_in_place(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[1] > row[0] && row[0] > row[3] && row[3] > row[2]);
        assert_eq!(row[1], row[4]);
    }

    #[test]
    fn layer_norm_normalizes() {
        let mut row: Vec<f32> = (0..384)
            .map(|i| (i as f32 * 0.37).sin() * 5.0 + 2.0)
            .collect();
        let ones = vec![1.0; 384];
        let zeros = vec![0.0; 384];
        layer_norm(&mut row, &ones, &zeros, 1e-12);
        let mean = row.iter().sum::<f32>() / 384.0;
        let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / 384.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "{mean} {var}"
        );
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }
}
