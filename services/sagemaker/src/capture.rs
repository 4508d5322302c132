//! Data capture: with an endpoint's DataCaptureConfig, a sample of InvokeEndpoint's requests
//! (InitialSamplingPercentage) is recorded as Model Monitor reads it, one JSON line per
//! request, under `{DestinationS3Uri}/{endpoint}/{variant}/{yyyy}/{mm}/{dd}/{hh}/`:
//!
//! ```json
//! {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
//!   "data": "1,2,3", "encoding": "CSV"}, "endpointOutput": {...}},
//!  "eventMetadata": {"eventId": "...", "inferenceTime": "2024-05-01T10:00:00Z"},
//!  "eventVersion": "0"}
//! ```
//!
//! The data is text where CaptureContentTypeHeader lists its content type (CSV, JSON) and
//! base64 otherwise. Records gather in memory and are written as one `.jsonl` object per
//! endpoint, variant and hour every metrics window, as SageMaker writes its capture files
//! every few minutes; records a node had not written when it died are lost, as on AWS.

use crate::Core;
use crate::records::format_ms;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// (account, destination URI, endpoint, variant).
type Key = (String, String, String, String);

#[derive(Default)]
pub(crate) struct Captures {
    pending: parking_lot::Mutex<HashMap<Key, Vec<(i64, String)>>>,
}

/// One request as it was answered.
pub(crate) struct Exchange<'a> {
    pub account: &'a str,
    pub endpoint: &'a str,
    pub variant: &'a str,
    pub input: &'a [u8],
    pub input_type: Option<&'a str>,
    pub output: &'a [u8],
    pub output_type: &'a str,
    pub inference_id: Option<&'a str>,
    pub now_ms: i64,
}

