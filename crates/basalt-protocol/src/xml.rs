//! XML documents for restXml bodies and awsQuery responses: a small DOM for input and a
//! direct writer for output, both walking the service model.

use crate::Response;
use crate::shapes::{bad, float_of, format_float, resolve, scalar_from_text, scalar_to_text};
use basalt_core::AwsError;
use basalt_spec::{ServiceModel, Shape, ShapeRef, ShapeType, TimestampFormat};
use quick_xml::events::Event;
use serde_json::{Map, Value};

/// Limits the nesting depth of untrusted XML (a deep document must not exhaust the stack).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element {
    /// Local name (namespace prefix removed).
    pub name: String,
    /// Attributes by qualified name (`xsi:type`).
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses an XML document into its root element.
pub fn parse_document(body: &[u8]) -> Result<Element, AwsError> {
    let malformed = |e: String| {
        AwsError::new(
            400,
            "MalformedXML",
            format!(
                "The XML you provided was not well-formed or did not validate against our published schema: {e}"
            ),
        )
    };
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(|e| malformed(e.to_string()))?;
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                let _ = e;
                return Err(malformed("content after the root element".into()));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed("document nested too deeply".into()));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|e| malformed(e.to_string()))?;
                    let value = a
                        .unescape_value()
                        .map_err(|e| malformed(e.to_string()))?
                        .into_owned();
                    attrs.push((String::from_utf8_lossy(a.key.as_ref()).into_owned(), value));
                }
                let el = Element {
                    name,
                    attrs,
                    ..Default::default()
                };
                if matches!(event, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| malformed("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text
                        .push_str(&t.unescape().map_err(|e| malformed(e.to_string()))?);
                } else if !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(malformed("text outside the root element".into()));
                }
            }
            Event::CData(c) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unexpected end of document".into()));
    }
    root.ok_or_else(|| malformed("empty document".into()))
}

/// The element name a structure member is serialized under (botocore's `_member_key_name`).
pub(crate) fn member_element_name<'a>(
    model: &'a ServiceModel,
    name: &'a str,
    r: &'a ShapeRef,
) -> &'a str {
    if let Some(shape) = model.shape(&r.shape)
        && shape.kind == ShapeType::List
        && (shape.flattened || r.flattened)
        && let Some(n) = shape
            .member
            .as_ref()
            .and_then(|m| m.location_name.as_deref())
    {
        return n;
    }
    r.location_name.as_deref().unwrap_or(name)
}

fn flattened(shape: &Shape, r: &ShapeRef) -> bool {
    shape.flattened || r.flattened
}

/// XML element → canonical document for `r`.
pub fn from_xml(model: &ServiceModel, r: &ShapeRef, el: &Element) -> Result<Value, AwsError> {
    let shape = resolve(model, r)?;
    match shape.kind {
        ShapeType::Structure => structure_from_xml(model, shape, el),
        ShapeType::List => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            let name = member.location_name.as_deref().unwrap_or("member");
            el.children_named(name)
                .map(|c| from_xml(model, member, c))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        ShapeType::Map => {
            let mut out = Map::new();
            for entry in el.children_named("entry") {
                map_entry_from_xml(model, shape, entry, &mut out)?;
            }
            Ok(out.into())
        }
        _ => scalar_from_text(shape, r, &el.text, TimestampFormat::Iso8601, &el.name),
    }
}

fn map_entry_from_xml(
    model: &ServiceModel,
    shape: &Shape,
    entry: &Element,
    out: &mut Map<String, Value>,
) -> Result<(), AwsError> {
    let (Some(kr), Some(vr)) = (shape.key.as_deref(), shape.value.as_deref()) else {
        return Err(AwsError::internal("map without key/value"));
    };
    let key = entry
        .child(kr.location_name.as_deref().unwrap_or("key"))
        .map(|k| k.text.clone())
        .unwrap_or_default();
    let value = match entry.child(vr.location_name.as_deref().unwrap_or("value")) {
        Some(v) => from_xml(model, vr, v)?,
        None => Value::Null,
    };
    out.insert(key, value);
    Ok(())
}

