//! Server-side encryption at rest: SSE-S3, SSE-KMS and SSE-C, as S3 describes them. No HTTP here.
//!
//! Every encrypted object (and every part of an encrypted multipart upload) is sealed with a
//! random 256-bit data key in AES-256-GCM segments: the plaintext is cut into
//! [`SEGMENT`]-byte pieces, each stored as `nonce (12) || ciphertext || tag (16)` with a fresh
//! random nonce and the segment's index in its part as associated data, so a ranged read opens
//! only the segments it needs and a reordered or altered segment is refused.
//!
//! * SSE-S3: the data key is wrapped (AES-256-GCM) by the server's master key, a random key
//!   kept in the state store (so every node sharing the store reads what the others wrote).
//! * SSE-KMS: the data key is wrapped by a key derived from the master key and the KMS key id
//!   (Basalt has no KMS yet: any key id is accepted and stands for its own key).
//! * SSE-C: the customer's key is the data key and is never stored; the record keeps a salted
//!   HMAC-SHA256 of it, to tell a wrong key from the right one (as S3 does).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use md5::Digest as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Plaintext bytes per sealed segment.
pub const SEGMENT: u64 = 64 * 1024;
const TAG: u64 = 16;
/// Bytes a segment adds to its plaintext.
pub const OVERHEAD: u64 = NONCE_LEN as u64 + TAG;

pub const T_KEYS: &str = "s3.keys";
const MASTER: &str = "master";

/// How an object is encrypted, as stored in its record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SseRecord {
    /// `AES256` (SSE-S3), `aws:kms` (SSE-KMS), or `SSE-C`.
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bucket_key: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_context: Option<String>,
    /// SSE-S3/KMS: the data key, wrapped (base64 of nonce || ciphertext || tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_key: Option<String>,
    /// SSE-C: base64 MD5 of the customer key (S3 echoes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_md5: Option<String>,
    /// SSE-C: base64 `salt || HMAC-SHA256(salt, key)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_check: Option<String>,
}

impl SseRecord {
    pub fn is_customer(&self) -> bool {
        self.mode == "SSE-C"
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Requested {
    None,
    S3,
    Kms {
        key_id: Option<String>,
        bucket_key: bool,
        context: Option<String>,
    },
    Customer(CustomerKey),
}

/// An SSE-C key as the request presented it, checked against its MD5.
#[derive(Clone, PartialEq)]
pub struct CustomerKey {
    pub key: [u8; 32],
    pub md5: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerKey")
            .field("md5", &self.md5)
            .finish()
    }
}

/// A request's SSE failure, as S3 names it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SseError {
    #[error("{0}")]
    InvalidArgument(&'static str),
    #[error("The encryption request you specified is not valid. Supported value: AES256.")]
    InvalidEncryptionAlgorithm,
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The customer key is not the one the object was written with.
    #[error("The provided encryption parameters did not match the ones used originally.")]
    KeyMismatch,
    #[error("{0}")]
    Internal(String),
}

/// The SSE-C triple (algorithm, base64 key, base64 key MD5) as sent; `Ok(None)` when none of
/// the three is present.
pub fn customer_key(
    algorithm: Option<&str>,
    key: Option<&str>,
    key_md5: Option<&str>,
) -> Result<Option<CustomerKey>, SseError> {
    if algorithm.is_none() && key.is_none() && key_md5.is_none() {
        return Ok(None);
    }
    let Some(algorithm) = algorithm else {
        return Err(SseError::InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.",
        ));
    };
    if algorithm != "AES256" {
        return Err(SseError::InvalidEncryptionAlgorithm);
    }
    let Some(key) = key else {
        return Err(SseError::InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.",
        ));
    };
    let Some(key_md5) = key_md5 else {
        return Err(SseError::InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.",
        ));
    };
    let raw: [u8; 32] = B64
        .decode(key.trim())
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or(SseError::InvalidArgument(
            "The secret key was invalid for the specified algorithm.",
        ))?;
    let md5 = B64.encode(md5::Md5::digest(raw));
    if md5 != key_md5.trim() {
        return Err(SseError::InvalidArgument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ));
    }
    Ok(Some(CustomerKey { key: raw, md5 }))
}

