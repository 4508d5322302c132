//! Time to live: items whose TTL attribute (a Number of epoch seconds) lies in the past are
//! deleted by a periodic sweep, with a REMOVE stream record whose `userIdentity` is the
//! DynamoDB service, as AWS writes it.
//!
//! The sweep is one recurring work item of the store's leases, so one node sweeps at a time
//! and a node that dies mid-sweep is replaced by another. As on AWS, a value more than five
//! years in the past is not an expiry date, and an expired item stays readable until the
//! sweep reaches it. `BASALT_DYNAMODB_TTL_SWEEP_SECS` sets the period (default 60).

use basalt_dynamodb_expr::AttributeValue;
use basalt_store::{Claim, StoreError, WriteOp};
use std::sync::Arc;

use crate::DynamoDb;
use crate::keys::{self, upper};
use crate::model::{ITEMS, TABLES, TableRec, now_secs};
use crate::write::{Action, ItemWrite, decide, decode};

const QUEUE: &str = "dynamodb.ttl";
const ID: &str = "sweep";
const LEASE_MS: i64 = 120_000;
const CHUNK: usize = 256;
const FIVE_YEARS_SECS: f64 = 5.0 * 365.0 * 86_400.0;

fn period_ms() -> i64 {
    basalt_store::ms_from_secs_env("BASALT_DYNAMODB_TTL_SWEEP_SECS", 60_000)
}

pub fn start_worker(d: Arc<DynamoDb>) {
    let state = d.state.clone();
    basalt_store::leases::spawn_recurring(state, QUEUE, ID, LEASE_MS, period_ms, move |claim| {
        sweep(&d, claim)
    });
}

/// Whether an item's TTL attribute says it has expired at `now` (epoch seconds).
fn expired(v: Option<&AttributeValue>, now: f64) -> bool {
    match v {
        Some(AttributeValue::N(n)) => {
            let at = n.to_f64();
            at < now && at > now - FIVE_YEARS_SECS
        }
        _ => false,
    }
}

fn sweep(d: &DynamoDb, claim: &Claim) -> Result<(), StoreError> {
    let mut after: Option<String> = None;
    loop {
        let tables = d.state.scan(TABLES, "", after.as_deref(), 100)?;
        let Some((last, _)) = tables.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for (_, raw) in &tables {
            let Ok(mut t) = serde_json::from_slice::<TableRec>(raw) else {
                continue;
            };
            t.stored = raw.clone();
            if let Some(ttl) = t.ttl.clone().filter(|t| t.enabled) {
                sweep_table(d, &t, &ttl.attribute)?;
                d.state.renew(claim, d.state.clock_ms()?, LEASE_MS)?;
            }
        }
    }
}

fn sweep_table(d: &DynamoDb, t: &TableRec, attribute: &str) -> Result<(), StoreError> {
    let prefix = keys::table_prefix(t);
    let hi = upper(&prefix);
    let mut lo = prefix;
    loop {
        let rows = d.state.range(ITEMS, &lo, &hi, false, CHUNK)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        lo = format!("{last}\u{0}");
        let now = now_secs();
        for (_, raw) in &rows {
            let Ok(item) = decode(raw) else { continue };
            if !expired(item.get(attribute), now) {
                continue;
            }
            let w = ItemWrite {
                key: keys::key_of(&t.key, &item),
                condition: None,
                action: Action::Delete,
            };
            let Ok(mut done) = decide(t, &w, Some(raw.clone()), Some(item.clone()), &t.region)
            else {
                continue;
            };
            // The record names DynamoDB as the deleter.
            done.ops.retain(
                |op| !matches!(op, WriteOp::Put { table, .. } if table == crate::model::STREAM),
            );
            if let Some(rec) = crate::streams::record(t, &w.key, Some(&item), None, &t.region, true)
            {
                done.ops.push(rec);
            }
            done.ops.insert(0, t.unchanged());
            match d.state.batch(&done.ops) {
                // Changed meanwhile: the next sweep looks at it again.
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_dynamodb_expr::Number;

    #[test]
    fn expiry_rules() {
        let n = |s: &str| Some(AttributeValue::N(Number::parse(s).unwrap()));
        let now = 1_800_000_000.0;
        assert!(expired(n("1799999999").as_ref(), now));
        assert!(!expired(n("1800000001").as_ref(), now));
        // Over five years in the past: not an expiry date.
        assert!(!expired(n("1000").as_ref(), now));
        assert!(!expired(Some(&AttributeValue::S("1".into())), now));
        assert!(!expired(None, now));
    }
}
