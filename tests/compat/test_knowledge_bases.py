"""Bedrock Knowledge Bases (issue 14): the bedrock-agent control plane (knowledge bases, data
sources, ingestion jobs) and the bedrock-agent-runtime (Retrieve, RetrieveAndGenerate and its
stream), on the local embedding and chat models.

Documents are small and made up, each holding one distinctive fact, so that what is checked
is the plumbing (chunking, metadata, filters, incremental sync, citations, durability) rather
than a model's judgement; retrieval quality is measured by bench/kb_eval.py.
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import BasaltServer, make_client_factory

REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/KbRole"
EMBED = f"arn:aws:bedrock:{REGION}::foundation-model/amazon.titan-embed-text-v2:0"
CHAT = f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"
OSS = {
    "type": "OPENSEARCH_SERVERLESS",
    "opensearchServerlessConfiguration": {
        "collectionArn": f"arn:aws:aoss:{REGION}:{ACCOUNT}:collection/kbtest",
        "vectorIndexName": "idx",
        "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"},
    },
}
PINECONE = {
    "type": "PINECONE",
    "pineconeConfiguration": {
        "connectionString": "https://example.pinecone.io",
        "credentialsSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pc",
        "fieldMapping": {"textField": "t", "metadataField": "m"},
    },
}


def _model_dir() -> Path:
    d = os.environ.get("BASALT_MODEL_DIR")
    return Path(d) if d else Path.home() / ".cache" / "basalt" / "models"


pytestmark = pytest.mark.skipif(
    not (_model_dir() / "all-minilm-l6-v2" / "model.safetensors").exists()
    and not os.environ.get("BASALT_ENDPOINT"),
    reason="the local embedding model is not installed (basalt models pull)",
)
needs_chat = pytest.mark.skipif(
    not os.environ.get("BASALT_ENDPOINT") and not any(_model_dir().glob("*.gguf")),
    reason="no local chat model (basalt models pull)",
)


@pytest.fixture(scope="module")
def agent(make_client):
    return make_client("bedrock-agent")


@pytest.fixture(scope="module")
def rt(make_client):
    return make_client("bedrock-agent-runtime", read_timeout=300)


def _name(prefix="kb"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_kb(agent, storage=OSS, **kw):
    kb = agent.create_knowledge_base(
        name=_name(), roleArn=ROLE,
        knowledgeBaseConfiguration={"type": "VECTOR",
                                    "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED}},
        storageConfiguration=storage, **kw,
    )["knowledgeBase"]
    return kb["knowledgeBaseId"]


def create_ds(agent, kb_id, bucket, prefixes=None, chunking=None, **kw):
    s3c = {"bucketArn": f"arn:aws:s3:::{bucket}"}
    if prefixes:
        s3c["inclusionPrefixes"] = prefixes
    args = dict(knowledgeBaseId=kb_id, name=_name("ds"),
                dataSourceConfiguration={"type": "S3", "s3Configuration": s3c})
    if chunking:
        args["vectorIngestionConfiguration"] = {"chunkingConfiguration": chunking}
    args.update(kw)
    return agent.create_data_source(**args)["dataSource"]["dataSourceId"]


def ingest(agent, kb_id, ds_id, timeout=120):
    job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]
    assert job["status"] == "STARTING"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = agent.get_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                    ingestionJobId=job["ingestionJobId"])["ingestionJob"]
        if j["status"] in ("COMPLETE", "FAILED", "STOPPED"):
            return j
        time.sleep(0.2)
    raise AssertionError(f"ingestion job still {j['status']}")


def put(s3, bucket, key, body, metadata=None):
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)
    if metadata is not None:
        s3.put_object(Bucket=bucket, Key=key + ".metadata.json",
                      Body=json.dumps({"metadataAttributes": metadata}).encode())


def uris(results):
    return [r["location"]["s3Location"]["uri"] for r in results]


def retrieve(rt, kb_id, text, n=5, **vsc):
    vsc["numberOfResults"] = n
    return rt.retrieve(knowledgeBaseId=kb_id, retrievalQuery={"text": text},
                       retrievalConfiguration={"vectorSearchConfiguration": vsc})["retrievalResults"]


# --- control plane ---------------------------------------------------------------------


def test_knowledge_base_lifecycle(agent):
    token = uuid.uuid4().hex + "-retry"
    kb = agent.create_knowledge_base(
        name=_name(), description="d", roleArn=ROLE, clientToken=token,
        knowledgeBaseConfiguration={"type": "VECTOR",
                                    "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED}},
        storageConfiguration=OSS, tags={"team": "ml"},
    )["knowledgeBase"]
    kb_id = kb["knowledgeBaseId"]
    assert kb["status"] == "ACTIVE"
    assert kb["knowledgeBaseArn"] == f"arn:aws:bedrock:{REGION}:{ACCOUNT}:knowledge-base/{kb_id}"
    assert len(kb_id) == 10 and kb_id.isalnum() and kb_id.isupper()
    # A retried create with the same token is the same knowledge base.
    again = agent.create_knowledge_base(
        name="other", roleArn=ROLE, clientToken=token,
        knowledgeBaseConfiguration={"type": "VECTOR",
                                    "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED}},
        storageConfiguration=OSS)["knowledgeBase"]
    assert again["knowledgeBaseId"] == kb_id
    got = agent.get_knowledge_base(knowledgeBaseId=kb_id)["knowledgeBase"]
    assert got["storageConfiguration"] == OSS and got["description"] == "d"
    assert agent.list_tags_for_resource(resourceArn=kb["knowledgeBaseArn"])["tags"] == {"team": "ml"}
    upd = agent.update_knowledge_base(
        knowledgeBaseId=kb_id, name="renamed", roleArn=ROLE,
        knowledgeBaseConfiguration=kb["knowledgeBaseConfiguration"], storageConfiguration=OSS,
    )["knowledgeBase"]
    assert upd["name"] == "renamed"
    with pytest.raises(ClientError) as e:
        agent.update_knowledge_base(
            knowledgeBaseId=kb_id, name="renamed", roleArn=ROLE, storageConfiguration=OSS,
            knowledgeBaseConfiguration={"type": "VECTOR", "vectorKnowledgeBaseConfiguration": {
                "embeddingModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/cohere.embed-english-v3"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert agent.delete_knowledge_base(knowledgeBaseId=kb_id)["status"] == "DELETING"
    with pytest.raises(ClientError) as e:
        agent.get_knowledge_base(knowledgeBaseId=kb_id)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_list_knowledge_bases_pages(agent):
    ids = {create_kb(agent) for _ in range(3)}
    seen, token = [], None
    while True:
        kw = {"maxResults": 1}
        if token:
            kw["nextToken"] = token
        page = agent.list_knowledge_bases(**kw)
        assert len(page["knowledgeBaseSummaries"]) <= 1
        seen += [s["knowledgeBaseId"] for s in page["knowledgeBaseSummaries"]]
        token = page.get("nextToken")
        if not token:
            break
    assert ids <= set(seen) and len(seen) == len(set(seen))
    for i in ids:
        agent.delete_knowledge_base(knowledgeBaseId=i)


@pytest.mark.parametrize("config,message", [
    ({"type": "VECTOR", "vectorKnowledgeBaseConfiguration": {
        "embeddingModelArn": f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"}},
     "not an embedding model"),
    ({"type": "KENDRA", "kendraKnowledgeBaseConfiguration": {
        "kendraIndexArn": f"arn:aws:kendra:{REGION}:{ACCOUNT}:index/0123456789abcdef0123456789abcdef0123"}},
     "VECTOR"),
])
def test_create_refuses_what_cannot_be_served(agent, config, message):
    with pytest.raises(ClientError) as e:
        agent.create_knowledge_base(name=_name(), roleArn=ROLE, knowledgeBaseConfiguration=config,
                                    storageConfiguration=OSS)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert message in e.value.response["Error"]["Message"]


def test_data_source_lifecycle(agent, bucket):
    kb_id = create_kb(agent)
    ds_id = create_ds(agent, kb_id, bucket, prefixes=["docs/"],
                      chunking={"chunkingStrategy": "FIXED_SIZE",
                                "fixedSizeChunkingConfiguration": {"maxTokens": 100, "overlapPercentage": 10}})
    ds = agent.get_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)["dataSource"]
    assert ds["status"] == "AVAILABLE" and ds["dataDeletionPolicy"] == "DELETE"
    name = ds["name"]
    with pytest.raises(ClientError) as e:
        create_ds(agent, kb_id, bucket, name=name)
    assert e.value.response["Error"]["Code"] == "ConflictException"
    with pytest.raises(ClientError) as e:
        agent.create_data_source(knowledgeBaseId=kb_id, name=_name("ds"), dataSourceConfiguration={
            "type": "S3", "s3Configuration": {"bucketArn": "arn:aws:s3:::b/with/key"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    # The chunking of indexed documents cannot change.
    with pytest.raises(ClientError) as e:
        agent.update_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id, name=name,
                                 dataSourceConfiguration=ds["dataSourceConfiguration"],
                                 vectorIngestionConfiguration={"chunkingConfiguration": {"chunkingStrategy": "NONE"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    upd = agent.update_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id, name=name, description="x",
                                   dataSourceConfiguration=ds["dataSourceConfiguration"],
                                   vectorIngestionConfiguration=ds["vectorIngestionConfiguration"])
    assert upd["dataSource"]["description"] == "x"
    listed = agent.list_data_sources(knowledgeBaseId=kb_id)["dataSourceSummaries"]
    assert [d["dataSourceId"] for d in listed] == [ds_id]
    assert agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)["status"] == "DELETING"
    with pytest.raises(ClientError) as e:
        agent.get_data_source(knowledgeBaseId=kb_id, dataSourceId=ds_id)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


# --- ingestion and retrieval -----------------------------------------------------------

CORPUS = {
    "docs/jazz.txt": ("The Halcyon jazz festival takes place every August in Port Wexley.",
                      {"genre": "music", "year": 2019, "tags": ["outdoor", "summer"]}),
    "docs/opera.txt": ("The Lumen opera season opens each October at the Vesper Hall in Calder.",
                       {"genre": "music", "year": 2023, "tags": ["indoor"]}),
    "docs/coffee.md": ("# Roastery\n\nThe Marigold coffee blend is roasted for 14 minutes at Kestrel.",
                       {"genre": "food", "year": 2021, "tags": ["indoor"]}),
    "docs/chess.html": ("<html><body><h1>Club</h1><p>The Quasar chess club mascot is an octopus named Inkwell.</p>"
                        "<script>ignored()</script></body></html>", None),
    "docs/image.png": ("not a document", None),
    "other/secret.txt": ("The Halcyon jazz festival is secretly in Atlantis.", None),
}


@pytest.fixture(scope="module")
def corpus_kb(agent, make_client):
    s3 = make_client("s3")
    bucket = f"kb-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    for key, (body, meta) in CORPUS.items():
        put(s3, bucket, key, body, meta)
    kb_id = create_kb(agent)
    ds_id = create_ds(agent, kb_id, bucket, prefixes=["docs/"])
    job = ingest(agent, kb_id, ds_id)
    yield {"kb": kb_id, "ds": ds_id, "bucket": bucket, "job": job, "s3": s3}
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_ingestion_statistics_and_failures(corpus_kb):
    job = corpus_kb["job"]
    assert job["status"] == "COMPLETE"
    s = job["statistics"]
    assert s["numberOfDocumentsScanned"] == 5
    assert s["numberOfMetadataDocumentsScanned"] == 3
    assert s["numberOfNewDocumentsIndexed"] == 4
    assert s["numberOfDocumentsFailed"] == 1
    assert any(f"s3://{corpus_kb['bucket']}/docs/image.png" in r for r in job["failureReasons"]), job


def test_retrieve_returns_metadata_and_locations(rt, corpus_kb):
    res = retrieve(rt, corpus_kb["kb"], "What is the name of the chess club mascot?", n=2)
    top = res[0]
    assert top["location"] == {"type": "S3", "s3Location": {"uri": f"s3://{corpus_kb['bucket']}/docs/chess.html"}}
    assert "Inkwell" in top["content"]["text"] and "ignored" not in top["content"]["text"]
    assert top["content"]["type"] == "TEXT"
    m = top["metadata"]
    assert m["x-amz-bedrock-kb-source-uri"] == top["location"]["s3Location"]["uri"]
    assert m["x-amz-bedrock-kb-data-source-id"] == corpus_kb["ds"]
    assert m["x-amz-bedrock-kb-chunk-id"]
    jazz = retrieve(rt, corpus_kb["kb"], "When is the Halcyon jazz festival?", n=1)[0]
    assert jazz["metadata"]["genre"] == "music" and jazz["metadata"]["year"] == 2019
    assert jazz["metadata"]["tags"] == ["outdoor", "summer"]
    # Outside the inclusion prefix: never indexed.
    assert all("other/" not in u for u in uris(retrieve(rt, corpus_kb["kb"], "Halcyon festival Atlantis", n=10)))


@pytest.mark.parametrize("flt,expected", [
    ({"equals": {"key": "genre", "value": "food"}}, {"docs/coffee.md"}),
    ({"greaterThan": {"key": "year", "value": 2020}}, {"docs/opera.txt", "docs/coffee.md"}),
    ({"listContains": {"key": "tags", "value": "indoor"}}, {"docs/opera.txt", "docs/coffee.md"}),
    ({"andAll": [{"equals": {"key": "genre", "value": "music"}},
                 {"lessThanOrEquals": {"key": "year", "value": 2020}}]}, {"docs/jazz.txt"}),
    ({"orAll": [{"startsWith": {"key": "genre", "value": "fo"}},
                {"in": {"key": "year", "value": [2019]}}]}, {"docs/jazz.txt", "docs/coffee.md"}),
    ({"notEquals": {"key": "genre", "value": "music"}}, {"docs/coffee.md", "docs/chess.html"}),
])
@pytest.mark.parametrize("search", ["HYBRID", "SEMANTIC"])
def test_filters_apply_inside_the_search(rt, corpus_kb, flt, expected, search):
    # Whatever the query is about, every result passes the filter, and every passing
    # document is found (the filter is not applied after a top-k cut).
    res = retrieve(rt, corpus_kb["kb"], "chess club mascot octopus", n=10, filter=flt, overrideSearchType=search)
    got = {u.split("/", 3)[3] for u in uris(res)}
    assert got == expected, res


def test_bad_filter_and_unsupported_search_type(rt, agent, corpus_kb):
    with pytest.raises(ClientError) as e:
        retrieve(rt, corpus_kb["kb"], "x", filter={"in": {"key": "year", "value": 2019}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    kb_id = create_kb(agent, storage=PINECONE)
    with pytest.raises(ClientError) as e:
        retrieve(rt, kb_id, "x", overrideSearchType="HYBRID")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert retrieve(rt, kb_id, "x", overrideSearchType="SEMANTIC") == []
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)
    with pytest.raises(ClientError) as e:
        retrieve(rt, "NOSUCHKB00", "x")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


RERANKER = "arn:aws:bedrock:us-east-1::foundation-model/amazon.rerank-v1:0"


def test_rerank_orders_sources_by_relevance(rt):
    docs = ["The opera house seats two thousand people.",
            "Our chess club's mascot is an octopus named Inkwell.",
            {"team": "chess", "mascot": "octopus"}]
    sources = [{"type": "INLINE", "inlineDocumentSource": (
        {"type": "JSON", "jsonDocument": d} if isinstance(d, dict) else {"type": "TEXT", "textDocument": {"text": d}})}
        for d in docs]
    config = {"type": "BEDROCK_RERANKING_MODEL",
              "bedrockRerankingConfiguration": {"modelConfiguration": {"modelArn": RERANKER}, "numberOfResults": 2}}
    out = rt.rerank(queries=[{"type": "TEXT", "textQuery": {"text": "What is the chess club mascot?"}}],
                    sources=sources, rerankingConfiguration=config)["results"]
    assert len(out) == 2 and {r["index"] for r in out} == {1, 2}, out
    assert out[0]["relevanceScore"] >= out[1]["relevanceScore"] and 0 <= out[1]["relevanceScore"] <= 1
    assert out[0]["document"] == sources[out[0]["index"]]["inlineDocumentSource"]
    config["bedrockRerankingConfiguration"]["modelConfiguration"]["modelArn"] = \
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
    with pytest.raises(ClientError) as e:
        rt.rerank(queries=[{"type": "TEXT", "textQuery": {"text": "q"}}], sources=sources,
                  rerankingConfiguration=config)
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_retrieve_reranks_what_it_found(rt, corpus_kb):
    plain = retrieve(rt, corpus_kb["kb"], "Which festival happens in summer outdoors?", n=4, overrideSearchType="HYBRID")
    rerank = {"type": "BEDROCK_RERANKING_MODEL", "bedrockRerankingConfiguration": {
        "modelConfiguration": {"modelArn": RERANKER}, "numberOfRerankedResults": 2,
        "metadataConfiguration": {"selectionMode": "ALL"}}}
    got = retrieve(rt, corpus_kb["kb"], "Which festival happens in summer outdoors?", n=4,
                   overrideSearchType="HYBRID", rerankingConfiguration=rerank)
    assert len(got) == 2 and set(uris(got)) <= set(uris(plain)), (got, plain)
    assert got[0]["score"] >= got[1]["score"]
    # The jazz festival's metadata says outdoor and summer: with metadata in the reranked
    # text it comes first.
    assert uris(got)[0].endswith("docs/jazz.txt"), got


needs_agent_model = pytest.mark.skipif(
    not os.environ.get("BASALT_ENDPOINT")
    and not (_model_dir() / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf").exists(),
    reason="the agents' model is not installed (basalt models pull)",
)
EVENT_ATTRIBUTES = [
    {"key": "genre", "type": "STRING", "description": "The kind of place or event: music or food."},
    {"key": "year", "type": "NUMBER", "description": "The year it opened or took place, e.g. 2019."},
]


@needs_agent_model
@pytest.mark.timeout(600)
@pytest.mark.parametrize("query,expected", [
    ("Which food places opened in 2021?", {"docs/coffee.md"}),
    ("Tell me about the music events of 2023.", {"docs/opera.txt"}),
])
def test_implicit_filter_comes_from_the_query(rt, corpus_kb, query, expected):
    implicit = {"metadataAttributes": EVENT_ATTRIBUTES,
                "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"}
    assert len(retrieve(rt, corpus_kb["kb"], query, n=10)) == 4
    got = retrieve(rt, corpus_kb["kb"], query, n=10, implicitFilterConfiguration=implicit)
    assert {u.split("/", 3)[3] for u in uris(got)} == expected, got
    # An explicit filter narrows further (both apply).
    none = retrieve(rt, corpus_kb["kb"], query, n=10, implicitFilterConfiguration=implicit,
                    filter={"equals": {"key": "genre", "value": "games"}})
    assert none == []


def test_retrieve_pages_with_next_token(rt, corpus_kb):
    first = rt.retrieve(knowledgeBaseId=corpus_kb["kb"], retrievalQuery={"text": "festival"},
                        retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 2}})
    assert len(first["retrievalResults"]) == 2 and first["nextToken"]
    second = rt.retrieve(knowledgeBaseId=corpus_kb["kb"], retrievalQuery={"text": "festival"},
                         nextToken=first["nextToken"],
                         retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 2}})
    assert not set(uris(first["retrievalResults"])) & set(uris(second["retrievalResults"]))


def test_sync_is_incremental(agent, rt, make_client, bucket):
    s3 = make_client("s3")
    put(s3, bucket, "a.txt", "The river Osk flows north to the Varden sea.")
    put(s3, bucket, "b.txt", "The mountain Tarn is 3120 metres high.", {"kind": "peak"})
    put(s3, bucket, "c.txt", "The lake Mirel freezes every December.")
    kb_id = create_kb(agent)
    ds_id = create_ds(agent, kb_id, bucket)
    assert ingest(agent, kb_id, ds_id)["statistics"]["numberOfNewDocumentsIndexed"] == 3
    # Nothing changed: nothing is indexed again.
    s = ingest(agent, kb_id, ds_id)["statistics"]
    assert (s["numberOfDocumentsScanned"], s["numberOfNewDocumentsIndexed"], s["numberOfModifiedDocumentsIndexed"],
            s["numberOfDocumentsDeleted"]) == (3, 0, 0, 0)
    put(s3, bucket, "a.txt", "The river Osk flows south to the Emberlight gulf.")
    put(s3, bucket, "b.txt.metadata.json", json.dumps({"metadataAttributes": {"kind": "summit"}}))
    s3.delete_object(Bucket=bucket, Key="c.txt")
    s = ingest(agent, kb_id, ds_id)["statistics"]
    assert s["numberOfModifiedDocumentsIndexed"] == 1, s
    assert s["numberOfMetadataDocumentsModified"] == 1, s
    assert s["numberOfDocumentsDeleted"] == 1, s
    top = retrieve(rt, kb_id, "Where does the river Osk flow?", n=1)[0]
    assert "Emberlight" in top["content"]["text"]
    assert retrieve(rt, kb_id, "mountain", n=1, filter={"equals": {"key": "kind", "value": "summit"}})
    assert f"s3://{bucket}/c.txt" not in uris(retrieve(rt, kb_id, "lake Mirel December", n=5))
    jobs = agent.list_ingestion_jobs(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                     sortBy={"attribute": "STARTED_AT", "order": "ASCENDING"})["ingestionJobSummaries"]
    assert len(jobs) == 3 and all(j["status"] == "COMPLETE" for j in jobs)
    assert [j["startedAt"] for j in jobs] == sorted(j["startedAt"] for j in jobs)
    none = agent.list_ingestion_jobs(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                     filters=[{"attribute": "STATUS", "operator": "EQ", "values": ["FAILED"]}])
    assert none["ingestionJobSummaries"] == []
    with pytest.raises(ClientError) as e:
        agent.stop_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id, ingestionJobId=jobs[0]["ingestionJobId"])
    assert e.value.response["Error"]["Code"] == "ConflictException"
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_s3_vectors_knowledge_base_writes_its_vectors_to_its_index(agent, rt, make_client, bucket):
    """A knowledge base of storage type S3_VECTORS keeps its chunks' vectors in the index it
    names: the application reads them with ListVectors and finds them with QueryVectors on an
    embedding from InvokeModel (Titan v2, 1024 values: the local embedding zero-padded), with
    the chunk's text under AMAZON_BEDROCK_TEXT and its metadata as keys; a sync that deletes
    a document deletes its vectors; an index the vectors do not fit fails the job's documents."""
    s3, sv, br = make_client("s3"), make_client("s3vectors"), make_client("bedrock-runtime")
    vb = _name("vb")
    sv.create_vector_bucket(vectorBucketName=vb)
    sv.create_index(vectorBucketName=vb, indexName="kb-index", dataType="float32", dimension=1024, distanceMetric="cosine",
                    metadataConfiguration={"nonFilterableMetadataKeys": ["AMAZON_BEDROCK_TEXT", "AMAZON_BEDROCK_METADATA"]})
    index_arn = sv.get_index(vectorBucketName=vb, indexName="kb-index")["index"]["indexArn"]
    put(s3, bucket, "sv/osk.txt", "The river Osk flows north to the Varden sea.")
    put(s3, bucket, "sv/tarn.txt", "The mountain Tarn is 3120 metres high.", {"kind": "peak"})
    put(s3, bucket, "sv/mirel.txt", "The lake Mirel freezes every December.")
    kb_id = create_kb(agent, storage={"type": "S3_VECTORS", "s3VectorsConfiguration": {"indexArn": index_arn}})
    ds_id = create_ds(agent, kb_id, bucket, prefixes=["sv/"])
    job = ingest(agent, kb_id, ds_id)
    assert job["status"] == "COMPLETE" and not job.get("failureReasons"), job
    listed = sv.list_vectors(vectorBucketName=vb, indexName="kb-index", returnMetadata=True, returnData=True)["vectors"]
    by_uri = {v["metadata"]["x-amz-bedrock-kb-source-uri"]: v for v in listed}
    assert set(by_uri) == {f"s3://{bucket}/sv/{n}.txt" for n in ("osk", "tarn", "mirel")}
    tarn = by_uri[f"s3://{bucket}/sv/tarn.txt"]
    assert tarn["metadata"]["AMAZON_BEDROCK_TEXT"] == "The mountain Tarn is 3120 metres high."
    assert tarn["metadata"]["kind"] == "peak"
    assert json.loads(tarn["metadata"]["AMAZON_BEDROCK_METADATA"])["x-amz-bedrock-kb-data-source-id"] == ds_id
    assert len(tarn["data"]["float32"]) == 1024
    # The application's own query, on the embedding InvokeModel gives it.
    q = json.loads(br.invoke_model(modelId="amazon.titan-embed-text-v2:0",
                                   body=json.dumps({"inputText": "How high is the mountain Tarn?"}))["body"].read())
    found = sv.query_vectors(vectorBucketName=vb, indexName="kb-index", topK=1, queryVector={"float32": q["embedding"]},
                             returnMetadata=True)["vectors"]
    assert found[0]["metadata"]["x-amz-bedrock-kb-source-uri"] == f"s3://{bucket}/sv/tarn.txt"
    only = sv.query_vectors(vectorBucketName=vb, indexName="kb-index", topK=3, queryVector={"float32": q["embedding"]},
                            filter={"kind": "peak"}, returnMetadata=True)["vectors"]
    assert [v["metadata"]["x-amz-bedrock-kb-source-uri"] for v in only] == [f"s3://{bucket}/sv/tarn.txt"]
    # Retrieve answers from the same vectors.
    assert uris(retrieve(rt, kb_id, "How high is the mountain Tarn?", n=1)) == [f"s3://{bucket}/sv/tarn.txt"]
    s3.delete_object(Bucket=bucket, Key="sv/mirel.txt")
    assert ingest(agent, kb_id, ds_id)["statistics"]["numberOfDocumentsDeleted"] == 1
    keys = sv.list_vectors(vectorBucketName=vb, indexName="kb-index", returnMetadata=True)["vectors"]
    assert sorted(v["metadata"]["x-amz-bedrock-kb-source-uri"] for v in keys) == [
        f"s3://{bucket}/sv/osk.txt", f"s3://{bucket}/sv/tarn.txt"]
    # An index smaller than the embedding cannot hold its vectors: the job says so.
    sv.create_index(vectorBucketName=vb, indexName="small", dataType="float32", dimension=16, distanceMetric="cosine")
    small = create_kb(agent, storage={"type": "S3_VECTORS", "s3VectorsConfiguration": {
        "vectorBucketArn": f"arn:aws:s3vectors:{REGION}:{ACCOUNT}:bucket/{vb}", "indexName": "small"}})
    job = ingest(agent, small, create_ds(agent, small, bucket, prefixes=["sv/"]))
    assert job["status"] == "COMPLETE"
    assert any("S3 Vectors" in r for r in job.get("failureReasons", [])), job
    for kb in (kb_id, small):
        agent.delete_knowledge_base(knowledgeBaseId=kb)


