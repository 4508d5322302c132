"""Generic response validator: every response a test's boto3 client receives is checked
against botocore's output shape for the operation.

Hooked into a client with ``ShapeChecker().attach(client)``; it listens on botocore's
``after-call`` event (the parent of every ``after-call.<service>.<Operation>`` event), which
fires for successful AND error responses, before botocore raises ``ClientError``.
Violations are collected (never raised inside botocore: that would turn a shape problem into a
confusing exception in the middle of the call); the autouse fixture in ``conftest.py`` asserts
that the list is empty at the end of every test.

What is checked
---------------
Parsed response (what boto3 hands to user code):
  * every ``required`` member of every structure is present;
  * types: structure=dict, list=list, map=dict, string=str, integer/long=int (not bool),
    float/double=float|int, boolean=bool, blob=bytes (or a StreamingBody for streaming
    payloads), timestamp=datetime;
  * string enums: the value is one of the enum values.  Decision: this is FLAGGED, strictly.
    AWS does add enum values over time, but Basalt's serializer is driven by botocore's own
    models, so any value Basalt emits must be in the model that the pinned botocore ships;
    a value outside it means Basalt invented one (typo, wrong case, stale constant).
    Integer "enums" do not exist in botocore models, so nothing else is checked;
  * ``ResponseMetadata.RequestId`` is non-empty (AWS always sends one);
  * errors: ``Error.Code`` non-empty.

Raw response (botocore silently drops members it does not know, so the raw bytes are checked
as well, whenever the body was already read by botocore, i.e. not for streaming payloads):
  * json / rest-json: the body is a JSON object; every key of every structure is a known
    member (by ``locationName``/``jsonName`` -- botocore stores both as serialization
    ``name``), recursively through lists and maps; Content-Type for ``json`` is
    ``application/x-amz-json-<jsonVersion>``;
  * rest-xml / query: every child element name of every structure is a known member
    (``locationName``, flattened lists and maps included), lists use their member element
    name, maps use ``entry``/key/value names; the query protocol wrapper
    ``<OpResponse><OpResult>..</OpResult><ResponseMetadata>`` is checked; the root element
    carries the service's XML namespace (S3: ``http://s3.amazonaws.com/doc/2006-03-01/``;
    query: metadata ``xmlNamespace``);
  * error bodies follow the protocol's error format: S3 ``<Error><Code/><Message/>``,
    query ``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>``,
    JSON ``{"__type": .., "message": ..}`` (HEAD and 304 responses have no body).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import xml.etree.ElementTree as ET

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

_HEADER_LOCATIONS = {"header", "headers", "statusCode"}


class ShapeChecker:
    """Collects violations. Triage knob: BASALT_SHAPECHECK_IGNORE=sub1,sub2 drops violations
    whose text contains one of the substrings (to see past one known bug; never in CI)."""

    def __init__(self):
        self.violations: list[str] = []
        self.ignore = [x for x in os.environ.get("BASALT_SHAPECHECK_IGNORE", "").split(",") if x]

    def attach(self, client):
        client.meta.events.register("after-call", self._after_call)
        return client

    def take(self) -> list[str]:
        v, self.violations = self.violations, []
        seen, out = {}, []
        for x in v:  # dedupe, keep order, count repeats
            if x in seen:
                seen[x] += 1
            else:
                seen[x] = 1
                out.append(x)
        return [f"{x}  (x{seen[x]})" if seen[x] > 1 else x for x in out]

    def _after_call(self, http_response=None, parsed=None, model=None, **kwargs):
        if model is None or parsed is None:
            return
        name = f"{model.service_model.service_name}.{model.name}"
        try:
            problems = check_response(model, http_response, parsed)
        except Exception as e:  # a crash of the checker is a finding too
            problems = [f"shapecheck crashed: {e!r}"]
        for p in problems:
            if not any(i in p for i in self.ignore):
                self.violations.append(f"{name}: {p}")


# ---------------------------------------------------------------------------------------
def check_response(model, http_response, parsed) -> list[str]:
    out: list[str] = []
    # The protocol botocore speaks (a model listing several, e.g. CloudWatch's CBOR, JSON and
    # query, resolves to the first one this botocore supports).
    protocol = getattr(model.service_model, "resolved_protocol", None) or model.service_model.protocol
    status = getattr(http_response, "status_code", None) or parsed.get(
        "ResponseMetadata", {}
    ).get("HTTPStatusCode", 0)
    meta = parsed.get("ResponseMetadata", {})
    if not meta.get("RequestId"):
        # S3 HEAD errors still carry x-amz-request-id in AWS.
        out.append("ResponseMetadata.RequestId missing/empty (no request id header or body)")

    is_error = "Error" in parsed or (status and status >= 300)
    if is_error:
        err = parsed.get("Error", {})
        if not err.get("Code"):
            out.append(f"error response without Error.Code (status {status})")
        _check_raw_error(model, http_response, status, protocol, out)
        return out

    shape = model.output_shape
    if shape is not None:
        body = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
        if model.name == "GetBucketLocation" and body.get("LocationConstraint") is None:
            # botocore's own handler yields None for us-east-1's empty element, as with AWS
            body.pop("LocationConstraint", None)
        check_parsed(shape, body, "", out)
    else:
        extra = set(parsed) - {"ResponseMetadata"}
        if extra:
            out.append(f"operation has no output shape but parsed has {sorted(extra)}")

    if http_response is None or model.has_streaming_output or model.has_event_stream_output:
        return out
    raw = http_response.content or b""
    headers = {k.lower(): v for k, v in http_response.headers.items()}
    if protocol in ("json", "rest-json"):
        _check_raw_json(model, shape, raw, headers, protocol, out)
    elif protocol in ("rest-xml", "query", "ec2"):
        _check_raw_xml(model, shape, raw, protocol, out)
    return out


# ---------------------------------------------------------------------------------------
# Parsed-value checks
def check_parsed(shape, value, path, out):
    t = shape.type_name
    where = path or "<root>"
    if t == "structure" and shape.serialization.get("eventstream"):
        # botocore hands event streams over as a lazy EventStream; its events are checked by
        # the tests that consume it (consuming it here would take it from them).
        if not hasattr(value, "__iter__"):
            out.append(f"{where}: expected an event stream, got {type(value).__name__}")
        return
    if t == "structure" and shape.metadata.get("document"):
        # A document member holds any JSON value (Retrieve's metadata values).
        return
    if t == "structure":
        if not isinstance(value, dict):
            out.append(f"{where}: expected structure (dict), got {type(value).__name__}")
            return
        if shape.metadata.get("document"):
            return
        for req in shape.required_members:
            if req not in value:
                out.append(f"{where}: required member {req!r} missing")
        for k, v in value.items():
            member = shape.members.get(k)
            if member is None:
                out.append(f"{where}: member {k!r} unknown to shape {shape.name}")
                continue
            check_parsed(member, v, f"{path}.{k}" if path else k, out)
    elif t == "list":
        if not isinstance(value, list):
            out.append(f"{where}: expected list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check_parsed(shape.member, item, f"{path}[{i}]", out)
    elif t == "map":
        if not isinstance(value, dict):
            out.append(f"{where}: expected map (dict), got {type(value).__name__}")
            return
        for k, v in value.items():
            check_parsed(shape.key, k, f"{path}<key>", out)
            check_parsed(shape.value, v, f"{path}[{k!r}]", out)
    elif t == "string":
        if not isinstance(value, str):
            out.append(f"{where}: expected string, got {type(value).__name__} {value!r}")
            return
        enum = shape.enum
        if enum and value not in enum:
            out.append(f"{where}: {value!r} not in enum {shape.name} {list(enum)}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(f"{where}: expected {t}, got {type(value).__name__} {value!r}")
    elif t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"{where}: expected {t}, got {type(value).__name__} {value!r}")
    elif t == "boolean":
        if not isinstance(value, bool):
            out.append(f"{where}: expected boolean, got {type(value).__name__} {value!r}")
    elif t == "blob":
        if isinstance(value, (bytes, bytearray)):
            return
        if hasattr(value, "read") and shape.serialization.get("streaming", False) is not None:
            return  # StreamingBody
        out.append(f"{where}: expected blob (bytes), got {type(value).__name__}")
    elif t == "timestamp":
        if not isinstance(value, _dt.datetime):
            out.append(f"{where}: expected timestamp (datetime), got {type(value).__name__} {value!r}")
    else:
        # unknown/new type: nothing to say
        pass


# ---------------------------------------------------------------------------------------
# Raw JSON checks
def _json_member_names(shape):
    names = {}
    for mname, mshape in shape.members.items():
        if mshape.serialization.get("location") in _HEADER_LOCATIONS:
            continue
        names[mshape.serialization.get("name", mname)] = mshape
    return names


def _walk_json(shape, value, path, out):
    t = shape.type_name
    if t == "structure":
        if shape.metadata.get("document") or not isinstance(value, dict):
            return
        if shape.metadata.get("union"):
            pass
        names = _json_member_names(shape)
        for k, v in value.items():
            if k not in names:
                out.append(f"raw JSON {path or '<root>'}: key {k!r} unknown to shape {shape.name}")
            elif v is not None:
                _walk_json(names[k], v, f"{path}.{k}" if path else k, out)
    elif t == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            if item is not None:
                _walk_json(shape.member, item, f"{path}[{i}]", out)
    elif t == "map" and isinstance(value, dict):
        for k, v in value.items():
            if v is not None:
                _walk_json(shape.value, v, f"{path}[{k!r}]", out)


def _check_raw_json(model, shape, raw, headers, protocol, out):
    if protocol == "json":
        want = "application/x-amz-json-" + model.service_model.metadata.get("jsonVersion", "1.0")
        ct = headers.get("content-type", "")
        if ct.split(";")[0].strip() != want:
            out.append(f"Content-Type {ct!r}, expected {want!r}")
    if shape is None:
        return
    payload = shape.serialization.get("payload")
    if payload:
        pshape = shape.members[payload]
        if pshape.type_name != "structure":
            return
        shape = pshape
    if not raw.strip():
        if protocol == "json":
            out.append("empty body (AWS JSON protocol always sends at least {})")
        return
    try:
        doc = json.loads(raw)
    except ValueError as e:
        out.append(f"raw body is not JSON: {e}: {raw[:200]!r}")
        return
    if not isinstance(doc, dict):
        out.append(f"raw JSON body is not an object: {raw[:200]!r}")
        return
    _walk_json(shape, doc, "", out)


# ---------------------------------------------------------------------------------------
# Raw XML checks
def _local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else tag


def _ns(tag):
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _xml_member_names(shape):
    """element name -> (member shape, is_flattened_item)"""
    names = {}
    for mname, mshape in shape.members.items():
        ser = mshape.serialization
        if ser.get("location") in _HEADER_LOCATIONS or ser.get("xmlAttribute"):
            continue
        flattened = mshape.type_name in ("list", "map") and ser.get("flattened")
        if mshape.type_name == "list" and flattened:
            key = mshape.member.serialization.get("name") or ser.get("name") or mname
        else:
            key = ser.get("name") or mname
        names[key] = (mshape, bool(flattened))
    return names


def _walk_xml(shape, elem, path, out, flattened_item=False):
    t = shape.type_name
    children = list(elem)
    if t == "structure":
        names = _xml_member_names(shape)
        for child in children:
            tag = _local(child.tag)
            hit = names.get(tag)
            if hit is None:
                out.append(f"raw XML {path}: element <{tag}> unknown to shape {shape.name}")
                continue
            mshape, flat = hit
            if flat and mshape.type_name == "list":
                _walk_xml(mshape.member, child, f"{path}/{tag}", out)
            elif flat and mshape.type_name == "map":
                _walk_xml(mshape, child, f"{path}/{tag}", out, flattened_item=True)
            else:
                _walk_xml(mshape, child, f"{path}/{tag}", out)
    elif t == "list":
        item_name = shape.member.serialization.get("name", "member")
        for child in children:
            tag = _local(child.tag)
            if tag != item_name:
                out.append(f"raw XML {path}: list item <{tag}>, expected <{item_name}>")
                continue
            _walk_xml(shape.member, child, f"{path}/{tag}", out)
    elif t == "map":
        kname = shape.key.serialization.get("name", "key")
        vname = shape.value.serialization.get("name", "value")
        entries = [elem] if flattened_item else children
        for entry in entries:
            if not flattened_item and _local(entry.tag) != "entry":
                out.append(f"raw XML {path}: map item <{_local(entry.tag)}>, expected <entry>")
                continue
            for kv in entry:
                tag = _local(kv.tag)
                if tag == vname:
                    _walk_xml(shape.value, kv, f"{path}/{tag}", out)
                elif tag != kname:
                    out.append(f"raw XML {path}: map entry element <{tag}> (expected {kname}/{vname})")
    else:
        if children:
            out.append(
                f"raw XML {path}: scalar {t} element has child elements "
                f"{[_local(c.tag) for c in children][:5]}"
            )


def _parse_xml(raw, out, what):
    try:
        return ET.fromstring(raw)
    except ET.ParseError as e:
        out.append(f"{what}: raw body is not well-formed XML: {e}: {raw[:200]!r}")
        return None


def _check_raw_xml(model, shape, raw, protocol, out):
    service = model.service_model
    if protocol == "rest-xml":
        payload = shape.serialization.get("payload") if shape is not None else None
        if payload:
            pshape = shape.members[payload]
            if pshape.type_name != "structure":
                return
            target = pshape
        else:
            target = shape
        body_members = (
            _xml_member_names(target) if target is not None and target.type_name == "structure" else {}
        )
        if not raw.strip():
            # e.g. PutObject: everything in headers.  A body member that is absent is fine.
            return
        root = _parse_xml(raw, out, "rest-xml")
        if root is None:
            return
        if service.service_name == "s3" and _ns(root.tag) != S3_NS:
            out.append(f"root <{_local(root.tag)}> lacks xmlns={S3_NS!r} (has {_ns(root.tag)!r})")
        if model.name == "GetBucketLocation":
            if _local(root.tag) != "LocationConstraint" or list(root):
                out.append("GetBucketLocation: expected a bare <LocationConstraint> root element")
            return
        if target is None:
            out.append(f"operation has no output shape but body is {raw[:100]!r}")
            return
        if not body_members:
            out.append(f"output has no body members but body is {raw[:100]!r}")
            return
        want_root = target.serialization.get("name")
        if want_root and _local(root.tag) != want_root:
            out.append(f"root element <{_local(root.tag)}>, expected <{want_root}>")
        _walk_xml(target, root, "/" + _local(root.tag), out)
    else:  # query / ec2
        root = _parse_xml(raw, out, protocol)
        if root is None:
            return
        want = f"{model.name}Response"
        if _local(root.tag) != want:
            out.append(f"root element <{_local(root.tag)}>, expected <{want}>")
        ns = service.metadata.get("xmlNamespace")
        if ns and _ns(root.tag) != ns:
            out.append(f"root lacks xmlns={ns!r} (has {_ns(root.tag)!r})")
        if protocol == "ec2":
            if shape is not None:
                _walk_xml(shape, root, "/" + want, out)
            return
        wrapper = shape.serialization.get("resultWrapper") if shape is not None else None
        seen = set()
        for child in root:
            tag = _local(child.tag)
            seen.add(tag)
            if tag == "ResponseMetadata":
                for m in child:
                    if _local(m.tag) != "RequestId":
                        out.append(f"raw XML ResponseMetadata: unexpected <{_local(m.tag)}>")
            elif wrapper and tag == wrapper:
                _walk_xml(shape, child, f"/{want}/{tag}", out)
            else:
                out.append(f"raw XML /{want}: unexpected element <{tag}>")
        if "ResponseMetadata" not in seen:
            out.append(f"raw XML /{want}: <ResponseMetadata><RequestId> missing")
        if wrapper and wrapper not in seen:
            out.append(f"raw XML /{want}: <{wrapper}> missing")


# ---------------------------------------------------------------------------------------
def _check_raw_error(model, http_response, status, protocol, out):
    if http_response is None:
        return
    raw = http_response.content or b""
    method = model.http.get("method", "")
    if method == "HEAD" or status == 304:
        if raw.strip():
            out.append(f"{method} {status} response carries a body: {raw[:100]!r}")
        return
    headers = {k.lower(): v for k, v in http_response.headers.items()}
    if protocol in ("json", "rest-json"):
        try:
            doc = json.loads(raw) if raw.strip() else {}
        except ValueError:
            out.append(f"error body is not JSON: {raw[:200]!r}")
            return
        if not isinstance(doc, dict):
            out.append(f"error body is not a JSON object: {raw[:200]!r}")
            return
        if "__type" not in doc and "x-amzn-errortype" not in headers and "code" not in doc:
            out.append(f"JSON error without __type / x-amzn-ErrorType: {raw[:200]!r}")
        if protocol == "json":
            want = "application/x-amz-json-" + model.service_model.metadata.get("jsonVersion", "1.0")
            if headers.get("content-type", "").split(";")[0].strip() != want:
                out.append(f"error Content-Type {headers.get('content-type')!r}, expected {want!r}")
        return
    root = _parse_xml(raw, out, "error")
    if root is None:
        return
    if protocol == "rest-xml":
        if _local(root.tag) != "Error":
            out.append(f"S3-style error root <{_local(root.tag)}>, expected <Error>")
            return
        kids = {_local(c.tag) for c in root}
        for need in ("Code", "Message", "RequestId"):
            if need not in kids:
                out.append(f"error body lacks <{need}>: {raw[:300]!r}")
    elif protocol == "query":
        if _local(root.tag) != "ErrorResponse":
            out.append(f"query error root <{_local(root.tag)}>, expected <ErrorResponse>")
            return
        err = [c for c in root if _local(c.tag) == "Error"]
        if not err:
            out.append("query error lacks <Error>")
            return
        kids = {_local(c.tag) for c in err[0]}
        for need in ("Type", "Code", "Message"):
            if need not in kids:
                out.append(f"query error lacks <Error><{need}>: {raw[:300]!r}")
        if not any(_local(c.tag) == "RequestId" for c in root):
            out.append("query error lacks <RequestId>")
