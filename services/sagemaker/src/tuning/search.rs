//! The search: parameter ranges on a unit scale, Grid's combinations, a seeded generator,
//! and the Gaussian process whose expected improvement picks Bayesian's next point.

use basalt_core::AwsError;
use serde_json::Value;

/// One parameter range, on a unit scale.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Range {
    Continuous {
        name: String,
        min: f64,
        max: f64,
        scale: Scale,
    },
    Integer {
        name: String,
        min: i64,
        max: i64,
        scale: Scale,
    },
    Categorical {
        name: String,
        values: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    Linear,
    Log,
    ReverseLog,
}

impl Range {
    pub(crate) fn name(&self) -> &str {
        match self {
            Range::Continuous { name, .. }
            | Range::Integer { name, .. }
            | Range::Categorical { name, .. } => name,
        }
    }

    /// The value at `u` in [0, 1].
    pub(crate) fn at(&self, u: f64) -> String {
        let u = u.clamp(0.0, 1.0);
        let scaled = |min: f64, max: f64, scale: Scale| match scale {
            // The ends exactly (a round trip through ln and exp is not).
            _ if u <= 0.0 => min,
            _ if u >= 1.0 => max,
            Scale::Linear => min + u * (max - min),
            Scale::Log => (min.ln() + u * (max.ln() - min.ln())).exp(),
            Scale::ReverseLog => {
                1.0 - ((1.0 - min).ln() + u * ((1.0 - max).ln() - (1.0 - min).ln())).exp()
            }
        };
        match self {
            Range::Continuous {
                min, max, scale, ..
            } => {
                let v = scaled(*min, *max, *scale).clamp(*min, *max);
                format!("{v}")
            }
            Range::Integer {
                min, max, scale, ..
            } => {
                let v = scaled(*min as f64, *max as f64 + 0.999_999, *scale).floor() as i64;
                v.clamp(*min, *max).to_string()
            }
            Range::Categorical { values, .. } => {
                let i = ((u * values.len() as f64) as usize).min(values.len() - 1);
                values[i].clone()
            }
        }
    }
}

fn scale_of(v: &Value, min: f64, max: f64, name: &str) -> Result<Scale, AwsError> {
    let s = match v["ScalingType"].as_str().unwrap_or("Auto") {
        "Auto" | "Linear" => Scale::Linear,
        "Logarithmic" => Scale::Log,
        "ReverseLogarithmic" => Scale::ReverseLog,
        other => {
            return Err(AwsError::validation(format!(
                "ScalingType {other} of {name} is not one of Auto, Linear, Logarithmic, ReverseLogarithmic."
            )));
        }
    };
    if s == Scale::Log && min <= 0.0 {
        return Err(AwsError::validation(format!(
            "The Logarithmic scaling of {name} needs a MinValue greater than 0."
        )));
    }
    if s == Scale::ReverseLog && !(min >= 0.0 && max < 1.0) {
        return Err(AwsError::validation(format!(
            "The ReverseLogarithmic scaling of {name} needs values in [0, 1)."
        )));
    }
    Ok(s)
}

pub(crate) fn ranges(config: &Value) -> Result<Vec<Range>, AwsError> {
    let r = &config["ParameterRanges"];
    let num = |v: &Value, k: &str, name: &str| -> Result<f64, AwsError> {
        v[k].as_str()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .or_else(|| v[k].as_f64())
            .filter(|x| x.is_finite())
            .ok_or_else(|| AwsError::validation(format!("{k} of {name} must be a number.")))
    };
    let mut out = Vec::new();
    for v in r["ContinuousParameterRanges"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = v["Name"].as_str().unwrap_or_default().to_owned();
        let (min, max) = (num(v, "MinValue", &name)?, num(v, "MaxValue", &name)?);
        if min > max {
            return Err(AwsError::validation(format!(
                "MinValue of {name} is greater than its MaxValue."
            )));
        }
        let scale = scale_of(v, min, max, &name)?;
        out.push(Range::Continuous {
            name,
            min,
            max,
            scale,
        });
    }
    for v in r["IntegerParameterRanges"].as_array().into_iter().flatten() {
        let name = v["Name"].as_str().unwrap_or_default().to_owned();
        let (min, max) = (num(v, "MinValue", &name)?, num(v, "MaxValue", &name)?);
        if min.fract() != 0.0 || max.fract() != 0.0 || min > max {
            return Err(AwsError::validation(format!(
                "The integer range of {name} needs whole MinValue <= MaxValue."
            )));
        }
        let scale = scale_of(v, min, max, &name)?;
        out.push(Range::Integer {
            name,
            min: min as i64,
            max: max as i64,
            scale,
        });
    }
    for v in r["CategoricalParameterRanges"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = v["Name"].as_str().unwrap_or_default().to_owned();
        let values: Vec<String> = (v["Values"].as_array().into_iter().flatten())
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
        if values.is_empty() {
            return Err(AwsError::validation(format!(
                "The categorical range of {name} needs Values."
            )));
        }
        out.push(Range::Categorical { name, values });
    }
    let mut seen = std::collections::HashSet::new();
    for r in &out {
        if !seen.insert(r.name().to_owned()) {
            return Err(AwsError::validation(format!(
                "The hyperparameter {} has more than one range.",
                r.name()
            )));
        }
    }
    Ok(out)
}

