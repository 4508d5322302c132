//! Many patterns, one lookup.
//!
//! An event bus holds thousands of rules, and most events match none or a few. Testing every
//! pattern costs O(rules) per event. Instead each rule is filed in an index under a *necessary
//! condition*: a field path and the exact values it lists ("this rule cannot match unless
//! `detail.bucket.name` is one of these"). Matching an event walks the index's field-path trie
//! along the event, looks each leaf value up in a hash map, and only the rules found that way
//! (plus the few with no exact-valued field at all) are then checked in full with
//! `Pattern::matches`. The cost grows with the number of indexed paths and with the
//! candidates, not with the number of rules.
//!
//! Which field a rule is filed under matters: `source: ["aws.ec2"]` is shared by many rules,
//! an instance id by one. At insert time each candidate condition is priced by the rules
//! already filed under the same (path, value) buckets and the cheapest wins, so rule sets
//! steer themselves toward their selective fields without configuration. A `$or` group counts
//! as a condition when every alternative has one (the rule is then filed under all of them).
//!
//! The full check on candidates keeps results identical to `Pattern::matches` by construction;
//! the index only ever prunes rules that could not match.

use std::collections::HashMap;
use std::hash::Hash;

use serde_json::Value;

use crate::Pattern;
use crate::ast::{Child, ObjNode};
use crate::cidr::parse_ip;
use crate::scalar::Key;

type RuleId = u32;

/// Many patterns compiled into one structure; see the module docs for how it is indexed.
#[derive(Debug, Clone)]
pub struct Matcher<K> {
    slots: Vec<Option<Slot<K>>>,
    free: Vec<RuleId>,
    by_key: HashMap<K, RuleId>,
    index: PathNode,
    /// Rules with no exact-valued condition; checked against every event.
    scan: Vec<RuleId>,
}

#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    pattern: Pattern,
    /// Where the rule is filed, so `remove` can take it out again; empty for scanned rules.
    filed: Vec<(Vec<String>, Key)>,
}

/// One step of the field-path trie. Strings sit in their own map so that an event's string can
/// be looked up by `&str` without allocating.
#[derive(Debug, Clone, Default)]
struct PathNode {
    children: HashMap<String, PathNode>,
    strs: HashMap<Box<str>, Vec<RuleId>>,
    others: HashMap<Key, Vec<RuleId>>,
}

impl PathNode {
    fn get(&self, path: &[String]) -> Option<&PathNode> {
        match path.split_first() {
            None => Some(self),
            Some((head, rest)) => self.children.get(head)?.get(rest),
        }
    }

    fn bucket_len(&self, key: &Key) -> usize {
        match key {
            Key::Str(s) => self.strs.get(s).map_or(0, Vec::len),
            other => self.others.get(other).map_or(0, Vec::len),
        }
    }

    fn file(&mut self, path: &[String], key: Key, id: RuleId) {
        let mut node = self;
        for step in path {
            node = node.children.entry(step.clone()).or_default();
        }
        let bucket = match key {
            Key::Str(s) => node.strs.entry(s).or_default(),
            other => node.others.entry(other).or_default(),
        };
        // A rule may name the same value twice (or in two $or branches); file it once.
        if bucket.last() != Some(&id) {
            bucket.push(id);
        }
    }

    /// Takes `id` out of the bucket; returns whether this node is now empty and can go.
    fn unfile(&mut self, path: &[String], key: &Key, id: RuleId) -> bool {
        match path.split_first() {
            Some((head, rest)) => {
                if let Some(child) = self.children.get_mut(head)
                    && child.unfile(rest, key, id)
                {
                    self.children.remove(head);
                }
            }
            None => match key {
                Key::Str(s) => {
                    if let Some(b) = self.strs.get_mut(s) {
                        b.retain(|x| *x != id);
                        if b.is_empty() {
                            self.strs.remove(s);
                        }
                    }
                }
                other => {
                    if let Some(b) = self.others.get_mut(other) {
                        b.retain(|x| *x != id);
                        if b.is_empty() {
                            self.others.remove(other);
                        }
                    }
                }
            },
        }
        self.children.is_empty() && self.strs.is_empty() && self.others.is_empty()
    }

