//! XGBoost models as a library: [`Model::from_json`] reads the JSON and UBJSON model
//! formats that `Booster.save_model` writes (XGBoost 1.0 and later), and [`Model::predict`] scores rows the
//! way xgboost's CPU predictor does, so that predictions agree with xgboost's own to float
//! precision:
//!
//! * feature values and split conditions are `f32`; a value goes left when it is `<` the
//!   condition; a missing value (`NaN`, or a feature the row does not have) follows the node's
//!   default direction;
//! * each output group starts at the base margin (`base_score` mapped to margin space by the
//!   objective) and adds its trees' leaves in tree order, in `f32`;
//! * the objective's transform turns margins into predictions (sigmoid, exp, softmax...).
//!
//! [`input`] parses the payloads SageMaker's XGBoost container accepts (`text/csv`,
//! `text/libsvm`) and [`input::python_float`] formats numbers as its responses do.
//!
//! Categorical splits, multi-target trees and the legacy binary format are refused with an
//! [`Error`] that says so.

pub mod input;
mod legacy;
mod ubjson;

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("the model is not XGBoost JSON: {0}")]
    Format(String),
    #[error("{0} is not supported")]
    Unsupported(String),
}

/// How margins become predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Identity,
    Sigmoid,
    Exp,
    /// One probability per class.
    Softmax,
    /// The index of the largest margin.
    ArgMax,
    /// 1 when the margin is positive, else 0.
    Hinge,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// -1 for a leaf.
    left: i32,
    right: i32,
    feature: u32,
    /// The split condition, or the leaf's value.
    value: f32,
    default_left: bool,
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn leaf(&self, row: &[f32]) -> f32 {
        let mut i = 0usize;
        loop {
            let n = self.nodes[i];
            if n.left < 0 {
                return n.value;
            }
            let v = row.get(n.feature as usize).copied().unwrap_or(f32::NAN);
            let left = if v.is_nan() {
                n.default_left
            } else {
                v < n.value
            };
            i = if left { n.left } else { n.right } as usize;
        }
    }
}

