//! The `stats` command: grouping and the aggregate functions.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use crate::ast::{Agg, AggFunc, Stats};
use crate::eval::eval;
use crate::row::Row;
use crate::value::{Value, natural_cmp, sort_cmp};

/// Running state of one aggregate in one group.
enum State {
    Count(u64),
    Distinct(HashSet<String>),
    /// Sum and count of the numeric values, for `sum` and `avg`.
    Sum(f64, u64),
    /// Numeric values with the value they came from, for `pct` and `stddev`.
    Values(Vec<(f64, Value)>),
    /// The value kept so far: least (`min`, `sortsFirst`) or greatest (`max`, `sortsLast`).
    Extreme(Value),
    /// The value of the earliest (or latest) event seen so far, with its timestamp.
    Timed(Option<(i64, Value)>),
}

impl State {
    fn new(func: AggFunc) -> State {
        match func {
            AggFunc::Count => State::Count(0),
            AggFunc::CountDistinct => State::Distinct(HashSet::new()),
            AggFunc::Sum | AggFunc::Avg => State::Sum(0.0, 0),
            AggFunc::Pct | AggFunc::Stddev => State::Values(Vec::new()),
            AggFunc::Min | AggFunc::Max | AggFunc::SortsFirst | AggFunc::SortsLast => {
                State::Extreme(Value::Null)
            }
            AggFunc::Earliest | AggFunc::Latest => State::Timed(None),
        }
    }

    fn add(&mut self, agg: &Agg, row: &Row) {
        let v = match &agg.arg {
            // `count(*)` counts rows, present fields or not.
            None => Value::Bool(true),
            Some(e) => eval(e, row, &[]),
        };
        if v.is_null() {
            return;
        }
        match self {
            State::Count(n) => *n += 1,
            State::Distinct(seen) => {
                if let Some(t) = v.render() {
                    seen.insert(t);
                }
            }
            State::Sum(sum, n) => {
                if let Some(x) = v.as_num() {
                    *sum += x;
                    *n += 1;
                }
            }
            State::Values(values) => {
                if let Some(x) = v.as_num() {
                    values.push((x, v));
                }
            }
            State::Extreme(best) => {
                let want = match agg.func {
                    AggFunc::Min | AggFunc::SortsFirst => Ordering::Less,
                    _ => Ordering::Greater,
                };
                if best.is_null() || natural_cmp(&v, best) == want {
                    *best = v;
                }
            }
            State::Timed(kept) => {
                let Some(ts) = row.ts else {
                    return;
                };
                let replace = match kept {
                    None => true,
                    Some((t, _)) if agg.func == AggFunc::Earliest => ts < *t,
                    Some((t, _)) => ts > *t,
                };
                if replace {
                    *kept = Some((ts, v));
                }
            }
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn finish(self, agg: &Agg) -> Value {
        match self {
            State::Count(n) => Value::Num(n as f64),
            State::Distinct(seen) => Value::Num(seen.len() as f64),
            State::Sum(_, 0) => Value::Null,
            State::Sum(sum, n) if agg.func == AggFunc::Avg => Value::num(sum / n as f64),
            State::Sum(sum, _) => Value::num(sum),
            State::Values(values) if values.is_empty() => Value::Null,
            State::Values(mut values) if agg.func == AggFunc::Pct => {
                values.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal));
                // Nearest rank: the least value with at least `percent`% of the values at or
                // below it. It is always one of the values, as the docs' "returns the value at
                // which 95 percent of the values are lower" implies.
                let n = values.len();
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let rank = (agg.percent / 100.0 * n as f64).ceil() as usize;
                let i = rank.clamp(1, n) - 1;
                values.swap_remove(i).1
            }
            State::Values(values) => {
                // Sample standard deviation (n - 1), as most log tools compute it; one value
                // deviates by 0.
                let n = values.len() as f64;
                if values.len() < 2 {
                    return Value::Num(0.0);
                }
                let mean = values.iter().map(|v| v.0).sum::<f64>() / n;
                let var = values.iter().map(|v| (v.0 - mean).powi(2)).sum::<f64>() / (n - 1.0);
                Value::num(var.sqrt())
            }
            State::Extreme(v) => v,
            State::Timed(kept) => kept.map_or(Value::Null, |(_, v)| v),
        }
    }
}

struct Group {
    key: Vec<Value>,
    states: Vec<State>,
}

/// Aggregates `rows` into one row per group. Columns come in the order the grouping
/// expressions and then the aggregates are written (`stats count(*) by bin(5m)` gives `bin(5m)`,
/// `count(*)`).
///
/// The docs do not say how groups are ordered. A time series (`by bin(...)`) is reported to
/// come back oldest first, so groups are ordered by their key values ascending, with the sort
/// command's ordering; that covers bins and gives a stable order for other keys. Without `by`,
/// no input rows give no result row.
pub(crate) fn run(stats: &Stats, rows: Vec<Row>) -> Vec<Row> {
    let mut index: HashMap<Vec<Option<String>>, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for row in &rows {
        let key: Vec<Value> = stats.by.iter().map(|b| eval(&b.expr, row, &[])).collect();
        let id: Vec<Option<String>> = key.iter().map(Value::render).collect();
        let g = *index.entry(id).or_insert_with(|| {
            groups.push(Group {
                key,
                states: stats.aggs.iter().map(|a| State::new(a.func)).collect(),
            });
            groups.len() - 1
        });
        for (state, agg) in groups[g].states.iter_mut().zip(&stats.aggs) {
            state.add(agg, row);
        }
    }
    groups.sort_by(|a, b| {
        a.key
            .iter()
            .zip(&b.key)
            .map(|(x, y)| sort_cmp(x, y, false))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    groups
        .into_iter()
        .map(|g| {
            let results: Vec<Value> = g
                .states
                .into_iter()
                .zip(&stats.aggs)
                .map(|(s, a)| s.finish(a))
                .collect();
            let mut out = Row::default();
            for (item, v) in stats.by.iter().zip(g.key) {
                out.set(&item.name, v);
            }
            // Stats columns may use grouping columns outside an aggregate, so they are
            // evaluated on the row built so far.
            for item in &stats.items {
                let v = eval(&item.expr, &out, &results);
                out.set(&item.name, v);
            }
            out
        })
        .collect()
}