    /// Collects the rules filed under the values found along this node's paths in `v`.
    fn collect(&self, v: &Value, out: &mut Vec<RuleId>) {
        match v {
            // Arrays are transparent, as in matching: every element is looked at.
            Value::Array(items) => items.iter().for_each(|i| self.collect(i, out)),
            Value::Object(m) => {
                // Walk whichever side is smaller: a wide event against a narrow index or the
                // reverse.
                if self.children.len() <= m.len() {
                    for (k, child) in &self.children {
                        if let Some(cv) = m.get(k) {
                            child.collect(cv, out);
                        }
                    }
                } else {
                    for (k, cv) in m {
                        if let Some(child) = self.children.get(k) {
                            child.collect(cv, out);
                        }
                    }
                }
            }
            Value::String(s) => {
                let hit = match parse_ip(s) {
                    Some(ip) if !self.others.is_empty() => self.others.get(&Key::Ip(ip)),
                    Some(_) => None,
                    None => self.strs.get(s.as_str()),
                };
                if let Some(ids) = hit {
                    out.extend_from_slice(ids);
                }
            }
            scalar => {
                if !self.others.is_empty()
                    && let Some(ids) = Key::of_value(scalar).and_then(|k| self.others.get(&k))
                {
                    out.extend_from_slice(ids);
                }
            }
        }
    }
}

/// A necessary condition for a rule: it cannot match unless the event has one of these
/// (path, value) leaves. `cost` estimates how many other rules share those buckets.
struct Condition {
    cost: usize,
    entries: Vec<(Vec<String>, Key)>,
}

/// The cheapest necessary condition of `node` (relative to `prefix`), if it has one.
fn best_condition(node: &ObjNode, prefix: &mut Vec<String>, index: &PathNode) -> Option<Condition> {
    let mut best: Option<Condition> = None;
    let mut consider = |c: Condition| {
        if best.as_ref().is_none_or(|b| c.cost < b.cost) {
            best = Some(c);
        }
    };
    for f in &node.fields {
        prefix.push(f.key.clone());
        match &f.child {
            Child::Leaves(l) => {
                if let Some(values) = l.exact_only() {
                    let at = index.get(prefix);
                    let mut cost = 0;
                    let mut entries = Vec::with_capacity(values.len());
                    for v in values {
                        let key = v.key();
                        // Each value costs the rules it would share a bucket with, plus one so
                        // that a short value list beats a long one on an empty index.
                        cost += 1 + at.map_or(0, |n| n.bucket_len(&key));
                        entries.push((prefix.clone(), key));
                    }
                    consider(Condition { cost, entries });
                }
            }
            Child::Obj(o) => {
                if let Some(c) = best_condition(o, prefix, index) {
                    consider(c);
                }
            }
        }
        prefix.pop();
    }
    'groups: for alts in &node.ors {
        let mut all = Condition {
            cost: 0,
            entries: Vec::new(),
        };
        for alt in alts {
            match best_condition(alt, prefix, index) {
                Some(c) => {
                    all.cost += c.cost;
                    all.entries.extend(c.entries);
                }
                None => continue 'groups,
            }
        }
        consider(all);
    }
    best
}

impl<K: Clone + Eq + Hash> Default for Matcher<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> Matcher<K> {
    pub fn new() -> Self {
        Matcher {
            slots: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            index: PathNode::default(),
            scan: Vec::new(),
        }
    }