/// Combines `x-amz-server-side-encryption` and its companions with an SSE-C triple, refusing
/// what S3 refuses (two kinds at once, an unknown algorithm, a KMS key id without KMS).
pub fn requested(
    sse: Option<&str>,
    kms_key_id: Option<&str>,
    bucket_key: Option<bool>,
    context: Option<&str>,
    customer: Option<CustomerKey>,
) -> Result<Requested, SseError> {
    match (sse, customer) {
        (Some(_), Some(_)) => Err(SseError::InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        )),
        (None, Some(c)) => Ok(Requested::Customer(c)),
        (Some("AES256"), None) => {
            if kms_key_id.is_some() {
                return Err(SseError::InvalidArgument(
                    "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
                ));
            }
            Ok(Requested::S3)
        }
        (Some("aws:kms" | "aws:kms:dsse"), None) => Ok(Requested::Kms {
            key_id: kms_key_id.map(str::to_owned),
            bucket_key: bucket_key.unwrap_or(false),
            context: context.map(str::to_owned),
        }),
        (Some(_), None) => Err(SseError::InvalidArgument(
            "The encryption method specified is not supported",
        )),
        (None, None) => {
            if kms_key_id.is_some() || context.is_some() {
                return Err(SseError::InvalidArgument(
                    "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
                ));
            }
            Ok(Requested::None)
        }
    }
}

/// Reads (or, the first time, creates) the master key.
pub fn master_key(state: &dyn basalt_store::StateStore) -> Result<[u8; 32], SseError> {
    let internal = |e: basalt_store::StoreError| SseError::Internal(e.to_string());
    loop {
        if let Some(raw) = state.get(T_KEYS, MASTER).map_err(internal)? {
            return raw
                .try_into()
                .map_err(|_| SseError::Internal("corrupt master key".into()));
        }
        let mut key = [0u8; 32];
        fill(&mut key)?;
        // Two nodes creating it at once: the second's batch fails its check and reads the first's.
        match state.batch(&[
            basalt_store::WriteOp::Check {
                table: T_KEYS.into(),
                key: MASTER.into(),
                expected: None,
            },
            basalt_store::WriteOp::Put {
                table: T_KEYS.into(),
                key: MASTER.into(),
                value: key.to_vec(),
            },
        ]) {
            Ok(()) => return Ok(key),
            Err(basalt_store::StoreError::Conflict) => continue,
            Err(e) => return Err(internal(e)),
        }
    }
}

fn fill(buf: &mut [u8]) -> Result<(), SseError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| SseError::Internal("no randomness".into()))
}

fn aead(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32-byte key"))
}

/// The key that wraps data keys: the master key for SSE-S3, one derived per KMS key id.
fn wrapping_key(master: &[u8; 32], rec: &SseRecord) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(master).expect("any key length");
    mac.update(rec.mode.as_bytes());
    mac.update(b"\0");
    mac.update(rec.kms_key_id.as_deref().unwrap_or_default().as_bytes());
    mac.finalize().into_bytes().into()
}

/// A fresh data key for `req`, and the record that lets [`data_key`] recover it.
pub fn new_key(
    state: &dyn basalt_store::StateStore,
    req: &Requested,
) -> Result<Option<([u8; 32], SseRecord)>, SseError> {
    let mut rec = SseRecord {
        mode: String::new(),
        kms_key_id: None,
        bucket_key: false,
        kms_context: None,
        wrapped_key: None,
        key_md5: None,
        key_check: None,
    };
    match req {
        Requested::None => return Ok(None),
        Requested::Customer(c) => {
            let mut salt = [0u8; 16];
            fill(&mut salt)?;
            rec.mode = "SSE-C".into();
            rec.key_md5 = Some(c.md5.clone());
            let mut check = salt.to_vec();
            check.extend_from_slice(&key_hmac(&salt, &c.key));
            rec.key_check = Some(B64.encode(check));
            return Ok(Some((c.key, rec)));
        }
        Requested::S3 => rec.mode = "AES256".into(),
        Requested::Kms {
            key_id,
            bucket_key,
            context,
        } => {
            rec.mode = "aws:kms".into();
            rec.kms_key_id = Some(kms_arn(key_id.as_deref()));
            rec.bucket_key = *bucket_key;
            rec.kms_context = context.clone();
        }
    }
    let master = master_key(state)?;
    let mut key = [0u8; 32];
    fill(&mut key)?;
    rec.wrapped_key = Some(B64.encode(seal_one(&wrapping_key(&master, &rec), &key, 0)?));
    Ok(Some((key, rec)))
}

