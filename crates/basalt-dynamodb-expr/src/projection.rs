//! Projection of items through document paths. The result keeps the nesting: projecting
//! `a.b[1]` gives `{a: {b: [<element 1>]}}`; several elements of one list come out in index
//! order, compacted; paths that reach nothing contribute nothing.
//! Reference: <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ProjectionExpressions.html>

use crate::ast::{Path, PathElement, Projection};
use crate::value::{AttributeValue, Item};
use std::collections::BTreeMap;

/// The requested paths merged into a tree.
#[derive(Default)]
struct Node {
    whole: bool,
    attrs: BTreeMap<String, Node>,
    indexes: BTreeMap<usize, Node>,
}

impl Node {
    fn insert(&mut self, elems: &[PathElement]) {
        match elems.split_first() {
            None => self.whole = true,
            Some((PathElement::Attr(a), rest)) => {
                self.attrs.entry(a.clone()).or_default().insert(rest)
            }
            Some((PathElement::Index(i), rest)) => self.indexes.entry(*i).or_default().insert(rest),
        }
    }

    fn project(&self, v: &AttributeValue) -> Option<AttributeValue> {
        if self.whole {
            return Some(v.clone());
        }
        match v {
            AttributeValue::M(m) if !self.attrs.is_empty() => {
                let out = project_map(&self.attrs, m);
                (!out.is_empty()).then_some(AttributeValue::M(out))
            }
            AttributeValue::L(l) if !self.indexes.is_empty() => {
                let out: Vec<AttributeValue> = self
                    .indexes
                    .iter()
                    .filter_map(|(i, n)| l.get(*i).and_then(|v| n.project(v)))
                    .collect();
                (!out.is_empty()).then_some(AttributeValue::L(out))
            }
            _ => None,
        }
    }
}

fn project_map(attrs: &BTreeMap<String, Node>, m: &Item) -> Item {
    attrs
        .iter()
        .filter_map(|(k, n)| Some((k.clone(), n.project(m.get(k)?)?)))
        .collect()
}

impl Projection {
    /// The item restricted to the projected paths.
    pub fn apply(&self, item: &Item) -> Item {
        let mut root = Node::default();
        for p in &self.paths {
            root.insert(&p.elements);
        }
        project_map(&root.attrs, item)
    }

    pub fn from_paths(paths: Vec<Path>) -> Projection {
        Projection { paths }
    }

    /// The distinct top-level attribute names, in first-mention order.
    pub fn top_level_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.paths {
            if !out.iter().any(|n| n == p.top()) {
                out.push(p.top().to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{item_from_json, item_to_json};
    use serde_json::json;

    #[test]
    fn keeps_nesting_and_list_order() {
        let item = item_from_json(&json!({
            "a": {"M": {"b": {"L": [{"S": "x"}, {"S": "y"}, {"S": "z"}]}, "c": {"N": "1"}}},
            "d": {"S": "d"}, "e": {"S": "e"}
        }))
        .unwrap();
        let p = Projection::from_paths(vec![
            Path::attr("a").child("b").index(2),
            Path::attr("a").child("b").index(0),
            Path::attr("a").child("b").index(9),
            Path::attr("d"),
            Path::attr("zz").child("q"),
            Path::attr("e").child("not_a_map"),
        ]);
        assert_eq!(
            item_to_json(&p.apply(&item)),
            json!({"a": {"M": {"b": {"L": [{"S": "x"}, {"S": "z"}]}}}, "d": {"S": "d"}})
        );
        assert_eq!(p.top_level_names(), ["a", "d", "zz", "e"]);
    }
}
