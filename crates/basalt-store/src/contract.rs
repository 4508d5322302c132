//! The contract every [`StateStore`] backend meets, as one suite that each backend runs
//! unchanged (memory and SQLite in `state.rs`, PostgreSQL in `pg.rs`): ordering, prefix edge
//! cases, missing keys, large values, batch atomicity, preconditions under concurrent writers,
//! and leases (see [`crate::leases`]).
//!
//! [`state_contract_tests!`] expands to one `#[test]` per case for a backend factory.

use crate::{StateStore, StoreError, WriteOp};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A fresh, empty store for one test, with whatever must outlive it (a temp dir, a schema).
pub struct Backend {
    pub state: Arc<dyn StateStore>,
    /// Dropped after `state` (fields drop in declaration order).
    pub _keep: Box<dyn std::any::Any>,
}

impl Backend {
    pub fn new(state: impl StateStore, keep: impl std::any::Any) -> Backend {
        Backend {
            state: Arc::new(state),
            _keep: Box::new(keep),
        }
    }
}

/// One `#[test]` per contract case, each on a fresh store from `$open`
/// (`fn() -> Option<Backend>`; `None` skips the case, e.g. when no PostgreSQL is configured).
macro_rules! state_contract_tests {
    ($open:expr) => {
        state_contract_tests!(@cases $open;
            basics, ordering_is_byte_order, prefix_edge_cases, missing_keys, large_and_empty_values,
            batch_atomicity, check_and_set_under_concurrent_writers,
            create_if_absent_under_concurrent_writers, due_order_and_leases,
            completion_is_atomic_with_results, clock_is_the_stores, counts_and_purge,
            ranges_both_ways);
        #[test]
        fn concurrent_workers_complete_each_item_once() {
            if let Some(b) = $open() {
                $crate::contract::concurrent_workers_complete_each_item_once(b.state.clone());
            }
        }
    };
    (@cases $open:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                if let Some(b) = $open() {
                    $crate::contract::$case(&*b.state);
                }
            }
        )*
    };
}
pub(crate) use state_contract_tests;

fn put(table: &str, key: &str, v: &[u8]) -> WriteOp {
    WriteOp::Put {
        table: table.into(),
        key: key.into(),
        value: v.to_vec(),
    }
}

fn check(table: &str, key: &str, expected: Option<&[u8]>) -> WriteOp {
    WriteOp::Check {
        table: table.into(),
        key: key.into(),
        expected: expected.map(<[u8]>::to_vec),
    }
}

fn keys(v: Vec<(String, Vec<u8>)>) -> Vec<String> {
    v.into_iter().map(|(k, _)| k).collect()
}

/// The store's clock: close to this machine's (the tests run next to the database) and never
/// going back between two readings.
pub fn clock_is_the_stores(s: &dyn StateStore) {
    let local = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = local();
    let a = s.clock_ms().unwrap();
    let b = s.clock_ms().unwrap();
    let after = local();
    assert!(a <= b, "{a} then {b}");
    assert!(
        a >= before - 5_000 && b <= after + 5_000,
        "{before} <= {a} <= {b} <= {after}"
    );
    // A claim made at the store's time sees an item due now.
    s.enqueue("clock", "x", b"", a).unwrap();
    assert_eq!(
        s.claim("clock", s.clock_ms().unwrap(), 1_000, 1)
            .unwrap()
            .len(),
        1
    );
}