pub(crate) fn structure_from_xml(
    model: &ServiceModel,
    shape: &Shape,
    el: &Element,
) -> Result<Value, AwsError> {
    let mut out = Map::new();
    for (name, mref) in &shape.members {
        if mref.location.is_some() {
            continue;
        }
        let mshape = resolve(model, mref)?;
        if mref.xml_attribute {
            let key = mref.location_name.as_deref().unwrap_or(name);
            if let Some((_, v)) = el.attrs.iter().find(|(k, _)| k == key) {
                out.insert(
                    name.clone(),
                    scalar_from_text(mshape, mref, v, TimestampFormat::Iso8601, name)?,
                );
            }
            continue;
        }
        let elname = member_element_name(model, name, mref);
        match mshape.kind {
            ShapeType::List if flattened(mshape, mref) => {
                let member = mshape
                    .member
                    .as_deref()
                    .ok_or_else(|| AwsError::internal("list without member"))?;
                // Smithy names flattened list elements after the structure member; botocore
                // (and AWS's query services) after the list member: accept either.
                let smithy_name = mref.location_name.as_deref().unwrap_or(name);
                let elname = if el.child(smithy_name).is_some() {
                    smithy_name
                } else {
                    elname
                };
                let items: Vec<Value> = el
                    .children_named(elname)
                    .map(|c| from_xml(model, member, c))
                    .collect::<Result<_, _>>()?;
                if !items.is_empty() {
                    out.insert(name.clone(), Value::Array(items));
                }
            }
            ShapeType::Map if flattened(mshape, mref) => {
                let mut map = Map::new();
                for entry in el.children_named(elname) {
                    map_entry_from_xml(model, mshape, entry, &mut map)?;
                }
                if !map.is_empty() {
                    out.insert(name.clone(), map.into());
                }
            }
            _ => {
                if let Some(child) = el.child(elname) {
                    out.insert(name.clone(), from_xml(model, mref, child)?);
                }
            }
        }
    }
    Ok(out.into())
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\n' => out.push_str("&#xA;"),
            '\u{85}' => out.push_str("&#x85;"),
            '\u{2028}' => out.push_str("&#x2028;"),
            c => out.push(c),
        }
    }
}

fn namespace_attr(ns: &basalt_spec::XmlNamespace, out: &mut String) {
    match ns.prefix() {
        Some(p) => out.push_str(&format!(" xmlns:{p}=\"")),
        None => out.push_str(" xmlns=\""),
    }
    escape(ns.uri(), out);
    out.push('"');
}

/// Writes `<name>…</name>` for canonical value `v` of shape `r`.
pub fn write_element(
    model: &ServiceModel,
    name: &str,
    r: &ShapeRef,
    v: &Value,
    out: &mut String,
) -> Result<(), AwsError> {
    let shape = resolve(model, r)?;
    out.push('<');
    out.push_str(name);
    if let Some(ns) = r.xml_namespace.as_ref().or(shape.xml_namespace.as_ref()) {
        namespace_attr(ns, out);
    }
    if shape.kind == ShapeType::Structure
        && let Value::Object(obj) = v
    {
        for (mname, mref) in shape.members.iter().filter(|(_, m)| m.xml_attribute) {
            if let Some(val) = obj.get(mname) {
                let mshape = resolve(model, mref)?;
                if let Some(text) = scalar_to_text(mshape, mref, val, TimestampFormat::Iso8601) {
                    out.push(' ');
                    out.push_str(mref.location_name.as_deref().unwrap_or(mname));
                    out.push_str("=\"");
                    escape(&text, out);
                    out.push('"');
                }
            }
        }
    }
    out.push('>');
    write_content(model, shape, r, v, out)?;
    out.push_str("</");
    out.push_str(name);
    out.push('>');
    Ok(())
}

/// Writes the content (children or text) of an element of shape `shape`.
pub fn write_content(
    model: &ServiceModel,
    shape: &Shape,
    r: &ShapeRef,
    v: &Value,
    out: &mut String,
) -> Result<(), AwsError> {
    match (shape.kind, v) {
        (ShapeType::Structure, Value::Object(obj)) => {
            for (mname, mref) in &shape.members {
                if mref.xml_attribute || !crate::shapes::in_output_body(mref) {
                    continue;
                }
                let Some(val) = obj.get(mname) else { continue };
                if val.is_null() {
                    continue;
                }
                write_member(model, mname, mref, val, out)?;
            }
        }
        (ShapeType::List, Value::Array(items)) => {
            let member = shape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            let name = member.location_name.as_deref().unwrap_or("member");
            for item in items {
                write_element(model, name, member, item, out)?;
            }
        }
        (ShapeType::Map, Value::Object(obj)) => {
            for (k, item) in obj {
                out.push_str("<entry>");
                write_map_entry(model, shape, k, item, out)?;
                out.push_str("</entry>");
            }
        }
        _ => {
            if let Some(text) = scalar_to_text(shape, r, v, TimestampFormat::Iso8601) {
                escape(&text, out);
            } else if let Some(f) = float_of(v) {
                out.push_str(&format_float(f));
            }
        }
    }
    Ok(())
}

