//! Aggregation of stored points into periods, and the statistics CloudWatch computes over a
//! period: SampleCount, Average, Sum, Minimum, Maximum, and the extended statistics
//! (percentiles `pNN`, trimmed mean `tmNN`/`TM(a:b)`, trimmed count `tc`, trimmed sum `ts`,
//! winsorized mean `wm`, percentile rank `PR(a:b)`, `IQM`), computed from the stored values
//! themselves (no sketch), so they are exact.

use basalt_store::StoreError;
use basalt_store::metrics::{Metrics, PointRef, dims_key};
use std::collections::{BTreeMap, HashMap};

/// The values of one period.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// `(value, count)` of every value, for the extended statistics.
    pub values: Vec<(f64, f64)>,
    /// False once a statistic set with more than one distinct value joined: its individual
    /// values are unknown, so extended statistics are unavailable.
    pub exact: bool,
    pub unit: String,
}

impl Bucket {
    fn new(unit: &str) -> Bucket {
        Bucket {
            count: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            values: Vec::new(),
            exact: true,
            unit: unit.to_owned(),
        }
    }

    fn add(&mut self, p: &PointRef<'_>) {
        if let Some(s) = p.stats {
            self.count += s.sample_count;
            self.sum += s.sum;
            self.min = self.min.min(s.min);
            self.max = self.max.max(s.max);
            if s.min == s.max {
                self.values.push((s.min, s.sample_count));
            } else {
                self.exact = false;
            }
        } else if let Some(vs) = &p.values {
            for (v, c) in vs.iter() {
                self.count += c;
                self.sum += v * c;
                self.min = self.min.min(v);
                self.max = self.max.max(v);
                self.values.push((v, c));
            }
        } else {
            let v = p.value;
            self.count += 1.0;
            self.sum += v;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.values.push((v, 1.0));
        }
    }

    /// A statistic of this period; `None` when it is not defined here (an extended statistic
    /// over a statistic set, an empty trimmed range).
    pub fn stat(&self, name: &str) -> Option<f64> {
        match name {
            "SampleCount" => Some(self.count),
            "Sum" => Some(self.sum),
            "Average" => (self.count > 0.0).then(|| self.sum / self.count),
            "Minimum" => Some(self.min),
            "Maximum" => Some(self.max),
            other => {
                if !self.exact {
                    return None;
                }
                let ext = Extended::parse(other)?;
                ext.compute(&self.sorted())
            }
        }
    }

    fn sorted(&self) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self
            .values
            .iter()
            .copied()
            .filter(|(_, c)| *c > 0.0)
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }
}

/// The points one aggregation reads: a metric, over `[start_ms, end_ms)`, in periods of
/// `period_ms` starting at `start_ms`.
pub(crate) struct Scope<'a> {
    pub metrics: &'a Metrics,
    pub account: &'a str,
    pub region: &'a str,
    pub namespace: &'a str,
    pub metric: &'a str,
    pub start_ms: i64,
    pub end_ms: i64,
    pub period_ms: i64,
}

impl Scope<'_> {
    fn period_of(&self, t: i64) -> i64 {
        self.start_ms + (t - self.start_ms) / self.period_ms * self.period_ms
    }

    fn each(&self, f: impl FnMut(&PointRef<'_>)) -> Result<(), StoreError> {
        self.metrics.for_each_between(
            self.account,
            self.region,
            self.namespace,
            self.metric,
            self.start_ms..self.end_ms,
            f,
        )
    }
}

/// The points that match `dims` exactly (and `unit` when given), by period start and unit
/// (GetMetricStatistics).
pub(crate) fn aggregate(
    scope: &Scope<'_>,
    dims: &BTreeMap<String, String>,
    unit: Option<&str>,
) -> Result<BTreeMap<(i64, String), Bucket>, StoreError> {
    let mut out: BTreeMap<(i64, String), Bucket> = BTreeMap::new();
    scope.each(|p| {
        if !p.dimensions.equals(dims) || unit.is_some_and(|u| u != p.unit) {
            return;
        }
        out.entry((scope.period_of(p.timestamp_ms), p.unit.to_owned()))
            .or_insert_with(|| Bucket::new(p.unit))
            .add(p);
    })?;
    Ok(out)
}

