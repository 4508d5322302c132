//! The payloads of SageMaker's XGBoost container: rows from `text/csv` and `text/libsvm`,
//! and numbers written the way its Python responses write them.

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