fn write_map_entry(
    model: &ServiceModel,
    shape: &Shape,
    k: &str,
    item: &Value,
    out: &mut String,
) -> Result<(), AwsError> {
    let (Some(kr), Some(vr)) = (shape.key.as_deref(), shape.value.as_deref()) else {
        return Err(AwsError::internal("map without key/value"));
    };
    write_element(
        model,
        kr.location_name.as_deref().unwrap_or("key"),
        kr,
        &Value::String(k.to_owned()),
        out,
    )?;
    write_element(
        model,
        vr.location_name.as_deref().unwrap_or("value"),
        vr,
        item,
        out,
    )
}

/// Writes structure member `mname` (flattened lists and maps repeat the member element).
pub fn write_member(
    model: &ServiceModel,
    mname: &str,
    mref: &ShapeRef,
    val: &Value,
    out: &mut String,
) -> Result<(), AwsError> {
    let mshape = resolve(model, mref)?;
    let elname = member_element_name(model, mname, mref);
    match (mshape.kind, val) {
        (ShapeType::List, Value::Array(items)) if flattened(mshape, mref) => {
            let member = mshape
                .member
                .as_deref()
                .ok_or_else(|| AwsError::internal("list without member"))?;
            for item in items {
                write_element(model, elname, member, item, out)?;
            }
            Ok(())
        }
        (ShapeType::Map, Value::Object(obj)) if flattened(mshape, mref) => {
            for (k, item) in obj {
                out.push('<');
                out.push_str(elname);
                out.push('>');
                write_map_entry(model, mshape, k, item, out)?;
                out.push_str("</");
                out.push_str(elname);
                out.push('>');
            }
            Ok(())
        }
        _ => write_element(model, elname, mref, val, out),
    }
}

/// `<ErrorResponse><Error>…</Error><RequestId>…</RequestId></ErrorResponse>`, as awsQuery and
/// restXml services answer.
pub(crate) fn serialize_error(
    model: Option<&ServiceModel>,
    err: &AwsError,
    request_id: &str,
) -> Response {
    let mut out = String::with_capacity(256);
    out.push_str("<ErrorResponse");
    if let Some(ns) = model.and_then(|m| m.metadata.xml_namespace.as_deref()) {
        out.push_str(" xmlns=\"");
        escape(ns, &mut out);
        out.push('"');
    }
    out.push_str("><Error><Type>");
    out.push_str(err.fault.as_str());
    out.push_str("</Type><Code>");
    let code = model
        .and_then(|m| m.shape(&err.code))
        .and_then(|s| s.error.as_ref())
        .and_then(|e| e.code.clone())
        .or_else(|| err.query_code.clone())
        .unwrap_or_else(|| err.code.clone());
    escape(&code, &mut out);
    out.push_str("</Code><Message>");
    escape(&err.message, &mut out);
    out.push_str("</Message>");
    if !err.fields.is_empty() {
        match model.and_then(|m| m.shape(&err.code).map(|s| (m, s))) {
            Some((m, shape)) => {
                let r = ShapeRef {
                    shape: err.code.clone(),
                    ..Default::default()
                };
                let fields: Map<String, Value> = err
                    .fields
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("message"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let _ = write_content(m, shape, &r, &Value::Object(fields), &mut out);
            }
            None => {
                for (k, v) in &err.fields {
                    out.push_str(&format!("<{k}>"));
                    escape(
                        &v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                        &mut out,
                    );
                    out.push_str(&format!("</{k}>"));
                }
            }
        }
    }
    out.push_str("</Error><RequestId>");
    escape(request_id, &mut out);
    out.push_str("</RequestId></ErrorResponse>");
    Response {
        status: err.status,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: out.into_bytes(),
    }
}

/// Parses an XML body into the canonical document of structure `r`.
pub(crate) fn parse_body(
    model: &ServiceModel,
    r: &ShapeRef,
    body: &[u8],
) -> Result<Value, AwsError> {
    let root = parse_document(body)?;
    from_xml(model, r, &root).map_err(|e| if e.status >= 500 { e } else { bad(e.message) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_document_with_entities() {
        let el =
            parse_document(b"<a xmlns=\"x\"><b attr=\"1&amp;2\">x &lt; y</b><c/></a>").unwrap();
        assert_eq!(el.name, "a");
        assert_eq!(el.children[0].text, "x < y");
        assert_eq!(
            el.children[0].attrs,
            vec![("attr".to_string(), "1&2".to_string())]
        );
        assert_eq!(el.children[1].name, "c");
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            &b""[..],
            b"<a>",
            b"<a></b>",
            b"garbage",
            b"<a/><b/>",
            b"<a>\xff\xfe</a",
        ] {
            assert!(
                parse_document(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "<a>".repeat(1000) + &"</a>".repeat(1000);
        assert!(parse_document(deep.as_bytes()).is_err());
    }
}
