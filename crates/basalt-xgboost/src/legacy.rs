//! XGBoost's legacy binary model format (`Booster.save_model` before 1.0 by default, and with
//! a `.deprecated` name until 2.x; SageMaker's XGBoost containers up to 1.3 wrote
//! `xgboost-model` this way), read into the document [`crate::Model::from_json`] reads.
//!
//! The layout, little-endian, as XGBoost's `LearnerImpl::LoadModel(dmlc::Stream*)` reads it:
//! an optional `binf` header; `LearnerModelParamLegacy` (136 bytes: base_score f32,
//! num_feature u32, num_class i32, contain_extra_attrs i32, contain_eval_metrics i32,
//! major_version u32, minor_version u32, num_target u32, boost_from_average i32, 25 reserved
//! i32); the objective and booster names (u64 length, bytes); `GBTreeModelParam` (160 bytes,
//! num_trees i32 first); each tree: `TreeParam` (148 bytes, num_nodes i32 second), its nodes
//! (20 bytes: parent, left, right i32, split index u32 whose top bit is default-left, split
//! condition or leaf value f32) and their statistics (16 bytes each, unused here); the trees'
//! output groups (i32 each); for DART, the trees' weights (u64 count, f32 each).

use serde_json::{Value, json};

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "the model ends at byte {}, before byte {}",
                    self.bytes.len(),
                    self.at.saturating_add(n)
                )
            })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(self.u32()? as i32)
    }

    fn f32(&mut self) -> Result<f32, String> {
        Ok(f32::from_bits(self.u32()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = usize::try_from(self.u64()?).map_err(|_| "a string too long".to_owned())?;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "a name that is not UTF-8".to_owned())
    }

    /// A count that cannot exceed what is left of the model at `size` bytes an item.
    fn count(&self, n: i64, size: usize, what: &str) -> Result<usize, String> {
        let n = usize::try_from(n).map_err(|_| format!("a negative number of {what}"))?;
        if n.saturating_mul(size) > self.bytes.len() - self.at {
            return Err(format!("{n} {what} do not fit in the model"));
        }
        Ok(n)
    }
}

/// What the prediction does to a margin, for the base score of models before 1.0 (saved as
/// a margin, not in output space).
fn transform(objective: &str, margin: f32) -> f32 {
    match objective {
        "binary:logistic" | "reg:logistic" => 1.0 / (1.0 + (-margin).exp()),
        "count:poisson" | "reg:gamma" | "reg:tweedie" | "survival:cox" => margin.exp(),
        _ => margin,
    }
}

/// Whether `bytes` look like a legacy binary model rather than JSON or UBJSON (which start
/// with `{`, JSON perhaps after white space).
pub fn is_legacy(bytes: &[u8]) -> bool {
    bytes.starts_with(b"binf")
        || bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b != b'{')
}

/// The model as XGBoost's JSON document.
pub fn to_json(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader {
        bytes: bytes.strip_prefix(b"binf").unwrap_or(bytes),
        at: 0,
    };
    let base_score = r.f32()?;
    let num_feature = r.u32()?;
    let num_class = r.i32()?;
    let _extra_attrs = r.i32()?;
    let _eval_metrics = r.i32()?;
    let major = r.u32()?;
    let _minor = r.u32()?;
    let num_target = r.u32()?;
    r.take(4 + 25 * 4)?;
    let objective = r.string()?;
    let booster = r.string()?;
    if booster != "gbtree" && booster != "dart" {
        return Err(format!("the {booster} booster is not a tree booster"));
    }
    let gbtree_param = r.take(160)?;
    let num_trees = i32::from_le_bytes([
        gbtree_param[0],
        gbtree_param[1],
        gbtree_param[2],
        gbtree_param[3],
    ]);
    let num_trees = r.count(i64::from(num_trees), 148 + 36, "trees")?;
    let mut trees = Vec::with_capacity(num_trees);
    for t in 0..num_trees {
        let tree_param = r.take(148)?;
        let nodes =
            i32::from_le_bytes([tree_param[4], tree_param[5], tree_param[6], tree_param[7]]);
        let nodes = r.count(i64::from(nodes), 36, "nodes")?;
        if nodes == 0 {
            return Err(format!("tree {t} has no nodes"));
        }
        let (mut left, mut right, mut index, mut default_left, mut cond) =
            (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..nodes {
            let _parent = r.i32()?;
            left.push(r.i32()?);
            right.push(r.i32()?);
            let sindex = r.u32()?;
            index.push(sindex & 0x7fff_ffff);
            default_left.push(u32::from(sindex >> 31 != 0));
            cond.push(r.f32()?);
        }
        r.take(16 * nodes)?; // the nodes' statistics
        trees.push(json!({
            "left_children": left, "right_children": right, "split_indices": index,
            "default_left": default_left, "split_conditions": cond,
        }));
    }
    let mut tree_info = Vec::with_capacity(num_trees);
    for _ in 0..num_trees {
        tree_info.push(r.i32()?);
    }
    let model = json!({"trees": trees, "tree_info": tree_info});
    let gradient_booster = if booster == "dart" {
        let n = r.u64()?;
        let n = r.count(i64::try_from(n).unwrap_or(-1), 4, "tree weights")?;
        let mut weights = Vec::with_capacity(n);
        for _ in 0..n {
            weights.push(r.f32()?);
        }
        json!({"name": "dart", "gbtree": {"model": model}, "weight_drop": weights})
    } else {
        json!({"name": "gbtree", "model": model})
    };
    let base_score = if major < 1 && !objective.starts_with("multi:") {
        transform(&objective, base_score)
    } else {
        base_score
    };
    Ok(json!({"learner": {
        "objective": {"name": objective},
        "learner_model_param": {
            "base_score": base_score, "num_class": num_class, "num_feature": num_feature,
            "num_target": num_target.max(1),
        },
        "gradient_booster": gradient_booster,
    }}))
}
