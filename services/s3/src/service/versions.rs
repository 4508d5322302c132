//! Object versions.
//!
//! A bucket that has never had versioning keeps one record per key in `s3.objects`, as before.
//! Once versioning is turned on (Enabled or Suspended), every version of a key also has a
//! record in `s3.versions`, keyed `<object record key>\x01<inverted sequence>` so that one
//! prefix scan yields a key's versions newest first and the table's order is ListObjectVersions'
//! order. `s3.objects` keeps holding the current version (absent when the latest version is a
//! delete marker), so reads and listings of current objects do not change. Objects written
//! before versioning was turned on become the "null" version when it is.
//!
//! Version ids are 32 hex digits: a microsecond sequence number (unique, increasing) and 64
//! random bits; the sequence gives the record's place without another index.

use super::*;
use http::HeaderValue;

/// Separates an object's record key from its version sequence (sorts below every character an
/// object key can continue with, so all versions of `a` come before those of `a/b`).
const SEP: char = '\u{1}';
pub(super) const NULL_VERSION: &str = "null";

pub(super) fn versions_prefix(sc: &Scope, bucket: &str, key: &str) -> String {
    format!("{}{SEP}", sc.object_key(bucket, key))
}

fn version_key(sc: &Scope, bucket: &str, key: &str, seq: u64) -> String {
    format!(
        "{}{:016x}",
        versions_prefix(sc, bucket, key),
        u64::MAX - seq
    )
}

/// The sequence number of a version row (`version_key`'s inverted suffix).
fn seq_of_row(row: &str) -> Option<u64> {
    let hex = row.get(row.len().checked_sub(16)?..)?;
    u64::from_str_radix(hex, 16).ok().map(|inv| u64::MAX - inv)
}

/// The sequence number inside a version id this bucket issued.
fn seq_of_id(version_id: &str) -> Option<u64> {
    if version_id.len() != 32 || !version_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(&version_id[..16], 16).ok()
}

/// One stored version of a key.
pub(super) struct Version {
    pub row: String,
    pub meta: ObjectMeta,
    pub inline: Bytes,
}

/// The record every versioned write of a key replaces, under the precondition that it is still
/// the one read (the key's versions, read in between, are then still the newest): two nodes
/// writing versions of one key at once conflict instead of interleaving, one commits and the
/// other re-reads and retries, and a new version always sorts above every stored one whatever
/// the clocks of the nodes that wrote them. (Within a node, the key's lock already
/// serializes them.)
pub(super) struct VersionHead {
    row: String,
    raw: Option<Vec<u8>>,
}

impl VersionHead {
    /// The sequence number of the key's last versioned write.
    fn seq(&self) -> Option<u64> {
        let s = std::str::from_utf8(self.raw.as_deref()?).ok()?;
        u64::from_str_radix(s, 16).ok()
    }

    /// The precondition and the replacement, for a write with sequence number `seq`.
    fn ops(self, seq: u64) -> [WriteOp; 2] {
        [
            WriteOp::Check {
                table: T_VERSION_HEADS.into(),
                key: self.row.clone(),
                expected: self.raw,
            },
            WriteOp::Put {
                table: T_VERSION_HEADS.into(),
                key: self.row,
                value: format!("{seq:016x}").into_bytes(),
            },
        ]
    }
}

/// What a delete did, for the response.
#[derive(Default)]
pub(super) struct Deleted {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

/// `x-amz-delete-marker: true` and the marker's version id.
fn marker_headers(marker: &ObjectMeta) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
    if let Some(v) = marker
        .version_id
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert("x-amz-version-id", v);
    }
    h
}