/// Every combination of the categorical ranges (Grid), in order, as unit coordinates.
#[cfg(test)]
pub(crate) fn grid(ranges: &[Range]) -> Vec<Vec<f64>> {
    (0..grid_size(ranges))
        .map_while(|i| grid_point(ranges, i))
        .collect()
}

/// How many combinations the categorical ranges make (saturating).
pub(crate) fn grid_size(ranges: &[Range]) -> usize {
    categorical_sizes(ranges).fold(1usize, |n, k| n.saturating_mul(k))
}

/// How many values each categorical range has, in order.
fn categorical_sizes(ranges: &[Range]) -> impl Iterator<Item = usize> + '_ {
    ranges.iter().filter_map(|r| match r {
        Range::Categorical { values, .. } => Some(values.len()),
        _ => None,
    })
}

/// The `index`-th combination, in the order [`grid`] lists them (the last range varies
/// fastest), computed without listing the others.
pub(crate) fn grid_point(ranges: &[Range], index: usize) -> Option<Vec<f64>> {
    if index >= grid_size(ranges) {
        return None;
    }
    let sizes: Vec<usize> = categorical_sizes(ranges).collect();
    let mut rest = index;
    let mut out = vec![0.0; sizes.len()];
    for (slot, n) in sizes.iter().enumerate().rev() {
        out[slot] = ((rest % n) as f64 + 0.5) / *n as f64;
        rest /= n;
    }
    Some(out)
}

