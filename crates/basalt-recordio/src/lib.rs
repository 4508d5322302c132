//! MXNet RecordIO, the framing SageMaker uses for `RecordWrapperType: RecordIO`, for
//! RecordIO-protobuf data and for batch transform's `SplitType: RecordIO`, as dmlc-core's
//! `RecordIOWriter` and `RecordIOReader` write and read it.
//!
//! A record is a magic number, a word holding a continuation flag (its top 3 bits) and a
//! length (the other 29), the data, and zeros to a multiple of 4 bytes. Where the magic number
//! itself occurs in the data at an offset that is a multiple of 4, the writer cuts the record
//! there into parts (flag 1 for the first, 2 for the middle ones, 3 for the last) and leaves
//! those four bytes out, since a reader puts the magic number back between parts; a record in
//! one part has flag 0.

use std::io::Write;

pub const MAGIC: u32 = 0xced7_230a;
/// The longest record: its length has 29 bits.
pub const MAX_LEN: usize = (1 << 29) - 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("not RecordIO: no record header at byte {0}")]
    NoHeader(usize),
    #[error("a RecordIO record runs past the end of the data")]
    Truncated,
    #[error("the RecordIO data ends inside a record")]
    Unfinished,
    #[error("a RecordIO record's continuation at byte {0} follows no record's start")]
    Continuation(usize),
    #[error("a RecordIO record at byte {0} has the flag {1}; dmlc-core writes 0 to 3")]
    Flag(usize, u32),
}

/// Writes `data` as one record.
pub fn write(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    if data.len() > MAX_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "a record of {} bytes is longer than RecordIO's 2^29 - 1",
                data.len()
            ),
        ));
    }
    let magic = MAGIC.to_le_bytes();
    let header = |out: &mut dyn Write, flag: u32, len: usize| -> std::io::Result<()> {
        out.write_all(&magic)?;
        out.write_all(&((flag << 29) | len as u32).to_le_bytes())
    };
    let mut from = 0;
    let mut at = 0;
    while at + 4 <= data.len() {
        if data[at..at + 4] == magic {
            header(out, if from == 0 { 1 } else { 2 }, at - from)?;
            out.write_all(&data[from..at])?;
            from = at + 4;
        }
        at += 4;
    }
    header(out, if from == 0 { 0 } else { 3 }, data.len() - from)?;
    out.write_all(&data[from..])?;
    out.write_all(&[0; 3][..(4 - data.len() % 4) % 4])
}

/// One record of some RecordIO data.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record as framed in the data: from its first header to the end of its last part's
    /// padding, so that framed records put one after another are RecordIO again.
    pub framed: &'a [u8],
    /// The record's data, its parts joined again.
    pub data: Vec<u8>,
}

