//! FIFO queues on the store's leases: messages of a group are delivered in the order they
//! were sent, and no message of a group is delivered while another of the group is in flight.
//!
//! Each message group is its own lease queue (`sqs/{queue id}/g/{group}`), its items keyed by
//! the message's sequence number so that claims return them in order. A second lease queue
//! (`sqs/{queue id}/groups`) holds one item per group that has messages: a receiver claims a
//! group item first — for the visibility timeout — and only then the group's messages, so
//! holding the group item is holding the group. The item is given back when the group has no
//! message in flight any more (deleted, or visible again), and removed with the group's last
//! message. A group's record (`count` of its messages) decides, under a precondition in the
//! same transaction, which sender creates the group item and which deleter removes it.
//! Sequence numbers and deduplication ids (5 minutes) are records checked the same way.

use crate::model::{FIRST_RECEIVES, Message, QueueRec};
use crate::{Sqs, error, invalid, missing};
use basalt_core::AwsError;
use basalt_store::{Claim, Counts, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Messages per group: `{queue id}/{group}` -> [`GroupRec`].
const GROUPS: &str = "sqs.fifo-groups";
/// Deduplication ids seen in the last five minutes: `{queue id}/{scope}/{id}` -> [`DedupRec`].
const DEDUP: &str = "sqs.fifo-dedup";
/// The next sequence number of each queue.
const SEQUENCE: &str = "sqs.fifo-seq";
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
/// A group whose messages are still leased when its item is claimed is looked at again this
/// much later.
const RECHECK_MS: i64 = 500;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct GroupRec {
    count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DedupRec {
    id: String,
    seq: String,
    expires_ms: i64,
}

pub(crate) fn group_queue(qid: &str, group: &str) -> String {
    format!("sqs/{qid}/g/{group}")
}

pub(crate) fn groups_queue(qid: &str) -> String {
    format!("sqs/{qid}/groups")
}

fn group_key(qid: &str, group: &str) -> String {
    format!("{qid}/{group}")
}

/// Checks the FIFO members of a send and fills the message's group and deduplication id.
pub(crate) fn prepare(
    q: &QueueRec,
    entry: &serde_json::Value,
    m: &mut Message,
) -> Result<(), AwsError> {
    let str_of = |n: &str| entry.get(n).and_then(serde_json::Value::as_str);
    if entry.get("DelaySeconds").is_some_and(|d| !d.is_null()) {
        return Err(invalid(format!(
            "Value {} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
            entry["DelaySeconds"]
        )));
    }
    let group = str_of("MessageGroupId").ok_or_else(|| missing("MessageGroupId"))?;
    if group.is_empty() || group.len() > 128 || !group.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "Value {group} for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length."
        )));
    }
    let dedup = match str_of("MessageDeduplicationId") {
        Some(d) => {
            if d.is_empty() || d.len() > 128 || !d.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(format!(
                    "Value {d} for parameter MessageDeduplicationId is invalid. Reason: MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length."
                )));
            }
            d.to_owned()
        }
        None if q.attr("ContentBasedDeduplication").as_deref() == Some("true") => {
            hex::encode(Sha256::digest(m.body.as_bytes()))
        }
        None => {
            return Err(invalid(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
            ));
        }
    };
    m.group = Some(group.to_owned());
    m.dedup = Some(dedup);
    Ok(())
}

fn read<T: for<'de> Deserialize<'de>>(raw: &Option<Vec<u8>>) -> Option<T> {
    raw.as_ref().and_then(|r| serde_json::from_slice(r).ok())
}

fn put<T: Serialize>(table: &str, key: String, v: &T) -> WriteOp {
    WriteOp::Put {
        table: table.into(),
        key,
        value: serde_json::to_vec(v).unwrap_or_default(),
    }
}

fn check(table: &str, key: &str, expected: Option<Vec<u8>>) -> WriteOp {
    WriteOp::Check {
        table: table.into(),
        key: key.to_owned(),
        expected,
    }
}