/// A KMS key id as S3 reports it: a bare id becomes a key ARN; no id is the account's
/// `aws/s3` managed key.
fn kms_arn(key_id: Option<&str>) -> String {
    match key_id {
        Some(id) if id.starts_with("arn:") => id.to_owned(),
        Some(id) => format!(
            "arn:aws:kms:{}:{}:key/{id}",
            basalt_core::DEFAULT_REGION,
            basalt_core::DEFAULT_ACCOUNT_ID
        ),
        None => format!(
            "arn:aws:kms:{}:{}:alias/aws/s3",
            basalt_core::DEFAULT_REGION,
            basalt_core::DEFAULT_ACCOUNT_ID
        ),
    }
}

fn key_hmac(salt: &[u8], key: &[u8; 32]) -> [u8; 32] {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(salt).expect("any key length");
    mac.update(key);
    mac.finalize().into_bytes().into()
}

/// The data key of an encrypted object. SSE-C objects need the customer key the request
/// presented (`InvalidRequest` without one, `KeyMismatch` with another); SSE-S3/KMS objects
/// refuse one.
pub fn data_key(
    state: &dyn basalt_store::StateStore,
    rec: &SseRecord,
    customer: Option<&CustomerKey>,
) -> Result<[u8; 32], SseError> {
    if rec.is_customer() {
        let Some(c) = customer else {
            return Err(SseError::InvalidRequest(
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
            ));
        };
        let check = rec
            .key_check
            .as_deref()
            .and_then(|c| B64.decode(c).ok())
            .filter(|c| c.len() == 48)
            .ok_or_else(|| SseError::Internal("corrupt key check".into()))?;
        let (salt, mac) = check.split_at(16);
        let mut check = Hmac::<sha2::Sha256>::new_from_slice(salt).expect("any key length");
        check.update(&c.key);
        // Constant-time comparison.
        if check.verify_slice(mac).is_err() {
            return Err(SseError::KeyMismatch);
        }
        return Ok(c.key);
    }
    if customer.is_some() {
        return Err(SseError::InvalidRequest(
            "The encryption parameters are not applicable to this object.",
        ));
    }
    let wrapped = rec
        .wrapped_key
        .as_deref()
        .and_then(|w| B64.decode(w).ok())
        .ok_or_else(|| SseError::Internal("missing wrapped key".into()))?;
    let master = master_key(state)?;
    let key = open_one(&wrapping_key(&master, rec), &wrapped, 0)
        .ok_or_else(|| SseError::Internal("data key does not unwrap".into()))?;
    key.try_into()
        .map_err(|_| SseError::Internal("corrupt data key".into()))
}

/// Seals one segment: `nonce || ciphertext || tag`, bound to its index.
fn seal_one(key: &[u8; 32], plain: &[u8], index: u64) -> Result<Vec<u8>, SseError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill(&mut nonce)?;
    let mut out = Vec::with_capacity(plain.len() + OVERHEAD as usize);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let tag = aead(key)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(index.to_le_bytes()),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| SseError::Internal("seal failed".into()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a segment sealed by [`seal_one`]; `None` when it was altered or the key is wrong.
fn open_one(key: &[u8; 32], sealed: &[u8], index: u64) -> Option<Vec<u8>> {
    if sealed.len() < OVERHEAD as usize {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
    let mut buf = sealed[NONCE_LEN..].to_vec();
    let n = aead(key)
        .open_in_place(nonce, Aad::from(index.to_le_bytes()), &mut buf)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// The ETag of an SSE-C or SSE-KMS object: not the MD5 of its plaintext (which would let
/// anyone who lists the bucket test guesses of the content), as S3's is not; SSE-S3 objects
/// keep the MD5. Stable for the object: derived from its MD5 and its key record's random part.
pub fn opaque_etag(plain_md5: &[u8], rec: &SseRecord) -> Option<String> {
    let salt = match rec.mode.as_str() {
        "SSE-C" => rec.key_check.as_deref()?,
        "aws:kms" => rec.wrapped_key.as_deref()?,
        _ => return None,
    };
    let mut h = md5::Md5::new();
    h.update(plain_md5);
    h.update(salt.as_bytes());
    Some(hex::encode(h.finalize()))
}

/// Stored size of `plain` bytes of one part (or of a single-part object).
pub fn sealed_len(plain: u64) -> u64 {
    plain + plain.div_ceil(SEGMENT) * OVERHEAD
}

/// Seals a stream of plaintext chunks into segments.
pub struct Sealer {
    key: [u8; 32],
    index: u64,
    buf: Vec<u8>,
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Sealer {
        Sealer {
            key,
            index: 0,
            buf: Vec::new(),
        }
    }

    /// Takes plaintext; returns whatever whole segments it completes, sealed.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>, SseError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let room = SEGMENT as usize - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == SEGMENT as usize {
                out.extend(seal_one(&self.key, &self.buf, self.index)?);
                self.index += 1;
                self.buf.clear();
            }
        }
        Ok(out)
    }

    /// Seals the last, partial segment.
    pub fn finish(mut self) -> Result<Vec<u8>, SseError> {
        if self.buf.is_empty() {
            return Ok(Vec::new());
        }
        let out = seal_one(&self.key, &self.buf, self.index)?;
        self.buf.clear();
        Ok(out)
    }
}

