"""Bedrock Guardrails: the control plane (create, get, list, update, versions, delete, tags),
ApplyGuardrail, and guardrails on InvokeModel, InvokeModelWithResponseStream, Converse and
ConverseStream.

Most checks use the word, PII and regex policies, whose verdicts are exact, so that they test
the plumbing rather than a classifier's judgement; the meaning-based policies (topics, content
filters, prompt attacks) are measured by bench/guardrails.py and checked here on a few clear
cases only. Model calls are short and greedy.
"""
from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
AV = "bedrock-2023-05-31"
BLOCKED_IN = "Input blocked by the test guardrail."
BLOCKED_OUT = "Output blocked by the test guardrail."


def _model_dir() -> Path:
    d = os.environ.get("BASALT_MODEL_DIR")
    return Path(d) if d else Path.home() / ".cache" / "basalt" / "models"


needs_chat = pytest.mark.skipif(
    not os.environ.get("BASALT_ENDPOINT") and not any(_model_dir().glob("*.gguf")),
    reason=f"no local chat model in {_model_dir()} (run `basalt models pull`)",
)


@pytest.fixture(scope="module")
def bedrock(make_client):
    return make_client("bedrock")


@pytest.fixture(scope="module")
def runtime(make_client):
    return make_client("bedrock-runtime")