/// What a FIFO send answers: the message's id and sequence number (a duplicate within five
/// minutes gets the first message's).
pub(crate) struct Sent {
    pub id: String,
    pub seq: String,
}

/// The writes that add `m` (due at `due_ms`) to queue `q`, with their preconditions, and
/// its sequence number; `None` for a duplicate.
fn add_ops(
    sqs: &Sqs,
    q: &QueueRec,
    m: &mut Message,
    due_ms: i64,
    now: i64,
) -> Result<Result<(Vec<WriteOp>, String), Sent>, AwsError> {
    let group = m.group.clone().unwrap_or_default();
    let scope = if q.attr("DeduplicationScope").as_deref() == Some("messageGroup") {
        group.as_str()
    } else {
        ""
    };
    let dedup_key = format!(
        "{}/{scope}/{}",
        q.id,
        m.dedup.as_deref().unwrap_or_default()
    );
    let dedup_raw = sqs.state.get(DEDUP, &dedup_key)?;
    if let Some(d) = read::<DedupRec>(&dedup_raw)
        && d.expires_ms > now
    {
        return Ok(Err(Sent {
            id: d.id,
            seq: d.seq,
        }));
    }
    let seq_raw = sqs.state.get(SEQUENCE, &q.id)?;
    let next: u128 = read::<String>(&seq_raw)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000_000_000_000_000);
    let seq = format!("{next:020}");
    let gkey = group_key(&q.id, &group);
    let group_raw = sqs.state.get(GROUPS, &gkey)?;
    let mut g: GroupRec = read(&group_raw).unwrap_or_default();
    let first = g.count == 0;
    g.count += 1;
    m.seq = Some(seq.clone());
    let mut ops = vec![
        check(DEDUP, &dedup_key, dedup_raw),
        put(
            DEDUP,
            dedup_key,
            &DedupRec {
                id: m.id.clone(),
                seq: seq.clone(),
                expires_ms: now + DEDUP_WINDOW_MS,
            },
        ),
        check(SEQUENCE, &q.id, seq_raw),
        put(SEQUENCE, q.id.clone(), &(next + 1).to_string()),
        check(GROUPS, &gkey, group_raw),
        put(GROUPS, gkey, &g),
        WriteOp::Enqueue {
            queue: group_queue(&q.id, &group),
            id: seq.clone(),
            payload: serde_json::to_vec(m).unwrap_or_default(),
            due_ms,
        },
    ];
    if first {
        ops.push(WriteOp::Enqueue {
            queue: groups_queue(&q.id),
            id: group,
            payload: Vec::new(),
            due_ms,
        });
    }
    Ok(Ok((ops, seq)))
}

/// Stores a message in a FIFO queue (retried when a concurrent send moved the records).
pub(crate) fn send(
    sqs: &Sqs,
    q: &QueueRec,
    m: &mut Message,
    due_ms: i64,
) -> Result<Sent, AwsError> {
    for _ in 0..64 {
        let now = sqs.clock()?;
        let (ops, seq) = match add_ops(sqs, q, m, due_ms, now)? {
            Ok(v) => v,
            Err(duplicate) => return Ok(duplicate),
        };
        match sqs.state.batch(&ops) {
            Ok(()) => {
                return Ok(Sent {
                    id: m.id.clone(),
                    seq,
                });
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(error(
        "RequestThrottled",
        "RequestThrottled",
        "Too many concurrent sends to this FIFO queue; try again.",
    ))
}

/// A received FIFO message: its claim, and the claim of its group.
pub(crate) struct Received {
    pub msg: Claim,
    pub group: Claim,
    pub group_name: String,
}

/// The receipt handle of a FIFO message: base64url of the queue id, group, sequence number,
/// the message's lease token and the group's, newline-separated (a newline is in none of
/// them: group ids are printable ASCII).
pub(crate) fn receipt(q: &QueueRec, r: &Received) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}\n{}\n{}\n{}\n{}",
        q.id, r.group_name, r.msg.id, r.msg.token, r.group.token
    ))
}