/// An HTTP date (RFC 7231) for epoch milliseconds.
fn httpdate(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn slow_down() -> S3Error {
    s3_error!(SlowDown, "Please reduce your request rate.")
}

fn no_such_version() -> S3Error {
    s3_error!(NoSuchVersion, "The specified version does not exist.")
}

fn invalid_version() -> S3Error {
    s3_error!(InvalidArgument, "Invalid version id specified")
}

impl BasaltS3 {
    /// A unique, increasing sequence number: microseconds since the epoch, bumped on collision.
    pub(super) fn next_seq(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut last = self.version_seq.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.version_seq.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// A version id whose sequence number is above `newest` (the key's newest stored version,
    /// which another node may have written with a clock ahead of this one's).
    fn new_version_id(&self, newest: Option<u64>) -> (String, u64) {
        let seq = self.next_seq_above(newest);
        (
            format!("{seq:016x}{:016x}", uuid::Uuid::new_v4().as_u64_pair().0),
            seq,
        )
    }

    fn next_seq_above(&self, newest: Option<u64>) -> u64 {
        if let Some(n) = newest {
            self.version_seq.fetch_max(n, Ordering::Relaxed);
        }
        self.next_seq()
    }

    /// The key's version head as read now (see [`VersionHead`]).
    fn version_head(&self, sc: &Scope, bucket: &str, key: &str) -> S3Result<VersionHead> {
        let row = sc.object_key(bucket, key);
        let raw = self.state.get(T_VERSION_HEADS, &row).map_err(internal)?;
        Ok(VersionHead { row, raw })
    }

    /// The bucket's versioning status: `None` if it never had versioning.
    pub(super) fn versioning(&self, sc: &Scope, bucket: &str) -> S3Result<Option<String>> {
        Ok(self.bucket(sc, bucket)?.versioning)
    }

    /// Every stored version of `key`, newest first.
    /// The keys of a bucket that have version records, in order (read a page at a time).
    pub(super) fn version_keys(&self, sc: &Scope, bucket: &str) -> S3Result<Vec<String>> {
        let base = sc.objects_prefix(bucket);
        let mut keys: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self
                .state
                .scan(T_VERSIONS, &base, after.as_deref(), 1000)
                .map_err(internal)?;
            let Some((last, _)) = rows.last() else {
                return Ok(keys);
            };
            after = Some(last.clone());
            for (row, _) in rows {
                // `{base}{key}{SEP}{16 hex}`.
                let Some(rest) = row.strip_prefix(&base) else {
                    continue;
                };
                let Some(key) = rest
                    .len()
                    .checked_sub(16 + SEP.len_utf8())
                    .and_then(|n| rest.get(..n))
                else {
                    continue;
                };
                if keys.last().map(String::as_str) != Some(key) {
                    keys.push(key.to_owned());
                }
            }
        }
    }

    pub(super) fn versions_of(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
    ) -> S3Result<Vec<Version>> {
        let prefix = versions_prefix(sc, bucket, key);
        let rows = self
            .state
            .scan(T_VERSIONS, &prefix, None, usize::MAX)
            .map_err(internal)?;
        rows.into_iter()
            // Rows of a longer key that continues with the separator are not this key's.
            .filter(|(row, _)| row.len() == prefix.len() + 16)
            .map(|(row, raw)| {
                let (meta, inline) = decode_object(raw)
                    .ok_or_else(|| s3_error!(InternalError, "corrupt version record"))?;
                Ok(Version { row, meta, inline })
            })
            .collect()
    }

    /// The version a request names (`None`: the current one).
    pub(super) fn object_version(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<(ObjectMeta, Bytes)> {
        let Some(vid) = version_id else {
            return match self.object(sc, bucket, key)? {
                Some(o) => Ok(o),
                None => {
                    let status = self.versioning(sc, bucket)?;
                    let mut e = s3_error!(NoSuchKey, "The specified key does not exist.");
                    // The latest version is a delete marker: S3 says so in headers.
                    if status.is_some()
                        && let Some(latest) = self.versions_of(sc, bucket, key)?.into_iter().next()
                        && latest.meta.delete_marker
                    {
                        e.set_headers(marker_headers(&latest.meta));
                    }
                    Err(e)
                }
            };
        };
        let status = self.versioning(sc, bucket)?;
        if status.is_none() {
            // Without versioning every object is the null version.
            return if vid == NULL_VERSION {
                self.object_or_404(sc, bucket, key)
            } else {
                Err(invalid_version())
            };
        }
        if vid != NULL_VERSION && seq_of_id(vid).is_none() {
            return Err(invalid_version());
        }
        let v = self
            .versions_of(sc, bucket, key)?
            .into_iter()
            .find(|v| v.meta.version_id.as_deref() == Some(vid))
            .ok_or_else(no_such_version)?;
        if v.meta.delete_marker {
            let mut e = s3_error!(
                MethodNotAllowed,
                "The specified method is not allowed against this resource."
            );
            let mut h = marker_headers(&v.meta);
            if let Ok(lm) = HeaderValue::from_str(&httpdate(v.meta.modified_ms)) {
                h.insert(http::header::LAST_MODIFIED, lm);
            }
            e.set_headers(h);
            return Err(e);
        }
        Ok((v.meta, v.inline))
    }

    /// The writes that make `meta` the current version of `key` in a bucket with versioning
    /// `status`, and the blobs that stop being referenced. Sets `meta.version_id`.
    pub(super) fn version_ops(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        status: &str,
        meta: &mut ObjectMeta,
        inline: &[u8],
    ) -> S3Result<(Vec<WriteOp>, Vec<String>)> {
        let head = self.version_head(sc, bucket, key)?;
        let mut ops = Vec::new();
        let mut freed = Vec::new();
        let versions = self.versions_of(sc, bucket, key)?;
        let newest = versions
            .first()
            .and_then(|v| seq_of_row(&v.row))
            .max(head.seq());
        let seq = if status == "Enabled" {
            let (vid, seq) = self.new_version_id(newest);
            meta.version_id = Some(vid);
            seq
        } else {
            // Suspended: the new version is the null version, replacing the old one.
            for v in versions {
                if v.meta.version_id.as_deref() == Some(NULL_VERSION) {
                    ops.push(WriteOp::Delete {
                        table: T_VERSIONS.into(),
                        key: v.row,
                    });
                    freed.extend(v.meta.blob);
                }
            }
            meta.version_id = Some(NULL_VERSION.into());
            self.next_seq_above(newest)
        };
        ops.extend(head.ops(seq));
        ops.push(WriteOp::Put {
            table: T_VERSIONS.into(),
            key: version_key(sc, bucket, key, seq),
            value: encode_object(meta, inline),
        });
        if meta.delete_marker {
            ops.push(WriteOp::Delete {
                table: T_OBJECTS.into(),
                key: sc.object_key(bucket, key),
            });
        } else {
            ops.push(WriteOp::Put {
                table: T_OBJECTS.into(),
                key: sc.object_key(bucket, key),
                value: encode_object(meta, inline),
            });
        }
        Ok((ops, freed))
    }

    /// Turning versioning on for the first time: objects written before become null versions.
    /// Each object's record is checked unchanged when the batch commits.
    pub(super) fn adopt_unversioned(&self, sc: &Scope, bucket: &str) -> S3Result<Vec<WriteOp>> {
        let prefix = sc.objects_prefix(bucket);
        let mut ops = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self
                .state
                .scan(T_OBJECTS, &prefix, after.as_deref(), 1000)
                .map_err(internal)?;
            let done = rows.len() < 1000;
            after = rows.last().map(|(k, _)| k.clone());
            for (row, raw) in rows {
                let Some((mut meta, inline)) = decode_object(raw.clone()) else {
                    continue;
                };
                meta.version_id = Some(NULL_VERSION.into());
                let key = &row[prefix.len()..];
                let seq = (meta.modified_ms.max(0) as u64) * 1000;
                // New versions must sort above adopted ones, even within the same millisecond.
                self.version_seq.fetch_max(seq, Ordering::Relaxed);
                let value = encode_object(&meta, &inline);
                ops.push(WriteOp::Check {
                    table: T_OBJECTS.into(),
                    key: row.clone(),
                    expected: Some(raw),
                });
                ops.push(WriteOp::Put {
                    table: T_VERSIONS.into(),
                    key: version_key(sc, bucket, key, seq),
                    value: value.clone(),
                });
                ops.push(WriteOp::Put {
                    table: T_OBJECTS.into(),
                    key: row,
                    value,
                });
            }
            if done {
                return Ok(ops);
            }
        }
    }

    /// DeleteObject in a bucket with versioning `status`: without a version id, a delete
    /// marker becomes the latest version; with one, that version goes for good and the next
    /// newest (if any, and not a marker) becomes current.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn delete_versioned(
        &self,
        sc: &Scope,
        bucket: &str,
        key: &str,
        status: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
        snap: &BucketSnapshot,
        origin: &Origin,
    ) -> S3Result<Deleted> {
        let _guard = self.lock(sc, bucket, key).await;
        let announce = |change: Change<'_>, event: &'static str| {
            let notice = Notice {
                event,
                reason: "DeleteObject",
                origin,
            };
            self.announce(
                sc,
                bucket,
                &snap.region,
                &snap.notifications,
                key,
                &change,
                &notice,
            )
        };
        let Some(vid) = version_id else {
            let mut marker = ObjectMeta {
                modified_ms: now_ms(),
                delete_marker: true,
                ..Default::default()
            };
            // Retried while another node writes this key (the current-record check).
            let mut committed = None;
            for _ in 0..16 {
                let (mut ops, freed) =
                    self.version_ops(sc, bucket, key, status, &mut marker, &[])?;
                let version = marker.version_id.as_deref().unwrap_or(NULL_VERSION);
                let announced = announce(
                    Change::DeleteMarker { version },
                    "ObjectRemoved:DeleteMarkerCreated",
                );
                ops.extend(announced.ops.iter().cloned());
                if self.write_if(ops).await? {
                    committed = Some((freed, announced));
                    break;
                }
            }
            let (freed, announced) = committed.ok_or_else(slow_down)?;
            self.delete_blobs_later(freed);
            self.announced(announced);
            return Ok(Deleted {
                version_id: marker.version_id,
                delete_marker: true,
            });
        };
        if vid != NULL_VERSION && seq_of_id(vid).is_none() {
            return Err(invalid_version());
        }
        // Retried while another node writes this key: which version is newest (and so
        // current) must not change between reading the versions and committing.
        let mut gone = None;
        for _ in 0..16 {
            let head = self.version_head(sc, bucket, key)?;
            let versions = self.versions_of(sc, bucket, key)?;
            let newest = versions
                .first()
                .and_then(|v| seq_of_row(&v.row))
                .max(head.seq());
            let Some(pos) = versions
                .iter()
                .position(|v| v.meta.version_id.as_deref() == Some(vid))
            else {
                // Deleting a version that is not there succeeds, as S3's deletes do.
                return Ok(Deleted {
                    version_id: Some(vid.to_owned()),
                    delete_marker: false,
                });
            };
            let v = &versions[pos].meta;
            crate::lock::check_delete(
                v.retention.as_ref(),
                v.legal_hold,
                bypass_governance,
                now_ms(),
            )
            .map_err(lock::lock_error)?;
            let mut ops = vec![WriteOp::Delete {
                table: T_VERSIONS.into(),
                key: versions[pos].row.clone(),
            }];
            ops.extend(head.ops(self.next_seq_above(newest)));
            if pos == 0 {
                match versions.get(1).filter(|v| !v.meta.delete_marker) {
                    Some(next) => ops.push(WriteOp::Put {
                        table: T_OBJECTS.into(),
                        key: sc.object_key(bucket, key),
                        value: encode_object(&next.meta, &next.inline),
                    }),
                    None => ops.push(WriteOp::Delete {
                        table: T_OBJECTS.into(),
                        key: sc.object_key(bucket, key),
                    }),
                }
            }
            let announced = announce(
                Change::Deleted { version: Some(vid) },
                "ObjectRemoved:Delete",
            );
            ops.extend(announced.ops.iter().cloned());
            if self.write_if(ops).await? {
                gone = Some((versions.into_iter().nth(pos).expect("position"), announced));
                break;
            }
        }
        let (gone, announced) = gone.ok_or_else(slow_down)?;
        self.delete_blobs_later(gone.meta.blob.clone().into_iter().collect());
        self.announced(announced);
        Ok(Deleted {
            version_id: Some(vid.to_owned()),
            delete_marker: gone.meta.delete_marker,
        })
    }

    /// ListObjectVersions over the version records: versions and delete markers in key
    /// order, newest first within a key, with prefix, delimiter and marker paging.
    pub(super) fn list_versions(
        &self,
        sc: &Scope,
        i: &ListObjectVersionsInput,
    ) -> S3Result<ListObjectVersionsOutput> {
        let bucket = &i.bucket;
        // A bucket that never had versioning lists its objects as null versions.
        let versioned = self.versioning(sc, bucket)?.is_some();
        let table = if versioned { T_VERSIONS } else { T_OBJECTS };
        let max_keys = page_size(i.max_keys, "max-keys")?;
        let prefix = i.prefix.clone().unwrap_or_default();
        let delimiter = i.delimiter.clone().filter(|d| !d.is_empty());
        let base = sc.objects_prefix(bucket);
        let scan_prefix = format!("{base}{prefix}");
        let url = is_url(&i.encoding_type);
        let key_marker = i.key_marker.clone().filter(|k| !k.is_empty());
        let vid_marker = i.version_id_marker.clone().filter(|v| !v.is_empty());
        // Past everything under a common prefix (or key) `p`: U+10FFFF sorts above any
        // character a key continues with.
        let past = |p: &str| format!("{}\u{10FFFF}", sc.object_key(bucket, p));
        let marker_is_prefix = |k: &str| {
            delimiter.as_deref().is_some_and(|d| {
                k.strip_prefix(prefix.as_str())
                    .and_then(|rest| rest.find(d).map(|pos| pos + d.len() == rest.len()))
                    .unwrap_or(false)
            })
        };
        let mut last_key: Option<String> = None;
        let mut after: Option<String> = match (&key_marker, &vid_marker) {
            (None, Some(_)) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "A version-id marker cannot be specified without a key marker."
                ));
            }
            (None, None) => None,
            (Some(k), _) if marker_is_prefix(k) => Some(past(k)),
            (Some(k), _) if !versioned => Some(sc.object_key(bucket, k)),
            (Some(k), Some(v)) => {
                // Resume inside the key, after that version (found by its sequence, so a
                // version deleted between pages does not break the listing).
                last_key = Some(k.clone());
                match seq_of_id(v) {
                    Some(seq) => Some(version_key(sc, bucket, k, seq)),
                    None => Some(
                        self.versions_of(sc, bucket, k)?
                            .into_iter()
                            .find(|x| x.meta.version_id.as_deref() == Some(v.as_str()))
                            .map(|x| x.row)
                            .ok_or_else(invalid_version)?,
                    ),
                }
            }
            // Past every version of the marker key.
            (Some(k), None) => Some(format!("{}\u{2}", sc.object_key(bucket, k))),
        };
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut count = 0;
        let mut truncated = false;
        let mut next: Option<(String, String)> = None;
        'scan: loop {
            let rows = self
                .state
                .scan(table, &scan_prefix, after.as_deref(), 1000)
                .map_err(internal)?;
            let done = rows.len() < 1000;
            after = rows.last().map(|(k, _)| k.clone());
            for (row, raw) in rows {
                let key = if versioned {
                    match row[base.len()..].rsplit_once(SEP) {
                        Some((key, _)) => key.to_owned(),
                        None => continue,
                    }
                } else {
                    row[base.len()..].to_owned()
                };
                // A row of a key that merely shares bytes with the prefix (a prefix ending in
                // the separator) is not listed.
                let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                if let Some(d) = &delimiter
                    && let Some(pos) = rest.find(d.as_str())
                {
                    let cp = key[..prefix.len() + pos + d.len()].to_owned();
                    if count == max_keys {
                        truncated = true;
                        break 'scan;
                    }
                    count += 1;
                    next = Some((cp.clone(), String::new()));
                    // Jump past every key under the prefix instead of reading them.
                    after = Some(past(&cp));
                    prefixes.push(cp);
                    continue 'scan;
                }
                let Some((meta, _)) = decode_object(raw) else {
                    continue;
                };
                if count == max_keys {
                    truncated = true;
                    break 'scan;
                }
                count += 1;
                let latest = last_key.as_deref() != Some(key.as_str());
                let vid = meta
                    .version_id
                    .clone()
                    .unwrap_or_else(|| NULL_VERSION.into());
                if meta.delete_marker {
                    markers.push(DeleteMarkerEntry {
                        is_latest: Some(latest),
                        key: Some(enc(url, key.clone())),
                        last_modified: Some(ts(meta.modified_ms)),
                        owner: Some(self.owner_of(meta.owner.as_deref())),
                        version_id: Some(vid.clone()),
                    });
                } else {
                    versions.push(ObjectVersion {
                        e_tag: Some(etag(&meta.etag)),
                        is_latest: Some(latest),
                        key: Some(enc(url, key.clone())),
                        last_modified: Some(ts(meta.modified_ms)),
                        owner: Some(self.owner_of(meta.owner.as_deref())),
                        size: Some(meta.size as i64),
                        storage_class: Some(ObjectVersionStorageClass::from(
                            meta.content
                                .storage_class
                                .clone()
                                .unwrap_or_else(|| "STANDARD".into()),
                        )),
                        version_id: Some(vid.clone()),
                        ..Default::default()
                    });
                }
                next = Some((key.clone(), vid));
                last_key = Some(key);
            }
            if done {
                break;
            }
        }
        let (next_key, next_vid) = if truncated {
            next.map_or((None, None), |(k, v)| {
                (Some(k), Some(v).filter(|v| !v.is_empty()))
            })
        } else {
            (None, None)
        };
        Ok(ListObjectVersionsOutput {
            common_prefixes: (!prefixes.is_empty()).then(|| {
                prefixes
                    .into_iter()
                    .map(|p| CommonPrefix {
                        prefix: Some(enc(url, p)),
                    })
                    .collect()
            }),
            delete_markers: (!markers.is_empty()).then_some(markers),
            versions: (!versions.is_empty()).then_some(versions),
            delimiter: i.delimiter.clone().map(|d| enc(url, d)),
            encoding_type: i.encoding_type.clone(),
            is_truncated: Some(truncated),
            key_marker: i.key_marker.clone().map(|k| enc(url, k)),
            version_id_marker: i.version_id_marker.clone(),
            max_keys: Some(max_keys as i32),
            name: Some(bucket.clone()),
            prefix: i.prefix.clone().map(|p| enc(url, p)),
            next_key_marker: next_key.map(|k| enc(url, k)),
            next_version_id_marker: next_vid,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_rows_sort_newest_first_and_by_key() {
        let sc = Scope {
            account: "1".into(),
            region: "r".into(),
        };
        let a_old = version_key(&sc, "b", "a", 5);
        let a_new = version_key(&sc, "b", "a", 9);
        let ab = version_key(&sc, "b", "a/b", 1);
        let a0 = version_key(&sc, "b", "a0", 1);
        let mut rows = vec![ab.clone(), a_old.clone(), a0.clone(), a_new.clone()];
        rows.sort();
        assert_eq!(rows, vec![a_new.clone(), a_old.clone(), ab, a0]);
        assert_eq!(seq_of_id(&format!("{:016x}{:016x}", 77u64, 1u64)), Some(77));
        assert_eq!(seq_of_id("null"), None);
        assert_eq!(seq_of_id("zz"), None);
    }
}
