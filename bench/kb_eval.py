#!/usr/bin/env python3
"""Knowledge-base quality: retrieval recall@5 (HYBRID and SEMANTIC), RetrieveAndGenerate
answer accuracy and citation precision, and ingestion throughput, on bench/kb/ (31 documents
cut from five Wikipedia articles and 141 crowd-written questions of SQuAD 2.0's development
set; see bench/kb/SOURCES.md).

Starts Basalt (BASALT_BIN, default target/release/basalt) unless --endpoint is given,
uploads the documents to S3, creates a knowledge base with an S3 data source (default
chunking unless --chunking says otherwise), ingests it, then asks every question.

* recall@5: the question's answer (any of SQuAD's answers, case-insensitive) is in one of
  the top five chunks, and that chunk comes from the question's document.
* answer accuracy: RetrieveAndGenerate's text contains one of the answers.
* citation precision: of every chunk cited, the share that contains one of the answers.

  .venv/bin/python bench/kb_eval.py                      # retrieval and generation
  .venv/bin/python bench/kb_eval.py --no-generate        # retrieval only (fast)
  .venv/bin/python bench/kb_eval.py --chunking FIXED_SIZE:300:20
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE / "kb"
REGION = "us-east-1"
EMBED = f"arn:aws:bedrock:{REGION}::foundation-model/amazon.titan-embed-text-v2:0"
CHAT = f"arn:aws:bedrock:{REGION}::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def has_answer(text: str, answers) -> bool:
    t = norm(text)
    return any(norm(a) in t for a in answers)


def start_server(endpoint):
    if endpoint:
        return None, endpoint
    from peers import Server, peer_specs

    spec = peer_specs(argparse.Namespace(servers=["basalt"]))["basalt"]
    if not spec["available"]:
        sys.exit(f"{spec['why']}: build it (cargo build --release) or set BASALT_BIN")
    s = Server("basalt", spec).start(timeout=120)
    return s, s.endpoint


def chunking_config(spec: str | None):
    if not spec:
        return None
    kind, *nums = spec.split(":")
    if kind == "FIXED_SIZE":
        return {"chunkingStrategy": "FIXED_SIZE",
                "fixedSizeChunkingConfiguration": {"maxTokens": int(nums[0]), "overlapPercentage": int(nums[1])}}
    if kind == "HIERARCHICAL":
        return {"chunkingStrategy": "HIERARCHICAL", "hierarchicalChunkingConfiguration": {
            "levelConfigurations": [{"maxTokens": int(nums[0])}, {"maxTokens": int(nums[1])}],
            "overlapTokens": int(nums[2])}}
    if kind == "SEMANTIC":
        return {"chunkingStrategy": "SEMANTIC", "semanticChunkingConfiguration": {
            "maxTokens": int(nums[0]), "bufferSize": int(nums[1]), "breakpointPercentileThreshold": int(nums[2])}}
    return {"chunkingStrategy": kind}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint")
    ap.add_argument("--no-generate", action="store_true")
    ap.add_argument("--chunking", help="FIXED_SIZE:max:overlap | HIERARCHICAL:parent:child:overlap | "
                                       "SEMANTIC:max:buffer:percentile | NONE (default: Bedrock's default)")
    ap.add_argument("--limit", type=int, default=0, help="ask only the first N questions")
    ap.add_argument("--template", help="a file holding a promptTemplate (default: Basalt's)")
    ap.add_argument("--results", type=int, default=5, help="numberOfResults for generation")
    ap.add_argument("--show", action="store_true", help="print each wrong answer")
    args = ap.parse_args()

    import boto3
    from botocore.config import Config

    server, endpoint = start_server(args.endpoint)
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
              config=Config(retries={"max_attempts": 1}, read_timeout=600))
    s3, agent, rt = (boto3.client(s, **kw) for s in ("s3", "bedrock-agent", "bedrock-agent-runtime"))
    questions = [json.loads(line) for line in (DATA / "questions.jsonl").read_text().splitlines()]
    if args.limit:
        questions = questions[:args.limit]
    docs = sorted((DATA / "docs").glob("*.txt"))
    try:
        bucket = f"kb-eval-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        for d in docs:
            s3.put_object(Bucket=bucket, Key=f"docs/{d.name}", Body=d.read_bytes())
        kb = agent.create_knowledge_base(
            name=f"eval-{uuid.uuid4().hex[:8]}", roleArn="arn:aws:iam::000000000000:role/kb",
            knowledgeBaseConfiguration={"type": "VECTOR", "vectorKnowledgeBaseConfiguration": {"embeddingModelArn": EMBED}},
            storageConfiguration={"type": "OPENSEARCH_SERVERLESS", "opensearchServerlessConfiguration": {
                "collectionArn": "arn:aws:aoss:us-east-1:000000000000:collection/eval", "vectorIndexName": "i",
                "fieldMapping": {"vectorField": "v", "textField": "t", "metadataField": "m"}}},
        )["knowledgeBase"]["knowledgeBaseId"]
        ds_args = dict(knowledgeBaseId=kb, name="docs", dataSourceConfiguration={
            "type": "S3", "s3Configuration": {"bucketArn": f"arn:aws:s3:::{bucket}"}})
        chunking = chunking_config(args.chunking)
        if chunking:
            ds_args["vectorIngestionConfiguration"] = {"chunkingConfiguration": chunking}
        ds = agent.create_data_source(**ds_args)["dataSource"]["dataSourceId"]
        started = time.monotonic()
        job = agent.start_ingestion_job(knowledgeBaseId=kb, dataSourceId=ds)["ingestionJob"]
        while job["status"] not in ("COMPLETE", "FAILED", "STOPPED"):
            time.sleep(0.2)
            job = agent.get_ingestion_job(knowledgeBaseId=kb, dataSourceId=ds,
                                          ingestionJobId=job["ingestionJobId"])["ingestionJob"]
        ingest_s = time.monotonic() - started
        assert job["status"] == "COMPLETE", job
        print(f"ingestion: {len(docs)} documents ({sum(d.stat().st_size for d in docs) / 1024:.0f} KiB) in "
              f"{ingest_s:.1f} s = {len(docs) / ingest_s:.1f} documents/s; chunking {args.chunking or 'default'}")

        for search in () if args.template else ("HYBRID", "SEMANTIC"):
            hits, lat = 0, []
            for q in questions:
                t0 = time.monotonic()
                res = rt.retrieve(knowledgeBaseId=kb, retrievalQuery={"text": q["question"]},
                                  retrievalConfiguration={"vectorSearchConfiguration": {
                                      "numberOfResults": 5, "overrideSearchType": search}})["retrievalResults"]
                lat.append(time.monotonic() - t0)
                if any(r["location"]["s3Location"]["uri"].endswith("/" + q["document"])
                       and has_answer(r["content"]["text"], q["answers"]) for r in res):
                    hits += 1
            lat.sort()
            print(f"{search:8} recall@5 {hits / len(questions):.3f} ({hits}/{len(questions)}); "
                  f"Retrieve p50 {lat[len(lat) // 2] * 1000:.0f} ms")

        if args.no_generate:
            return
        correct, cited, cited_ok, lat = 0, 0, 0, []
        generation = {"inferenceConfig": {"textInferenceConfig": {"maxTokens": 80, "temperature": 0.0}}}
        if args.template:
            generation["promptTemplate"] = {"textPromptTemplate": Path(args.template).read_text()}
        for i, q in enumerate(questions):
            t0 = time.monotonic()
            resp = rt.retrieve_and_generate(input={"text": q["question"]}, retrieveAndGenerateConfiguration={
                "type": "KNOWLEDGE_BASE", "knowledgeBaseConfiguration": {
                    "knowledgeBaseId": kb, "modelArn": CHAT,
                    "retrievalConfiguration": {"vectorSearchConfiguration": {"numberOfResults": args.results}},
                    "generationConfiguration": generation}})
            lat.append(time.monotonic() - t0)
            ok = has_answer(resp["output"]["text"], q["answers"])
            correct += ok
            if args.show and not ok:
                print(f"  WRONG {q['question']!r} expected {q['answers']} got {resp['output']['text']!r}")
            for c in resp["citations"]:
                for r in c["retrievedReferences"]:
                    cited += 1
                    cited_ok += has_answer(r["content"]["text"], q["answers"])
            if (i + 1) % 20 == 0:
                print(f"  {i + 1}/{len(questions)}: accuracy so far {correct / (i + 1):.3f}", flush=True)
        lat.sort()
        print(f"RetrieveAndGenerate answer accuracy {correct / len(questions):.3f} ({correct}/{len(questions)}); "
              f"citation precision {cited_ok / max(cited, 1):.3f} ({cited_ok}/{cited} cited chunks); "
              f"p50 {lat[len(lat) // 2]:.1f} s")
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()