TRANSFORM_SRC = """
import boto3, json

s3 = boto3.client("s3")

def handler(event, context):
    # One chunk per sentence, each numbered in its own metadata.
    assert event["version"] == "1.0" and event["priorTask"] == "CHUNKING", event
    bucket = event["bucketName"]
    out = []
    for f in event["inputFiles"]:
        batches = []
        for b in f["contentBatches"]:
            doc = json.loads(s3.get_object(Bucket=bucket, Key=b["key"])["Body"].read())
            pieces = []
            for item in doc["fileContents"]:
                for i, sentence in enumerate(s for s in item["contentBody"].split(". ") if s.strip()):
                    pieces.append({"contentBody": sentence.strip().rstrip(".") + ".", "contentType": "string",
                                   "contentMetadata": {"sentence": i, "kind": "split"}})
            key = b["key"].replace("/input/", "/output/")
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"fileContents": pieces}))
            batches.append({"key": key})
        out.append({"originalFileLocation": f["originalFileLocation"],
                    "fileMetadata": {**f["fileMetadata"], "transformed": True}, "contentBatches": batches})
    return {"outputFiles": out}
"""


def test_custom_transformation_lambda_rewrites_the_chunks(agent, rt, make_client, bucket):
    """customTransformationConfiguration (POST_CHUNKING): Basalt writes each document's chunks
    to the intermediate bucket, invokes the function with Bedrock's event, and indexes the
    chunks it wrote back, with their chunk-level metadata over the file's."""
    from test_lambda import zip_of
    s3, lam = make_client("s3"), make_client("lambda")
    inter = f"kb-inter-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=inter)
    fn = lam.create_function(FunctionName=_name("split"), Runtime="python3.12", Role=ROLE, Handler="index.handler",
                             Code={"ZipFile": zip_of({"index.py": TRANSFORM_SRC})}, Timeout=60)["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(FunctionName=fn)
    put(s3, bucket, "tx/fjord.txt", "The Skarn fjord is deep. Its water is green. Seals rest on its rocks.", {"region": "north"})
    transform = {"intermediateStorage": {"s3Location": {"uri": f"s3://{inter}/work"}},
                 "transformations": [{"stepToApply": "POST_CHUNKING", "transformationFunction": {
                     "transformationLambdaConfiguration": {"lambdaArn": fn}}}]}
    kb_id = create_kb(agent)
    with pytest.raises(ClientError) as e:
        create_ds(agent, kb_id, bucket, prefixes=["tx/"], vectorIngestionConfiguration={
            "customTransformationConfiguration": {**transform, "intermediateStorage": {"s3Location": {"uri": "bucket"}}}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    ds_id = create_ds(agent, kb_id, bucket, prefixes=["tx/"],
                      vectorIngestionConfiguration={"customTransformationConfiguration": transform})
    job = ingest(agent, kb_id, ds_id, timeout=180)
    assert job["status"] == "COMPLETE" and not job.get("failureReasons"), job
    results = retrieve(rt, kb_id, "What colour is the water of the Skarn fjord?", n=5)
    texts = {r["content"]["text"]: r["metadata"] for r in results}
    assert set(texts) == {"The Skarn fjord is deep.", "Its water is green.", "Seals rest on its rocks."}, texts
    green = texts["Its water is green."]
    assert green["sentence"] == 1 and green["kind"] == "split" and green["region"] == "north"
    assert green["transformed"] is True
    # The chunk-level metadata is filterable like any other.
    only = retrieve(rt, kb_id, "fjord", n=5, filter={"equals": {"key": "sentence", "value": 2}})
    assert [r["content"]["text"] for r in only] == ["Seals rest on its rocks."]
    # Both batches stay in the intermediate bucket, as Bedrock leaves them.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=inter)["Contents"]]
    assert any("/input/" in k for k in keys) and any("/output/" in k for k in keys), keys
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_data_deletion_policy(agent, rt, make_client, bucket):
    s3 = make_client("s3")
    put(s3, bucket, "keep/a.txt", "The Orrin lighthouse was built in 1871.")
    put(s3, bucket, "drop/b.txt", "The Orrin ferry leaves at dawn.")
    kb_id = create_kb(agent)
    keep = create_ds(agent, kb_id, bucket, prefixes=["keep/"], dataDeletionPolicy="RETAIN")
    drop = create_ds(agent, kb_id, bucket, prefixes=["drop/"])
    ingest(agent, kb_id, keep)
    ingest(agent, kb_id, drop)
    assert len(retrieve(rt, kb_id, "Orrin", n=5)) == 2
    agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=keep)
    agent.delete_data_source(knowledgeBaseId=kb_id, dataSourceId=drop)
    # RETAIN keeps the vectors searchable; DELETE removes them.
    assert uris(retrieve(rt, kb_id, "Orrin", n=5)) == [f"s3://{bucket}/keep/a.txt"]
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_hierarchical_chunks_return_their_parent(agent, rt, make_client, bucket):
    s3 = make_client("s3")
    sentences = [f"Fact number {i} about the Zephyr archive is that shelf {i} holds {i * 7} scrolls." for i in range(40)]
    put(s3, bucket, "archive.txt", " ".join(sentences))
    kb_id = create_kb(agent)
    ds_id = create_ds(agent, kb_id, bucket, chunking={
        "chunkingStrategy": "HIERARCHICAL",
        "hierarchicalChunkingConfiguration": {
            "levelConfigurations": [{"maxTokens": 200}, {"maxTokens": 40}], "overlapTokens": 10}})
    assert ingest(agent, kb_id, ds_id)["status"] == "COMPLETE"
    res = retrieve(rt, kb_id, "How many scrolls does shelf 12 hold?", n=3)
    # The parent (up to 200 tokens, several sentences) comes back, not the 40-token child.
    assert "shelf 12 holds 84 scrolls" in res[0]["content"]["text"]
    assert res[0]["content"]["text"].count("Fact number") >= 3
    assert len({r["content"]["text"] for r in res}) == len(res)
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_semantic_and_no_chunking(agent, rt, make_client, bucket):
    s3 = make_client("s3")
    put(s3, bucket, "mixed.txt",
        "Cats purr when they are content. Kittens sleep most of the day. "
        "The bond market fell sharply on Tuesday. Treasury yields rose to a new high.")
    kb_id = create_kb(agent)
    sem = create_ds(agent, kb_id, bucket, chunking={
        "chunkingStrategy": "SEMANTIC",
        "semanticChunkingConfiguration": {"maxTokens": 300, "bufferSize": 0, "breakpointPercentileThreshold": 60}})
    assert ingest(agent, kb_id, sem)["statistics"]["numberOfNewDocumentsIndexed"] == 1
    top = retrieve(rt, kb_id, "What happened to treasury yields?", n=1)[0]["content"]["text"]
    assert "yields" in top and "purr" not in top, top
    kb2 = create_kb(agent)
    whole = create_ds(agent, kb2, bucket, chunking={"chunkingStrategy": "NONE"})
    ingest(agent, kb2, whole)
    res = retrieve(rt, kb2, "cats", n=5)
    assert len(res) == 1 and "purr" in res[0]["content"]["text"] and "yields" in res[0]["content"]["text"]
    for k in (kb_id, kb2):
        agent.delete_knowledge_base(knowledgeBaseId=k)


def test_pdf_page_numbers(agent, rt, make_client, bucket):
    import importlib.util
    helpers = Path(__file__).resolve().parents[3] / "shared" / "acceptance" / "acceptance_helpers.py"
    if not helpers.exists():
        pytest.skip("../shared/acceptance (its PDF writer) is absent")
    s3 = make_client("s3")
    spec = importlib.util.spec_from_file_location("acceptance_helpers_pdf", helpers)
    ah = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ah)
    put(s3, bucket, "hb.pdf", ah.make_pdf("Quasar Chess Club handbook.\nThe club mascot is an octopus named Inkwell."))
    kb_id = create_kb(agent)
    ds_id = create_ds(agent, kb_id, bucket)
    assert ingest(agent, kb_id, ds_id)["statistics"]["numberOfNewDocumentsIndexed"] == 1
    top = retrieve(rt, kb_id, "mascot", n=1)[0]
    assert "Inkwell" in top["content"]["text"]
    assert top["metadata"]["x-amz-bedrock-kb-document-page-number"] == 1
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


# --- generation -------------------------------------------------------------------------


def rag_config(kb_id, **gen):
    c = {"knowledgeBaseId": kb_id, "modelArn": CHAT,
         "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": 3}},
         "generationConfiguration": {"inferenceConfig": {"textInferenceConfig": {"maxTokens": 80, "temperature": 0.0}}}}
    c["generationConfiguration"].update(gen)
    return {"type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": c}


