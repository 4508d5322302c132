//! Pipe input mode: a channel's S3 objects streamed into named pipes instead of downloaded.
//!
//! As SageMaker's agent does, each epoch of a Pipe channel is a FIFO
//! `/opt/ml/input/data/<channel>_<epoch>` that carries every object of the channel in order,
//! then end of file. The first, `<channel>_0`, is there when the algorithm starts; each next
//! one is made just before the last one reaches its end (so a reader that opens it on end of
//! file finds it), and an algorithm reads as many epochs as it wants. One thread per channel writes them; it waits for a reader without blocking
//! (a FIFO opened for writing with O_NONBLOCK fails with ENXIO until one opens it), so that
//! the end of the job ends it. A reader that closes early ends its epoch (EPIPE).
//!
//! What an epoch carries is the channel's items in order: its objects (`S3Prefix`,
//! `ManifestFile`), or, for an `AugmentedManifestFile`, the listed attributes of each line (see
//! [`augmented_items`]). `CompressionType: Gzip` objects are decompressed on the way, and with
//! `RecordWrapperType: RecordIO` each item is one MXNet RecordIO record ([`basalt_recordio`]).

use basalt_core::objects::InProcessS3;
use parking_lot::Mutex;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One Pipe channel: where its FIFOs go and what they carry.
#[derive(Clone)]
pub(crate) struct Feed {
    /// The host directory seen as `/opt/ml/input/data`.
    pub dir: PathBuf,
    pub channel: String,
    pub account: String,
    pub items: Vec<Item>,
    /// `CompressionType: Gzip`: each object is a gzip stream, sent decompressed.
    pub gzip: bool,
    /// `RecordWrapperType: RecordIO`: each item is sent as one RecordIO record.
    pub recordio: bool,
}

/// One thing an epoch sends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// An S3 object's bytes.
    Object { bucket: String, key: String },
    /// An augmented manifest's attribute value, as JSON text.
    Value(Vec<u8>),
}

/// An augmented manifest's items (Developer Guide, "Augmented Manifest Files for Training
/// Jobs"): for each JSON line, in order, each attribute of `names` in the order given
/// (attributes not listed are ignored wherever they are). An attribute whose name ends in
/// `-ref` holds an S3 URI, and the object it names is sent; any other is sent as its value's
/// JSON text (`1`, `"cat"`, `{"annotations": ...}`). `Err` is a FailureReason.
pub(crate) fn augmented_items(
    manifest: &[u8],
    uri: &str,
    names: &[&str],
) -> Result<Vec<Item>, String> {
    if names.is_empty() {
        return Err(format!(
            "ClientError: the channel reading the augmented manifest {uri} lists no AttributeNames."
        ));
    }
    let mut items = Vec::new();
    for (n, line) in manifest.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |why: String| {
            format!(
                "ClientError: line {} of the augmented manifest {uri} {why}",
                n + 1
            )
        };
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(line).map_err(|e| bad(format!("is not a JSON object: {e}")))?;
        for &name in names {
            let value = obj
                .get(name)
                .ok_or_else(|| bad(format!("has no attribute {name}.")))?;
            if name.ends_with("-ref") {
                let target = value.as_str().unwrap_or_default();
                let (bucket, key) = basalt_core::objects::parse_s3_uri(target)
                    .ok_or_else(|| bad(format!("has {name} {value}, which is not an S3 URI.")))?;
                items.push(Item::Object {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                });
            } else {
                items.push(Item::Value(value.to_string().into_bytes()));
            }
        }
    }
    Ok(items)
}

/// The feeding threads of a job's Pipe channels; dropping it ends them.
pub(crate) struct Pipes {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Why a channel's epoch ended before its last item (the first such reason).
    failure: Arc<Mutex<Option<String>>>,
}

impl Pipes {
    pub(crate) fn start(objects: &Arc<dyn InProcessS3>, feeds: Vec<Feed>) -> Result<Pipes, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let mut threads = Vec::new();
        for f in feeds {
            // The first epoch's FIFO exists before the algorithm starts.
            fifo(&f.dir.join(format!("{}_0", f.channel)))?;
            let (objects, stop, failure) = (objects.clone(), stop.clone(), failure.clone());
            let thread = std::thread::Builder::new()
                .name(format!("sagemaker-pipe-{}", f.channel))
                .spawn(move || feed(objects, f, stop, failure))
                .map_err(|e| format!("InternalServerError: {e}"))?;
            threads.push(thread);
        }
        Ok(Pipes {
            stop,
            threads,
            failure,
        })
    }

    /// Ends the feeds and waits for them, once their reader is gone (a write to a FIFO
    /// without one fails at once; a feed waiting for a reader looks at `stop` every 20 ms).
    pub(crate) fn end(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
    }

    /// The job's failure reason when a channel could not send all its data: the algorithm
    /// saw the epoch end early, so whatever it made of it was made of truncated data.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .clone()
            .map(|why| format!("ClientError: Data download failed: {why}"))
    }
}