/// Get, put, delete, prefix scans with `start_after` and limits, batches and preconditions.
pub fn basics(s: &dyn StateStore) {
    assert_eq!(s.get("t", "a").unwrap(), None);
    s.put("t", "a", b"1").unwrap();
    s.put("t", "a/b", b"2").unwrap();
    s.put("t", "a/c", b"3").unwrap();
    s.put("t", "b", b"4").unwrap();
    s.put("u", "a/x", b"5").unwrap();
    s.put("t", "a\u{00e9}", b"6").unwrap();
    assert_eq!(s.get("t", "a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        keys(s.scan("t", "a/", None, 100).unwrap()),
        vec!["a/b", "a/c"]
    );
    assert_eq!(
        keys(s.scan("t", "a/", Some("a/b"), 100).unwrap()),
        vec!["a/c"]
    );
    assert_eq!(
        keys(s.scan("t", "a/", Some("0"), 100).unwrap()),
        vec!["a/b", "a/c"]
    );
    assert_eq!(keys(s.scan("t", "", None, 2).unwrap()), vec!["a", "a/b"]);
    assert_eq!(
        keys(s.scan("t", "", Some("a/c"), 100).unwrap()),
        vec!["a\u{00e9}", "b"]
    );
    assert_eq!(
        keys(s.scan("t", "a", None, 100).unwrap()),
        vec!["a", "a/b", "a/c", "a\u{00e9}"]
    );
    assert_eq!(
        keys(s.scan("t", "z", None, 100).unwrap()),
        Vec::<String>::new()
    );
    assert!(s.delete("t", "a").unwrap());
    assert!(!s.delete("t", "a").unwrap());
    s.batch(&[
        WriteOp::Put {
            table: "t".into(),
            key: "x".into(),
            value: b"9".to_vec(),
        },
        WriteOp::Delete {
            table: "t".into(),
            key: "b".into(),
        },
    ])
    .unwrap();
    assert_eq!(s.get("t", "x").unwrap().as_deref(), Some(&b"9"[..]));
    assert_eq!(s.get("t", "b").unwrap(), None);
    s.put("t", "x", b"10").unwrap();
    assert_eq!(s.get("t", "x").unwrap().as_deref(), Some(&b"10"[..]));

    // Preconditions: the whole batch or nothing.
    let check = |key: &str, expected: Option<&[u8]>| WriteOp::Check {
        table: "t".into(),
        key: key.into(),
        expected: expected.map(<[u8]>::to_vec),
    };
    let put_y = WriteOp::Put {
        table: "t".into(),
        key: "y".into(),
        value: b"new".to_vec(),
    };
    let err = s
        .batch(&[put_y.clone(), check("x", Some(b"9"))])
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err}");
    assert_eq!(s.get("t", "y").unwrap(), None, "nothing written");
    assert!(matches!(
        s.batch(&[check("y", Some(b"new")), put_y.clone()]),
        Err(StoreError::Conflict)
    ));
    s.batch(&[check("x", Some(b"10")), check("y", None), put_y])
        .unwrap();
    assert_eq!(s.get("t", "y").unwrap().as_deref(), Some(&b"new"[..]));
}

/// Keys come back in byte order (UTF-8 byte order is code point order), never in a
/// collation's: upper case before lower case, punctuation by its byte, no ignored spaces.
pub fn ordering_is_byte_order(s: &dyn StateStore) {
    let mut expected = vec![
        "a b",
        "ab",
        "B",
        "a",
        "Z",
        "_",
        "a-b",
        "\u{1}",
        "a\u{0}",
        "é",
        "e",
        "f",
        "\u{7f}",
        "\u{ff}",
        "\u{100}",
        "\u{ffff}",
        "\u{10000}",
        "\u{10ffff}",
        "10",
        "9",
        "A",
        "",
    ];
    for (i, k) in expected.iter().enumerate() {
        s.put("ord", k, format!("{i}").as_bytes()).unwrap();
    }
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(keys(s.scan("ord", "", None, 100).unwrap()), expected);
    // Page through with start_after, two at a time: the same order, nothing skipped.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = keys(s.scan("ord", "", after.as_deref(), 2).unwrap());
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        paged.extend(page);
    }
    assert_eq!(paged, expected);
}

