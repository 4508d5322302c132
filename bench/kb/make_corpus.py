"""Builds the knowledge-base evaluation set (docs/ and questions.jsonl) from a SQuAD 2.0
development file: its five Wikipedia articles cut into documents of six consecutive
paragraphs, and every 5th answerable question (crowd-written before any retrieval, with its
answers). Run once; the output is committed, so the bench needs no network.

    python3 bench/kb/make_corpus.py /path/to/dev-v2.0.json
"""
import json
import sys
from pathlib import Path

PARAGRAPHS_PER_DOC = 6
EVERY = 5

here = Path(__file__).resolve().parent
data = json.load(open(sys.argv[1]))["data"]
docs_dir = here / "docs"
docs_dir.mkdir(exist_ok=True)
questions = []
n_docs = 0
for article in data:
    title = article["title"].replace("_", " ")
    paras = article["paragraphs"]
    for part, start in enumerate(range(0, len(paras), PARAGRAPHS_PER_DOC), start=1):
        group = paras[start:start + PARAGRAPHS_PER_DOC]
        name = f"{article['title'].lower()}-{part:02}.txt"
        body = f"{title} (part {part})\n\n" + "\n\n".join(p["context"].strip() for p in group) + "\n"
        (docs_dir / name).write_text(body)
        n_docs += 1
        for p in group:
            for q in p["qas"]:
                if q.get("is_impossible") or not q["answers"]:
                    continue
                questions.append({
                    "id": q["id"], "question": q["question"].strip(), "document": name,
                    "answers": sorted({a["text"].strip() for a in q["answers"]}),
                })
picked = questions[::EVERY]
with open(here / "questions.jsonl", "w") as f:
    for q in picked:
        f.write(json.dumps(q) + "\n")
print(f"{n_docs} documents, {len(picked)} questions (of {len(questions)} answerable)")
