"""Basalt's serializer judged by botocore's own parsers.

A Rust test serializes the `result` (or error) of every output case of
../shared/protocol-tests/botocore/output/*.json and writes one JSON line per case to
$BASALT_VECTOR_OUT (default <repo>/target/protocol-vectors/output.jsonl):

  {"file": "json.json", "suite": 0, "case": 0, "id": "...", "status": 200,
   "headers": {...}, "body_b64": "..."}
  {"file": ..., "suite": ..., "case": ..., "skip": "reason"}

Each line is parsed here exactly as botocore's tests/functional/test_protocols.py
(test_output_compliance) parses the vector's own canned response, and compared with the
vector's expected `result` / `error` after the same normalisation.
"""
from __future__ import annotations

import base64
import copy
import json
import os
from pathlib import Path

import pytest
from botocore.awsrequest import HeadersDict
from botocore.eventstream import EventStream
from botocore.model import NoShapeFoundError, OperationModel, ServiceModel
from botocore.parsers import create_parser
from botocore.utils import parse_timestamp
from dateutil.tz import tzutc

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
VECTORS = SHARED / "protocol-tests" / "botocore"
OUT = Path(os.environ.get("BASALT_VECTOR_OUT", REPO / "target" / "protocol-vectors" / "output.jsonl"))

if not VECTORS.is_dir():
    pytest.skip("../shared/protocol-tests absent", allow_module_level=True)


def _ignore_list():
    p = VECTORS / "protocol-tests-ignore-list.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _ignored(ignore, protocol_file, suite_desc, case_id):
    gen = ignore.get("general", {}).get("output", {})
    if suite_desc in gen.get("suites", []) or case_id in gen.get("cases", []):
        return True
    prot = ignore.get("protocols", {}).get(protocol_file, {}).get("output", {})
    return suite_desc in prot.get("suites", []) or case_id in prot.get("cases", [])


def _load_suites():
    suites = {}
    for f in sorted((VECTORS / "output").glob("*.json")):
        suites[f.name] = json.loads(f.read_text(encoding="utf-8"))
    return suites


def _load_lines():
    if not OUT.exists():
        return None
    lines = {}
    for n, raw in enumerate(OUT.read_text(encoding="utf-8").splitlines()):
        if raw.strip():
            d = json.loads(raw)
            lines[(d["file"], int(d["suite"]), int(d["case"]))] = d
    return lines


SUITES = _load_suites()
LINES = _load_lines()
IGNORE = _ignore_list()


def _params():
    out = []
    for fname, suites in SUITES.items():
        for si, suite in enumerate(suites):
            for ci, case in enumerate(suite["cases"]):
                cid = case.get("id") or f"{suite['description']}#{ci}"
                out.append(pytest.param(fname, si, ci, id=f"{fname[:-5]}:{si}:{ci}:{cid}"))
    return out


class _RawStream:
    def __init__(self, data):
        self._data = data

    def stream(self):
        yield self._data


def _ts(value):
    return parse_timestamp(value).astimezone(tzutc()).timestamp()