@needs_chat
def test_retrieve_and_generate_cites_and_keeps_a_session(rt, corpus_kb):
    resp = rt.retrieve_and_generate(input={"text": "What is the name of the Quasar chess club mascot?"},
                                    retrieveAndGenerateConfiguration=rag_config(corpus_kb["kb"]))
    text = resp["output"]["text"]
    assert "inkwell" in text.lower(), text
    cited = [r["location"]["s3Location"]["uri"] for c in resp["citations"] for r in c["retrievedReferences"]]
    assert f"s3://{corpus_kb['bucket']}/docs/chess.html" in cited
    for c in resp["citations"]:
        part = c["generatedResponsePart"]["textResponsePart"]
        assert text[part["span"]["start"]:part["span"]["end"] + 1] == part["text"]
    follow = rt.retrieve_and_generate(sessionId=resp["sessionId"], input={"text": "What kind of animal is it?"},
                                      retrieveAndGenerateConfiguration=rag_config(corpus_kb["kb"]))
    assert follow["sessionId"] == resp["sessionId"]
    assert "octopus" in follow["output"]["text"].lower(), follow["output"]["text"]
    with pytest.raises(ClientError) as e:
        rt.retrieve_and_generate(sessionId=str(uuid.uuid4()), input={"text": "x"},
                                 retrieveAndGenerateConfiguration=rag_config(corpus_kb["kb"]))
    assert e.value.response["Error"]["Code"] == "ValidationException"


