//! The payloads of SageMaker's XGBoost container: rows from `text/csv`, `text/libsvm` and
//! `application/x-recordio-protobuf`, and numbers written the way its Python responses write
//! them.

/// Rows of a `text/csv` payload: one per non-empty line, comma-separated numbers, an empty
/// field being a missing value. Every row must have as many fields as the first.
pub fn csv(text: &str) -> Result<Vec<Vec<f32>>, String> {
    let mut rows = Vec::new();
    let mut width = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let row = line
            .split(',')
            .map(|f| {
                let f = f.trim();
                if f.is_empty() {
                    Ok(f32::NAN)
                } else {
                    f.parse::<f32>()
                        .map_err(|_| format!("could not convert string to float: '{f}'"))
                }
            })
            .collect::<Result<Vec<f32>, String>>()?;
        match width {
            None => width = Some(row.len()),
            Some(w) if w != row.len() => {
                return Err(format!(
                    "line {}: expected {w} fields, saw {}",
                    n + 1,
                    row.len()
                ));
            }
            _ => {}
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Rows of a `text/libsvm` payload: `[label] index:value ...` per line; features a line does
/// not name are missing, and a leading label (a token without `:`) is ignored.
pub fn libsvm(text: &str) -> Result<Vec<Vec<f32>>, String> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut row = Vec::new();
        for token in line.split_whitespace() {
            let Some((index, value)) = token.split_once(':') else {
                continue;
            };
            let index: usize = index
                .parse()
                .map_err(|_| format!("invalid feature index '{index}'"))?;
            let value: f32 = value
                .parse()
                .map_err(|_| format!("could not convert string to float: '{value}'"))?;
            if index > 1_000_000 {
                return Err(format!("feature index {index} is too large"));
            }
            if row.len() <= index {
                row.resize(index + 1, f32::NAN);
            }
            row[index] = value;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Rows of an `application/x-recordio-protobuf` payload: MXNet RecordIO records
/// ([`basalt_recordio`]), each a SageMaker
/// `aialgs.data.Record` protobuf whose `values` feature is a float32, float64 or int32 tensor,
/// dense, or sparse with `keys` (and `shape`), features it does not name being missing.
///
/// A sparse row is as wide as its keys and shape say, at most `max_width` (the model's
/// features and one): a few bytes of payload cannot make the server allocate rows of a
/// million features each.
pub fn recordio_protobuf(data: &[u8], max_width: usize) -> Result<Vec<Vec<f32>>, String> {
    let mut rows = Vec::new();
    for record in basalt_recordio::read(data).map_err(|e| e.to_string())? {
        let mut row = None;
        for field in Fields(&record.data) {
            let (1, Wire::Bytes(entry)) = field? else {
                continue; // labels, uid, metadata
            };
            let (mut name, mut value) = ("", None);
            for f in Fields(entry) {
                match f? {
                    (1, Wire::Bytes(b)) => {
                        name = std::str::from_utf8(b).map_err(|_| "a feature name is not UTF-8")?
                    }
                    (2, Wire::Bytes(b)) => value = Some(b),
                    _ => {}
                }
            }
            if name == "values" {
                row = Some(tensor_row(value.unwrap_or_default(), max_width)?);
            }
        }
        rows.push(row.ok_or("a record has no 'values' feature")?);
    }
    Ok(rows)
}

/// A `Value`'s tensor as a row: its values, placed at its keys when it has some.
fn tensor_row(value: &[u8], max_width: usize) -> Result<Vec<f32>, String> {
    let (mut values, mut keys, mut shape) = (Vec::new(), Vec::new(), Vec::new());
    for f in Fields(value) {
        let (kind, Wire::Bytes(tensor)) = f? else {
            continue;
        };
        if !matches!(kind, 2 | 3 | 7) {
            return Err("only float32, float64 and int32 tensors can be scored".into());
        }
        for t in Fields(tensor) {
            match (t?, kind) {
                ((1, Wire::Bytes(b)), 2) => values.extend(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
                ((1, Wire::Fixed32(v)), 2) => values.push(f32::from_bits(v)),
                ((1, Wire::Bytes(b)), 3) => values.extend(
                    b.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32),
                ),
                ((1, Wire::Fixed64(v)), 3) => values.push(f64::from_bits(v) as f32),
                ((1, Wire::Bytes(b)), 7) => {
                    values.extend(varints(b)?.into_iter().map(|v| v as i64 as i32 as f32))
                }
                ((1, Wire::Varint(v)), 7) => values.push(v as i64 as i32 as f32),
                ((2, Wire::Bytes(b)), _) => keys.extend(varints(b)?),
                ((2, Wire::Varint(v)), _) => keys.push(v),
                ((3, Wire::Bytes(b)), _) => shape.extend(varints(b)?),
                ((3, Wire::Varint(v)), _) => shape.push(v),
                _ => {}
            }
        }
    }
    if keys.is_empty() {
        return Ok(values);
    }
    if keys.len() != values.len() {
        return Err(format!(
            "a sparse tensor has {} keys for {} values",
            keys.len(),
            values.len()
        ));
    }
    // Bounded before any arithmetic: keys and shape are whatever the payload says.
    let max_width = max_width.min(1_000_000) as u64;
    let last_key = keys.iter().copied().max().unwrap_or(0);
    let declared = shape.last().copied().unwrap_or(0);
    if last_key >= max_width || declared > max_width {
        return Err(format!(
            "feature index {} is too large",
            last_key.max(declared.saturating_sub(1))
        ));
    }
    let width = declared.max(last_key + 1);
    let mut row = vec![f32::NAN; width as usize];
    for (k, v) in keys.into_iter().zip(values) {
        row[k as usize] = v;
    }
    Ok(row)
}

/// A protobuf field's value by wire type.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of a protobuf message, in order: (number, value).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Wire<'a>), String> {
        let key = varint(&mut self.0)?;
        let truncated = || "a truncated protobuf message".to_owned();
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut self.0)?),
            1 => {
                let (b, rest) = self.0.split_first_chunk::<8>().ok_or_else(truncated)?;
                self.0 = rest;
                Wire::Fixed64(u64::from_le_bytes(*b))
            }
            2 => {
                let len = usize::try_from(varint(&mut self.0)?).map_err(|_| truncated())?;
                if len > self.0.len() {
                    return Err(truncated());
                }
                let (b, rest) = self.0.split_at(len);
                self.0 = rest;
                Wire::Bytes(b)
            }
            5 => {
                let (b, rest) = self.0.split_first_chunk::<4>().ok_or_else(truncated)?;
                self.0 = rest;
                Wire::Fixed32(u32::from_le_bytes(*b))
            }
            w => {
                // Stop here: what follows cannot be found without the field's length.
                self.0 = &[];
                return Err(format!("unsupported protobuf wire type {w}"));
            }
        };
        Ok((key >> 3, value))
    }
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut result = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or("a truncated protobuf varint")?;
        *buf = rest;
        result |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(result);
        }
    }
    Err("a protobuf varint longer than 10 bytes".into())
}