/// The records of `data`, in order.
pub fn read(data: &[u8]) -> Result<Vec<Record<'_>>, Error> {
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let (mut records, mut current, mut start, mut at) = (Vec::new(), Vec::new(), 0, 0);
    // Inside a record cut into parts (after its first part).
    let mut open = false;
    while at < data.len() {
        if at + 8 > data.len() || word(at) != MAGIC {
            return Err(Error::NoHeader(at));
        }
        let (flag, len) = (word(at + 4) >> 29, (word(at + 4) as usize) & MAX_LEN);
        let end = at + 8 + len;
        if end > data.len() {
            return Err(Error::Truncated);
        }
        match (flag, open) {
            (4.., _) => return Err(Error::Flag(at, flag)),
            (0 | 1, true) => return Err(Error::Unfinished),
            (0 | 1, false) => start = at,
            (_, false) => return Err(Error::Continuation(at)),
            (_, true) => current.extend_from_slice(&MAGIC.to_le_bytes()),
        }
        current.extend_from_slice(&data[at + 8..end]);
        open = flag == 1 || flag == 2;
        if !open {
            records.push(Record {
                framed: &data[start..(end.div_ceil(4) * 4).min(data.len())],
                data: std::mem::take(&mut current),
            });
        }
        at = end.div_ceil(4) * 4;
    }
    if open {
        return Err(Error::Unfinished);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_past_three_are_refused() {
        let mut data = Vec::new();
        write(&mut data, b"abcd").unwrap();
        let open = |flag: u32| {
            let mut d = MAGIC.to_le_bytes().to_vec();
            d.extend_from_slice(&((flag << 29) | 4).to_le_bytes());
            d.extend_from_slice(b"efgh");
            d
        };
        assert_eq!(read(&open(5)), Err(Error::Flag(0, 5)));
        let mut cut = open(1);
        cut.extend_from_slice(&open(7));
        assert_eq!(read(&cut), Err(Error::Flag(12, 7)));
        data.extend_from_slice(&open(0));
        assert_eq!(read(&data).unwrap().len(), 2);
    }

    #[test]
    fn records_round_trip_with_the_magic_number_inside() {
        let magic = MAGIC.to_le_bytes();
        let mut tricky = b"abcd".to_vec();
        tricky.extend_from_slice(&magic);
        tricky.extend_from_slice(b"efgh");
        tricky.extend_from_slice(&magic);
        let mut unaligned = b"x".to_vec();
        unaligned.extend_from_slice(&magic); // at offset 1: not a cut
        let records: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"1".to_vec(),
            b"\"cat\"".to_vec(),
            tricky.clone(),
            magic.to_vec(),
            unaligned,
            vec![7; 4096 + 3],
        ];
        let mut out = Vec::new();
        for r in &records {
            write(&mut out, r).unwrap();
        }
        assert_eq!(out.len() % 4, 0);
        let back = read(&out).unwrap();
        let data: Vec<Vec<u8>> = back.iter().map(|r| r.data.clone()).collect();
        assert_eq!(data, records);
        // Each framed record reads back alone as itself.
        for (r, want) in back.iter().zip(&records) {
            assert_eq!(&read(r.framed).unwrap()[0].data, want);
        }
        // dmlc-core's layout for one record: magic, (0 << 29) | 1, "1", three zeros.
        let mut one = Vec::new();
        write(&mut one, b"1").unwrap();
        assert_eq!(one, [&magic[..], &1u32.to_le_bytes(), b"1\0\0\0"].concat());
        assert_eq!(read(&one).unwrap()[0].framed, &one[..]);
        // Framed records one after another are RecordIO again (batch transform's MultiRecord).
        let joined: Vec<u8> = back.iter().flat_map(|r| r.framed.iter().copied()).collect();
        assert_eq!(joined, out);
        // The magic number at offset 4: a first part of 4 bytes (flag 1), then the rest (3).
        let mut cut = Vec::new();
        write(&mut cut, &tricky[..12]).unwrap();
        assert_eq!(&cut[4..8], &((1u32 << 29) | 4).to_le_bytes());
        assert_eq!(&cut[16..20], &((3u32 << 29) | 4).to_le_bytes());
    }

    #[test]
    fn what_is_not_recordio_is_an_error() {
        assert_eq!(read(b"1,2,3\n"), Err(Error::NoHeader(0)));
        let mut short = Vec::new();
        write(&mut short, b"hello").unwrap();
        assert_eq!(read(&short[..10]), Err(Error::Truncated));
        let mut open = MAGIC.to_le_bytes().to_vec();
        open.extend_from_slice(&(1u32 << 29).to_le_bytes());
        assert_eq!(read(&open), Err(Error::Unfinished));
        let mut twice = open.clone();
        write(&mut twice, b"x").unwrap();
        assert_eq!(read(&twice), Err(Error::Unfinished));
        let mut orphan = MAGIC.to_le_bytes().to_vec();
        orphan.extend_from_slice(&(3u32 << 29).to_le_bytes());
        assert_eq!(read(&orphan), Err(Error::Continuation(0)));
        assert!(write(&mut Vec::new(), &vec![0; MAX_LEN + 1]).is_err());
    }
}