@needs_chat
def test_custom_prompt_template(rt, corpus_kb):
    resp = rt.retrieve_and_generate(
        input={"text": "How long is the Marigold blend roasted?"},
        retrieveAndGenerateConfiguration=rag_config(corpus_kb["kb"], promptTemplate={
            "textPromptTemplate": "Search results:\n$search_results$\n\nQuestion: $query$\nReply with the number of minutes only."}))
    assert "14" in resp["output"]["text"], resp["output"]["text"]


@needs_chat
def test_retrieve_and_generate_stream(rt, corpus_kb):
    resp = rt.retrieve_and_generate_stream(
        input={"text": "In which town is the Halcyon jazz festival?"},
        retrieveAndGenerateConfiguration=rag_config(corpus_kb["kb"]))
    assert resp["sessionId"]
    text, citations = "", []
    for ev in resp["stream"]:
        if "output" in ev:
            text += ev["output"]["text"]
        if "citation" in ev:
            citations.append(ev["citation"])
    assert "wexley" in text.lower(), text
    cited = [r["location"]["s3Location"]["uri"] for c in citations for r in c["retrievedReferences"]]
    assert f"s3://{corpus_kb['bucket']}/docs/jazz.txt" in cited, citations


@needs_chat
def test_external_sources(rt):
    doc = b"Orion Bakery facts. The Orion bakery sells a rye loaf called the Comet for 6 euros."
    resp = rt.retrieve_and_generate(
        input={"text": "What is the rye loaf of the Orion bakery called?"},
        retrieveAndGenerateConfiguration={"type": "EXTERNAL_SOURCES", "externalSourcesConfiguration": {
            "modelArn": CHAT,
            "sources": [{"sourceType": "BYTE_CONTENT", "byteContent": {
                "identifier": "bakery.txt", "contentType": "text/plain", "data": doc}}]}})
    assert "comet" in resp["output"]["text"].lower(), resp["output"]["text"]


