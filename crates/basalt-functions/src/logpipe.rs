//! An environment's output: stdout and stderr share one pipe (as Lambda merges them), read
//! into lines by a thread.
//!
//! A runtime writes its output before it posts the invocation's response, so once the
//! response has arrived the output is in the pipe, though perhaps not yet read. The reader
//! takes bytes only while holding the buffer's lock, and only as many as `FIONREAD` says are
//! there; so a collector that holds the lock and sees `FIONREAD == 0` knows that every byte
//! written so far is in the buffer.

use parking_lot::Mutex;
use std::io::PipeReader;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lines longer than this are split, as CloudWatch Logs caps an event at 256 KiB.
const MAX_LINE: usize = 256 * 1024 - 26;

#[derive(Default)]
struct Buf {
    lines: Vec<(i64, String)>,
    partial: Vec<u8>,
    closed: bool,
}

pub(crate) struct LogPipe {
    buf: Arc<Mutex<Buf>>,
    fd: RawFd,
    // Keeps the fd open for as long as the collector may query it.
    _reader: Arc<PipeReader>,
}

fn pending(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    if r < 0 { 0 } else { n.max(0) as usize }
}

fn push_bytes(buf: &mut Buf, bytes: &[u8]) {
    buf.partial.extend_from_slice(bytes);
    let ts = crate::now_ms();
    while let Some(i) = buf.partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = buf.partial.drain(..=i).collect();
        let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
        buf.lines.push((ts, text));
    }
    while buf.partial.len() > MAX_LINE {
        let line: Vec<u8> = buf.partial.drain(..MAX_LINE).collect();
        buf.lines
            .push((ts, String::from_utf8_lossy(&line).into_owned()));
    }
}

impl LogPipe {
    pub(crate) fn start(reader: PipeReader) -> LogPipe {
        let reader = Arc::new(reader);
        let fd = reader.as_raw_fd();
        let buf = Arc::new(Mutex::new(Buf::default()));
        let (b, r) = (buf.clone(), reader.clone());
        std::thread::Builder::new()
            .name("lambda-logs".into())
            .spawn(move || {
                let fd = r.as_raw_fd();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    let r = unsafe { libc::poll(&mut pfd, 1, -1) };
                    if r < 0 {
                        if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                        {
                            continue;
                        }
                        break;
                    }
                    let mut buf = b.lock();
                    let n = pending(fd).min(chunk.len());
                    if n == 0 {
                        if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                            buf.closed = true;
                            break;
                        }
                        continue;
                    }
                    // SAFETY: reads at most `n` bytes into `chunk`.
                    let got = unsafe { libc::read(fd, chunk.as_mut_ptr().cast(), n) };
                    if got <= 0 {
                        buf.closed = true;
                        break;
                    }
                    push_bytes(&mut buf, &chunk[..got as usize]);
                }
                let mut buf = b.lock();
                if !buf.partial.is_empty() {
                    let rest = std::mem::take(&mut buf.partial);
                    buf.lines
                        .push((crate::now_ms(), String::from_utf8_lossy(&rest).into_owned()));
                }
            })
            .expect("spawning a thread");
        LogPipe {
            buf,
            fd,
            _reader: reader,
        }
    }

    /// Every complete line written so far (waiting up to `patience` for the reader to catch
    /// up), and the partial last line when `flush`.
    pub(crate) fn take(&self, patience: Duration, flush: bool) -> Vec<(i64, String)> {
        let until = Instant::now() + patience;
        loop {
            let mut buf = self.buf.lock();
            if buf.closed || pending(self.fd) == 0 || Instant::now() >= until {
                if flush && !buf.partial.is_empty() {
                    let rest = std::mem::take(&mut buf.partial);
                    buf.lines
                        .push((crate::now_ms(), String::from_utf8_lossy(&rest).into_owned()));
                }
                return std::mem::take(&mut buf.lines);
            }
            drop(buf);
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_written_before_take_are_all_there() {
        let (r, mut w) = std::io::pipe().unwrap();
        let pipe = LogPipe::start(r);
        for i in 0..1000 {
            writeln!(w, "line {i}").unwrap();
        }
        write!(w, "partial").unwrap();
        let lines = pipe.take(Duration::from_secs(5), false);
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[999].1, "line 999");
        let rest = pipe.take(Duration::from_secs(5), true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].1, "partial");
    }

    #[test]
    fn long_lines_are_split() {
        let mut b = Buf::default();
        push_bytes(&mut b, &vec![b'x'; MAX_LINE * 2 + 5]);
        assert_eq!(b.lines.len(), 2);
        assert_eq!(b.partial.len(), 5);
    }
}
