//! Frames between the server and a worker: the call id (`u64`), the header length and the
//! payload length (`u32`s), all little-endian, then a JSON header and the payload bytes
//! (embedding vectors; empty otherwise). The id is outside the JSON so that a header the other
//! side cannot decode can still be answered: its caller gets an error, not silence.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Far above any legitimate frame (a batch of embeddings is a few MiB); a corrupt length
/// must not make the reader allocate gigabytes.
const MAX_PART: usize = 512 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The call this frame belongs to (0: none).
    pub id: u64,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new<T: Serialize>(id: u64, header: &T, payload: Vec<u8>) -> Frame {
        Frame {
            id,
            // Serializing our own message types cannot fail (no maps with non-string keys).
            header: serde_json::to_vec(header).unwrap_or_default(),
            payload,
        }
    }

    pub fn decode<T: DeserializeOwned>(&self) -> io::Result<T> {
        serde_json::from_slice(&self.header)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Reads one frame; `None` at a clean end of stream (before any byte of a frame).
pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut lens = [0u8; 16];
    let mut got = 0;
    while got < lens.len() {
        let n = r.read(&mut lens[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let id = u64::from_le_bytes([
        lens[0], lens[1], lens[2], lens[3], lens[4], lens[5], lens[6], lens[7],
    ]);
    let header_len = u32::from_le_bytes([lens[8], lens[9], lens[10], lens[11]]) as usize;
    let payload_len = u32::from_le_bytes([lens[12], lens[13], lens[14], lens[15]]) as usize;
    if header_len > MAX_PART || payload_len > MAX_PART {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {header_len}+{payload_len} bytes is over the limit"),
        ));
    }
    let mut header = vec![0; header_len];
    r.read_exact(&mut header).await?;
    let mut payload = vec![0; payload_len];
    r.read_exact(&mut payload).await?;
    Ok(Some(Frame {
        id,
        header,
        payload,
    }))
}

pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> io::Result<()> {
    let mut buf = Vec::with_capacity(16 + frame.header.len() + frame.payload.len());
    buf.extend_from_slice(&frame.id.to_le_bytes());
    buf.extend_from_slice(&(frame.header.len() as u32).to_le_bytes());
    buf.extend_from_slice(&(frame.payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&frame.header);
    buf.extend_from_slice(&frame.payload);
    w.write_all(&buf).await?;
    w.flush().await
}

/// f32 vectors as one little-endian payload.
pub fn vectors_to_bytes(vectors: &[Vec<f32>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(vectors.iter().map(|v| v.len() * 4).sum());
    for v in vectors {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// The inverse of [`vectors_to_bytes`] for vectors of `dimensions` floats.
pub fn vectors_from_bytes(bytes: &[u8], dimensions: usize) -> io::Result<Vec<Vec<f32>>> {
    let row = dimensions * 4;
    if dimensions == 0 || !bytes.len().is_multiple_of(row) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} payload bytes are not whole vectors of {dimensions}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(row)
        .map(|r| {
            r.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let sent = vec![
            Frame::new(1, &serde_json::json!({"op": "x", "id": 1}), vec![]),
            Frame::new(u64::MAX, &"big", vec![7; 1000]),
        ];
        let to_send = sent.clone();
        let writer = tokio::spawn(async move {
            for f in &to_send {
                write(&mut a, f).await.unwrap();
            }
        });
        let mut got = Vec::new();
        while let Some(f) = read(&mut b).await.unwrap() {
            got.push(f);
        }
        writer.await.unwrap();
        assert_eq!(got, sent);
        assert_eq!(got[0].decode::<serde_json::Value>().unwrap()["id"], 1);
    }

    #[tokio::test]
    async fn a_cut_frame_is_an_error_not_an_end() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, b'{'])
            .await
            .unwrap();
        drop(a);
        assert!(read(&mut b).await.is_err());
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0])
            .await
            .unwrap();
        assert!(
            read(&mut b).await.is_err(),
            "absurd lengths are refused before allocating"
        );
    }

    #[test]
    fn vectors_round_trip() {
        let v = vec![vec![1.0, -2.5, f32::MIN_POSITIVE], vec![0.0, 3.25, -0.0]];
        let bytes = vectors_to_bytes(&v);
        assert_eq!(vectors_from_bytes(&bytes, 3).unwrap(), v);
        assert!(vectors_from_bytes(&bytes[1..], 3).is_err());
        assert!(vectors_from_bytes(&bytes, 0).is_err());
    }
}