def _name(prefix="g"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _create(bedrock, **kw):
    args = dict(
        name=_name(),
        blockedInputMessaging=BLOCKED_IN,
        blockedOutputsMessaging=BLOCKED_OUT,
    )
    args.update(kw)
    return bedrock.create_guardrail(**args)


WORDS = {"wordsConfig": [{"text": "pineapple"}, {"text": "secret project"}],
         "managedWordListsConfig": [{"type": "PROFANITY"}]}
PII = {
    "piiEntitiesConfig": [
        {"type": "EMAIL", "action": "ANONYMIZE"},
        {"type": "US_SOCIAL_SECURITY_NUMBER", "action": "BLOCK"},
        {"type": "CREDIT_DEBIT_CARD_NUMBER", "action": "ANONYMIZE"},
    ],
    "regexesConfig": [{"name": "ticket", "pattern": r"TCK-\d{6}", "action": "ANONYMIZE"}],
}


@pytest.fixture(scope="module")
def words_guardrail(bedrock):
    g = _create(bedrock, wordPolicyConfig=WORDS, sensitiveInformationPolicyConfig=PII)
    bedrock.create_guardrail_version(guardrailIdentifier=g["guardrailId"])
    yield g["guardrailId"]
    bedrock.delete_guardrail(guardrailIdentifier=g["guardrailId"])


def _apply(runtime, gid, text, source="INPUT", version="1", **kw):
    return runtime.apply_guardrail(
        guardrailIdentifier=gid, guardrailVersion=version, source=source,
        content=[{"text": {"text": text}}], **kw,
    )


# --- control plane ---------------------------------------------------------------------


def test_create_get_defaults_and_arn(bedrock):
    g = _create(bedrock, description="d", wordPolicyConfig={"wordsConfig": [{"text": "x"}]},
                contentPolicyConfig={"filtersConfig": [
                    {"type": "HATE", "inputStrength": "HIGH", "outputStrength": "MEDIUM"}]},
                sensitiveInformationPolicyConfig={"piiEntitiesConfig": [{"type": "EMAIL", "action": "ANONYMIZE"}]},
                tags=[{"key": "team", "value": "ml"}])
    gid = g["guardrailId"]
    try:
        assert g["version"] == "DRAFT"
        assert g["guardrailArn"] == f"arn:aws:bedrock:us-east-1:000000000000:guardrail/{gid}"
        got = bedrock.get_guardrail(guardrailIdentifier=g["guardrailArn"])
        assert got["version"] == "DRAFT" and got["status"] == "READY"
        assert got["description"] == "d"
        w = got["wordPolicy"]["words"][0]
        assert (w["text"], w["inputAction"], w["outputAction"], w["inputEnabled"]) == ("x", "BLOCK", "BLOCK", True)
        f = got["contentPolicy"]["filters"][0]
        assert (f["inputStrength"], f["outputStrength"], f["inputModalities"]) == ("HIGH", "MEDIUM", ["TEXT"])
        e = got["sensitiveInformationPolicy"]["piiEntities"][0]
        assert (e["action"], e["inputAction"], e["outputAction"]) == ("ANONYMIZE", "ANONYMIZE", "ANONYMIZE")
        assert bedrock.list_tags_for_resource(resourceARN=g["guardrailArn"])["tags"] == [{"key": "team", "value": "ml"}]
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)
    with pytest.raises(ClientError) as e:
        bedrock.get_guardrail(guardrailIdentifier=gid)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_versions_snapshot_the_draft(bedrock, runtime):
    g = _create(bedrock, wordPolicyConfig={"wordsConfig": [{"text": "alpha"}]})
    gid = g["guardrailId"]
    try:
        assert bedrock.create_guardrail_version(guardrailIdentifier=gid, description="first")["version"] == "1"
        bedrock.update_guardrail(guardrailIdentifier=gid, name=_name("renamed"),
                                 blockedInputMessaging="changed", blockedOutputsMessaging="changed",
                                 wordPolicyConfig={"wordsConfig": [{"text": "beta"}]})
        v1 = bedrock.get_guardrail(guardrailIdentifier=gid, guardrailVersion="1")
        draft = bedrock.get_guardrail(guardrailIdentifier=gid)
        assert v1["description"] == "first"
        assert [w["text"] for w in v1["wordPolicy"]["words"]] == ["alpha"]
        assert [w["text"] for w in draft["wordPolicy"]["words"]] == ["beta"]
        assert draft["blockedInputMessaging"] == "changed"
        # The runtime evaluates the version asked for.
        assert _apply(runtime, gid, "alpha here")["action"] == "GUARDRAIL_INTERVENED"
        assert _apply(runtime, gid, "alpha here", version="DRAFT")["action"] == "NONE"
        assert _apply(runtime, gid, "beta here", version="DRAFT")["outputs"] == [{"text": "changed"}]
        # Idempotent version creation.
        a = bedrock.create_guardrail_version(guardrailIdentifier=gid, clientRequestToken="tok-1")
        b = bedrock.create_guardrail_version(guardrailIdentifier=gid, clientRequestToken="tok-1")
        assert a["version"] == b["version"] == "2"
        listed = bedrock.list_guardrails(guardrailIdentifier=gid)["guardrails"]
        assert [s["version"] for s in listed] == ["DRAFT", "1", "2"]
        bedrock.delete_guardrail(guardrailIdentifier=gid, guardrailVersion="1")
        listed = bedrock.list_guardrails(guardrailIdentifier=gid)["guardrails"]
        assert [s["version"] for s in listed] == ["DRAFT", "2"]
        # Numbers are never reused.
        assert bedrock.create_guardrail_version(guardrailIdentifier=gid)["version"] == "3"
        with pytest.raises(ClientError) as e:
            bedrock.get_guardrail(guardrailIdentifier=gid, guardrailVersion="1")
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)


def test_names_are_unique_and_lists_page(bedrock):
    name = _name("uniq")
    g = _create(bedrock, name=name, wordPolicyConfig={"wordsConfig": [{"text": "x"}]})
    ids = [g["guardrailId"]]
    try:
        with pytest.raises(ClientError) as e:
            _create(bedrock, name=name)
        assert e.value.response["Error"]["Code"] == "ConflictException"
        for _ in range(3):
            ids.append(_create(bedrock)["guardrailId"])
        seen, token = [], None
        while True:
            kw = {"maxResults": 2}
            if token:
                kw["nextToken"] = token
            page = bedrock.list_guardrails(**kw)
            assert len(page["guardrails"]) <= 2
            seen += [s["id"] for s in page["guardrails"]]
            token = page.get("nextToken")
            if not token:
                break
        assert set(ids) <= set(seen)
        assert len(seen) == len(set(seen))
        assert all(s["version"] == "DRAFT" for s in bedrock.list_guardrails()["guardrails"])
        # The paginator works too.
        pages = bedrock.get_paginator("list_guardrails").paginate(PaginationConfig={"PageSize": 2})
        assert set(ids) <= {s["id"] for p in pages for s in p["guardrails"]}
    finally:
        for i in ids:
            bedrock.delete_guardrail(guardrailIdentifier=i)


