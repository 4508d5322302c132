//! A small, strict CBOR (RFC 8949) codec: everything smithy-rpc-v2-cbor needs, including
//! indefinite-length items and half-precision floats, with limits for untrusted input.

#[derive(Debug, Clone, PartialEq)]
pub enum Cbor {
    Uint(u64),
    /// A negative integer `-1 - n`.
    Nint(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(Cbor, Cbor)>),
    Tag(u64, Box<Cbor>),
    Bool(bool),
    Null,
    Undefined,
    Float(f64),
}

const MAX_DEPTH: usize = 64;

pub fn decode(input: &[u8]) -> Result<Cbor, String> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.item(0)?;
    if d.pos != input.len() {
        return Err(format!(
            "trailing bytes after CBOR item at offset {}",
            d.pos
        ));
    }
    Ok(v)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or("unexpected end of CBOR input")?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let n = usize::try_from(n).map_err(|_| "CBOR length too large")?;
        if self.input.len() - self.pos < n {
            return Err("CBOR length exceeds input".into());
        }
        let s = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn argument(&mut self, info: u8) -> Result<Option<u64>, String> {
        Ok(Some(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(
                self.take(2)?.try_into().unwrap_or_default(),
            )),
            26 => u64::from(u32::from_be_bytes(
                self.take(4)?.try_into().unwrap_or_default(),
            )),
            27 => u64::from_be_bytes(self.take(8)?.try_into().unwrap_or_default()),
            31 => return Ok(None),
            _ => return Err(format!("reserved CBOR additional info {info}")),
        }))
    }

    fn is_break(&mut self) -> bool {
        if self.input.get(self.pos) == Some(&0xff) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Bounds a declared element count by what the remaining input could hold.
    fn count(&self, n: u64) -> Result<usize, String> {
        if n > (self.input.len() - self.pos) as u64 {
            return Err("CBOR count exceeds input".into());
        }
        Ok(n as usize)
    }

    fn chunks(&mut self, major: u8) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        loop {
            if self.is_break() {
                return Ok(out);
            }
            let b = self.byte()?;
            if b >> 5 != major {
                return Err("mismatched chunk in indefinite-length string".into());
            }
            let n = self
                .argument(b & 0x1f)?
                .ok_or("nested indefinite-length string")?;
            out.extend_from_slice(self.take(n)?);
        }
    }

    fn item(&mut self, depth: usize) -> Result<Cbor, String> {
        if depth > MAX_DEPTH {
            return Err("CBOR nested too deeply".into());
        }
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 0x1f);
        match major {
            0 => Ok(Cbor::Uint(
                self.argument(info)?.ok_or("indefinite integer")?,
            )),
            1 => Ok(Cbor::Nint(
                self.argument(info)?.ok_or("indefinite integer")?,
            )),
            2 | 3 => {
                let bytes = match self.argument(info)? {
                    Some(n) => self.take(n)?.to_vec(),
                    None => self.chunks(major)?,
                };
                if major == 2 {
                    Ok(Cbor::Bytes(bytes))
                } else {
                    String::from_utf8(bytes)
                        .map(Cbor::Text)
                        .map_err(|_| "invalid UTF-8 in CBOR text".into())
                }
            }
            4 => {
                let mut items = Vec::new();
                match self.argument(info)? {
                    Some(n) => {
                        let n = self.count(n)?;
                        items.reserve(n);
                        for _ in 0..n {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    None => {
                        while !self.is_break() {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Ok(Cbor::Array(items))
            }
            5 => {
                let mut entries = Vec::new();
                match self.argument(info)? {
                    Some(n) => {
                        let n = self.count(n)?;
                        entries.reserve(n);
                        for _ in 0..n {
                            entries.push((self.item(depth + 1)?, self.item(depth + 1)?));
                        }
                    }
                    None => {
                        while !self.is_break() {
                            entries.push((self.item(depth + 1)?, self.item(depth + 1)?));
                        }
                    }
                }
                Ok(Cbor::Map(entries))
            }
            6 => {
                let tag = self.argument(info)?.ok_or("indefinite tag")?;
                Ok(Cbor::Tag(tag, Box::new(self.item(depth + 1)?)))
            }
            _ => match info {
                20 => Ok(Cbor::Bool(false)),
                21 => Ok(Cbor::Bool(true)),
                22 => Ok(Cbor::Null),
                23 => Ok(Cbor::Undefined),
                25 => {
                    let bits = u16::from_be_bytes(self.take(2)?.try_into().unwrap_or_default());
                    Ok(Cbor::Float(half_to_f64(bits)))
                }
                26 => Ok(Cbor::Float(f64::from(f32::from_be_bytes(
                    self.take(4)?.try_into().unwrap_or_default(),
                )))),
                27 => Ok(Cbor::Float(f64::from_be_bytes(
                    self.take(8)?.try_into().unwrap_or_default(),
                ))),
                31 => Err("unexpected CBOR break".into()),
                _ => Err(format!("unsupported CBOR simple value {info}")),
            },
        }
    }
}

fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (bits >> 10) & 0x1f;
    let frac = f64::from(bits & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => (1.0 + frac / 1024.0) * 2f64.powi(i32::from(e) - 15),
    }
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub fn encode(v: &Cbor, out: &mut Vec<u8>) {
    match v {
        Cbor::Uint(n) => head(out, 0, *n),
        Cbor::Nint(n) => head(out, 1, *n),
        Cbor::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Cbor::Text(s) => {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Cbor::Array(items) => {
            head(out, 4, items.len() as u64);
            items.iter().for_each(|i| encode(i, out));
        }
        Cbor::Map(entries) => {
            head(out, 5, entries.len() as u64);
            for (k, v) in entries {
                encode(k, out);
                encode(v, out);
            }
        }
        Cbor::Tag(t, inner) => {
            head(out, 6, *t);
            encode(inner, out);
        }
        Cbor::Bool(false) => out.push(0xf4),
        Cbor::Bool(true) => out.push(0xf5),
        Cbor::Null => out.push(0xf6),
        Cbor::Undefined => out.push(0xf7),
        Cbor::Float(f) => {
            // Single precision when lossless keeps payloads small, as the SDKs do.
            let single = *f as f32;
            if f64::from(single) == *f || f.is_nan() {
                out.push(0xfa);
                out.extend_from_slice(&single.to_be_bytes());
            } else {
                out.push(0xfb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v = Cbor::Map(vec![
            (
                Cbor::Text("a".into()),
                Cbor::Array(vec![
                    Cbor::Uint(1),
                    Cbor::Nint(0),
                    Cbor::Uint(300),
                    Cbor::Uint(u64::MAX),
                ]),
            ),
            (
                Cbor::Text("b".into()),
                Cbor::Tag(1, Box::new(Cbor::Float(1.5))),
            ),
            (Cbor::Text("c".into()), Cbor::Bytes(vec![0, 1, 2])),
            (Cbor::Text("d".into()), Cbor::Float(0.1)),
            (Cbor::Text("e".into()), Cbor::Bool(true)),
            (Cbor::Text("f".into()), Cbor::Null),
        ]);
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(decode(&out).unwrap(), v);
    }

    #[test]
    fn decodes_indefinite_and_half() {
        // {_ "a": [_ 1, 2], "b": (_ h'01', h'02')} and half-precision 1.5
        let bytes = [
            0xbf, 0x61, 0x61, 0x9f, 0x01, 0x02, 0xff, 0x61, 0x62, 0x5f, 0x41, 0x01, 0x41, 0x02,
            0xff, 0xff,
        ];
        let v = decode(&bytes).unwrap();
        assert_eq!(
            v,
            Cbor::Map(vec![
                (
                    Cbor::Text("a".into()),
                    Cbor::Array(vec![Cbor::Uint(1), Cbor::Uint(2)])
                ),
                (Cbor::Text("b".into()), Cbor::Bytes(vec![1, 2])),
            ])
        );
        assert_eq!(decode(&[0xf9, 0x3e, 0x00]).unwrap(), Cbor::Float(1.5));
        assert_eq!(
            decode(&[0xf9, 0x7c, 0x00]).unwrap(),
            Cbor::Float(f64::INFINITY)
        );
    }

    #[test]
    fn rejects_hostile_input() {
        assert!(decode(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&[0x5a, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode(&vec![0x81; 10_000]).is_err());
        assert!(decode(&[0x01, 0x02]).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x62, 0xff, 0xfe]).is_err());
    }
}