    /// Adds a rule, replacing any rule under the same key.
    pub fn insert(&mut self, key: K, pattern: &Pattern) {
        self.remove(&key);
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                RuleId::try_from(self.slots.len() - 1).expect("fewer than 2^32 rules")
            }
        };
        let filed = match best_condition(pattern.root(), &mut Vec::new(), &self.index) {
            Some(c) => {
                for (path, k) in &c.entries {
                    self.index.file(path, k.clone(), id);
                }
                c.entries
            }
            None => {
                self.scan.push(id);
                Vec::new()
            }
        };
        self.slots[id as usize] = Some(Slot {
            key: key.clone(),
            pattern: pattern.clone(),
            filed,
        });
        self.by_key.insert(key, id);
    }

    /// Removes the rule under `key`, if any.
    pub fn remove(&mut self, key: &K) {
        let Some(id) = self.by_key.remove(key) else {
            return;
        };
        let slot = self.slots[id as usize]
            .take()
            .expect("indexed slot is filled");
        if slot.filed.is_empty() {
            self.scan.retain(|x| *x != id);
        }
        for (path, k) in &slot.filed {
            self.index.unfile(path, k, id);
        }
        self.free.push(id);
    }

    /// The keys of the rules whose pattern matches, each once, in no promised order.
    pub fn matches(&self, event: &Value) -> Vec<K> {
        let mut candidates = Vec::new();
        self.index.collect(event, &mut candidates);
        candidates.extend_from_slice(&self.scan);
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|id| self.slots[id as usize].as_ref())
            .filter(|s| s.pattern.matches(event))
            .map(|s| s.key.clone())
            .collect()
    }

    /// How many rules are held.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// How many rules are checked against every event because they have no exact-valued
    /// field to be indexed by (prefix-only, numeric-only, anything-but rules and the like).
    pub fn scanned_len(&self) -> usize {
        self.scan.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn insert_match_remove() {
        let mut m = Matcher::new();
        m.insert(1, &p(r#"{"source": ["a"], "detail": {"id": ["x"]}}"#));
        m.insert(2, &p(r#"{"source": ["a"], "detail": {"id": ["y"]}}"#));
        m.insert(3, &p(r#"{"detail": {"n": [{"numeric": [">", 1]}]}}"#));
        assert_eq!(m.len(), 3);
        assert_eq!(m.scanned_len(), 1);
        let mut got = m.matches(&json!({"source": "a", "detail": {"id": "y", "n": 2}}));
        got.sort();
        assert_eq!(got, vec![2, 3]);
        m.remove(&2);
        assert_eq!(
            m.matches(&json!({"source": "a", "detail": {"id": "y"}})),
            Vec::<i32>::new()
        );
        m.remove(&3);
        m.remove(&1);
        assert!(m.is_empty());
        assert!(m.index.children.is_empty(), "emptied trie nodes are pruned");
    }

    #[test]
    fn prefers_the_selective_field() {
        let mut m = Matcher::new();
        for i in 0..50 {
            m.insert(
                i,
                &p(&format!(
                    r#"{{"source": ["aws.ec2"], "detail": {{"id": ["i-{i}"]}}}}"#
                )),
            );
        }
        let src = m
            .index
            .children
            .get("source")
            .map_or(0, |n| n.strs.values().map(Vec::len).sum::<usize>());
        assert!(
            src <= 1,
            "at most the first rule is filed under the shared source, got {src}"
        );
        assert_eq!(
            m.matches(&json!({"source": "aws.ec2", "detail": {"id": "i-7"}})),
            vec![7]
        );
    }

    #[test]
    fn or_groups_and_arrays_and_numbers() {
        let mut m = Matcher::new();
        m.insert("or", &p(r#"{"$or": [{"a": ["x"]}, {"b": [3]}]}"#));
        m.insert("ip", &p(r#"{"ip": ["10.0.0.1"]}"#));
        assert_eq!(m.matches(&json!({"b": 3.0})), vec!["or"]);
        assert_eq!(m.matches(&json!({"a": ["z", "x"]})), vec!["or"]);
        assert_eq!(m.matches(&json!({"ip": "10.0.0.1"})), vec!["ip"]);
        assert!(m.matches(&json!({"c": 1})).is_empty());
    }

    #[test]
    fn reinsert_replaces() {
        let mut m = Matcher::new();
        m.insert("k", &p(r#"{"a": ["x"]}"#));
        m.insert("k", &p(r#"{"a": ["y"]}"#));
        assert_eq!(m.len(), 1);
        assert!(m.matches(&json!({"a": "x"})).is_empty());
        assert_eq!(m.matches(&json!({"a": "y"})), vec!["k"]);
    }
}