@pytest.mark.parametrize("bad, words", [
    ({"contentPolicyConfig": {"filtersConfig": [
        {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "HIGH"}]}}, "PROMPT_ATTACK"),
    ({"contentPolicyConfig": {"filtersConfig": [
        {"type": "HATE", "inputStrength": "HIGH", "outputStrength": "HIGH", "inputModalities": ["IMAGE"]}]}}, "IMAGE"),
    ({"sensitiveInformationPolicyConfig": {"regexesConfig": [
        {"name": "bad", "pattern": "(unclosed", "action": "BLOCK"}]}}, "regex"),
    ({"contextualGroundingPolicyConfig": {"filtersConfig": [
        {"type": "GROUNDING", "threshold": 1.0}]}}, "0.99"),
    ({"name": "has space"}, "name"),
    ({"blockedInputMessaging": "x" * 501}, "blockedInputMessaging"),
])
def test_invalid_configs_are_validation_errors(bedrock, bad, words):
    with pytest.raises(ClientError) as e:
        _create(bedrock, **bad)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert words.lower() in e.value.response["Error"]["Message"].lower()


def test_tags(bedrock):
    g = _create(bedrock)
    arn = g["guardrailArn"]
    try:
        bedrock.tag_resource(resourceARN=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        bedrock.untag_resource(resourceARN=arn, tagKeys=["a"])
        assert bedrock.list_tags_for_resource(resourceARN=arn)["tags"] == [{"key": "b", "value": "2"}]
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=g["guardrailId"])


# --- ApplyGuardrail --------------------------------------------------------------------


def test_apply_words_are_whole_words_and_case_insensitive(runtime, words_guardrail):
    r = _apply(runtime, words_guardrail, "I love PINEAPPLE on pizza.")
    assert r["action"] == "GUARDRAIL_INTERVENED"
    assert r["outputs"] == [{"text": BLOCKED_IN}]
    words = r["assessments"][0]["wordPolicy"]["customWords"]
    assert [(w["match"], w["action"]) for w in words] == [("PINEAPPLE", "BLOCKED")]
    r = _apply(runtime, words_guardrail, "Tell me about the   Secret\nProject.")
    assert r["action"] == "GUARDRAIL_INTERVENED"
    r = _apply(runtime, words_guardrail, "Pineapples grow in the tropics.")
    assert r["action"] == "NONE" and r["outputs"] == []
    assert r["usage"]["wordPolicyUnits"] == 1


def test_apply_pii_anonymizes_and_blocks(runtime, words_guardrail):
    r = _apply(runtime, words_guardrail, "Mail jane.doe@example.com about TCK-123456, card 4111 1111 1111 1111.",
               source="OUTPUT")
    assert r["action"] == "GUARDRAIL_INTERVENED"
    assert r["outputs"] == [{"text": "Mail {EMAIL} about {ticket}, card {CREDIT_DEBIT_CARD_NUMBER}."}]
    si = r["assessments"][0]["sensitiveInformationPolicy"]
    assert {(e["type"], e["match"], e["action"]) for e in si["piiEntities"]} == {
        ("EMAIL", "jane.doe@example.com", "ANONYMIZED"),
        ("CREDIT_DEBIT_CARD_NUMBER", "4111 1111 1111 1111", "ANONYMIZED"),
    }
    assert si["regexes"] == [{"name": "ticket", "match": "TCK-123456", "regex": r"TCK-\d{6}",
                              "action": "ANONYMIZED", "detected": True}]
    # A number that fails the Luhn check is not a card.
    r = _apply(runtime, words_guardrail, "Order 4111 1111 1111 1112 shipped.")
    assert r["action"] == "NONE"
    # BLOCK wins over ANONYMIZE.
    r = _apply(runtime, words_guardrail, "My SSN is 123-45-6789 and my mail is a@b.co")
    assert r["action"] == "GUARDRAIL_INTERVENED" and r["outputs"] == [{"text": BLOCKED_IN}]
    assert r["usage"]["sensitiveInformationPolicyUnits"] == 1
    assert r["usage"]["sensitiveInformationPolicyFreeUnits"] == 1