def _bytes_to_str(v):
    if isinstance(v, dict):
        return {k: _bytes_to_str(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_bytes_to_str(x) for x in v]
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return v


def _special_floats(d):
    for k, v in d.items():
        if isinstance(v, float):
            if v == float("inf"):
                d[k] = "Infinity"
            elif v == float("-inf"):
                d[k] = "-Infinity"
            elif v != v:
                d[k] = "NaN"
    return d


def _fixup(parsed):
    parsed.pop("ResponseMetadata", None)
    parsed = _bytes_to_str(parsed)
    for k, v in list(parsed.items()):
        if isinstance(v, EventStream):
            parsed[k] = _bytes_to_str(list(v))
            break
    if "Error" in parsed:
        for k in list(parsed["Error"]):
            if k not in ("Code", "Message"):
                del parsed["Error"][k]
    return _special_floats(parsed)


def parse_with_botocore(suite, case, status, headers, body):
    """Mirror of botocore's test_output_compliance, with Basalt's bytes as the response."""
    desc = copy.deepcopy(suite)
    desc.pop("cases", None)
    case = copy.deepcopy(case)
    op_name = case.get("given", {}).get("name", "OperationName")
    desc["operations"] = {op_name: case["given"]}
    model = ServiceModel(desc)
    op = OperationModel(case["given"], model)
    protocol = model.metadata["protocol"]
    # same class create_parser() picks, with the compliance runner's timestamp parser
    parser = type(create_parser(protocol))(timestamp_parser=_ts)
    response = {
        "status_code": status,
        "headers": HeadersDict(headers),
        "body": body,
        "context": {"operation_name": op_name},
    }
    if op.has_event_stream_output:
        response["body"] = _RawStream(body)
    output_shape = op.output_shape
    if "error" in case:
        parsed = parser.parse(response, output_shape)
        try:
            error_shape = model.shape_for_error_code(parsed.get("Error", {}).get("Code"))
        except NoShapeFoundError:
            error_shape = None
        if error_shape is not None:
            parsed.update(parser.parse(response, error_shape))
    else:
        if protocol == "query" and output_shape is not None and output_shape.members:
            output_shape.serialization["resultWrapper"] = f"{op_name}Result"
        parsed = parser.parse(response, output_shape)
    return _fixup(parsed)


def expected_of(case):
    if "error" in case:
        exp = {"Error": {"Code": case.get("errorCode", ""), "Message": case.get("errorMessage", "")}}
        exp.update(case["error"])
        return exp
    return case["result"]


def test_vector_file_present():
    if LINES is None:
        pytest.skip(f"{OUT} not written yet (run the Rust protocol-vector test first)")
    assert LINES, f"{OUT} is empty"


def test_own_parser_harness_against_canned_responses():
    """Self-test of this harness: botocore's canned vector responses must pass through it."""
    bad = []
    for fname, suites in SUITES.items():
        for si, suite in enumerate(suites):
            for ci, case in enumerate(suite["cases"]):
                if _ignored(IGNORE, fname[:-5], suite["description"], case.get("id")):
                    continue
                resp = case["response"]
                protocol = suite["metadata"]["protocol"]
                body = resp.get("body")
                if body is None:
                    body = b"" if protocol != "query" else b"<xml/>"
                else:
                    body = body.encode("utf-8")
                    if protocol == "smithy-rpc-v2-cbor":
                        body = base64.b64decode(body)
                try:
                    got = parse_with_botocore(suite, case, resp.get("status_code", 200), resp.get("headers", {}), body)
                except Exception as e:  # noqa: BLE001
                    bad.append(f"{fname}:{si}:{ci} {e!r}")
                    continue
                if got != expected_of(case):
                    bad.append(f"{fname}:{si}:{ci} {case.get('id')}")
    assert not bad, "harness disagrees with botocore on canned responses:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("fname,si,ci", _params())
def test_output_vector(fname, si, ci):
    suite = SUITES[fname][si]
    case = suite["cases"][ci]
    if _ignored(IGNORE, fname[:-5], suite["description"], case.get("id")):
        pytest.skip("in botocore's protocol-tests-ignore-list.json")
    if LINES is None:
        pytest.skip(f"{OUT} not written yet (run the Rust protocol-vector test first)")
    line = LINES.get((fname, si, ci))
    if line is None:
        pytest.fail(f"no line for {fname} suite {si} case {ci} in {OUT}")
    if "skip" in line:
        pytest.skip(f"basalt: {line['skip']}")
    if "error" in line and "status" not in line:
        pytest.fail(f"Basalt could not serialize this case: {line['error']}")
    if line.get("id") not in (None, case.get("id")):
        pytest.fail(f"line id {line.get('id')!r} != vector id {case.get('id')!r}")
    body = base64.b64decode(line.get("body_b64", ""))
    expected = expected_of(case)
    try:
        got = parse_with_botocore(suite, case, int(line["status"]), line.get("headers", {}), body)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"botocore could not parse Basalt's response: {e!r}\nstatus={line['status']} "
                    f"headers={line.get('headers')}\nbody={body[:2000]!r}")
    assert got == expected, (
        f"\n{case.get('id')}: {case.get('description')}\nbasalt status={line['status']} "
        f"headers={line.get('headers')}\nbody={body[:2000]!r}\nparsed  ={got!r}\nexpected={expected!r}"
    )
