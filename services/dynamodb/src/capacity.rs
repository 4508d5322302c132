//! Consumed capacity by DynamoDB's rules: a read unit per 4 KB read (halved for eventually
//! consistent reads, doubled in transactions), a write unit per 1 KB written (doubled in
//! transactions), and the index writes that a table write causes.

use basalt_core::AwsError;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    None,
    Total,
    Indexes,
}

pub fn mode(input: &Value) -> Result<Mode, AwsError> {
    match input.get("ReturnConsumedCapacity").and_then(Value::as_str) {
        None | Some("NONE") => Ok(Mode::None),
        Some("TOTAL") => Ok(Mode::Total),
        Some("INDEXES") => Ok(Mode::Indexes),
        Some(other) => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]"
        ))),
    }
}

/// Read units for `bytes` read in one operation.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Write units for an item of `bytes` (the larger of its old and new sizes).
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// What one request consumed on one table and its indexes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumed {
    pub read: bool,
    pub table: f64,
    pub indexes: BTreeMap<String, (bool, f64)>,
}

impl Consumed {
    pub fn read(units: f64) -> Consumed {
        Consumed {
            read: true,
            table: units,
            indexes: BTreeMap::new(),
        }
    }

    pub fn write(units: f64) -> Consumed {
        Consumed {
            read: false,
            table: units,
            indexes: BTreeMap::new(),
        }
    }

    pub fn index(&mut self, name: &str, global: bool, units: f64) {
        self.indexes
            .entry(name.to_owned())
            .or_insert((global, 0.0))
            .1 += units;
    }

    pub fn add(&mut self, other: &Consumed) {
        self.table += other.table;
        for (n, (g, u)) in &other.indexes {
            self.index(n, *g, *u);
        }
    }

    pub fn scale(&mut self, by: f64) {
        self.table *= by;
        for v in self.indexes.values_mut() {
            v.1 *= by;
        }
    }

    pub fn total(&self) -> f64 {
        self.table + self.indexes.values().map(|v| v.1).sum::<f64>()
    }

    /// The `ConsumedCapacity` structure for `mode`, if any.
    pub fn to_json(&self, table: &str, mode: Mode) -> Option<Value> {
        if mode == Mode::None {
            return None;
        }
        let kind = if self.read {
            "ReadCapacityUnits"
        } else {
            "WriteCapacityUnits"
        };
        let mut o = Map::new();
        o.insert("TableName".into(), table.into());
        o.insert("CapacityUnits".into(), json!(self.total()));
        o.insert(kind.into(), json!(self.total()));
        if mode == Mode::Indexes {
            o.insert(
                "Table".into(),
                json!({"CapacityUnits": self.table, kind: self.table}),
            );
            let (mut g, mut l) = (Map::new(), Map::new());
            for (n, (global, u)) in &self.indexes {
                let v = json!({"CapacityUnits": u, kind: u});
                if *global {
                    g.insert(n.clone(), v);
                } else {
                    l.insert(n.clone(), v);
                }
            }
            if !g.is_empty() {
                o.insert("GlobalSecondaryIndexes".into(), g.into());
            }
            if !l.is_empty() {
                o.insert("LocalSecondaryIndexes".into(), l.into());
            }
        }
        Some(Value::Object(o))
    }
}

/// Adds the `ConsumedCapacity` list of a multi-table operation (one entry per table) to `out`.
pub fn insert_all(out: &mut Map<String, Value>, consumed: &BTreeMap<String, Consumed>, mode: Mode) {
    if mode != Mode::None {
        let all: Vec<Value> = consumed
            .iter()
            .filter_map(|(n, c)| c.to_json(n, mode))
            .collect();
        out.insert("ConsumedCapacity".into(), all.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_the_rules() {
        assert_eq!(read_units(1, true), 1.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
    }

    #[test]
    fn index_breakdown() {
        let mut c = Consumed::write(2.0);
        c.index("g", true, 1.0);
        c.index("l", false, 1.0);
        let v = c.to_json("t", Mode::Indexes).unwrap();
        assert_eq!(v["CapacityUnits"], 4.0);
        assert_eq!(v["Table"]["CapacityUnits"], 2.0);
        assert_eq!(v["GlobalSecondaryIndexes"]["g"]["WriteCapacityUnits"], 1.0);
        assert_eq!(v["LocalSecondaryIndexes"]["l"]["CapacityUnits"], 1.0);
        assert!(c.to_json("t", Mode::None).is_none());
        assert!(c.to_json("t", Mode::Total).unwrap().get("Table").is_none());
    }
}