/// splitmix64: a small deterministic generator, seeded per proposal.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(crate) fn seed_of(text: &str, index: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes().chain(index.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Expected improvement over `best` of the Gaussian process fitted to (x, y), at each
/// candidate; y is to be maximized. RBF kernel, length scale 0.2 on the unit cube, y
/// standardized, a little noise for numerical safety.
pub(crate) fn expected_improvement(
    xs: &[Vec<f64>],
    ys: &[f64],
    candidates: &[Vec<f64>],
) -> Vec<f64> {
    let n = xs.len();
    let mean = ys.iter().sum::<f64>() / n as f64;
    let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n as f64)
        .sqrt()
        .max(1e-9);
    let y: Vec<f64> = ys.iter().map(|v| (v - mean) / sd).collect();
    let k = |a: &[f64], b: &[f64]| {
        let d2: f64 = a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum();
        (-d2 / (2.0 * 0.2 * 0.2)).exp()
    };
    // Cholesky of K + noise.
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = l[i][..j].iter().zip(&l[j][..j]).map(|(a, b)| a * b).sum();
            let s = k(&xs[i], &xs[j]) + if i == j { 1e-6 } else { 0.0 } - dot;
            l[i][j] = if i == j {
                s.max(1e-12).sqrt()
            } else {
                s / l[j][j]
            };
        }
    }
    let solve_lower = |b: &[f64]| {
        let mut z = vec![0.0; n];
        for i in 0..n {
            let s: f64 = (0..i).map(|p| l[i][p] * z[p]).sum();
            z[i] = (b[i] - s) / l[i][i];
        }
        z
    };
    let solve_upper = |z: &[f64]| {
        let mut a = vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|p| l[p][i] * a[p]).sum();
            a[i] = (z[i] - s) / l[i][i];
        }
        a
    };
    let alpha = solve_upper(&solve_lower(&y));
    let best = y.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    candidates
        .iter()
        .map(|c| {
            let ks: Vec<f64> = xs.iter().map(|x| k(x, c)).collect();
            let mu: f64 = ks.iter().zip(&alpha).map(|(a, b)| a * b).sum();
            let v = solve_lower(&ks);
            let var = (1.0 - v.iter().map(|x| x * x).sum::<f64>()).max(1e-12);
            let s = var.sqrt();
            let z = (mu - best) / s;
            (mu - best) * normal_cdf(z) + s * normal_pdf(z)
        })
        .collect()
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn normal_cdf(z: f64) -> f64 {
    // Abramowitz and Stegun 7.1.26 through erf; plenty for ranking candidates.
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    0.5 * (1.0 + if x >= 0.0 { y } else { -y })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(v: Value) -> Vec<Range> {
        ranges(&json!({ "ParameterRanges": v })).unwrap()
    }

    #[test]
    fn scales_map_the_unit_interval_onto_the_range() {
        let rs = r(json!({
            "ContinuousParameterRanges": [
                {"Name": "eta", "MinValue": "0.001", "MaxValue": "1", "ScalingType": "Logarithmic"},
                {"Name": "sub", "MinValue": "0.5", "MaxValue": "1.0"}],
            "IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "5"}],
            "CategoricalParameterRanges": [{"Name": "obj", "Values": ["a", "b", "c"]}]}));
        let [eta, sub, depth, cat] = &rs[..] else {
            panic!()
        };
        assert_eq!(eta.at(0.0), "0.001");
        assert!((eta.at(0.5).parse::<f64>().unwrap() - 0.0316).abs() < 1e-3);
        assert_eq!(sub.at(0.5), "0.75");
        assert_eq!(
            (0..=10)
                .map(|i| depth.at(i as f64 / 10.0))
                .collect::<Vec<_>>(),
            ["2", "2", "2", "3", "3", "3", "4", "4", "5", "5", "5"]
        );
        assert_eq!(cat.at(0.99), "c");
        assert_eq!(cat.at(0.0), "a");
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            json!({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}]}),
            json!({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "2", "MaxValue": "1"}]}),
            json!({"IntegerParameterRanges": [{"Name": "x", "MinValue": "1.5", "MaxValue": "3"}]}),
            json!({"CategoricalParameterRanges": [{"Name": "x", "Values": []}]}),
            json!({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "NaN", "MaxValue": "1"}]}),
            json!({"CategoricalParameterRanges": [{"Name": "x", "Values": ["a"]}], "IntegerParameterRanges": [{"Name": "x", "MinValue": "1", "MaxValue": "3"}]}),
        ] {
            assert!(ranges(&json!({ "ParameterRanges": bad })).is_err(), "{bad}");
        }
    }

    #[test]
    fn grid_enumerates_every_combination() {
        let rs = r(json!({"CategoricalParameterRanges": [
            {"Name": "a", "Values": ["1", "2"]}, {"Name": "b", "Values": ["x", "y", "z"]}]}));
        let combos: Vec<String> = grid(&rs)
            .iter()
            .map(|u| format!("{}{}", rs[0].at(u[0]), rs[1].at(u[1])))
            .collect();
        assert_eq!(combos, ["1x", "1y", "1z", "2x", "2y", "2z"]);
        assert_eq!(grid_point(&rs, 6), None);
        let many: Vec<Range> = (0..64)
            .map(|i| Range::Categorical {
                name: format!("p{i}"),
                values: vec!["a".into(), "b".into()],
            })
            .collect();
        assert_eq!(
            grid_size(&many),
            usize::MAX,
            "saturates instead of overflowing"
        );
        assert!(
            grid_point(&many, 5).is_some(),
            "the n-th point without listing them"
        );
    }

    /// On a smooth objective the Gaussian process's expected improvement points at the
    /// optimum's neighbourhood rather than at what was already tried.
    #[test]
    fn expected_improvement_looks_where_the_objective_rises() {
        let f = |x: f64| -(x - 0.7).powi(2);
        let xs: Vec<Vec<f64>> = [0.1, 0.3, 0.5, 0.9].iter().map(|x| vec![*x]).collect();
        let ys: Vec<f64> = xs.iter().map(|x| f(x[0])).collect();
        let candidates: Vec<Vec<f64>> = (0..=100).map(|i| vec![i as f64 / 100.0]).collect();
        let ei = expected_improvement(&xs, &ys, &candidates);
        let best = (0..ei.len())
            .max_by(|a, b| ei[*a].total_cmp(&ei[*b]))
            .unwrap();
        let x = candidates[best][0];
        assert!((0.55..=0.85).contains(&x), "EI peaks at {x}");
        assert!(ei[10] < ei[best], "a point already tried improves little");
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-9 && (normal_cdf(1.96) - 0.975).abs() < 1e-3);
    }
}