# --- durability ---------------------------------------------------------------------------


def test_ingestion_resumes_after_kill9(shape_checker):
    with tempfile.TemporaryDirectory(prefix="basalt-kb-durable-") as d:
        # A short lease, so that the second server takes the job over in seconds.
        lease = {"BASALT_KB_LEASE_MS": "8000"}
        srv = BasaltServer(data_dir=d, name="basalt-kb-durable", env=lease).start()
        mk = make_client_factory(shape_checker, srv.endpoint)
        s3, agent = mk("s3"), mk("bedrock-agent")
        bucket = f"kb-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=bucket)
        n = 60
        for i in range(n):
            put(s3, bucket, f"d/{i:03}.txt", f"Record {i}: the beacon on island {i} is painted colour number {i * 3}. " * 20)
        kb_id = create_kb(agent)
        ds_id = create_ds(agent, kb_id, bucket)
        job = agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)["ingestionJob"]
        time.sleep(1.0)
        srv.kill9()
        srv2 = BasaltServer(data_dir=d, name="basalt-kb-durable-restart", env=lease).start()
        try:
            mk2 = make_client_factory(shape_checker, srv2.endpoint)
            agent2, rt2 = mk2("bedrock-agent"), mk2("bedrock-agent-runtime")
            deadline = time.monotonic() + 300
            while True:
                j = agent2.get_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                             ingestionJobId=job["ingestionJobId"])["ingestionJob"]
                if j["status"] not in ("STARTING", "IN_PROGRESS"):
                    break
                assert time.monotonic() < deadline, j
                time.sleep(0.5)
            assert j["status"] == "COMPLETE", j
            s = j["statistics"]
            # Every document once: none lost, none counted twice across the crash.
            assert s["numberOfDocumentsScanned"] == n and s["numberOfNewDocumentsIndexed"] == n, s
            top = retrieve(rt2, kb_id, "What colour number is the beacon on island 41?", n=1)[0]
            assert top["location"]["s3Location"]["uri"] == f"s3://{bucket}/d/041.txt"
        finally:
            srv2.stop()
            assert not srv.panics() and not srv2.panics()
            srv2.close()
            srv.close()