def test_apply_full_scope_and_metrics(runtime, words_guardrail):
    r = _apply(runtime, words_guardrail, "Nothing to see here.", outputScope="FULL")
    assert r["action"] == "NONE"
    m = r["assessments"][0]["invocationMetrics"]
    assert m["guardrailCoverage"]["textCharacters"] == {"guarded": 20, "total": 20}
    assert m["usage"]["wordPolicyUnits"] == 1
    assert isinstance(m["guardrailProcessingLatency"], int)


def test_apply_errors(runtime, words_guardrail):
    with pytest.raises(ClientError) as e:
        _apply(runtime, "nosuchguardrail", "hi")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        _apply(runtime, words_guardrail, "hi", version="9")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        runtime.apply_guardrail(guardrailIdentifier=words_guardrail, guardrailVersion="1", source="INPUT",
                                content=[{"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}}])
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_apply_contextual_grounding(bedrock, runtime):
    g = _create(bedrock, contextualGroundingPolicyConfig={"filtersConfig": [
        {"type": "GROUNDING", "threshold": 0.5}, {"type": "RELEVANCE", "threshold": 0.3}]})
    gid = g["guardrailId"]
    try:
        source = "The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall."
        query = "When was the Eiffel Tower completed?"

        def check(answer):
            return runtime.apply_guardrail(
                guardrailIdentifier=gid, guardrailVersion="DRAFT", source="OUTPUT", outputScope="FULL",
                content=[{"text": {"text": source, "qualifiers": ["grounding_source"]}},
                         {"text": {"text": query, "qualifiers": ["query"]}},
                         {"text": {"text": answer}}])

        good = check("The Eiffel Tower was completed in 1889.")
        bad = check("Bananas are rich in potassium and grow in bunches.")
        score = {f["type"]: f["score"] for f in good["assessments"][0]["contextualGroundingPolicy"]["filters"]}
        bad_score = {f["type"]: f["score"] for f in bad["assessments"][0]["contextualGroundingPolicy"]["filters"]}
        assert good["action"] == "NONE", good
        assert bad["action"] == "GUARDRAIL_INTERVENED", bad
        assert score["GROUNDING"] > bad_score["GROUNDING"] and score["RELEVANCE"] > bad_score["RELEVANCE"]
        assert good["usage"]["contextualGroundingPolicyUnits"] == 1
        assert good["guardrailCoverage"]["textCharacters"]["guarded"] == len("The Eiffel Tower was completed in 1889.")
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)


def test_guardrails_survive_a_restart(shape_checker):
    from conftest import BasaltServer, make_client_factory
    import tempfile
    with tempfile.TemporaryDirectory(prefix="basalt-guard-") as d:
        srv = BasaltServer(data_dir=d, name="basalt-guard").start()
        try:
            mk = make_client_factory(shape_checker, srv.endpoint)
            g = _create(mk("bedrock"), wordPolicyConfig={"wordsConfig": [{"text": "zebra"}]})
            mk("bedrock").create_guardrail_version(guardrailIdentifier=g["guardrailId"])
        finally:
            srv.stop()
        srv2 = BasaltServer(data_dir=d, name="basalt-guard-restart").start()
        try:
            mk = make_client_factory(shape_checker, srv2.endpoint)
            got = mk("bedrock").get_guardrail(guardrailIdentifier=g["guardrailId"], guardrailVersion="1")
            assert got["wordPolicy"]["words"][0]["text"] == "zebra"
            assert _apply(mk("bedrock-runtime"), g["guardrailId"], "a zebra")["action"] == "GUARDRAIL_INTERVENED"
        finally:
            srv2.close()


def test_guardrail_metrics_reach_cloudwatch(runtime, words_guardrail, make_client):
    _apply(runtime, words_guardrail, "pineapple")
    cw = make_client("cloudwatch")
    deadline = time.time() + 10
    names = set()
    while time.time() < deadline:
        names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/Bedrock/Guardrails")["Metrics"]}
        if {"Invocations", "InvocationsIntervened", "InvocationLatency", "TextUnitCount"} <= names:
            break
        time.sleep(0.2)
    assert {"Invocations", "InvocationsIntervened", "InvocationLatency", "TextUnitCount"} <= names
    dims = [m["Dimensions"] for m in cw.list_metrics(Namespace="AWS/Bedrock/Guardrails",
                                                       MetricName="InvocationsIntervened")["Metrics"]]
    assert any({"Name": "GuardrailPolicyType", "Value": "WordPolicy"} in d for d in dims), dims


# --- on model calls ------------------------------------------------------------------


def _claude(text, max_tokens=30, **extra):
    body = {"anthropic_version": AV, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return json.dumps(body)


@needs_chat
def test_invoke_model_input_blocked_spends_no_tokens(runtime, words_guardrail):
    r = runtime.invoke_model(modelId=MODEL, body=_claude("Write about a pineapple."),
                             guardrailIdentifier=words_guardrail, guardrailVersion="1", trace="ENABLED")
    body = json.loads(r["body"].read())
    assert body["content"][0]["text"] == BLOCKED_IN
    assert body["amazon-bedrock-guardrailAction"] == "INTERVENED"
    assert body["usage"]["input_tokens"] == 0 and body["usage"]["output_tokens"] == 0
    assessment = body["amazon-bedrock-trace"]["guardrail"]["input"][words_guardrail]
    assert assessment["wordPolicy"]["customWords"][0]["match"] == "pineapple"
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == "0"


@needs_chat
def test_invoke_model_tags_limit_what_is_judged(runtime, words_guardrail):
    # The developer's text names the custom word; only the tagged user text is judged.
    text = ("You may mention pineapple. Question: <amazon-bedrock-guardrails-guardContent_abc>"
            "What is 2 + 2? Answer with a number.</amazon-bedrock-guardrails-guardContent_abc>")
    r = runtime.invoke_model(modelId=MODEL, guardrailIdentifier=words_guardrail, guardrailVersion="1",
                             body=_claude(text, 10, **{"amazon-bedrock-guardrailConfig": {"tagSuffix": "abc"}}))
    body = json.loads(r["body"].read())
    assert body.get("amazon-bedrock-guardrailAction") == "NONE", body
    assert body["content"][0]["text"] != BLOCKED_IN
    assert body["usage"]["output_tokens"] > 0


@needs_chat
def test_invoke_model_output_is_checked(bedrock, runtime):
    g = _create(bedrock, wordPolicyConfig={"wordsConfig": [
        {"text": "Paris", "inputEnabled": False}]})
    gid = g["guardrailId"]
    try:
        r = runtime.invoke_model(modelId=MODEL, guardrailIdentifier=gid, guardrailVersion="DRAFT",
                                 body=_claude("What is the capital of France? Answer in one word.", 10))
        body = json.loads(r["body"].read())
        assert body["content"][0]["text"] == BLOCKED_OUT, body
        assert body["amazon-bedrock-guardrailAction"] == "INTERVENED"
        assert body["usage"]["output_tokens"] > 0  # the model ran
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)


@needs_chat
def test_invoke_stream_holds_back_a_blocked_answer(bedrock, runtime):
    g = _create(bedrock, wordPolicyConfig={"wordsConfig": [{"text": "Paris", "inputEnabled": False}]})
    gid = g["guardrailId"]
    try:
        r = runtime.invoke_model_with_response_stream(
            modelId=MODEL, guardrailIdentifier=gid, guardrailVersion="DRAFT",
            body=_claude("What is the capital of France? Answer in one word.", 10))
        chunks = [json.loads(e["chunk"]["bytes"]) for e in r["body"] if "chunk" in e]
        text = "".join(c["delta"].get("text", "") for c in chunks if c["type"] == "content_block_delta")
        assert text == BLOCKED_OUT
        assert "paris" not in json.dumps(chunks).lower().replace(BLOCKED_OUT.lower(), "")
        assert chunks[-1]["amazon-bedrock-guardrailAction"] == "INTERVENED"
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)


@needs_chat
def test_converse_input_blocked_and_trace(runtime, words_guardrail):
    r = runtime.converse(
        modelId=MODEL, messages=[{"role": "user", "content": [{"text": "Describe a pineapple."}]}],
        inferenceConfig={"maxTokens": 20, "temperature": 0},
        guardrailConfig={"guardrailIdentifier": words_guardrail, "guardrailVersion": "1", "trace": "enabled"})
    assert r["stopReason"] == "guardrail_intervened"
    assert r["output"]["message"]["content"] == [{"text": BLOCKED_IN}]
    assert r["usage"]["inputTokens"] == 0
    assert words_guardrail in r["trace"]["guardrail"]["inputAssessment"]


@needs_chat
def test_converse_guard_content_and_masked_output(bedrock, runtime):
    g = _create(bedrock, wordPolicyConfig={"wordsConfig": [{"text": "pineapple"}]},
                sensitiveInformationPolicyConfig={"piiEntitiesConfig": [
                    {"type": "EMAIL", "action": "ANONYMIZE"}]})
    gid = g["guardrailId"]
    try:
        r = runtime.converse(
            modelId=MODEL,
            system=[{"text": "Never talk about pineapple."}],
            messages=[{"role": "user", "content": [
                {"text": "The word pineapple is fine here."},
                {"guardContent": {"text": {"text": "Repeat exactly: write to bob@example.org"}}}]}],
            inferenceConfig={"maxTokens": 30, "temperature": 0},
            guardrailConfig={"guardrailIdentifier": gid, "guardrailVersion": "DRAFT", "trace": "enabled_full"})
        text = r["output"]["message"]["content"][0]["text"]
        assert "bob@example.org" not in text
        if "{EMAIL}" in text:
            assert r["stopReason"] == "guardrail_intervened"
            assert r["trace"]["guardrail"]["modelOutput"]
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)


@needs_chat
def test_converse_stream_sync_holds_back(bedrock, runtime):
    g = _create(bedrock, wordPolicyConfig={"wordsConfig": [{"text": "Paris", "inputEnabled": False}]})
    gid = g["guardrailId"]
    try:
        r = runtime.converse_stream(
            modelId=MODEL, messages=[{"role": "user", "content": [
                {"text": "What is the capital of France? Answer in one word."}]}],
            inferenceConfig={"maxTokens": 10, "temperature": 0},
            guardrailConfig={"guardrailIdentifier": gid, "guardrailVersion": "DRAFT",
                             "streamProcessingMode": "sync", "trace": "enabled"})
        events = list(r["stream"])
        text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e)
        stop = [e["messageStop"]["stopReason"] for e in events if "messageStop" in e]
        assert text == BLOCKED_OUT and stop == ["guardrail_intervened"]
        meta = [e["metadata"] for e in events if "metadata" in e][0]
        assert gid in meta["trace"]["guardrail"]["outputAssessments"]
    finally:
        bedrock.delete_guardrail(guardrailIdentifier=gid)
