//! Distributed Map ItemReader: turning what the host fetched into the list of items.
//!
//! The host performs the reader's Task effect (`arn:aws:states:::s3:getObject` or
//! `arn:aws:states:::s3:listObjectsV2`, with the resolved Parameters) and reports as output:
//! - for `getObject`: the object's body as a JSON string, or `{"Body": "<text>"}`;
//! - for `listObjectsV2`: the ListObjectsV2 result, `{"Contents": [{"Key", "Size", ...}]}`,
//!   every page concatenated.
//!
//! ReaderConfig.InputType says how a body is read: `JSON` (an array), `JSONL` (one value per
//! line), `CSV` (headers in the first row, or given by `CSVHeaders` with
//! `CSVHeaderLocation: GIVEN`; `CSVDelimiter` COMMA, PIPE, SEMICOLON, SPACE or TAB); each CSV
//! row becomes an object of strings. `MaxItems` keeps the first items.
//! <https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html>

use serde_json::{Map, Value};

pub(crate) fn items(resource: &str, config: &Value, fetched: Value) -> Result<Vec<Value>, String> {
    let max = config
        .get("MaxItems")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let mut out = if resource.ends_with("listObjectsV2") {
        match fetched.get("Contents") {
            Some(Value::Array(a)) => a.clone(),
            None => Vec::new(),
            Some(_) => return Err("the S3 listing's Contents is not an array".into()),
        }
    } else {
        let body = match &fetched {
            Value::String(s) => s.clone(),
            Value::Object(m) => match m.get("Body") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return Err("the reader's result has no Body".into()),
            },
            other => other.to_string(),
        };
        let input_type = config
            .get("InputType")
            .and_then(Value::as_str)
            .unwrap_or("JSON");
        match input_type {
            "JSON" => match serde_json::from_str::<Value>(&body) {
                Ok(Value::Array(a)) => a,
                Ok(_) => return Err("Attempting to map over non-iterable node.".into()),
                Err(e) => return Err(format!("the object is not valid JSON: {e}")),
            },
            "JSONL" => body
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l)
                        .map_err(|e| format!("a JSONL line is not valid JSON: {e}"))
                })
                .collect::<Result<_, _>>()?,
            "CSV" => csv(&body, config)?,
            other => return Err(format!("InputType {other} is not supported")),
        }
    };
    if let Some(m) = max {
        out.truncate(m);
    }
    Ok(out)
}

fn csv(body: &str, config: &Value) -> Result<Vec<Value>, String> {
    let delim = match config
        .get("CSVDelimiter")
        .and_then(Value::as_str)
        .unwrap_or("COMMA")
    {
        "COMMA" => ',',
        "PIPE" => '|',
        "SEMICOLON" => ';',
        "SPACE" => ' ',
        "TAB" => '\t',
        other => return Err(format!("CSVDelimiter {other} is not supported")),
    };
    let mut rows = parse_csv(body, delim);
    let headers: Vec<String> = match config
        .get("CSVHeaderLocation")
        .and_then(Value::as_str)
        .unwrap_or("FIRST_ROW")
    {
        "GIVEN" => config
            .get("CSVHeaders")
            .and_then(Value::as_array)
            .ok_or("CSVHeaders are required when CSVHeaderLocation is GIVEN")?
            .iter()
            .map(|h| h.as_str().unwrap_or_default().to_string())
            .collect(),
        _ => {
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            rows.remove(0)
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut m = Map::new();
            for (i, h) in headers.iter().enumerate() {
                m.insert(
                    h.clone(),
                    Value::String(r.get(i).cloned().unwrap_or_default()),
                );
            }
            Value::Object(m)
        })
        .collect())
}

/// RFC 4180: quoted fields may hold delimiters, newlines and doubled quotes.
fn parse_csv(text: &str, delim: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            c if c == delim => row.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_with_first_row_and_given_headers() {
        let body = "name,age\n\"Smith, J\",42\nLee,\"7\"\n";
        assert_eq!(
            items(
                "arn:aws:states:::s3:getObject",
                &json!({"InputType": "CSV"}),
                json!(body)
            )
            .unwrap(),
            vec![
                json!({"name": "Smith, J", "age": "42"}),
                json!({"name": "Lee", "age": "7"})
            ]
        );
        let cfg = json!({"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a", "b"], "MaxItems": 1});
        assert_eq!(
            items(
                "arn:aws:states:::s3:getObject",
                &cfg,
                json!({"Body": "1,2\n3,4"})
            )
            .unwrap(),
            vec![json!({"a": "1", "b": "2"})]
        );
    }

    #[test]
    fn json_jsonl_and_listings() {
        let r = "arn:aws:states:::s3:getObject";
        assert_eq!(
            items(r, &json!({"InputType": "JSON"}), json!("[1, {\"a\": 2}]")).unwrap(),
            vec![json!(1), json!({"a": 2})]
        );
        assert_eq!(
            items(
                r,
                &json!({"InputType": "JSONL"}),
                json!("{\"a\":1}\n\n{\"a\":2}\n")
            )
            .unwrap(),
            vec![json!({"a": 1}), json!({"a": 2})]
        );
        assert!(items(r, &json!({"InputType": "JSON"}), json!("{\"a\": 1}")).is_err());
        let listing =
            json!({"Contents": [{"Key": "a.txt", "Size": 1}, {"Key": "b.txt", "Size": 2}]});
        assert_eq!(
            items("arn:aws:states:::s3:listObjectsV2", &Value::Null, listing)
                .unwrap()
                .len(),
            2
        );
    }
}