fn encoded(config: &Value, content_type: &str, data: &[u8], mode: &str) -> Value {
    let header = &config["CaptureContentTypeHeader"];
    let listed = |list: &str| {
        header[list].as_array().into_iter().flatten().any(|t| {
            t.as_str()
                .is_some_and(|t| content_type.split(';').next().unwrap_or("").trim() == t)
        })
    };
    let (encoding, data) = match std::str::from_utf8(data) {
        Ok(text) if listed("CsvContentTypes") => ("CSV", text.to_owned()),
        Ok(text) if listed("JsonContentTypes") => ("JSON", text.to_owned()),
        _ => (
            "BASE64",
            base64::engine::general_purpose::STANDARD.encode(data),
        ),
    };
    json!({"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding})
}

impl Captures {
    /// Records the exchange when the endpoint captures and the sample takes it (`draw` in
    /// [0, 1)).
    pub(crate) fn offer(&self, config: &Value, draw: f64, x: Exchange<'_>) {
        if !config.is_object() || config["EnableCapture"].as_bool() == Some(false) {
            return;
        }
        let percentage = config["InitialSamplingPercentage"].as_f64().unwrap_or(0.0);
        if draw * 100.0 >= percentage {
            return;
        }
        let Some(destination) = config["DestinationS3Uri"].as_str() else {
            return;
        };
        let modes: Vec<&str> = config["CaptureOptions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o["CaptureMode"].as_str())
            .collect();
        let mut data = serde_json::Map::new();
        if modes.contains(&"Input") {
            data.insert(
                "endpointInput".into(),
                encoded(
                    config,
                    x.input_type.unwrap_or("application/octet-stream"),
                    x.input,
                    "INPUT",
                ),
            );
        }
        if modes.contains(&"Output") {
            data.insert(
                "endpointOutput".into(),
                encoded(config, x.output_type, x.output, "OUTPUT"),
            );
        }
        let mut metadata = json!({
            "eventId": uuid::Uuid::new_v4().to_string(),
            "inferenceTime": format_ms(x.now_ms, "%Y-%m-%dT%H:%M:%S%.3fZ"),
        });
        if let Some(id) = x.inference_id {
            metadata["inferenceId"] = id.into();
        }
        let line = json!({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"});
        self.pending
            .lock()
            .entry((
                x.account.to_owned(),
                destination.trim_end_matches('/').to_owned(),
                x.endpoint.to_owned(),
                x.variant.to_owned(),
            ))
            .or_default()
            .push((x.now_ms, line.to_string()));
    }

    /// Writes what gathered: one object per endpoint, variant and hour.
    pub(crate) async fn flush(&self, core: &Arc<Core>) {
        let pending = std::mem::take(&mut *self.pending.lock());
        for ((account, destination, endpoint, variant), lines) in pending {
            let Some((bucket, prefix)) = basalt_core::objects::parse_s3_uri(&destination) else {
                continue;
            };
            let mut by_hour: std::collections::BTreeMap<String, (i64, String)> = Default::default();
            for (ms, line) in lines {
                let hour = format_ms(ms, "%Y/%m/%d/%H");
                let e = by_hour.entry(hour).or_insert((ms, String::new()));
                e.1.push_str(&line);
                e.1.push('\n');
            }
            for (hour, (first_ms, body)) in by_hour {
                let file = format!(
                    "{}-{}.jsonl",
                    format_ms(first_ms, "%M-%S-%3f"),
                    uuid::Uuid::new_v4()
                );
                let key = [
                    prefix.trim_end_matches('/'),
                    &endpoint,
                    &variant,
                    &hour,
                    &file,
                ]
                .iter()
                .filter(|p| !p.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("/");
                match core
                    .objects
                    .write(&account, bucket, &key, body.into_bytes())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(%endpoint, "data capture: the bucket {bucket} does not exist")
                    }
                    Err(e) => tracing::warn!(%endpoint, "data capture to s3://{bucket}/{key}: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(now_ms: i64) -> Exchange<'static> {
        Exchange {
            account: "a",
            endpoint: "e",
            variant: "v",
            input: b"1,2,3",
            input_type: Some("text/csv"),
            output: b"0.25",
            output_type: "text/csv; charset=utf-8",
            inference_id: None,
            now_ms,
        }
    }

    #[test]
    fn records_follow_the_configuration() {
        let c = Captures::default();
        let config = json!({"EnableCapture": true, "InitialSamplingPercentage": 50,
            "DestinationS3Uri": "s3://b/capture/", "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}});
        c.offer(&config, 0.7, exchange(0));
        assert!(c.pending.lock().is_empty(), "outside the 50 % sample");
        c.offer(&config, 0.2, exchange(1_714_557_600_000));
        let pending = c.pending.lock();
        let (key, lines) = pending.iter().next().unwrap();
        assert_eq!(key.1, "s3://b/capture");
        let record: Value = serde_json::from_str(&lines[0].1).unwrap();
        let data = &record["captureData"];
        assert_eq!(
            data["endpointInput"],
            json!({"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2,3", "encoding": "CSV"})
        );
        assert_eq!(data["endpointOutput"]["data"], "0.25");
        assert_eq!(data["endpointOutput"]["encoding"], "CSV");
        assert_eq!(
            record["eventMetadata"]["inferenceTime"],
            "2024-05-01T10:00:00.000Z"
        );
        assert_eq!(record["eventVersion"], "0");
    }

    #[test]
    fn unlisted_content_types_are_base64() {
        let c = Captures::default();
        let config = json!({"InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://b/p",
            "CaptureOptions": [{"CaptureMode": "Output"}]});
        c.offer(&config, 0.99, exchange(0));
        let pending = c.pending.lock();
        let record: Value = serde_json::from_str(&pending.values().next().unwrap()[0].1).unwrap();
        assert!(record["captureData"].get("endpointInput").is_none());
        assert_eq!(
            record["captureData"]["endpointOutput"]["encoding"],
            "BASE64"
        );
        assert_eq!(record["captureData"]["endpointOutput"]["data"], "MC4yNQ==");
    }
}