# --- direct ingestion -----------------------------------------------------------------------


def _wait_documents(agent, kb_id, ds_id, identifiers, timeout=120):
    deadline = time.monotonic() + timeout
    while True:
        details = agent.get_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                                     documentIdentifiers=identifiers)["documentDetails"]
        if all(d["status"] not in ("STARTING", "IN_PROGRESS") for d in details) or time.monotonic() > deadline:
            return details
        time.sleep(0.2)


def test_direct_ingestion_of_custom_documents(agent, rt, bucket):
    kb_id = create_kb(agent)
    ds_id = agent.create_data_source(knowledgeBaseId=kb_id, name=_name("ds"),
                                     dataSourceConfiguration={"type": "CUSTOM"})["dataSource"]["dataSourceId"]
    with pytest.raises(ClientError) as e:
        agent.start_ingestion_job(knowledgeBaseId=kb_id, dataSourceId=ds_id)
    assert e.value.response["Error"]["Code"] == "ValidationException"
    resp = agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=[
        {"content": {"dataSourceType": "CUSTOM", "custom": {
            "customDocumentIdentifier": {"id": "note-1"}, "sourceType": "IN_LINE",
            "inlineContent": {"type": "TEXT", "textContent": {"data": "The Brightwater canal was dug in 1822."}}}},
         "metadata": {"type": "IN_LINE_ATTRIBUTE", "inlineAttributes": [
             {"key": "era", "value": {"type": "STRING", "stringValue": "industrial"}}]}},
        {"content": {"dataSourceType": "CUSTOM", "custom": {
            "customDocumentIdentifier": {"id": "bad-1"}, "sourceType": "S3_LOCATION",
            "s3Location": {"uri": f"s3://{bucket}/missing.txt"}}}},
    ])["documentDetails"]
    assert [d["status"] for d in resp] == ["STARTING", "STARTING"]
    ids = [{"dataSourceType": "CUSTOM", "custom": {"id": "note-1"}},
           {"dataSourceType": "CUSTOM", "custom": {"id": "bad-1"}}]
    details = _wait_documents(agent, kb_id, ds_id, ids)
    assert [d["status"] for d in details] == ["INDEXED", "FAILED"], details
    assert "missing.txt" in details[1]["statusReason"]
    top = retrieve(rt, kb_id, "When was the Brightwater canal dug?", n=1)[0]
    assert top["location"] == {"type": "CUSTOM", "customDocumentLocation": {"id": "note-1"}}
    assert top["metadata"]["era"] == "industrial" and "1822" in top["content"]["text"]
    listed = agent.list_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id)["documentDetails"]
    assert sorted(d["identifier"]["custom"]["id"] for d in listed) == ["bad-1", "note-1"]
    gone = agent.delete_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id,
                                                 documentIdentifiers=ids[:1])["documentDetails"]
    assert gone[0]["status"] == "DELETING"
    assert retrieve(rt, kb_id, "Brightwater canal", n=3) == []
    assert _wait_documents(agent, kb_id, ds_id, ids[:1])[0]["status"] == "NOT_FOUND"
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


