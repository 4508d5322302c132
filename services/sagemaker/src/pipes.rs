//! Pipe input mode: a channel's S3 objects streamed into named pipes instead of downloaded.
//!
//! As SageMaker's agent does, each epoch of a Pipe channel is a FIFO
//! `/opt/ml/input/data/<channel>_<epoch>` that carries every object of the channel in order,
//! then end of file. The first, `<channel>_0`, is there when the algorithm starts; each next
//! one is made just before the last one reaches its end (so a reader that opens it on end of
//! file finds it), and an algorithm reads as many epochs as it wants. One thread per channel writes them; it waits for a reader without blocking
//! (a FIFO opened for writing with O_NONBLOCK fails with ENXIO until one opens it), so that
//! the end of the job ends it. A reader that closes early ends its epoch (EPIPE).

use basalt_core::objects::InProcessS3;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One Pipe channel: where its FIFOs go and what they carry.
pub(crate) struct Feed {
    /// The host directory seen as `/opt/ml/input/data`.
    pub dir: PathBuf,
    pub channel: String,
    pub account: String,
    pub bucket: String,
    pub keys: Vec<String>,
}

/// The feeding threads of a job's Pipe channels; dropping it ends them.
pub(crate) struct Pipes {
    stop: Arc<AtomicBool>,
}

impl Pipes {
    pub(crate) fn start(objects: &Arc<dyn InProcessS3>, feeds: Vec<Feed>) -> Result<Pipes, String> {
        let stop = Arc::new(AtomicBool::new(false));
        for f in feeds {
            // The first epoch's FIFO exists before the algorithm starts.
            fifo(&f.dir.join(format!("{}_0", f.channel)))?;
            let (objects, stop) = (objects.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("sagemaker-pipe-{}", f.channel))
                .spawn(move || feed(objects, f, stop))
                .map_err(|e| format!("InternalServerError: {e}"))?;
        }
        Ok(Pipes { stop })
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

fn feed(objects: Arc<dyn InProcessS3>, f: Feed, stop: Arc<AtomicBool>) {
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
        for key in &f.keys {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            match objects.read(&f.account, &f.bucket, key) {
                Ok(Some(data)) => {
                    if out.write_all(&data).is_err() {
                        break;
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::warn!(key = %key, channel = %f.channel, "a Pipe channel's object could not be read");
                    break;
                }
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