/// The claims a FIFO receipt handle stands for, if it is one of `q`'s.
pub(crate) fn parse_receipt(q: &QueueRec, decoded: &str) -> Option<Received> {
    let parts: Vec<&str> = decoded.split('\n').collect();
    let [qid, group, seq, token, group_token] = parts.as_slice() else {
        return None;
    };
    if *qid != q.id || group.is_empty() || seq.is_empty() {
        return None;
    }
    let claim = |queue: String, id: &str, token: &str| Claim {
        queue,
        id: id.to_owned(),
        payload: Vec::new(),
        attempt: 0,
        token: token.to_owned(),
        expires_ms: 0,
    };
    Some(Received {
        msg: claim(group_queue(&q.id, group), seq, token),
        group: claim(groups_queue(&q.id), group, group_token),
        group_name: (*group).to_owned(),
    })
}

/// Claims up to `max` messages, whole groups at a time in order, for `visibility_ms`.
pub(crate) fn claim(
    sqs: &Sqs,
    q: &QueueRec,
    max: usize,
    visibility_ms: i64,
) -> Result<Vec<(Received, Message)>, AwsError> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    // A visibility timeout of 0 frees a group the moment it is claimed, so the same group can
    // come back within one look: each group is taken once per look, and the look is bounded.
    let mut seen = std::collections::HashSet::new();
    let mut looks = 0;
    while out.len() < max && looks < 2 * max + 16 {
        looks += 1;
        let now = sqs.clock()?;
        let Some(group) = sqs
            .state
            .claim(&groups_queue(&q.id), now, visibility_ms, 1)?
            .into_iter()
            .next()
        else {
            break;
        };
        if !seen.insert(group.id.clone()) {
            // Out of the way of the next claim, so that the other groups get their turn.
            let _ = sqs.state.release(&group, now + RECHECK_MS);
            continue;
        }
        let gq = group_queue(&q.id, &group.id);
        // A message of the group still in flight (its lease outlives the group item's by the
        // moments between the two claims): the group is not free yet.
        if sqs.state.counts(&gq, now)?.leased > 0 {
            skipped.push(group);
            continue;
        }
        let claims = sqs.state.claim(&gq, now, visibility_ms, max - out.len())?;
        if claims.is_empty() {
            skipped.push(group);
            continue;
        }
        for c in claims {
            match serde_json::from_slice::<Message>(&c.payload) {
                Ok(m) => out.push((
                    Received {
                        msg: c,
                        group: group.clone(),
                        group_name: group.id.clone(),
                    },
                    m,
                )),
                Err(_) => {
                    tracing::error!(queue = %q.name, "dropping an unreadable FIFO message");
                    let _ = remove(
                        sqs,
                        q,
                        &Received {
                            msg: c,
                            group: group.clone(),
                            group_name: group.id.clone(),
                        },
                        &[],
                    );
                }
            }
        }
    }
    let now = sqs.clock()?;
    for g in skipped {
        let _ = sqs.state.release(&g, now + RECHECK_MS);
    }
    Ok(out)
}