def test_direct_ingestion_into_an_s3_data_source(agent, rt, make_client, bucket):
    s3 = make_client("s3")
    put(s3, bucket, "fresh.txt", "The Quillon observatory opened in 1911 on Mount Sable.")
    kb_id = create_kb(agent)
    ds_id = create_ds(agent, kb_id, bucket)
    uri = f"s3://{bucket}/fresh.txt"
    agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=[
        {"content": {"dataSourceType": "S3", "s3": {"s3Location": {"uri": uri}}}}])
    ident = [{"dataSourceType": "S3", "s3": {"uri": uri}}]
    assert _wait_documents(agent, kb_id, ds_id, ident)[0]["status"] == "INDEXED"
    assert uris(retrieve(rt, kb_id, "When did the Quillon observatory open?", n=1)) == [uri]
    with pytest.raises(ClientError) as e:
        agent.ingest_knowledge_base_documents(knowledgeBaseId=kb_id, dataSourceId=ds_id, documents=[
            {"content": {"dataSourceType": "S3", "s3": {"s3Location": {"uri": "s3://another-bucket/x.txt"}}}}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    # Direct ingestion records no ETag: the next sync indexes the object again, losing nothing.
    s = ingest(agent, kb_id, ds_id)["statistics"]
    assert s["numberOfDocumentsScanned"] == 1 and s["numberOfDocumentsFailed"] == 0
    assert uris(retrieve(rt, kb_id, "Quillon observatory", n=1)) == [uri]
    agent.delete_knowledge_base(knowledgeBaseId=kb_id)


@needs_chat
def test_guardrail_blocks_the_question(make_client, rt, corpus_kb):
    bedrock = make_client("bedrock")
    g = bedrock.create_guardrail(name=_name("g"), blockedInputMessaging="Blocked question.",
                                 blockedOutputsMessaging="Blocked answer.",
                                 wordPolicyConfig={"wordsConfig": [{"text": "octopus"}]})
    resp = rt.retrieve_and_generate(
        input={"text": "Is the chess club mascot an octopus?"},
        retrieveAndGenerateConfiguration=rag_config(corpus_kb["kb"], guardrailConfiguration={
            "guardrailId": g["guardrailId"], "guardrailVersion": "DRAFT"}))
    assert resp["guardrailAction"] == "INTERVENED"
    assert resp["output"]["text"] == "Blocked question."
    assert resp["citations"] == []
    ok = rt.retrieve_and_generate(
        input={"text": "Where is the Halcyon jazz festival?"},
        retrieveAndGenerateConfiguration=rag_config(corpus_kb["kb"], guardrailConfiguration={
            "guardrailId": g["guardrailId"], "guardrailVersion": "DRAFT"}))
    assert ok["guardrailAction"] == "NONE"
    bedrock.delete_guardrail(guardrailIdentifier=g["guardrailId"])