/// `range`: inclusive low, exclusive high, both directions, limits, empty and inverted ranges,
/// other tables untouched.
pub fn ranges_both_ways(s: &dyn StateStore) {
    for k in ["a", "b", "b\u{0}", "ba", "c", "d", "é"] {
        s.put("rng", k, k.as_bytes()).unwrap();
    }
    s.put("rng2", "b", b"other").unwrap();
    assert_eq!(
        keys(s.range("rng", "b", "c", false, 10).unwrap()),
        ["b", "b\u{0}", "ba"]
    );
    assert_eq!(
        keys(s.range("rng", "b", "c", true, 10).unwrap()),
        ["ba", "b\u{0}", "b"]
    );
    assert_eq!(
        keys(s.range("rng", "b", "d", true, 2).unwrap()),
        ["c", "ba"]
    );
    assert_eq!(
        keys(s.range("rng", "a", "\u{10ffff}", false, 2).unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        keys(s.range("rng", "d", "\u{10ffff}", true, 10).unwrap()),
        ["é", "d"]
    );
    assert!(s.range("rng", "c", "b", false, 10).unwrap().is_empty());
    assert!(s.range("rng", "b", "b", true, 10).unwrap().is_empty());
    assert!(s.range("rng", "a", "z", false, 0).unwrap().is_empty());
    assert!(s.range("none", "a", "z", false, 10).unwrap().is_empty());
    let got = s.range("rng", "b", "b\u{1}", false, 10).unwrap();
    assert_eq!(
        got,
        [
            ("b".to_owned(), b"b".to_vec()),
            ("b\u{0}".to_owned(), b"b\0".to_vec())
        ]
    );
}

/// Empty prefixes, prefixes of high code points (whose last UTF-8 bytes are 0xBF, next to the
/// largest byte a key can hold), and the record separator `\u{1}` that S3 version keys use.
pub fn prefix_edge_cases(s: &dyn StateStore) {
    // S3's versions table: `<key>\u{1}<inverted sequence>`.
    for k in [
        "obj\u{1}0002",
        "obj\u{1}0001",
        "obj",
        "obj/a",
        "obj\u{1}",
        "obj\u{0}",
        "obj\u{2}",
        "objx\u{1}1",
    ] {
        s.put("v", k, k.as_bytes()).unwrap();
    }
    assert_eq!(
        keys(s.scan("v", "obj\u{1}", None, 100).unwrap()),
        vec!["obj\u{1}", "obj\u{1}0001", "obj\u{1}0002"]
    );
    assert_eq!(
        keys(s.scan("v", "obj\u{1}", Some("obj\u{1}0001"), 100).unwrap()),
        vec!["obj\u{1}0002"]
    );
    assert_eq!(
        keys(s.scan("v", "obj", Some("obj"), 100).unwrap()),
        vec![
            "obj\u{0}",
            "obj\u{1}",
            "obj\u{1}0001",
            "obj\u{1}0002",
            "obj\u{2}",
            "obj/a",
            "objx\u{1}1"
        ],
        "start_after is exclusive; the next key may be start_after + NUL"
    );
    // The values are the keys: scans return each record's own value.
    for (k, v) in s.scan("v", "", None, 100).unwrap() {
        assert_eq!(k.as_bytes(), v.as_slice());
    }
    // Empty prefix: everything, in order; start_after past the end: nothing.
    assert_eq!(s.scan("v", "", None, 100).unwrap().len(), 8);
    assert!(s.scan("v", "", Some("\u{10ffff}"), 100).unwrap().is_empty());
    assert!(s.scan("v", "", None, 0).unwrap().is_empty());
    // start_after before the prefix is ignored; after every key of the prefix gives nothing.
    assert_eq!(s.scan("v", "obj/", Some("a"), 100).unwrap().len(), 1);
    assert!(s.scan("v", "obj/", Some("obj/b"), 100).unwrap().is_empty());
    assert!(s.scan("v", "obj/", Some("p"), 100).unwrap().is_empty());

    // High code points: U+10FFFF is F4 8F BF BF, U+FFFF is EF BF BF, U+FF is C3 BF.
    for k in [
        "\u{10ffff}",
        "\u{10ffff}a",
        "\u{10ffff}\u{10ffff}",
        "\u{10fffe}z",
        "\u{ffff}",
        "\u{ffff}\u{1}x",
        "\u{ff}",
        "\u{ff}\u{ff}",
        "\u{100}",
        "\u{fffe}",
    ] {
        s.put("hi", k, b"").unwrap();
    }
    assert_eq!(
        keys(s.scan("hi", "\u{10ffff}", None, 100).unwrap()),
        vec!["\u{10ffff}", "\u{10ffff}a", "\u{10ffff}\u{10ffff}"]
    );
    assert_eq!(
        keys(
            s.scan("hi", "\u{10ffff}", Some("\u{10ffff}a"), 100)
                .unwrap()
        ),
        vec!["\u{10ffff}\u{10ffff}"]
    );
    assert_eq!(
        keys(s.scan("hi", "\u{ffff}", None, 100).unwrap()),
        vec!["\u{ffff}", "\u{ffff}\u{1}x"]
    );
    assert_eq!(
        keys(s.scan("hi", "\u{ff}", None, 100).unwrap()),
        vec!["\u{ff}", "\u{ff}\u{ff}"]
    );
    assert_eq!(
        keys(s.scan("hi", "\u{10fffe}", None, 100).unwrap()),
        vec!["\u{10fffe}z"]
    );
    // Tables never leak into each other, even when one's name prefixes another's.
    s.put("hi2", "\u{ff}", b"").unwrap();
    s.put("h", "\u{ff}", b"").unwrap();
    assert_eq!(s.scan("hi", "", None, 100).unwrap().len(), 10);
    assert_eq!(s.scan("h", "", None, 100).unwrap().len(), 1);
}

/// What a missing key, table or item returns: `None`, `false`, empty, never an error.
pub fn missing_keys(s: &dyn StateStore) {
    assert_eq!(s.get("nowhere", "k").unwrap(), None);
    assert!(!s.delete("nowhere", "k").unwrap());
    assert!(s.scan("nowhere", "", None, 10).unwrap().is_empty());
    s.put("t", "k", b"v").unwrap();
    assert_eq!(s.get("t", "K").unwrap(), None, "keys are case-sensitive");
    assert_eq!(s.get("t", "k ").unwrap(), None);
    assert_eq!(s.get("T", "k").unwrap(), None, "tables are case-sensitive");
    // Deleting a missing key in a batch is not an error; checking for absence passes.
    s.batch(&[
        WriteOp::Delete {
            table: "nowhere".into(),
            key: "k".into(),
        },
        check("nowhere", "k", None),
    ])
    .unwrap();
    assert!(matches!(
        s.batch(&[check("nowhere", "k", Some(b""))]),
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.pending("no-queue").unwrap(), 0);
    assert!(s.claim("no-queue", i64::MAX, 1, 10).unwrap().is_empty());
}

/// 4 MiB values round-trip through put, get, scan and batch; an empty value is a value, not
/// an absence.
pub fn large_and_empty_values(s: &dyn StateStore) {
    let big: Vec<u8> = (0..4usize << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    s.put("blob", "big", &big).unwrap();
    assert!(s.get("blob", "big").unwrap().as_deref() == Some(&big[..]));
    let scanned = s.scan("blob", "b", None, 10).unwrap();
    assert_eq!(scanned.len(), 1);
    assert!(scanned[0].1 == big);
    let mut big2 = big.clone();
    big2[1 << 20] ^= 1;
    s.batch(&[
        check("blob", "big", Some(&big)),
        put("blob", "big", &big2),
        put("blob", "big-copy", &big),
    ])
    .unwrap();
    assert!(s.get("blob", "big").unwrap().as_deref() == Some(&big2[..]));
    assert!(s.get("blob", "big-copy").unwrap().as_deref() == Some(&big[..]));
    // A check against the old bytes fails now.
    assert!(matches!(
        s.batch(&[check("blob", "big", Some(&big)), put("blob", "x", b"")]),
        Err(StoreError::Conflict)
    ));
    s.enqueue("bigq", "1", &big, 0).unwrap();
    assert!(s.claim("bigq", 0, 10, 1).unwrap()[0].payload == big);

    s.put("t", "empty", b"").unwrap();
    assert_eq!(s.get("t", "empty").unwrap(), Some(Vec::new()));
    assert_eq!(
        s.scan("t", "empty", None, 10).unwrap(),
        vec![("empty".to_owned(), Vec::new())]
    );
    assert!(matches!(
        s.batch(&[check("t", "empty", None)]),
        Err(StoreError::Conflict)
    ));
    s.batch(&[check("t", "empty", Some(b""))]).unwrap();
    // A 1 KiB key.
    let long_key = "k".repeat(1024);
    s.put("t", &long_key, b"long").unwrap();
    assert_eq!(
        s.get("t", &long_key).unwrap().as_deref(),
        Some(&b"long"[..])
    );
}

/// Batches apply in order, all or nothing; every check sees the state before the batch.
pub fn batch_atomicity(s: &dyn StateStore) {
    s.put("t", "a", b"1").unwrap();
    // Many writes then a failing check: none of them lands.
    let mut ops: Vec<WriteOp> = (0..100)
        .map(|i| put("t", &format!("n{i:03}"), b"x"))
        .collect();
    ops.push(WriteOp::Delete {
        table: "t".into(),
        key: "a".into(),
    });
    ops.push(WriteOp::Enqueue {
        queue: "q".into(),
        id: "never".into(),
        payload: vec![],
        due_ms: 0,
    });
    ops.push(check("t", "a", Some(b"2")));
    assert!(matches!(s.batch(&ops), Err(StoreError::Conflict)));
    assert!(s.scan("t", "n", None, 1000).unwrap().is_empty());
    assert_eq!(s.get("t", "a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(s.pending("q").unwrap(), 0);
    // The same batch with a check that holds: all of it.
    ops.pop();
    ops.push(check("t", "a", Some(b"1")));
    s.batch(&ops).unwrap();
    assert_eq!(s.scan("t", "n", None, 1000).unwrap().len(), 100);
    assert_eq!(s.get("t", "a").unwrap(), None);
    assert_eq!(s.pending("q").unwrap(), 1);
    // Writes to one key apply in order: the last one wins.
    s.batch(&[
        put("t", "k", b"1"),
        WriteOp::Delete {
            table: "t".into(),
            key: "k".into(),
        },
        put("t", "k", b"3"),
    ])
    .unwrap();
    assert_eq!(s.get("t", "k").unwrap().as_deref(), Some(&b"3"[..]));
    s.batch(&[
        put("t", "k", b"4"),
        WriteOp::Delete {
            table: "t".into(),
            key: "k".into(),
        },
    ])
    .unwrap();
    assert_eq!(s.get("t", "k").unwrap(), None);
    // Checks see the state before the batch, wherever they stand in it.
    s.batch(&[put("t", "c", b"new"), check("t", "c", None)])
        .unwrap();
    assert!(matches!(
        s.batch(&[put("t", "c", b"newer"), check("t", "c", Some(b"newer"))]),
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get("t", "c").unwrap().as_deref(), Some(&b"new"[..]));
    // An empty batch is a no-op.
    s.batch(&[]).unwrap();
}

/// Four threads increment one counter with check-and-set batches (reading, then writing the
/// next value only if the record is still the one read), retrying on `Conflict`: the final
/// count is exactly the number of batches that succeeded, so no increment was lost.
pub fn check_and_set_under_concurrent_writers(s: &dyn StateStore) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 60;
    s.put("ctr", "n", b"0").unwrap();
    let successes: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut ok = 0;
                    while ok < PER_THREAD {
                        let cur = s.get("ctr", "n").unwrap().unwrap();
                        let n: u64 = std::str::from_utf8(&cur).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        match s.batch(&[
                            check("ctr", "n", Some(&cur)),
                            put("ctr", "n", next.as_bytes()),
                            // A record per increment: a lost update would show as two
                            // successes writing the same counter value, one record.
                            put("inc", &next, format!("{t}").as_bytes()),
                        ]) {
                            Ok(()) => ok += 1,
                            Err(StoreError::Conflict) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(successes, THREADS * PER_THREAD);
    let n = s.get("ctr", "n").unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&n).unwrap(), successes.to_string());
    assert_eq!(s.scan("inc", "", None, 10_000).unwrap().len(), successes);
}

/// Four threads race to create the same absent records (check absent, then put): for every
/// key exactly one wins and its value is the winner's.
pub fn create_if_absent_under_concurrent_writers(s: &dyn StateStore) {
    const THREADS: usize = 4;
    const KEYS: usize = 40;
    let wins: Vec<Vec<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                scope.spawn(move || {
                    let mut won = Vec::new();
                    for k in 0..KEYS {
                        let key = format!("k{k:03}");
                        match s.batch(&[
                            check("once", &key, None),
                            put("once", &key, format!("{t}").as_bytes()),
                        ]) {
                            Ok(()) => won.push(k),
                            Err(StoreError::Conflict) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for k in 0..KEYS {
        let winners: Vec<usize> = (0..THREADS).filter(|t| wins[*t].contains(&k)).collect();
        assert_eq!(winners.len(), 1, "key {k}: winners {winners:?}");
        let v = s.get("once", &format!("k{k:03}")).unwrap().unwrap();
        assert_eq!(v, winners[0].to_string().into_bytes());
    }
}

// Leases

pub fn due_order_and_leases(s: &dyn StateStore) {
    s.enqueue("q", "late", b"L", 2_000).unwrap();
    s.enqueue("q", "early", b"E", 1_000).unwrap();
    s.enqueue("other", "x", b"X", 0).unwrap();
    assert!(
        s.claim("q", 999, 10_000, 10).unwrap().is_empty(),
        "nothing due yet"
    );
    let c = s.claim("q", 1_500, 10_000, 10).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].id.as_str(), c[0].payload.as_slice(), c[0].attempt),
        ("early", &b"E"[..], 1)
    );
    assert_eq!(c[0].expires_ms, 11_500);
    // Leased: nobody else gets it, the later item comes when due, in due order.
    let c2 = s.claim("q", 2_000, 10_000, 10).unwrap();
    assert_eq!(
        c2.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec!["late"]
    );
    assert_eq!(s.pending("q").unwrap(), 2);
    // The lease expires: claimable again, second attempt, new token.
    let again = s.claim("q", 11_500, 1_000, 10).unwrap();
    let ids: Vec<&str> = again.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["early"], "late's lease runs until 12000");
    assert_eq!(again[0].attempt, 2);
    assert_ne!(again[0].token, c[0].token);
    // The first claimer lost it: no renew, no completion, no release.
    assert!(matches!(
        s.renew(&c[0], 11_600, 1_000),
        Err(StoreError::Conflict)
    ));
    assert!(matches!(s.complete(&c[0], &[]), Err(StoreError::Conflict)));
    assert!(matches!(s.release(&c[0], 0), Err(StoreError::Conflict)));
    // The current claimer renews, and nobody can take it meanwhile.
    let renewed = s.renew(&again[0], 12_000, 5_000).unwrap();
    assert_eq!(renewed, 17_000);
    assert!(
        s.claim("q", 13_000, 1_000, 10)
            .unwrap()
            .iter()
            .all(|c| c.id != "early")
    );
    // Release with a later due time: a retry with backoff.
    s.release(&again[0], 20_000).unwrap();
    let before = s.claim("q", 19_999, 1_000, 10).unwrap();
    assert!(before.iter().all(|c| c.id != "early"));
    // `late`'s lease from 13000 expired at 14000: claimed again here.
    let late = before.iter().find(|c| c.id == "late").unwrap().clone();
    let third = s.claim("q", 20_000, 1_000, 10).unwrap();
    let early = third.iter().find(|c| c.id == "early").unwrap();
    assert_eq!(early.attempt, 3);
    s.complete(early, &[]).unwrap();
    assert!(
        matches!(s.complete(early, &[]), Err(StoreError::Conflict)),
        "completed once"
    );
    assert_eq!(s.pending("q").unwrap(), 1);
    assert_eq!(s.pending("other").unwrap(), 1);
    // Re-enqueueing an id replaces the item and ends any lease on it.
    s.enqueue("q", "late", b"L2", 30_000).unwrap();
    assert!(matches!(s.complete(&late, &[]), Err(StoreError::Conflict)));
    let c = s.claim("q", 30_000, 1_000, 10).unwrap();
    assert_eq!((c[0].payload.as_slice(), c[0].attempt), (&b"L2"[..], 1));
    // Limits: at most `max` per claim.
    for i in 0..5 {
        s.enqueue("many", &format!("{i}"), b"", i).unwrap();
    }
    assert_eq!(s.claim("many", 100, 1_000, 3).unwrap().len(), 3);
    assert_eq!(s.claim("many", 100, 1_000, 3).unwrap().len(), 2);
    assert!(s.claim("many", 100, 1_000, 0).unwrap().is_empty());
}

/// Ready, leased and delayed items are told apart at a given time; an expired lease counts as
/// ready again; purging empties one queue only.
pub fn counts_and_purge(s: &dyn StateStore) {
    use crate::Counts;
    let c = |ready, leased, delayed| Counts {
        ready,
        leased,
        delayed,
    };
    assert_eq!(s.counts("q", 0).unwrap(), c(0, 0, 0));
    for (id, due) in [("a", 0), ("b", 0), ("c", 5_000)] {
        s.enqueue("q", id, b"", due).unwrap();
    }
    s.enqueue("other", "x", b"", 0).unwrap();
    assert_eq!(s.counts("q", 1_000).unwrap(), c(2, 0, 1));
    let claimed = s.claim("q", 1_000, 2_000, 1).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(s.counts("q", 1_000).unwrap(), c(1, 1, 1));
    // At 5000 the lease (until 3000) has expired and `c` is due.
    assert_eq!(s.counts("q", 5_000).unwrap(), c(3, 0, 0));
    assert_eq!(s.purge("q").unwrap(), 3);
    assert_eq!(s.counts("q", 5_000).unwrap(), c(0, 0, 0));
    assert!(matches!(
        s.complete(&claimed[0], &[]),
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.pending("other").unwrap(), 1);
    assert_eq!(s.purge("q").unwrap(), 0);
}

pub fn completion_is_atomic_with_results(s: &dyn StateStore) {
    s.enqueue("jobs", "j1", b"work", 0).unwrap();
    let c = s.claim("jobs", 0, 1_000, 1).unwrap().remove(0);
    // A failed precondition: nothing is written and the claim still stands.
    let blocked = [
        WriteOp::Check {
            table: "results".into(),
            key: "j1".into(),
            expected: Some(b"never".to_vec()),
        },
        put("results", "j1", b"done"),
    ];
    assert!(matches!(
        s.complete(&c, &blocked),
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.get("results", "j1").unwrap(), None);
    assert_eq!(s.pending("jobs").unwrap(), 1);
    s.complete(&c, &[put("results", "j1", b"done")]).unwrap();
    assert_eq!(
        s.get("results", "j1").unwrap().as_deref(),
        Some(&b"done"[..])
    );
    assert_eq!(s.pending("jobs").unwrap(), 0);
    // Work scheduled in a batch commits with the batch, or not at all.
    s.batch(&[
        put("state", "wait", b"1"),
        WriteOp::Enqueue {
            queue: "timers".into(),
            id: "t1".into(),
            payload: b"fire".to_vec(),
            due_ms: 5,
        },
    ])
    .unwrap();
    assert_eq!(s.pending("timers").unwrap(), 1);
    let failed = s.batch(&[
        WriteOp::Check {
            table: "state".into(),
            key: "wait".into(),
            expected: None,
        },
        WriteOp::Enqueue {
            queue: "timers".into(),
            id: "t2".into(),
            payload: vec![],
            due_ms: 5,
        },
    ]);
    assert!(matches!(failed, Err(StoreError::Conflict)));
    assert_eq!(s.pending("timers").unwrap(), 1);
    // A completion may schedule the next step.
    let t = s.claim("timers", 5, 1_000, 1).unwrap().remove(0);
    s.complete(
        &t,
        &[WriteOp::Enqueue {
            queue: "timers".into(),
            id: "t3".into(),
            payload: vec![],
            due_ms: 10,
        }],
    )
    .unwrap();
    assert_eq!(s.claim("timers", 10, 1_000, 5).unwrap()[0].id, "t3");
}

/// Workers claim and complete concurrently, some "dying" with their claims; every item is
/// completed exactly once (a completion record written with the completion), none lost.
pub fn concurrent_workers_complete_each_item_once(s: Arc<dyn StateStore>) {
    const ITEMS: usize = 600;
    for i in 0..ITEMS {
        s.enqueue("load", &format!("{i:05}"), b"", 0).unwrap();
    }
    let clock = Arc::new(AtomicI64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            let clock = clock.clone();
            std::thread::spawn(move || {
                let mut done = 0;
                let mut abandoned = 0;
                for round in 0.. {
                    let now = clock.fetch_add(1, Ordering::SeqCst);
                    let claims = s.claim("load", now, 50, 8).unwrap();
                    if claims.is_empty() {
                        if s.pending("load").unwrap() == 0 {
                            break;
                        }
                        std::thread::yield_now();
                        continue;
                    }
                    for c in claims {
                        // Worker 0 dies with every third claim of its early rounds.
                        if w == 0 && round < 40 && c.id.ends_with('3') {
                            abandoned += 1;
                            continue;
                        }
                        let record = [
                            WriteOp::Check {
                                table: "done".into(),
                                key: c.id.clone(),
                                expected: None,
                            },
                            put("done", &c.id, format!("{w}").as_bytes()),
                        ];
                        match s.complete(&c, &record) {
                            Ok(()) => done += 1,
                            Err(StoreError::Conflict) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                (done, abandoned)
            })
        })
        .collect();
    let results: Vec<(usize, usize)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let completed: usize = results.iter().map(|r| r.0).sum();
    assert_eq!(completed, ITEMS, "{results:?}");
    let done = s.scan("done", "", None, ITEMS + 1).unwrap();
    let ids: HashSet<String> = done.into_iter().map(|(k, _)| k).collect();
    assert_eq!(ids.len(), ITEMS);
    assert_eq!(s.pending("load").unwrap(), 0);
}