/// The varints of a packed repeated field.
fn varints(mut b: &[u8]) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        out.push(varint(&mut b)?);
    }
    Ok(out)
}

/// `repr()` of the Python float holding `x`: the shortest digits that read back as `x`, in
/// positional notation for exponents from -4 to 15 and scientific (`1e-05`, `1.5e+16`)
/// outside, as the container's `str(prediction)` writes them.
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e-5".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}.0",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_with_missing_fields() {
        let rows = csv("1,2.5,\n\n3,,4\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][..2], [1.0, 2.5]);
        assert!(rows[0][2].is_nan() && rows[1][1].is_nan());
        assert!(csv("1,a").unwrap_err().contains("'a'"));
        assert!(csv("1,2\n3").unwrap_err().contains("expected 2 fields"));
    }

    #[test]
    fn libsvm_rows_are_sparse() {
        let rows = libsvm("1 0:1.5 3:2\n0:4").unwrap();
        assert_eq!(rows[0].len(), 4);
        assert_eq!((rows[0][0], rows[0][3]), (1.5, 2.0));
        assert!(rows[0][1].is_nan());
        assert_eq!(rows[1], vec![4.0]);
        assert!(libsvm("1 x:2").is_err());
    }

    /// A Record with a float32 `values` feature (dense, or sparse with keys and shape) and a
    /// float32 label, encoded as protobuf lays it out (checked against protobuf's own encoder
    /// through tests/compat/recordpb.py in the compatibility suite).
    fn record(values: &[f32], keys: &[u64], shape: &[u64]) -> Vec<u8> {
        fn len_field(out: &mut Vec<u8>, number: u8, body: &[u8]) {
            out.push(number << 3 | 2);
            let mut n = body.len();
            while n >= 0x80 {
                out.push((n as u8 & 0x7f) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
            out.extend_from_slice(body);
        }
        let packed = |xs: &[u64]| -> Vec<u8> {
            let mut out = Vec::new();
            for &x in xs {
                let mut x = x;
                while x >= 0x80 {
                    out.push((x as u8 & 0x7f) | 0x80);
                    x >>= 7;
                }
                out.push(x as u8);
            }
            out
        };
        let mut tensor = Vec::new();
        let floats: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        len_field(&mut tensor, 1, &floats);
        if !keys.is_empty() {
            len_field(&mut tensor, 2, &packed(keys));
            len_field(&mut tensor, 3, &packed(shape));
        }
        let mut value = Vec::new();
        len_field(&mut value, 2, &tensor);
        let mut entry = Vec::new();
        len_field(&mut entry, 1, b"values");
        len_field(&mut entry, 2, &value);
        let mut rec = Vec::new();
        len_field(&mut rec, 1, &entry);
        len_field(&mut rec, 2, &entry); // the label map, ignored
        len_field(&mut rec, 3, b"uid-1");
        rec
    }

    fn framed(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            basalt_recordio::write(&mut out, r).unwrap();
        }
        out
    }

    #[test]
    fn recordio_protobuf_rows_dense_and_sparse() {
        let data = framed(&[
            record(&[1.5, -2.0, 0.25], &[], &[]),
            record(&[4.0, 9.0], &[1, 5], &[8]),
        ]);
        let rows = recordio_protobuf(&data, 1_000_000).unwrap();
        assert_eq!(rows[0], vec![1.5, -2.0, 0.25]);
        assert_eq!(rows[1].len(), 8);
        assert_eq!((rows[1][1], rows[1][5]), (4.0, 9.0));
        assert!(rows[1][0].is_nan() && rows[1][7].is_nan());
        assert!(
            recordio_protobuf(b"1,2,3\n", 100)
                .unwrap_err()
                .contains("not RecordIO")
        );
        assert!(recordio_protobuf(&framed(&[b"\x0a\xff".to_vec()]), 100).is_err());
        // Keys and shapes past any model's width are refused, not allocated or indexed.
        for (keys, shape) in [(&[u64::MAX][..], &[4u64][..]), (&[1], &[u64::MAX])] {
            let e = recordio_protobuf(&framed(&[record(&[1.0], keys, shape)]), 100).unwrap_err();
            assert!(e.contains("too large"), "{e}");
        }
        assert!(
            recordio_protobuf(&framed(&[vec![0x1a, 1, b'x']]), 100)
                .unwrap_err()
                .contains("no 'values'")
        );
    }

    #[test]
    fn floats_read_as_python_writes_them() {
        for (x, want) in [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (-2.0, "-2.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456.789, "123456.789"),
            (1e16, "1e+16"),
            (1.2345678901234567e17, "1.2345678901234566e+17"),
            (1e15, "1000000000000000.0"),
            (f64::from(0.9654321f32), "0.9654321074485779"),
            (0.0, "0.0"),
        ] {
            assert_eq!(python_float(x), want, "{x}");
        }
    }
}
