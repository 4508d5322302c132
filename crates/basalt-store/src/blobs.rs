//! Opaque byte objects: [`BlobStore`] with filesystem and in-memory backends.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// A blob being written; nothing is visible under its key until [`BlobWriter::commit`].
/// Dropping a writer without committing discards it.
pub trait BlobWriter: Send {
    fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError>;
    /// Makes the blob durable and visible; returns its length.
    fn commit(self: Box<Self>) -> Result<u64, StoreError>;
}

/// Opaque byte objects under service-chosen keys. Keys are opaque strings, never paths.
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `data` under `key` (replacing any previous blob); returns once durable.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError>;
    /// Starts a streaming write under `key`.
    fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>, StoreError>;
    /// The whole blob.
    fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;
    /// Bytes `start..end` (end exclusive, clamped to the blob's length).
    fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError>;
    /// Length in bytes, `None` when absent.
    fn len(&self, key: &str) -> Result<Option<u64>, StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.len(key)?.is_some())
    }
    /// Returns whether the blob existed.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Writes the concatenation of `sources` (which must exist) under `dst`; returns its length.
    fn concat(&self, dst: &str, sources: &[&str]) -> Result<u64, StoreError> {
        let mut w = self.writer(dst)?;
        for s in sources {
            let b = self
                .get(s)?
                .ok_or_else(|| StoreError::Other(format!("missing blob {s}")))?;
            w.write(&b)?;
        }
        w.commit()
    }
}

// ---------------------------------------------------------------------------------------------
// Filesystem

/// Filesystem backend. A blob with key `k` lives at `root/ab/<sha256(k) hex>` where `ab` is the
/// first byte of the hash; writes go to `root/tmp/` first, are fsynced, renamed into place, and
/// the directory is fsynced.
pub struct FsBlobs {
    root: PathBuf,
    tmp: PathBuf,
    seq: AtomicU64,
    sync: bool,
}

impl FsBlobs {
    /// Opens (creating if needed) a blob directory. Cheap: creates the directory, no scans.
    /// Fan-out directories are created lazily.
    pub fn open(root: &Path) -> Result<FsBlobs, StoreError> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        Ok(FsBlobs {
            root: root.to_path_buf(),
            tmp,
            seq: AtomicU64::new(0),
            sync: true,
        })
    }

    /// Skips fsync (data survives a process kill, not a power loss). For benchmarks and tests.
    pub fn without_fsync(mut self) -> Self {
        self.sync = false;
        self
    }

    fn path_of(&self, key: &str) -> PathBuf {
        let h = Sha256::digest(key.as_bytes());
        let hexed = hex::encode(h);
        let mut p = self.root.join(&hexed[..2]);
        p.push(&hexed);
        p
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!(
            "{}-{}-{n}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ))
    }

    fn open_tmp(&self) -> Result<(File, PathBuf), StoreError> {
        let p = self.tmp_path();
        let f = OpenOptions::new().write(true).create_new(true).open(&p)?;
        Ok((f, p))
    }

    fn install(&self, file: File, tmp: &Path, key: &str) -> Result<(), StoreError> {
        install(&self.root, self.sync, file, tmp, &self.path_of(key))
    }
}