/// Removes a received message (deleted, expired or moved to a dead-letter queue, with `extra`
/// writes in the same transaction) and frees its group if nothing else of it is in flight.
/// `Ok(false)`: the handle's claim is no longer current (nothing was removed).
pub(crate) fn remove(
    sqs: &Sqs,
    q: &QueueRec,
    r: &Received,
    extra: &[WriteOp],
) -> Result<bool, AwsError> {
    let gkey = group_key(&q.id, &r.group_name);
    for _ in 0..64 {
        let raw = sqs.state.get(GROUPS, &gkey)?;
        let mut g: GroupRec = read(&raw).unwrap_or_default();
        g.count = g.count.saturating_sub(1);
        let mut ops = vec![
            check(GROUPS, &gkey, raw.clone()),
            put(GROUPS, gkey.clone(), &g),
            WriteOp::Delete {
                table: FIRST_RECEIVES.into(),
                key: format!("{}/{}", q.id, r.msg.id),
            },
        ];
        ops.extend_from_slice(extra);
        match sqs.state.complete(&r.msg, &ops) {
            Ok(()) => {
                free_group(sqs, q, r)?;
                return Ok(true);
            }
            // Either the group record moved (a concurrent send: read it again) or the claim
            // is stale; a stale claim stays stale.
            Err(StoreError::Conflict) => {
                if sqs.state.get(GROUPS, &gkey)? == raw {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// Gives the group back (or removes it with its record when it has no message left) once
/// none of its messages is in flight.
pub(crate) fn free_group(sqs: &Sqs, q: &QueueRec, r: &Received) -> Result<(), AwsError> {
    let gkey = group_key(&q.id, &r.group_name);
    for _ in 0..16 {
        let now = sqs.clock()?;
        if sqs.state.counts(&r.msg.queue, now)?.leased > 0 {
            return Ok(());
        }
        let raw = sqs.state.get(GROUPS, &gkey)?;
        let g: GroupRec = read(&raw).unwrap_or_default();
        let result = if g.count == 0 {
            sqs.state.complete(
                &r.group,
                &[
                    check(GROUPS, &gkey, raw.clone()),
                    WriteOp::Delete {
                        table: GROUPS.into(),
                        key: gkey.clone(),
                    },
                ],
            )
        } else {
            sqs.state.release(&r.group, now)
        };
        match result {
            Ok(()) => {
                sqs.notify(&crate::model::lease_queue(&q.id));
                return Ok(());
            }
            Err(StoreError::Conflict) => {
                // Another deleter freed it, a receiver took it over, or a send added to the
                // group since: in the last case try again (the release keeps the group).
                if sqs.state.get(GROUPS, &gkey)? == raw {
                    return Ok(());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Changes a received message's visibility; the group stays held as long as the message.
pub(crate) fn change_visibility(
    sqs: &Sqs,
    q: &QueueRec,
    r: &Received,
    seconds: i64,
) -> Result<(), StoreError> {
    let now = sqs.state.clock_ms()?;
    if seconds == 0 {
        sqs.state.release(&r.msg, now)?;
        let _ = free_group(sqs, q, r);
        return Ok(());
    }
    sqs.state.renew(&r.msg, now, seconds * 1000)?;
    // The group's lease must not end before the message's.
    let _ = sqs.state.renew(&r.group, now, seconds * 1000 + 1000);
    Ok(())
}

/// The groups of a FIFO queue that have records.
fn groups(sqs: &Sqs, q: &QueueRec) -> Result<Vec<String>, AwsError> {
    let prefix = format!("{}/", q.id);
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = sqs.state.scan(GROUPS, &prefix, after.as_deref(), 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        out.extend(page.into_iter().map(|(k, _)| k[prefix.len()..].to_owned()));
    }
    Ok(out)
}

/// Message counts over every group.
pub(crate) fn counts(sqs: &Sqs, q: &QueueRec, now: i64) -> Result<Counts, AwsError> {
    let mut total = Counts::default();
    for g in groups(sqs, q)? {
        let c = sqs.state.counts(&group_queue(&q.id, &g), now)?;
        total.ready += c.ready;
        total.leased += c.leased;
        total.delayed += c.delayed;
    }
    Ok(total)
}

/// Removes every message and group of a FIFO queue.
pub(crate) fn purge(sqs: &Sqs, q: &QueueRec) -> Result<(), AwsError> {
    for g in groups(sqs, q)? {
        sqs.state.purge(&group_queue(&q.id, &g))?;
        sqs.state.delete(GROUPS, &group_key(&q.id, &g))?;
    }
    sqs.state.purge(&groups_queue(&q.id))?;
    Ok(())
}