/// A gradient-boosted tree model.
#[derive(Debug, Clone)]
pub struct Model {
    trees: Vec<Tree>,
    /// The output group (class) of each tree.
    groups_of: Vec<usize>,
    groups: usize,
    base_margin: f32,
    transform: Transform,
    objective: String,
    features: usize,
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn format_err(what: &str) -> Error {
    Error::Format(what.to_owned())
}

impl Model {
    /// Reads a model saved by `Booster.save_model` as JSON (`….json`, `save_raw("json")`), as
    /// UBJSON (`….ubj`, XGBoost 2's default) or in the legacy binary format (`legacy.rs`).
    pub fn from_json(bytes: &[u8]) -> Result<Model, Error> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(format_err("the model is empty"));
        }
        // UBJSON follows its `{` with a length marker (a letter) or a container header (`$`,
        // `#`); JSON with a quote or a space.
        let doc: Value = if legacy::is_legacy(bytes) {
            legacy::to_json(bytes).map_err(Error::Format)?
        } else if bytes
            .get(1)
            .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'$' | b'#'))
        {
            ubjson::parse(bytes).map_err(Error::Format)?
        } else {
            serde_json::from_slice(bytes).map_err(|e| Error::Format(e.to_string()))?
        };
        let learner = &doc["learner"];
        let param = &learner["learner_model_param"];
        let objective = learner["objective"]["name"]
            .as_str()
            .ok_or_else(|| format_err("learner.objective.name is missing"))?
            .to_owned();
        let booster = &learner["gradient_booster"];
        let name = booster["name"].as_str().unwrap_or("gbtree");
        let model = match name {
            "gbtree" => &booster["model"],
            // DART keeps its trees under gbtree and scales them by weight_drop.
            "dart" => &booster["gbtree"]["model"],
            other => return Err(Error::Unsupported(format!("the {other} booster"))),
        };
        if num(&param["num_target"]).unwrap_or(1.0) > 1.0 {
            return Err(Error::Unsupported("a multi-target model".into()));
        }
        let classes = num(&param["num_class"]).unwrap_or(0.0) as usize;
        let groups = classes.max(1);
        // Each round adds a tree per class: more classes than trees is a damaged model, and
        // would size every prediction's margins by it.
        let tree_count = model["trees"].as_array().map_or(0, Vec::len);
        if groups > tree_count.max(1) {
            return Err(format_err(&format!(
                "num_class {classes} exceeds the model's {tree_count} trees"
            )));
        }
        let features = num(&param["num_feature"]).unwrap_or(0.0) as usize;
        let trees_json = model["trees"]
            .as_array()
            .ok_or_else(|| format_err("the model has no trees array"))?;
        let tree_info: Vec<usize> = model["tree_info"]
            .as_array()
            .map(|a| a.iter().map(|v| num(v).unwrap_or(0.0) as usize).collect())
            .unwrap_or_default();
        let weights: Vec<f32> = booster["weight_drop"]
            .as_array()
            .map(|a| a.iter().map(|v| num(v).unwrap_or(1.0) as f32).collect())
            .unwrap_or_default();
        let mut trees = Vec::with_capacity(trees_json.len());
        for (t, tree) in trees_json.iter().enumerate() {
            let mut parsed = parse_tree(tree, t)?;
            if let Some(&w) = weights.get(t) {
                for n in parsed.nodes.iter_mut().filter(|n| n.left < 0) {
                    n.value *= w;
                }
            }
            trees.push(parsed);
        }
        let groups_of: Vec<usize> = (0..trees.len())
            .map(|t| tree_info.get(t).copied().unwrap_or(0))
            .collect();
        if let Some(&g) = groups_of.iter().find(|&&g| g >= groups) {
            return Err(format_err(&format!(
                "a tree belongs to output group {g} of {groups}"
            )));
        }
        let transform = transform_of(&objective)?;
        let base_score = num(&param["base_score"]).unwrap_or(0.5) as f32;
        Ok(Model {
            trees,
            groups_of,
            groups,
            base_margin: base_margin(&objective, base_score),
            transform,
            objective,
            features,
        })
    }

    /// The training objective (`binary:logistic`).
    pub fn objective(&self) -> &str {
        &self.objective
    }

    /// Features the model was trained on.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Values per prediction: the number of classes for `multi:softprob`, else 1.
    pub fn outputs(&self) -> usize {
        if self.transform == Transform::Softmax {
            self.groups
        } else {
            1
        }
    }

    pub fn transform(&self) -> Transform {
        self.transform
    }

    /// The margins of one row (one per output group), before the objective's transform.
    pub fn margins(&self, row: &[f32]) -> Vec<f32> {
        let mut out = vec![self.base_margin; self.groups];
        for (tree, &g) in self.trees.iter().zip(&self.groups_of) {
            out[g] += tree.leaf(row);
        }
        out
    }

    /// The prediction for one row: [`outputs`](Self::outputs) values.
    pub fn predict_row(&self, row: &[f32]) -> Vec<f32> {
        let mut m = self.margins(row);
        match self.transform {
            Transform::Identity => m,
            Transform::Sigmoid => {
                m.iter_mut().for_each(|x| *x = sigmoid(*x));
                m
            }
            Transform::Exp => {
                m.iter_mut().for_each(|x| *x = x.exp());
                m
            }
            Transform::Hinge => {
                m.iter_mut()
                    .for_each(|x| *x = if *x > 0.0 { 1.0 } else { 0.0 });
                m
            }
            Transform::Softmax => {
                softmax(&mut m);
                m
            }
            Transform::ArgMax => {
                let best = m
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                        if v > bv { (i, v) } else { (bi, bv) }
                    })
                    .0;
                vec![best as f32]
            }
        }
    }

    /// Predictions for rows, each [`outputs`](Self::outputs) values long.
    pub fn predict(&self, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
        rows.iter().map(|r| self.predict_row(r)).collect()
    }
}

