//! `aws-chunked` body decoding for the auth-off mode (where s3s does not verify signatures and
//! therefore does not decode the body itself). Chunk signatures are ignored; trailing headers
//! (e.g. `x-amz-checksum-crc32`) are captured into a shared slot.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use http::{HeaderMap, HeaderName, HeaderValue};
use parking_lot::Mutex;
use s3s::StdError;
use s3s::stream::{ByteStream, RemainingLength};

/// Trailing headers of an `aws-chunked` body decoded by [`ChunkedDecoder`]; placed in the request
/// extensions. Filled once the body has been read to the end.
#[derive(Clone, Default)]
pub struct ChunkTrailers(pub Arc<Mutex<Option<HeaderMap>>>);

#[derive(Debug)]
pub struct DecodeError(&'static str);

impl std::error::Error for DecodeError {}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "aws-chunked: {}", self.0)
    }
}

enum State {
    Header,
    Data(usize),
    DataEnd,
    Trailers,
    Done,
}

pub struct ChunkedDecoder<S> {
    inner: S,
    buf: BytesMut,
    state: State,
    trailers: ChunkTrailers,
    remaining: Option<usize>,
    eof: bool,
}

impl<S> ChunkedDecoder<S> {
    pub fn new(inner: S, decoded_len: Option<usize>, trailers: ChunkTrailers) -> Self {
        ChunkedDecoder {
            inner,
            buf: BytesMut::new(),
            state: State::Header,
            trailers,
            remaining: decoded_len,
            eof: false,
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

const MAX_LINE: usize = 16 * 1024;

impl<S> ChunkedDecoder<S> {
    /// Makes progress on buffered input; `Ok(Some(bytes))` yields data, `Ok(None)` needs input.
    fn step(&mut self) -> Result<Option<Option<Bytes>>, DecodeError> {
        loop {
            match self.state {
                State::Header => {
                    let Some(i) = find_crlf(&self.buf) else {
                        if self.buf.len() > MAX_LINE {
                            return Err(DecodeError("chunk header too long"));
                        }
                        return Ok(None);
                    };
                    let line = self.buf.split_to(i + 2);
                    let line = &line[..i];
                    let size_part = line.split(|&c| c == b';').next().unwrap_or_default();
                    let s = std::str::from_utf8(size_part)
                        .map_err(|_| DecodeError("bad chunk size"))?;
                    let n = usize::from_str_radix(s.trim(), 16)
                        .map_err(|_| DecodeError("bad chunk size"))?;
                    self.state = if n == 0 {
                        State::Trailers
                    } else {
                        State::Data(n)
                    };
                }
                State::Data(n) => {
                    if self.buf.is_empty() {
                        return Ok(None);
                    }
                    let take = n.min(self.buf.len());
                    let data = self.buf.split_to(take).freeze();
                    self.state = if take == n {
                        State::DataEnd
                    } else {
                        State::Data(n - take)
                    };
                    if let Some(r) = &mut self.remaining {
                        *r = r.saturating_sub(take);
                    }
                    return Ok(Some(Some(data)));
                }
                State::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(DecodeError("missing CRLF after chunk"));
                    }
                    self.buf.advance(2);
                    self.state = State::Header;
                }
                State::Trailers => {
                    let Some(i) = find_crlf(&self.buf) else {
                        if self.eof {
                            // Some clients end without the final empty line.
                            self.state = State::Done;
                            continue;
                        }
                        if self.buf.len() > MAX_LINE {
                            return Err(DecodeError("trailer too long"));
                        }
                        return Ok(None);
                    };
                    let line = self.buf.split_to(i + 2);
                    let line = &line[..i];
                    if line.is_empty() {
                        self.state = State::Done;
                        continue;
                    }
                    if let Some(colon) = line.iter().position(|&c| c == b':') {
                        let name = HeaderName::from_bytes(line[..colon].trim_ascii());
                        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
                        if let (Ok(n), Ok(v)) = (name, value) {
                            self.trailers
                                .0
                                .lock()
                                .get_or_insert_with(HeaderMap::new)
                                .insert(n, v);
                        }
                    }
                }
                State::Done => {
                    self.trailers.0.lock().get_or_insert_with(HeaderMap::new);
                    return Ok(Some(None));
                }
            }
        }
    }
}

impl<S> Stream for ChunkedDecoder<S>
where
    S: Stream<Item = Result<Bytes, StdError>> + Unpin,
{
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.step() {
                Err(e) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Ok(Some(Some(data))) => return Poll::Ready(Some(Ok(data))),
                Ok(Some(None)) => return Poll::Ready(None),
                Ok(None) => {}
            }
            if this.eof {
                this.state = State::Done;
                return Poll::Ready(Some(Err(Box::new(DecodeError("unexpected end of body")))));
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.eof = true,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(b))) => this.buf.extend_from_slice(&b),
            }
        }
    }
}

impl<S> ByteStream for ChunkedDecoder<S>
where
    S: Stream<Item = Result<Bytes, StdError>> + Unpin,
{
    fn remaining_length(&self) -> RemainingLength {
        match self.remaining {
            Some(n) => RemainingLength::new_exact(n),
            None => RemainingLength::unknown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn decodes_signed_and_unsigned_chunks_with_trailers() {
        let raw = b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:xyz\r\n\r\n";
        // Feed it in awkward pieces.
        let pieces: Vec<Result<Bytes, StdError>> = raw
            .chunks(3)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let t = ChunkTrailers::default();
        let mut d = ChunkedDecoder::new(futures::stream::iter(pieces), Some(11), t.clone());
        let mut out = Vec::new();
        while let Some(b) = d.next().await {
            out.extend_from_slice(&b.unwrap());
        }
        assert_eq!(out, b"hello world");
        let h = t.0.lock().clone().unwrap();
        assert_eq!(h.get("x-amz-checksum-crc32").unwrap(), "DUoRhQ==");
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let raw = b"5\r\nhel";
        let t = ChunkTrailers::default();
        let mut d = ChunkedDecoder::new(
            futures::stream::iter(vec![Ok::<_, StdError>(Bytes::from_static(raw))]),
            None,
            t,
        );
        assert_eq!(d.next().await.unwrap().unwrap(), Bytes::from_static(b"hel"));
        assert!(d.next().await.unwrap().is_err());
    }
}