/// Like [`aggregate`], with every unit of a period merged (GetMetricData and alarms, which
/// return one series).
pub(crate) fn aggregate_merged(
    scope: &Scope<'_>,
    dims: &BTreeMap<String, String>,
    unit: Option<&str>,
) -> Result<BTreeMap<i64, Bucket>, StoreError> {
    let mut out: BTreeMap<i64, Bucket> = BTreeMap::new();
    scope.each(|p| {
        if !p.dimensions.equals(dims) || unit.is_some_and(|u| u != p.unit) {
            return;
        }
        out.entry(scope.period_of(p.timestamp_ms))
            .or_insert_with(|| Bucket::new(p.unit))
            .add(p);
    })?;
    Ok(out)
}

/// [`aggregate_merged`] for several dimension sets of one metric in one read (SEARCH).
pub(crate) fn aggregate_each(
    scope: &Scope<'_>,
    sets: &[&BTreeMap<String, String>],
) -> Result<Vec<BTreeMap<i64, Bucket>>, StoreError> {
    let index: HashMap<Vec<u8>, usize> = sets
        .iter()
        .enumerate()
        .map(|(i, d)| (dims_key(d), i))
        .collect();
    let mut out: Vec<BTreeMap<i64, Bucket>> = vec![BTreeMap::new(); sets.len()];
    scope.each(|p| {
        if let Some(&i) = index.get(&*p.dimensions.key()) {
            out[i]
                .entry(scope.period_of(p.timestamp_ms))
                .or_insert_with(|| Bucket::new(p.unit))
                .add(p);
        }
    })?;
    Ok(out)
}

/// Whether `name` is one of the five basic statistics.
pub(crate) fn is_basic(name: &str) -> bool {
    matches!(
        name,
        "SampleCount" | "Average" | "Sum" | "Minimum" | "Maximum"
    )
}

/// Whether `name` is a statistic CloudWatch accepts (basic or extended).
pub(crate) fn is_valid(name: &str) -> bool {
    is_basic(name) || Extended::parse(name).is_some()
}

