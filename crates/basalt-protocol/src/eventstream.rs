//! AWS event-stream framing (`application/vnd.amazon.eventstream`): length-prefixed binary
//! messages with typed headers and CRC32 checksums, and the mapping of a service's output
//! events onto messages.

use crate::json::{self, Naming};
use crate::shapes::{B64, resolve};
use basalt_core::{AwsError, StreamEvent};
use basalt_spec::{ServiceModel, ShapeRef, ShapeType};
use base64::Engine;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("incomplete frame")]
    Incomplete,
    #[error("invalid frame: {0}")]
    Invalid(&'static str),
}

/// Prelude (total length, headers length, prelude CRC) plus the trailing message CRC.
const OVERHEAD: usize = 16;
/// The service limit: no message exceeds 16 MiB.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

impl Message {
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        match self.header(name) {
            Some(HeaderValue::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            headers.push(name.len() as u8);
            headers.extend_from_slice(name.as_bytes());
            match value {
                HeaderValue::Bool(true) => headers.push(0),
                HeaderValue::Bool(false) => headers.push(1),
                HeaderValue::Byte(b) => {
                    headers.push(2);
                    headers.push(*b as u8);
                }
                HeaderValue::Int16(v) => {
                    headers.push(3);
                    headers.extend_from_slice(&v.to_be_bytes());
                }
                HeaderValue::Int32(v) => {
                    headers.push(4);
                    headers.extend_from_slice(&v.to_be_bytes());
                }
                HeaderValue::Int64(v) => {
                    headers.push(5);
                    headers.extend_from_slice(&v.to_be_bytes());
                }
                HeaderValue::Bytes(b) => {
                    headers.push(6);
                    headers.extend_from_slice(&(b.len() as u16).to_be_bytes());
                    headers.extend_from_slice(b);
                }
                HeaderValue::String(s) => {
                    headers.push(7);
                    headers.extend_from_slice(&(s.len() as u16).to_be_bytes());
                    headers.extend_from_slice(s.as_bytes());
                }
                HeaderValue::Timestamp(ms) => {
                    headers.push(8);
                    headers.extend_from_slice(&ms.to_be_bytes());
                }
                HeaderValue::Uuid(u) => {
                    headers.push(9);
                    headers.extend_from_slice(u);
                }
            }
        }
        let total = OVERHEAD + headers.len() + self.payload.len();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32fast::hash(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(&headers);
        out.extend_from_slice(&self.payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes one message from the front of `buf`, returning it and the bytes consumed.
    pub fn decode(buf: &[u8]) -> Result<(Message, usize), FrameError> {
        if buf.len() < 12 {
            return Err(FrameError::Incomplete);
        }
        let total = u32::from_be_bytes(buf[0..4].try_into().unwrap_or_default()) as usize;
        let headers_len = u32::from_be_bytes(buf[4..8].try_into().unwrap_or_default()) as usize;
        if crc32fast::hash(&buf[0..8])
            != u32::from_be_bytes(buf[8..12].try_into().unwrap_or_default())
        {
            return Err(FrameError::Invalid("prelude checksum mismatch"));
        }
        if !(OVERHEAD..=MAX_MESSAGE).contains(&total) || headers_len > total - OVERHEAD {
            return Err(FrameError::Invalid("bad lengths"));
        }
        if buf.len() < total {
            return Err(FrameError::Incomplete);
        }
        if crc32fast::hash(&buf[..total - 4])
            != u32::from_be_bytes(buf[total - 4..total].try_into().unwrap_or_default())
        {
            return Err(FrameError::Invalid("message checksum mismatch"));
        }
        let mut h = &buf[12..12 + headers_len];
        let mut headers = Vec::new();
        let take = |h: &mut &[u8], n: usize| -> Result<Vec<u8>, FrameError> {
            if h.len() < n {
                return Err(FrameError::Invalid("truncated header"));
            }
            let (a, b) = h.split_at(n);
            *h = b;
            Ok(a.to_vec())
        };
        while !h.is_empty() {
            let name_len = take(&mut h, 1)?[0] as usize;
            let name = String::from_utf8(take(&mut h, name_len)?)
                .map_err(|_| FrameError::Invalid("header name"))?;
            let kind = take(&mut h, 1)?[0];
            let value = match kind {
                0 => HeaderValue::Bool(true),
                1 => HeaderValue::Bool(false),
                2 => HeaderValue::Byte(take(&mut h, 1)?[0] as i8),
                3 => HeaderValue::Int16(i16::from_be_bytes(
                    take(&mut h, 2)?.try_into().unwrap_or_default(),
                )),
                4 => HeaderValue::Int32(i32::from_be_bytes(
                    take(&mut h, 4)?.try_into().unwrap_or_default(),
                )),
                5 => HeaderValue::Int64(i64::from_be_bytes(
                    take(&mut h, 8)?.try_into().unwrap_or_default(),
                )),
                6 | 7 => {
                    let len = u16::from_be_bytes(take(&mut h, 2)?.try_into().unwrap_or_default())
                        as usize;
                    let bytes = take(&mut h, len)?;
                    if kind == 6 {
                        HeaderValue::Bytes(bytes)
                    } else {
                        HeaderValue::String(
                            String::from_utf8(bytes)
                                .map_err(|_| FrameError::Invalid("header string"))?,
                        )
                    }
                }
                8 => HeaderValue::Timestamp(i64::from_be_bytes(
                    take(&mut h, 8)?.try_into().unwrap_or_default(),
                )),
                9 => HeaderValue::Uuid(take(&mut h, 16)?.try_into().unwrap_or_default()),
                _ => return Err(FrameError::Invalid("header type")),
            };
            headers.push((name, value));
        }
        let payload = buf[12 + headers_len..total - 4].to_vec();
        Ok((Message { headers, payload }, total))
    }
}

fn s(v: &str) -> HeaderValue {
    HeaderValue::String(v.to_owned())
}

/// An exception message in the stream (`:message-type: exception`).
pub fn exception_message(err: &AwsError) -> Message {
    let mut body = Map::new();
    body.insert("message".into(), Value::String(err.message.clone()));
    body.extend(err.fields.clone());
    Message {
        headers: vec![
            (":message-type".into(), s("exception")),
            (":exception-type".into(), s(&err.code)),
            (":content-type".into(), s("application/json")),
        ],
        payload: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// Serializes one output event of the event-stream union `stream` (JSON-bodied protocols).
pub fn event_message(
    model: &ServiceModel,
    stream: &ShapeRef,
    ev: &StreamEvent,
) -> Result<Message, AwsError> {
    let union = resolve(model, stream)?;
    let Some(member) = union.members.get(&ev.name) else {
        return Err(AwsError::internal(format!(
            "{} is not an event of {}",
            ev.name, stream.shape
        )));
    };
    let event_shape = resolve(model, member)?;
    if event_shape.exception {
        let mut err = AwsError::new(
            400,
            ev.name.clone(),
            ev.value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        if let Value::Object(o) = &ev.value {
            err.fields = o
                .iter()
                .filter(|(k, _)| *k != "message")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        return Ok(exception_message(&err));
    }
    let mut headers = vec![
        (":message-type".to_owned(), s("event")),
        (":event-type".to_owned(), s(&ev.name)),
    ];
    let empty = Map::new();
    let doc = ev.value.as_object().unwrap_or(&empty);
    let mut payload = Vec::new();
    let mut content_type = "application/json";
    let mut body_members = Map::new();
    let mut explicit_payload = false;
    for (name, mref) in &event_shape.members {
        let Some(v) = doc.get(name) else { continue };
        let mshape = resolve(model, mref)?;
        if mref.eventheader {
            let hv = match (mshape.kind, v) {
                (ShapeType::Boolean, Value::Bool(b)) => HeaderValue::Bool(*b),
                (ShapeType::Byte, Value::Number(n)) => {
                    HeaderValue::Byte(n.as_i64().unwrap_or(0) as i8)
                }
                (ShapeType::Short, Value::Number(n)) => {
                    HeaderValue::Int16(n.as_i64().unwrap_or(0) as i16)
                }
                (ShapeType::Integer, Value::Number(n)) => {
                    HeaderValue::Int32(n.as_i64().unwrap_or(0) as i32)
                }
                (ShapeType::Long, Value::Number(n)) => HeaderValue::Int64(n.as_i64().unwrap_or(0)),
                (ShapeType::Blob, Value::String(b)) => {
                    HeaderValue::Bytes(B64.decode(b).unwrap_or_default())
                }
                (ShapeType::Timestamp, v) => HeaderValue::Timestamp(
                    (crate::timestamp::from_canonical(v).unwrap_or(0.0) * 1000.0) as i64,
                ),
                (_, Value::String(t)) => s(t),
                (_, other) => s(&other.to_string()),
            };
            headers.push((name.clone(), hv));
        } else if mref.eventpayload {
            explicit_payload = true;
            match (mshape.kind, v) {
                (ShapeType::Blob, Value::String(b)) => {
                    payload = B64
                        .decode(b)
                        .map_err(|_| AwsError::internal("event blob is not base64"))?;
                    content_type = "application/octet-stream";
                }
                (ShapeType::String, Value::String(t)) => {
                    payload = t.as_bytes().to_vec();
                    content_type = "text/plain";
                }
                _ => {
                    payload = serde_json::to_vec(&json::to_wire(model, mref, v, Naming::JsonName)?)
                        .unwrap_or_default()
                }
            }
        } else {
            body_members.insert(name.clone(), v.clone());
        }
    }
    if !explicit_payload {
        payload = serde_json::to_vec(&json::to_wire(
            model,
            member,
            &Value::Object(body_members),
            Naming::JsonName,
        )?)
        .unwrap_or_default();
    }
    headers.push((":content-type".into(), s(content_type)));
    Ok(Message { headers, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
    use aws_smithy_types::event_stream::{Header, HeaderValue as SHeader, Message as SMessage};

    fn sample() -> Message {
        Message {
            headers: vec![
                (":event-type".into(), s("chunk")),
                ("b".into(), HeaderValue::Bool(true)),
                ("f".into(), HeaderValue::Bool(false)),
                ("i8".into(), HeaderValue::Byte(-3)),
                ("i16".into(), HeaderValue::Int16(-300)),
                ("i32".into(), HeaderValue::Int32(70000)),
                ("i64".into(), HeaderValue::Int64(-1 << 40)),
                ("bytes".into(), HeaderValue::Bytes(vec![1, 2, 3])),
                ("ts".into(), HeaderValue::Timestamp(1_700_000_000_123)),
                ("uuid".into(), HeaderValue::Uuid([7; 16])),
            ],
            payload: b"{\"bytes\":\"aGk=\"}".to_vec(),
        }
    }

    #[test]
    fn our_frames_decode_with_the_sdk_decoder() {
        let bytes = sample().encode();
        let mut buf = &bytes[..];
        let decoded = read_message_from(&mut buf).unwrap();
        assert_eq!(decoded.payload().as_ref(), sample().payload.as_slice());
        let names: Vec<&str> = decoded
            .headers()
            .iter()
            .map(|h| h.name().as_str())
            .collect();
        assert_eq!(names[0], ":event-type");
        assert_eq!(
            decoded.headers()[0].value().as_string().unwrap().as_str(),
            "chunk"
        );
        assert_eq!(*decoded.headers()[5].value(), SHeader::Int32(70000));
        assert_eq!(decoded.headers().len(), 10);
    }

    #[test]
    fn sdk_frames_decode_with_ours() {
        let msg = SMessage::new(&b"payload"[..])
            .add_header(Header::new(
                ":message-type",
                SHeader::String("event".into()),
            ))
            .add_header(Header::new("n", SHeader::Int64(42)));
        let mut bytes = Vec::new();
        write_message_to(&msg, &mut bytes).unwrap();
        let (ours, used) = Message::decode(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(ours.payload, b"payload");
        assert_eq!(ours.header_str(":message-type"), Some("event"));
        assert_eq!(ours.header("n"), Some(&HeaderValue::Int64(42)));
        // and round trip
        assert_eq!(Message::decode(&ours.encode()).unwrap().0, ours);
    }

    #[test]
    fn rejects_corruption() {
        let mut bytes = sample().encode();
        assert_eq!(Message::decode(&bytes[..10]), Err(FrameError::Incomplete));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(
            Message::decode(&bytes),
            Err(FrameError::Invalid(_))
        ));
        bytes[2] ^= 0xff;
        assert!(matches!(
            Message::decode(&bytes),
            Err(FrameError::Invalid(_))
        ));
    }
}