fn parse_tree(tree: &Value, t: usize) -> Result<Tree, Error> {
    let bad = |what: &str| Error::Format(format!("tree {t}: {what}"));
    let ints = |key: &str| -> Result<Vec<i64>, Error> {
        tree[key]
            .as_array()
            .ok_or_else(|| bad(&format!("{key} is missing")))?
            .iter()
            .map(|v| num(v).map(|f| f as i64).ok_or_else(|| bad(key)))
            .collect()
    };
    let left = ints("left_children")?;
    let right = ints("right_children")?;
    let feature = ints("split_indices")?;
    let default_left = ints("default_left")?;
    let values: Vec<f32> = tree["split_conditions"]
        .as_array()
        .ok_or_else(|| bad("split_conditions is missing"))?
        .iter()
        .map(|v| {
            num(v)
                .map(|f| f as f32)
                .ok_or_else(|| bad("split_conditions"))
        })
        .collect::<Result<_, _>>()?;
    let n = left.len();
    if [right.len(), feature.len(), default_left.len(), values.len()]
        .iter()
        .any(|&l| l != n)
        || n == 0
    {
        return Err(bad("its node arrays differ in length"));
    }
    if tree["split_type"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| num(v).unwrap_or(0.0) != 0.0))
    {
        return Err(Error::Unsupported("a model with categorical splits".into()));
    }
    if num(&tree["tree_param"]["size_leaf_vector"]).unwrap_or(1.0) > 1.0 {
        return Err(Error::Unsupported("a model with vector leaves".into()));
    }
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let (l, r) = (left[i], right[i]);
        if l >= 0 {
            // Children come after their parent, so every walk ends.
            let ok = |c: i64| c > i as i64 && (c as usize) < n;
            if !ok(l) || !ok(r) || feature[i] < 0 {
                return Err(bad(&format!("node {i} has invalid children or feature")));
            }
        }
        nodes.push(Node {
            left: if l < 0 { -1 } else { l as i32 },
            right: r.max(-1) as i32,
            feature: feature[i].max(0) as u32,
            value: values[i],
            default_left: default_left[i] != 0,
        });
    }
    Ok(Tree { nodes })
}

fn transform_of(objective: &str) -> Result<Transform, Error> {
    Ok(match objective {
        "binary:logistic" | "reg:logistic" => Transform::Sigmoid,
        "count:poisson" | "reg:gamma" | "reg:tweedie" | "survival:cox" => Transform::Exp,
        "multi:softprob" => Transform::Softmax,
        "multi:softmax" => Transform::ArgMax,
        "binary:hinge" => Transform::Hinge,
        o if o.starts_with("rank:")
            || matches!(
                o,
                "binary:logitraw"
                    | "reg:squarederror"
                    | "reg:linear"
                    | "reg:squaredlogerror"
                    | "reg:pseudohubererror"
                    | "reg:absoluteerror"
                    | "reg:quantileerror"
                    | "survival:aft"
            ) =>
        {
            Transform::Identity
        }
        other => return Err(Error::Unsupported(format!("the objective {other}"))),
    })
}