/// One stored segment that a read needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRead {
    /// Where the sealed segment lies in the stored bytes.
    pub stored: std::ops::Range<u64>,
    /// Its index in its part (the associated data it was sealed with).
    pub index: u64,
    /// Which of its plaintext bytes the read wants.
    pub want: std::ops::Range<usize>,
}

/// The sealed segments covering plaintext `range` of an object whose parts have these
/// plaintext sizes (one part for a single-part object).
pub fn segments_for(part_sizes: &[u64], range: std::ops::Range<u64>) -> Vec<SegmentRead> {
    let mut out = Vec::new();
    let (mut plain_at, mut stored_at) = (0u64, 0u64);
    for &size in part_sizes {
        let part = plain_at..plain_at + size;
        if part.start < range.end && range.start < part.end {
            let from = range.start.max(part.start) - part.start;
            let to = range.end.min(part.end) - part.start;
            for index in from / SEGMENT..to.div_ceil(SEGMENT) {
                let seg_start = index * SEGMENT;
                let seg_len = SEGMENT.min(size - seg_start);
                let begin = stored_at + index * (SEGMENT + OVERHEAD);
                out.push(SegmentRead {
                    stored: begin..begin + seg_len + OVERHEAD,
                    index,
                    want: (from.max(seg_start) - seg_start) as usize
                        ..(to.min(seg_start + seg_len) - seg_start) as usize,
                });
            }
        }
        plain_at += size;
        stored_at += sealed_len(size);
    }
    out
}