/// fsync the temp file, rename it into place (creating the fan-out dir on first use), fsync dirs.
fn install(root: &Path, sync: bool, file: File, tmp: &Path, dst: &Path) -> Result<(), StoreError> {
    if sync {
        file.sync_all()?;
    }
    drop(file);
    let dir = dst.parent().expect("fan-out dir");
    if let Err(e) = fs::rename(tmp, dst) {
        if e.kind() != io::ErrorKind::NotFound {
            let _ = fs::remove_file(tmp);
            return Err(e.into());
        }
        if let Err(e) = fs::create_dir_all(dir) {
            let _ = fs::remove_file(tmp);
            return Err(e.into());
        }
        if sync {
            sync_dir(root)?;
        }
        if let Err(e) = fs::rename(tmp, dst) {
            let _ = fs::remove_file(tmp);
            return Err(e.into());
        }
    }
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn not_found_as_none<T>(r: io::Result<T>) -> Result<Option<T>, StoreError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

struct FsWriterOwned {
    root_sync: bool,
    root: PathBuf,
    dst: PathBuf,
    file: Option<File>,
    tmp: PathBuf,
    len: u64,
}

impl BlobWriter for FsWriterOwned {
    fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.file.as_mut().expect("open").write_all(chunk)?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<u64, StoreError> {
        let file = self.file.take().expect("open");
        install(&self.root, self.root_sync, file, &self.tmp, &self.dst)?;
        Ok(self.len)
    }
}

impl Drop for FsWriterOwned {
    fn drop(&mut self) {
        if self.file.take().is_some() && !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl BlobStore for FsBlobs {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        let (mut f, tmp) = self.open_tmp()?;
        if let Err(e) = f.write_all(data) {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        self.install(f, &tmp, key)
    }

    fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>, StoreError> {
        let (f, tmp) = self.open_tmp()?;
        Ok(Box::new(FsWriterOwned {
            root_sync: self.sync,
            root: self.root.clone(),
            dst: self.path_of(key),
            file: Some(f),
            tmp,
            len: 0,
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(not_found_as_none(fs::read(self.path_of(key)))?.map(Bytes::from))
    }

    fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError> {
        let Some(mut f) = not_found_as_none(File::open(self.path_of(key)))? else {
            return Ok(None);
        };
        let len = f.metadata()?.len();
        let end = end.min(len);
        if start > end {
            return Err(StoreError::InvalidRange);
        }
        f.seek(SeekFrom::Start(start))?;
        let n = usize::try_from(end - start).map_err(|_| StoreError::InvalidRange)?;
        let mut buf = vec![0u8; n];
        f.read_exact(&mut buf)?;
        Ok(Some(Bytes::from(buf)))
    }

    fn len(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(not_found_as_none(fs::metadata(self.path_of(key)))?.map(|m| m.len()))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        // No directory fsync: a resurrected blob after a crash is an unreferenced orphan.
        Ok(not_found_as_none(fs::remove_file(self.path_of(key)))?.is_some())
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

/// In-memory backend (tests, ephemeral mode).
#[derive(Default)]
pub struct MemoryBlobs {
    map: std::sync::Arc<RwLock<HashMap<String, Bytes>>>,
}

struct MemWriter {
    map: std::sync::Arc<RwLock<HashMap<String, Bytes>>>,
    key: String,
    buf: Vec<u8>,
}

impl BlobWriter for MemWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<u64, StoreError> {
        let len = self.buf.len() as u64;
        self.map.write().insert(self.key, Bytes::from(self.buf));
        Ok(len)
    }
}

impl BlobStore for MemoryBlobs {
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StoreError> {
        self.map
            .write()
            .insert(key.to_owned(), Bytes::copy_from_slice(data));
        Ok(())
    }

    fn writer(&self, key: &str) -> Result<Box<dyn BlobWriter>, StoreError> {
        Ok(Box::new(MemWriter {
            map: self.map.clone(),
            key: key.to_owned(),
            buf: Vec::new(),
        }))
    }

    fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.map.read().get(key).cloned())
    }

    fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Option<Bytes>, StoreError> {
        let Some(b) = self.map.read().get(key).cloned() else {
            return Ok(None);
        };
        let end = (end.min(b.len() as u64)) as usize;
        let start = start as usize;
        if start > end {
            return Err(StoreError::InvalidRange);
        }
        Ok(Some(b.slice(start..end)))
    }

    fn len(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.map.read().get(key).map(|b| b.len() as u64))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.map.write().remove(key).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(b: &dyn BlobStore) {
        assert_eq!(b.get("x").unwrap(), None);
        assert!(!b.exists("x").unwrap());
        b.put("x", b"hello world").unwrap();
        assert_eq!(b.get("x").unwrap().as_deref(), Some(&b"hello world"[..]));
        assert_eq!(
            b.get_range("x", 6, 11).unwrap().as_deref(),
            Some(&b"world"[..])
        );
        assert_eq!(
            b.get_range("x", 6, 100).unwrap().as_deref(),
            Some(&b"world"[..])
        );
        assert_eq!(b.len("x").unwrap(), Some(11));
        b.put("x", b"replaced").unwrap();
        assert_eq!(b.get("x").unwrap().as_deref(), Some(&b"replaced"[..]));
        let mut w = b.writer("y").unwrap();
        w.write(b"ab").unwrap();
        w.write(b"cd").unwrap();
        assert!(!b.exists("y").unwrap());
        assert_eq!(w.commit().unwrap(), 4);
        assert_eq!(b.get("y").unwrap().as_deref(), Some(&b"abcd"[..]));
        let w = b.writer("z").unwrap();
        drop(w);
        assert!(!b.exists("z").unwrap());
        assert_eq!(b.concat("z", &["y", "x"]).unwrap(), 12);
        assert_eq!(b.get("z").unwrap().as_deref(), Some(&b"abcdreplaced"[..]));
        assert!(b.delete("x").unwrap());
        assert!(!b.delete("x").unwrap());
        // Keys that look like paths are just keys.
        b.put("../../etc/passwd", b"p").unwrap();
        b.put("/abs/path", b"q").unwrap();
        b.put("", b"e").unwrap();
        assert_eq!(
            b.get("../../etc/passwd").unwrap().as_deref(),
            Some(&b"p"[..])
        );
        assert_eq!(b.get("/abs/path").unwrap().as_deref(), Some(&b"q"[..]));
        assert_eq!(b.get("").unwrap().as_deref(), Some(&b"e"[..]));
    }

    /// The rest of the contract every blob backend meets (with `exercise`).
    fn contract(b: &dyn BlobStore) {
        // Missing keys: absent, not errors.
        assert_eq!(b.get_range("missing", 0, 10).unwrap(), None);
        assert_eq!(b.len("missing").unwrap(), None);
        assert!(!b.delete("missing").unwrap());
        assert!(b.concat("dst", &["missing"]).is_err());
        assert!(!b.exists("dst").unwrap(), "a failed concat leaves nothing");
        // Ranges: empty at the end, refused past it.
        b.put("r", b"0123456789").unwrap();
        assert_eq!(b.get_range("r", 10, 20).unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(b.get_range("r", 0, 0).unwrap().as_deref(), Some(&b""[..]));
        assert!(matches!(
            b.get_range("r", 11, 20),
            Err(StoreError::InvalidRange)
        ));
        // Empty blobs exist.
        b.put("empty", b"").unwrap();
        assert_eq!(
            (b.exists("empty").unwrap(), b.len("empty").unwrap()),
            (true, Some(0))
        );
        // A large blob written in uneven chunks reads back whole and by ranges.
        let big: Vec<u8> = (0..8 * 1024 * 1024 + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut w = b.writer("big").unwrap();
        for chunk in big.chunks(65_537) {
            w.write(chunk).unwrap();
        }
        assert_eq!(w.commit().unwrap(), big.len() as u64);
        assert_eq!(b.get("big").unwrap().as_deref(), Some(&big[..]));
        let (s, e) = (5_000_000u64, 5_000_123u64);
        assert_eq!(
            b.get_range("big", s, e).unwrap().as_deref(),
            Some(&big[s as usize..e as usize])
        );
        // Concurrent writers of one key: the blob is one of the writes, whole.
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                scope.spawn(move || b.put("contended", &vec![t; 100_000]).unwrap());
            }
        });
        let got = b.get("contended").unwrap().unwrap();
        assert_eq!(got.len(), 100_000);
        assert!(got.iter().all(|x| *x == got[0]), "a torn blob");
        // Concatenating parts as an S3 multipart upload has them (all but the last at least
        // 5 MiB: S3-compatible backends copy them on the server) and small pieces.
        let five = vec![7u8; 5 * 1024 * 1024];
        b.put("p1", &five).unwrap();
        b.put("p2", b"tail").unwrap();
        assert_eq!(
            b.concat("joined", &["p1", "big", "p2"]).unwrap(),
            (five.len() + big.len() + 4) as u64
        );
        let joined = b.get("joined").unwrap().unwrap();
        assert_eq!(&joined[..five.len()], &five[..]);
        assert_eq!(&joined[five.len()..five.len() + big.len()], &big[..]);
        assert_eq!(&joined[five.len() + big.len()..], b"tail");
        assert_eq!(b.concat("small", &["p2", "r", "p2"]).unwrap(), 18);
        assert_eq!(
            b.get("small").unwrap().as_deref(),
            Some(&b"tail0123456789tail"[..])
        );
    }

    #[test]
    fn memory_blobs() {
        exercise(&MemoryBlobs::default());
        contract(&MemoryBlobs::default());
    }

    #[test]
    fn fs_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        exercise(&FsBlobs::open(&root).unwrap());
        contract(&FsBlobs::open(&root).unwrap());
        // Nothing escaped the root, and no temp files are left behind.
        let outside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, vec![std::ffi::OsString::from("blobs")]);
        assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        // Every stored file name is a 64-char hex hash.
        for d in fs::read_dir(&root).unwrap() {
            let d = d.unwrap();
            if d.file_name() == "tmp" {
                continue;
            }
            for f in fs::read_dir(d.path()).unwrap() {
                let n = f.unwrap().file_name().into_string().unwrap();
                assert_eq!(n.len(), 64);
                assert!(n.bytes().all(|c| c.is_ascii_hexdigit()));
            }
        }
    }

    /// The S3-compatible backend against a real store (`BASALT_TEST_BLOBS`, set by
    /// `make test`); without one the test has nothing to run against and passes.
    #[test]
    fn s3_blobs() {
        let Some(url) = crate::s3blobs::testing::url("contract") else {
            eprintln!("BASALT_TEST_BLOBS not set: S3-compatible blob contract not run");
            return;
        };
        exercise(&crate::S3Blobs::open(&url).unwrap());
        let url = crate::s3blobs::testing::url("contract").unwrap();
        contract(&crate::S3Blobs::open(&url).unwrap());
    }

    #[test]
    fn fs_reopen_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        {
            let b = FsBlobs::open(dir.path()).unwrap();
            b.put("../../etc/passwd", b"data").unwrap();
        }
        let b = FsBlobs::open(dir.path()).unwrap();
        assert_eq!(
            b.get("../../etc/passwd").unwrap().as_deref(),
            Some(&b"data"[..])
        );
    }
}