/// An extended statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Extended {
    Percentile(f64),
    /// Bounds as percentiles (`TM(10%:90%)`, `tm90` = `TM(0%:90%)`) or, when `absolute`,
    /// as values (`TM(150:1000)`).
    Trimmed {
        kind: Trim,
        lo: Option<f64>,
        hi: Option<f64>,
        absolute: bool,
    },
    PercentileRank {
        lo: Option<f64>,
        hi: Option<f64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Trim {
    Mean,
    Count,
    Sum,
    Winsorized,
}

fn number(s: &str) -> Option<f64> {
    let v: f64 = s.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

impl Extended {
    fn parse(s: &str) -> Option<Extended> {
        if s == "IQM" {
            return Some(Extended::Trimmed {
                kind: Trim::Mean,
                lo: Some(25.0),
                hi: Some(75.0),
                absolute: false,
            });
        }
        let lower = s.to_ascii_lowercase();
        let kinds = [
            ("tm", Trim::Mean),
            ("tc", Trim::Count),
            ("ts", Trim::Sum),
            ("wm", Trim::Winsorized),
        ];
        if let Some(rest) = lower.strip_prefix('p')
            && !rest.starts_with('r')
        {
            let p = number(rest)?;
            return (0.0..=100.0)
                .contains(&p)
                .then_some(Extended::Percentile(p));
        }
        if let Some(rest) = lower.strip_prefix("pr(") {
            let (lo, hi, _) = range(rest.strip_suffix(')')?)?;
            return Some(Extended::PercentileRank { lo, hi });
        }
        for (prefix, kind) in kinds {
            let Some(rest) = lower.strip_prefix(prefix) else {
                continue;
            };
            if let Some(inner) = rest.strip_prefix('(') {
                let (lo, hi, absolute) = range(inner.strip_suffix(')')?)?;
                if !absolute
                    && (lo.is_some_and(|l| !(0.0..=100.0).contains(&l))
                        || hi.is_some_and(|h| !(0.0..=100.0).contains(&h)))
                {
                    return None;
                }
                return Some(Extended::Trimmed {
                    kind,
                    lo,
                    hi,
                    absolute,
                });
            }
            let hi = number(rest)?;
            return (0.0..=100.0).contains(&hi).then_some(Extended::Trimmed {
                kind,
                lo: None,
                hi: Some(hi),
                absolute: false,
            });
        }
        None
    }

    /// Over `(value, count)` sorted by value, counts positive.
    fn compute(&self, sorted: &[(f64, f64)]) -> Option<f64> {
        let total: f64 = sorted.iter().map(|(_, c)| c).sum();
        if total <= 0.0 {
            return None;
        }
        match *self {
            Extended::Percentile(p) => Some(percentile(sorted, total, p)),
            Extended::PercentileRank { lo, hi } => {
                let inside: f64 = sorted
                    .iter()
                    .filter(|(v, _)| lo.is_none_or(|l| *v > l) && hi.is_none_or(|h| *v <= h))
                    .map(|(_, c)| c)
                    .sum();
                Some(inside / total * 100.0)
            }
            Extended::Trimmed {
                kind,
                lo,
                hi,
                absolute,
            } => {
                let (lo_v, hi_v) = if absolute {
                    (lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY))
                } else {
                    (
                        lo.map_or(f64::NEG_INFINITY, |p| percentile(sorted, total, p)),
                        hi.map_or(f64::INFINITY, |p| percentile(sorted, total, p)),
                    )
                };
                if lo_v > hi_v {
                    return None;
                }
                // Values strictly above the lower bound (when one is set) and up to the upper.
                let keep = |v: f64| {
                    (lo.is_none() || v > lo_v || (!absolute && lo == Some(0.0))) && v <= hi_v
                };
                match kind {
                    Trim::Winsorized => {
                        let sum: f64 = sorted.iter().map(|(v, c)| v.max(lo_v).min(hi_v) * c).sum();
                        Some(sum / total)
                    }
                    _ => {
                        let (n, s) = sorted
                            .iter()
                            .filter(|(v, _)| keep(*v))
                            .fold((0.0, 0.0), |(n, s), (v, c)| (n + c, s + v * c));
                        match kind {
                            Trim::Count => Some(n),
                            Trim::Sum => Some(s),
                            _ => (n > 0.0).then(|| s / n),
                        }
                    }
                }
            }
        }
    }
}

/// `a:b`, `a%:b%`, `:b`, `a:` (percent signs mark percentiles; plain numbers are values).
fn range(s: &str) -> Option<(Option<f64>, Option<f64>, bool)> {
    let (a, b) = s.split_once(':')?;
    let percent = a.trim().ends_with('%') || b.trim().ends_with('%');
    let side = |x: &str| -> Option<Option<f64>> {
        let x = x.trim().trim_end_matches('%');
        if x.is_empty() {
            Some(None)
        } else {
            number(x).map(Some)
        }
    };
    let (lo, hi) = (side(a)?, side(b)?);
    if lo.is_none() && hi.is_none() {
        return None;
    }
    Some((lo, hi, !percent))
}

/// The nearest-rank percentile: the smallest value with at least `p`% of the weight at or
/// below it.
fn percentile(sorted: &[(f64, f64)], total: f64, p: f64) -> f64 {
    let rank = (p / 100.0 * total).max(f64::MIN_POSITIVE);
    let mut seen = 0.0;
    for &(v, c) in sorted {
        seen += c;
        if seen + 1e-9 >= rank {
            return v;
        }
    }
    sorted.last().map_or(f64::NAN, |(v, _)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(values: &[f64]) -> Bucket {
        let mut b = Bucket::new("None");
        for &v in values {
            b.count += 1.0;
            b.sum += v;
            b.min = b.min.min(v);
            b.max = b.max.max(v);
            b.values.push((v, 1.0));
        }
        b
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let b = bucket(&(1..=100).map(f64::from).collect::<Vec<_>>());
        assert_eq!(b.stat("p99"), Some(99.0));
        assert_eq!(b.stat("p50"), Some(50.0));
        assert_eq!(b.stat("p100"), Some(100.0));
        assert_eq!(b.stat("p0"), Some(1.0));
        assert_eq!(b.stat("p99.9"), Some(100.0));
        assert_eq!(b.stat("tm90"), Some(45.5));
        assert_eq!(b.stat("tc90"), Some(90.0));
        assert_eq!(b.stat("ts(:10)"), Some(55.0));
        assert_eq!(b.stat("PR(:50)"), Some(50.0));
        assert_eq!(b.stat("IQM"), Some(50.5));
        assert!(b.stat("p101").is_none());
        assert!(b.stat("bogus").is_none());
        assert!(is_valid("p99") && is_valid("TM(10%:90%)") && !is_valid("p-1"));
    }
}