/// Opens one segment a read needs and keeps the wanted bytes.
pub fn open_segment(key: &[u8; 32], seg: &SegmentRead, sealed: &[u8]) -> Option<Vec<u8>> {
    let mut plain = open_one(key, sealed, seg.index)?;
    if seg.want.end > plain.len() {
        return None;
    }
    plain.truncate(seg.want.end);
    plain.drain(..seg.want.start);
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_all(key: [u8; 32], data: &[u8], chunk: usize) -> Vec<u8> {
        let mut s = Sealer::new(key);
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            out.extend(s.push(c).unwrap());
        }
        out.extend(s.finish().unwrap());
        out
    }

    fn read(key: &[u8; 32], stored: &[u8], parts: &[u64], r: std::ops::Range<u64>) -> Vec<u8> {
        let mut out = Vec::new();
        for seg in segments_for(parts, r) {
            let sealed = &stored[seg.stored.start as usize..seg.stored.end as usize];
            out.extend(open_segment(key, &seg, sealed).expect("opens"));
        }
        out
    }

    #[test]
    fn ranges_over_parts_round_trip() {
        let key = [7u8; 32];
        let a: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
        let mut stored = seal_all(key, &a, 5000);
        assert_eq!(stored.len() as u64, sealed_len(a.len() as u64));
        stored.extend(seal_all(key, &b, 65_536));
        let parts = [a.len() as u64, b.len() as u64];
        let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
        for (s, e) in [
            (0, whole.len()),
            (0, 1),
            (65_535, 65_537),
            (199_999, 200_001),
            (131_072, 270_000),
            (269_999, 270_000),
        ] {
            assert_eq!(
                read(&key, &stored, &parts, s as u64..e as u64),
                &whole[s..e],
                "{s}..{e}"
            );
        }
        // No plaintext run survives in what is stored.
        assert!(
            !stored
                .windows(64)
                .any(|w| a.windows(64).take(1).any(|x| x == w))
        );
    }

    #[test]
    fn tampering_and_wrong_keys_are_refused() {
        let key = [1u8; 32];
        let mut stored = seal_all(key, b"hello world", 3);
        let seg = &segments_for(&[11], 0..11)[0];
        assert!(open_segment(&[2u8; 32], seg, &stored).is_none());
        stored[20] ^= 1;
        assert!(open_segment(&key, seg, &stored).is_none());
        // A segment moved to another index does not open.
        let two = seal_all(key, &vec![9u8; SEGMENT as usize * 2], 1 << 20);
        let segs = segments_for(&[SEGMENT * 2], 0..SEGMENT * 2);
        let first = &two[segs[0].stored.start as usize..segs[0].stored.end as usize];
        assert!(open_segment(&key, &segs[1], first).is_none());
    }

    #[test]
    fn customer_keys_are_checked() {
        let key = "pO3upElrwuEXSoFwCfnZPdSsmt/xWeFa0N9KgDijwVs=";
        let md5 = "DWygnHRtgiJ77HCm+1rvHw==";
        let c = customer_key(Some("AES256"), Some(key), Some(md5))
            .unwrap()
            .unwrap();
        assert_eq!(c.md5, md5);
        assert!(matches!(
            customer_key(Some("AES256"), Some(key), Some("AAAAAAAAAAAAAAAAAAAAAA==")),
            Err(SseError::InvalidArgument(_))
        ));
        assert!(customer_key(Some("AES256"), Some(key), None).is_err());
        assert!(customer_key(None, Some(key), Some(md5)).is_err());
        assert_eq!(
            customer_key(Some("AES128"), Some(key), Some(md5)),
            Err(SseError::InvalidEncryptionAlgorithm)
        );
        assert_eq!(customer_key(None, None, None), Ok(None));
        let state = basalt_store::MemoryState::default();
        let (dk, rec) = new_key(&state, &Requested::Customer(c.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(dk, c.key);
        assert!(!serde_json::to_string(&rec).unwrap().contains(key));
        assert_eq!(data_key(&state, &rec, Some(&c)).unwrap(), c.key);
        let other = CustomerKey {
            key: [3u8; 32],
            md5: String::new(),
        };
        assert_eq!(
            data_key(&state, &rec, Some(&other)),
            Err(SseError::KeyMismatch)
        );
        assert!(matches!(
            data_key(&state, &rec, None),
            Err(SseError::InvalidRequest(_))
        ));
    }

    #[test]
    fn managed_keys_unwrap_per_key_id() {
        let state = basalt_store::MemoryState::default();
        let req = Requested::Kms {
            key_id: Some("testkey-1".into()),
            bucket_key: false,
            context: None,
        };
        let (dk, rec) = new_key(&state, &req).unwrap().unwrap();
        assert_eq!(data_key(&state, &rec, None).unwrap(), dk);
        let mut moved = rec.clone();
        moved.kms_key_id = Some("arn:aws:kms:us-east-1:000000000000:key/other".into());
        assert!(data_key(&state, &moved, None).is_err());
        let (dk3, rec3) = new_key(&state, &Requested::S3).unwrap().unwrap();
        assert_ne!(dk3, dk);
        assert_eq!(data_key(&state, &rec3, None).unwrap(), dk3);
    }

    #[test]
    fn requests_that_s3_refuses() {
        let c = CustomerKey {
            key: [0; 32],
            md5: String::new(),
        };
        assert!(requested(Some("AES256"), None, None, None, Some(c)).is_err());
        assert!(requested(Some("AES256"), Some("k"), None, None, None).is_err());
        assert!(requested(Some("aes:kms"), None, None, None, None).is_err());
        assert!(requested(None, Some("k"), None, None, None).is_err());
        assert_eq!(
            requested(Some("AES256"), None, None, None, None),
            Ok(Requested::S3)
        );
    }
}
