//! Universal Binary JSON (ubjson.org, draft 12), as XGBoost writes it
//! (`save_model("….ubj")`, the default format of XGBoost 2): big-endian numbers, strings
//! and keys prefixed by their length, and the optimized containers (`$` type and `#`
//! count) it uses for its long arrays of floats and integers. The result is the document
//! the JSON format holds, so one reader serves both.

use serde_json::{Map, Number, Value};

/// Deepest nesting accepted: an XGBoost model nests a few levels; a hostile file must not
/// exhaust the stack.
const MAX_DEPTH: usize = 64;

pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader { bytes, at: 0 };
    let marker = r.byte()?;
    let v = r.value(marker, 0)?;
    Ok(v)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("the data ends inside a value at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// An integer of the type `marker` (a length or a count).
    fn int(&mut self, marker: u8) -> Result<i64, String> {
        Ok(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.array()?)),
            b'U' => i64::from(self.byte()?),
            b'I' => i64::from(i16::from_be_bytes(self.array()?)),
            b'l' => i64::from(i32::from_be_bytes(self.array()?)),
            b'L' => i64::from_be_bytes(self.array()?),
            other => return Err(format!("{:?} is not an integer type", other as char)),
        })
    }

    fn length(&mut self) -> Result<usize, String> {
        let marker = self.byte()?;
        let n = self.int(marker)?;
        let n = usize::try_from(n).map_err(|_| format!("negative length {n}"))?;
        // Every element takes at least one byte: a longer count is a corrupt file, not a
        // reason to allocate.
        if n > self.bytes.len() - self.at.min(self.bytes.len()) {
            return Err(format!("a length of {n} runs past the end of the data"));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.length()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".to_owned())
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("the document nests too deeply".into());
        }
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.int(marker)?),
            b'd' => float(f64::from(f32::from_be_bytes(self.array()?))),
            b'D' => float(f64::from_be_bytes(self.array()?)),
            b'C' => Value::String(char::from(self.byte()?).to_string()),
            b'S' => Value::String(self.string()?),
            b'H' => {
                let digits = self.string()?;
                serde_json::from_str::<Number>(&digits)
                    .map(Value::Number)
                    .map_err(|_| format!("{digits:?} is not a number"))?
            }
            b'[' => self.array_value(depth)?,
            b'{' => self.object(depth)?,
            other => return Err(format!("unknown type marker {:?}", other as char)),
        })
    }

    /// The `$` type and `#` count of an optimized container, if it has them.
    fn header(&mut self) -> Result<(Option<u8>, Option<usize>), String> {
        let mut ty = None;
        if self.peek() == Some(b'$') {
            self.at += 1;
            let t = self.byte()?;
            // Elements of these types take no bytes, so a count could not be checked
            // against the data left (and XGBoost never writes them).
            if matches!(t, b'Z' | b'T' | b'F' | b'N') {
                return Err(format!("a container typed {:?} is not accepted", t as char));
            }
            ty = Some(t);
            if self.peek() != Some(b'#') {
                return Err("a typed container has no count".into());
            }
        }
        let count = if self.peek() == Some(b'#') {
            self.at += 1;
            let n = self.length()?;
            let width = match ty {
                Some(b'I') => 2,
                Some(b'l' | b'd') => 4,
                Some(b'L' | b'D') => 8,
                _ => 1,
            };
            if n.saturating_mul(width) > self.bytes.len() - self.at {
                return Err(format!("a count of {n} runs past the end of the data"));
            }
            Some(n)
        } else {
            None
        };
        Ok((ty, count))
    }

    fn array_value(&mut self, depth: usize) -> Result<Value, String> {
        let (ty, count) = self.header()?;
        let mut out = Vec::with_capacity(count.unwrap_or(0));
        match count {
            Some(n) => {
                for _ in 0..n {
                    let marker = match ty {
                        Some(t) => t,
                        None => self.byte()?,
                    };
                    out.push(self.value(marker, depth + 1)?);
                }
            }
            None => loop {
                match self.byte()? {
                    b']' => break,
                    b'N' => continue,
                    marker => out.push(self.value(marker, depth + 1)?),
                }
            },
        }
        Ok(Value::Array(out))
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        let (ty, count) = self.header()?;
        let mut out = Map::new();
        let mut entry = |r: &mut Self| -> Result<(), String> {
            let key = r.string()?;
            let marker = match ty {
                Some(t) => t,
                None => r.byte()?,
            };
            let v = r.value(marker, depth + 1)?;
            out.insert(key, v);
            Ok(())
        };
        match count {
            Some(n) => {
                for _ in 0..n {
                    entry(self)?;
                }
            }
            None => loop {
                match self.peek() {
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    Some(b'N') => self.at += 1,
                    Some(_) => entry(self)?,
                    None => return Err("the data ends inside an object".into()),
                }
            },
        }
        Ok(Value::Object(out))
    }
}

/// A float as JSON holds it (NaN and infinities, which JSON cannot, as null).
fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_strings_and_containers() {
        // {"a": [1, 2.5f32], "b": "xy", "c": true} with a typed int8 array and one plain.
        let mut doc = vec![b'{'];
        doc.extend([b'i', 1, b'a', b'[', b'$', b'i', b'#', b'i', 2, 1, 2]);
        doc.extend([b'i', 1, b'b', b'S', b'i', 2, b'x', b'y']);
        doc.extend([b'i', 1, b'c', b'T']);
        doc.extend([b'i', 1, b'd', b'[', b'd']);
        doc.extend(2.5f32.to_be_bytes());
        doc.extend([b'L']);
        doc.extend((-7i64).to_be_bytes());
        doc.extend([b']', b'}']);
        assert_eq!(
            parse(&doc).unwrap(),
            json!({"a": [1, 2], "b": "xy", "c": true, "d": [2.5, -7]})
        );
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        for bad in [
            &b"{i"[..],
            b"{i\x05ab",
            b"[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff",
            b"[#i\xff",
            b"Q",
            b"{i\x01aS\x01",
            b"[$i]",
            b"[$Z#l\x7f\xff\xff\xff",
            b"[$d#i\x03\0\0\0\0",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep: Vec<u8> = std::iter::repeat_n(b'[', 10_000).collect();
        assert!(parse(&deep).is_err());
    }
}
