"""Bedrock control plane (`bedrock`, rest-json): the foundation models and system-defined
inference profiles Basalt serves."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(scope="module")
def bedrock(make_client):
    return make_client("bedrock")


def _error(exc_info):
    err = exc_info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_list_foundation_models(bedrock):
    models = bedrock.list_foundation_models()["modelSummaries"]
    ids = [m["modelId"] for m in models]
    assert HAIKU in ids and "amazon.titan-embed-text-v2:0" in ids
    assert len(ids) == len(set(ids))
    for m in models:
        assert m["modelArn"] == f"arn:aws:bedrock:{REGION}::foundation-model/{m['modelId']}"
        assert m["inferenceTypesSupported"] == ["ON_DEMAND"]
        assert m["customizationsSupported"] == []
        assert m["modelLifecycle"] == {"status": "ACTIVE"}
        assert m["inputModalities"] and m["outputModalities"]
        assert isinstance(m["responseStreamingSupported"], bool)


def test_list_foundation_models_by_output_modality(bedrock):
    emb = bedrock.list_foundation_models(byOutputModality="EMBEDDING")["modelSummaries"]
    assert emb and all(m["outputModalities"] == ["EMBEDDING"] for m in emb)
    assert {"amazon.titan-embed-text-v2:0", "cohere.embed-english-v3"} <= {m["modelId"] for m in emb}
    assert all(m["responseStreamingSupported"] is False for m in emb)
    text = bedrock.list_foundation_models(byOutputModality="TEXT")["modelSummaries"]
    assert text and all(m["outputModalities"] == ["TEXT"] for m in text)
    total = bedrock.list_foundation_models()["modelSummaries"]
    assert len(text) + len(emb) == len(total)
    # Basalt serves no image-generation model, so it lists none.
    assert bedrock.list_foundation_models(byOutputModality="IMAGE")["modelSummaries"] == []


def test_list_foundation_models_by_provider(bedrock):
    for p in ("anthropic", "Anthropic", "ANTHROPIC"):
        ms = bedrock.list_foundation_models(byProvider=p)["modelSummaries"]
        assert ms and {m["providerName"] for m in ms} == {"Anthropic"}, p
    ms = bedrock.list_foundation_models(byProvider="Mistral AI")["modelSummaries"]
    assert ms and {m["providerName"] for m in ms} == {"Mistral AI"}
    assert bedrock.list_foundation_models(byProvider="nobody")["modelSummaries"] == []
    both = bedrock.list_foundation_models(byProvider="cohere", byOutputModality="EMBEDDING")
    assert [m["modelId"] for m in both["modelSummaries"]] == [
        "cohere.embed-english-v3", "cohere.embed-multilingual-v3"]


def test_list_foundation_models_inference_and_customization(bedrock):
    all_ids = [m["modelId"] for m in bedrock.list_foundation_models()["modelSummaries"]]
    od = bedrock.list_foundation_models(byInferenceType="ON_DEMAND")["modelSummaries"]
    assert [m["modelId"] for m in od] == all_ids
    assert bedrock.list_foundation_models(byInferenceType="PROVISIONED")["modelSummaries"] == []
    assert bedrock.list_foundation_models(byCustomizationType="FINE_TUNING")["modelSummaries"] == []


def test_list_foundation_models_invalid_filter(bedrock, make_client):
    raw = make_client("bedrock", check=False, parameter_validation=False)
    with pytest.raises(ClientError) as e:
        raw.list_foundation_models(byOutputModality="VIDEO")
    code, status, _ = _error(e)
    assert (code, status) == ("ValidationException", 400)


def test_get_foundation_model(bedrock):
    d = bedrock.get_foundation_model(modelIdentifier=HAIKU)["modelDetails"]
    assert d["modelId"] == HAIKU
    assert d["modelArn"] == f"arn:aws:bedrock:{REGION}::foundation-model/{HAIKU}"
    assert d["modelName"] == "Claude 3 Haiku"
    assert d["providerName"] == "Anthropic"
    assert d["inputModalities"] == ["TEXT", "IMAGE"] and d["outputModalities"] == ["TEXT"]
    assert d["responseStreamingSupported"] is True
    by_arn = bedrock.get_foundation_model(modelIdentifier=d["modelArn"])["modelDetails"]
    assert by_arn == d
    # The same document as the listing's entry.
    listed = {m["modelId"]: m for m in bedrock.list_foundation_models()["modelSummaries"]}
    assert listed[HAIKU] == d


def test_get_foundation_model_embedding(bedrock):
    d = bedrock.get_foundation_model(modelIdentifier="amazon.titan-embed-text-v2:0")["modelDetails"]
    assert d["outputModalities"] == ["EMBEDDING"]
    assert d["providerName"] == "Amazon"


@pytest.mark.parametrize("ident", ["acme.nothing-v1", f"us.{HAIKU}"])
def test_get_foundation_model_unknown(bedrock, ident):
    with pytest.raises(ClientError) as e:
        bedrock.get_foundation_model(modelIdentifier=ident)
    code, status, message = _error(e)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == f"The model ID {ident} does not exist."
    assert e.value.response["ResponseMetadata"]["RequestId"]


def test_list_inference_profiles(bedrock):
    r = bedrock.list_inference_profiles()
    assert "nextToken" not in r
    profiles = r["inferenceProfileSummaries"]
    ids = [p["inferenceProfileId"] for p in profiles]
    assert f"us.{HAIKU}" in ids
    assert all(i.startswith(("us.", "global.")) for i in ids), ids
    served = {m["modelId"] for m in bedrock.list_foundation_models(byOutputModality="TEXT")["modelSummaries"]}
    for p in profiles:
        assert p["status"] == "ACTIVE" and p["type"] == "SYSTEM_DEFINED"
        assert p["inferenceProfileArn"] == (
            f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/{p['inferenceProfileId']}")
        base = p["inferenceProfileId"].split(".", 1)[1]
        assert base in served  # every profile routes to a chat model Basalt serves
        assert 1 <= len(p["models"]) <= 5
        assert all(m["modelArn"].endswith(f":foundation-model/{base}") for m in p["models"])
        assert p["description"].startswith("Routes requests to ")
    haiku = next(p for p in profiles if p["inferenceProfileId"] == f"us.{HAIKU}")
    assert haiku["inferenceProfileName"] == "US Anthropic Claude 3 Haiku"
    assert [m["modelArn"] for m in haiku["models"]] == [
        f"arn:aws:bedrock:{r}::foundation-model/{HAIKU}" for r in ("us-east-1", "us-east-2", "us-west-2")]
    assert bedrock.list_inference_profiles(typeEquals="SYSTEM_DEFINED")["inferenceProfileSummaries"] == profiles
    assert bedrock.list_inference_profiles(typeEquals="APPLICATION")["inferenceProfileSummaries"] == []


def test_list_inference_profiles_eu(make_client):
    eu = make_client("bedrock", region="eu-west-1")
    profiles = eu.list_inference_profiles()["inferenceProfileSummaries"]
    ids = [p["inferenceProfileId"] for p in profiles]
    assert f"eu.{HAIKU}" in ids and f"us.{HAIKU}" not in ids
    p = next(p for p in profiles if p["inferenceProfileId"] == f"eu.{HAIKU}")
    assert p["inferenceProfileName"] == "EU Anthropic Claude 3 Haiku"
    assert p["inferenceProfileArn"].startswith(f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/")


def test_list_inference_profiles_pagination(bedrock):
    everything = [p["inferenceProfileId"] for p in bedrock.list_inference_profiles()["inferenceProfileSummaries"]]
    seen, token, pages = [], None, 0
    while True:
        kw = {"maxResults": 3}
        if token:
            kw["nextToken"] = token
        r = bedrock.list_inference_profiles(**kw)
        page = [p["inferenceProfileId"] for p in r["inferenceProfileSummaries"]]
        assert 1 <= len(page) <= 3
        seen += page
        pages += 1
        token = r.get("nextToken")
        if not token:
            break
    assert seen == everything
    assert pages == -(-len(everything) // 3)
    paginated = [p["inferenceProfileId"]
                 for page in bedrock.get_paginator("list_inference_profiles").paginate(PaginationConfig={"PageSize": 5})
                 for p in page["inferenceProfileSummaries"]]
    assert paginated == everything


def test_list_inference_profiles_invalid_token(bedrock):
    with pytest.raises(ClientError) as e:
        bedrock.list_inference_profiles(nextToken="not-a-token")
    code, status, _ = _error(e)
    assert (code, status) == ("ValidationException", 400)


def test_get_inference_profile(bedrock):
    ident = f"us.{HAIKU}"
    p = bedrock.get_inference_profile(inferenceProfileIdentifier=ident)
    assert p["inferenceProfileId"] == ident
    assert p["inferenceProfileName"] == "US Anthropic Claude 3 Haiku"
    assert p["status"] == "ACTIVE" and p["type"] == "SYSTEM_DEFINED"
    assert p["description"] == "Routes requests to Anthropic Claude 3 Haiku in us-east-1, us-east-2 and us-west-2."
    by_arn = bedrock.get_inference_profile(inferenceProfileIdentifier=p["inferenceProfileArn"])
    strip = lambda d: {k: v for k, v in d.items() if k != "ResponseMetadata"}  # noqa: E731
    assert strip(by_arn) == strip(p)
    listed = {x["inferenceProfileId"]: x for x in bedrock.list_inference_profiles()["inferenceProfileSummaries"]}
    assert listed[ident] == strip(p)
    g = bedrock.get_inference_profile(inferenceProfileIdentifier="global.anthropic.claude-sonnet-4-20250514-v1:0")
    assert g["inferenceProfileName"] == "Global Anthropic Claude Sonnet 4"


@pytest.mark.parametrize("ident", ["us.acme.nothing-v1", HAIKU, "eu.amazon.nova-pro-v1:0"])
def test_get_inference_profile_unknown(bedrock, ident):
    with pytest.raises(ClientError) as e:
        bedrock.get_inference_profile(inferenceProfileIdentifier=ident)
    code, status, message = _error(e)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert ident in message


def test_unimplemented_operation(bedrock):
    with pytest.raises(ClientError) as e:
        bedrock.list_custom_models()
    code, status, message = _error(e)
    assert (code, status) == ("NotImplemented", 501)
    assert "ListCustomModels" in message and "bedrock" in message
