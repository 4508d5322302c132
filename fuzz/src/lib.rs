//! Shared harness: turn fuzz bytes into an HTTP request against a real service model.
//! Input layout: `METHOD PATH?QUERY\nheader: value\n...\n\nBODY`.

pub struct Parts {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

pub fn split(data: &[u8]) -> Parts {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("");
    let (method, target) = first.split_once(' ').unwrap_or(("POST", first));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = http::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.trim().as_bytes()), http::HeaderValue::from_str(v.trim())) {
                headers.append(k, v);
            }
        }
    }
    Parts { method: method.to_owned(), path: if path.is_empty() { "/".into() } else { path.to_owned() }, query: query.to_owned(), headers, body: body.to_vec() }
}

/// Routes and parses the request with `service`'s model in its own protocol(s).
pub fn run(service: &str, data: &[u8]) {
    let model = basalt_spec::model(service).expect("vendored model");
    let p = split(data);
    let req = basalt_protocol::Request { method: &p.method, path: &p.path, query: &p.query, headers: &p.headers, body: &p.body };
    let protocol = basalt_protocol::detect_protocol(&model, &req);
    if let Ok(op) = basalt_protocol::find_operation(&model, protocol, &req) {
        if let Ok(input) = basalt_protocol::parse_request(&model, protocol, op, &req) {
            if let Some(r) = &op.input {
                let _ = basalt_protocol::validate::validate(&model, r, &input);
            }
        }
    }
}