/// `base_score`, which the model keeps in output space, in margin space.
fn base_margin(objective: &str, base_score: f32) -> f32 {
    match objective {
        "binary:logistic" | "reg:logistic" | "binary:logitraw" => -(1.0f32 / base_score - 1.0).ln(),
        "count:poisson" | "reg:gamma" | "reg:tweedie" | "survival:cox" => base_score.ln(),
        _ => base_score,
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn softmax(m: &mut [f32]) {
    let max = m.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for x in m.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    m.iter_mut().for_each(|x| *x /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    /// The rows and xgboost 2.1.4's own predictions (tests/fixtures/generate.py).
    fn expected() -> (Vec<Vec<f32>>, Value) {
        let doc: Value = serde_json::from_slice(&fixture("expected.json")).unwrap();
        let rows = doc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().map_or(f32::NAN, |f| f as f32))
                    .collect()
            })
            .collect();
        (rows, doc["predictions"].clone())
    }

    fn agrees(name: &str, outputs: usize) {
        agrees_file(name, &format!("{name}.json"), outputs);
    }

    /// The model in `file` predicts what xgboost predicted for `name` (within 1e-6).
    fn agrees_file(name: &str, file: &str, outputs: usize) {
        let model = Model::from_json(&fixture(file)).unwrap();
        assert_eq!(model.outputs(), outputs);
        let (rows, want) = expected();
        let got = model.predict(&rows);
        let want = want[name].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let w: Vec<f64> = match w {
                Value::Array(a) => a.iter().map(|v| v.as_f64().unwrap()).collect(),
                v => vec![v.as_f64().unwrap()],
            };
            assert_eq!(g.len(), w.len());
            for (a, b) in g.iter().zip(&w) {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{name} row {i}: {a} vs xgboost's {b}"
                );
            }
        }
    }

    #[test]
    fn binary_logistic_agrees_with_xgboost() {
        agrees("binary", 1);
    }

    #[test]
    fn ubjson_models_read_as_their_json_twins() {
        for (name, outputs) in [
            ("binary", 1),
            ("regression", 1),
            ("multiclass", 3),
            ("poisson", 1),
        ] {
            let json = Model::from_json(&fixture(&format!("{name}.json"))).unwrap();
            let ubj = Model::from_json(&fixture(&format!("{name}.ubj"))).unwrap();
            assert_eq!(
                (ubj.outputs(), ubj.objective()),
                (outputs, json.objective())
            );
            let (rows, _) = expected();
            assert_eq!(ubj.predict(&rows), json.predict(&rows), "{name}");
        }
    }

    #[test]
    fn legacy_binary_models_agree_with_xgboost() {
        for (name, outputs) in [
            ("binary", 1),
            ("regression", 1),
            ("multiclass", 3),
            ("poisson", 1),
        ] {
            agrees_file(name, &format!("{name}.deprecated"), outputs);
            let json = Model::from_json(&fixture(&format!("{name}.json"))).unwrap();
            let old = Model::from_json(&fixture(&format!("{name}.deprecated"))).unwrap();
            assert_eq!(
                (old.objective(), old.features()),
                (json.objective(), json.features())
            );
        }
    }

    #[test]
    fn a_legacy_model_cut_short_is_refused_not_panicked_on() {
        let whole = fixture("binary.deprecated");
        // (Cuts in the trailing attributes go unseen: the model does not need them.)
        for len in [3, 4, 100, 300, whole.len() / 2] {
            assert!(
                matches!(Model::from_json(&whole[..len]), Err(Error::Format(_))),
                "cut at {len}"
            );
        }
        // A node count that cannot fit is refused before anything is allocated for it.
        let mut huge = whole.clone();
        let tree_param = 4 + 136 + 8 + "binary:logistic".len() + 8 + "gbtree".len() + 160;
        huge[tree_param + 4..tree_param + 8].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(Model::from_json(&huge), Err(Error::Format(_))));
    }

    #[test]
    fn regression_agrees_with_xgboost() {
        agrees("regression", 1);
    }

    #[test]
    fn softprob_agrees_with_xgboost() {
        agrees("multiclass", 3);
    }

    #[test]
    fn poisson_agrees_with_xgboost() {
        agrees("poisson", 1);
    }

    #[test]
    fn missing_values_follow_the_default_direction() {
        let model = Model::from_json(&fixture("binary.json")).unwrap();
        // A short row is missing its last features, as NaNs would be.
        let short = model.predict_row(&[0.5, -1.0]);
        let nan = model.predict_row(&[0.5, -1.0, f32::NAN, f32::NAN, f32::NAN, f32::NAN]);
        assert_eq!(short, nan);
    }

    #[test]
    fn other_formats_are_refused_clearly() {
        assert!(matches!(
            Model::from_json(b"binf\0\0\0\0"),
            Err(Error::Format(_))
        ));
        // UBJSON cut short.
        assert!(matches!(
            Model::from_json(b"{L\0\0\0\x07learner"),
            Err(Error::Format(_))
        ));
        assert!(matches!(
            Model::from_json(b"not a model"),
            Err(Error::Format(_))
        ));
        // A tree whose child points back up would never end.
        let looped = br#"{"learner":{"objective":{"name":"reg:squarederror"},
            "learner_model_param":{"base_score":"0.5","num_class":"0","num_feature":"1"},
            "gradient_booster":{"name":"gbtree","model":{"tree_info":[0],"trees":[{
              "left_children":[0,-1],"right_children":[1,-1],"split_indices":[0,0],
              "default_left":[1,0],"split_conditions":[0.5,1.0]}]}}}}"#;
        assert!(matches!(Model::from_json(looped), Err(Error::Format(_))));
    }
}