impl Drop for Pipes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn fifo(path: &std::path::Path) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| format!("InternalServerError: {e}"))?;
    // SAFETY: a valid NUL-terminated path; mkfifo touches nothing else.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o660) } != 0 {
        return Err(format!(
            "InternalServerError: creating the pipe {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// What `item` sends: an object's bytes (decompressed for a Gzip channel), or a value.
fn bytes_of(objects: &Arc<dyn InProcessS3>, f: &Feed, item: &Item) -> Result<Vec<u8>, String> {
    let (bucket, key) = match item {
        Item::Value(v) => return Ok(v.clone()),
        Item::Object { bucket, key } => (bucket, key),
    };
    let data = objects
        .read(&f.account, bucket, key)
        .map_err(|e| format!("s3://{bucket}/{key}: {e}"))?
        .ok_or_else(|| format!("s3://{bucket}/{key} does not exist"))?;
    if !f.gzip {
        return Ok(data);
    }
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(&data[..]),
        &mut plain,
    )
    .map_err(|e| format!("s3://{bucket}/{key} is not gzip: {e}"))?;
    Ok(plain)
}

fn feed(
    objects: Arc<dyn InProcessS3>,
    f: Feed,
    stop: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<String>>>,
) {
    let failed = |why: String| {
        tracing::warn!(channel = %f.channel, "a Pipe channel's item could not be sent: {why}");
        failure
            .lock()
            .get_or_insert_with(|| format!("the {} channel: {why}", f.channel));
    };
    for epoch in 0u64.. {
        // Each epoch's FIFO was made before the last one ended (the first by `start`).
        let path = f.dir.join(format!("{}_{epoch}", f.channel));
        let file = loop {
            if stop.load(Ordering::SeqCst) {
                let _ = std::fs::remove_file(&path);
                return;
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&path)
            {
                Ok(file) => break file,
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return,
            }
        };
        // Blocking writes from here: the reader sets the pace.
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        for item in &f.items {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let data = match bytes_of(&objects, &f, item) {
                Ok(data) => data,
                Err(why) => {
                    failed(why);
                    break;
                }
            };
            let written = if f.recordio {
                basalt_recordio::write(&mut out, &data)
            } else {
                out.write_all(&data)
            };
            if let Err(e) = written {
                // Otherwise the reader closed its end: it has read what it wanted.
                if e.kind() == std::io::ErrorKind::InvalidInput {
                    failed(e.to_string());
                }
                break;
            }
        }
        let _ = out.flush();
        // The next epoch's FIFO exists before this one ends: a reader that opens it at the
        // end of file finds it.
        let next = fifo(&f.dir.join(format!("{}_{}", f.channel, epoch + 1)));
        drop(out);
        let _ = std::fs::remove_file(&path);
        if next.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augmented_manifest_lines_become_items_in_attribute_order() {
        let manifest = br#"{"source-ref": "s3://b/img/1.jpg", "is-a-cat": 1, "note": "x"}
{"is-a-cat": 0, "source-ref": "s3://b/img/2.jpg", "box": {"w": 3}}

"#;
        let items =
            augmented_items(manifest, "s3://b/m.json", &["source-ref", "is-a-cat"]).unwrap();
        let object = |k: &str| Item::Object {
            bucket: "b".into(),
            key: k.into(),
        };
        assert_eq!(
            items,
            vec![
                object("img/1.jpg"),
                Item::Value(b"1".to_vec()),
                object("img/2.jpg"),
                Item::Value(b"0".to_vec()),
            ]
        );
        let e = augmented_items(manifest, "s3://b/m.json", &["box"]).unwrap_err();
        assert!(
            e.contains("line 1") && e.contains("no attribute box"),
            "{e}"
        );
        let e = augmented_items(b"[1]", "s3://b/m.json", &["a"]).unwrap_err();
        assert!(e.contains("not a JSON object"), "{e}");
        let e =
            augmented_items(br#"{"a-ref": "http://x"}"#, "s3://b/m.json", &["a-ref"]).unwrap_err();
        assert!(e.contains("not an S3 URI"), "{e}");
        assert!(augmented_items(manifest, "s3://b/m.json", &[]).is_err());
    }
}
