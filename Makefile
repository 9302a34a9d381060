# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUF := tools/node_modules/.bin/buf
STAMP := $(VENV)/.installed

.PHONY: run test setup lint typecheck buf-lint buf-breaking api-baseline check-generated generate unit integration bench bench-subscribe bench-projection bench-import bench-cli-import bench-replicas bench-all bench-all-quick soak clean

## setup: create the virtualenv and install the service, the client and the dev tools
setup: $(STAMP)

$(STAMP): pyproject.toml clients/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e "./clients[cli]" -e ".[dev]"
	touch $(STAMP)

$(BUF): tools/package.json
	cd tools && npm install --no-audit --no-fund --silent
	touch $(BUF)

## run: run the server on the embedded SQLite store at localhost:50051
run: setup
	$(PY) -m service

## test: set up, check generated code and lint, then run every test
test: setup check-generated buf-lint buf-breaking lint typecheck
	$(PY) -m pytest -q

unit: setup
	$(PY) -m pytest -q tests/unit

integration: setup
	$(PY) -m pytest -q tests/integration

## generate: regenerate Python code from proto/ (committed, never edited by hand)
generate: setup
	$(PY) scripts/generate_proto.py

check-generated: setup
	$(PY) scripts/generate_proto.py --check

buf-lint: $(BUF)
	$(BUF) lint

## buf-breaking: fail if the API breaks compatibility (FILE rules) with the released baseline
buf-breaking: $(BUF)
	$(BUF) breaking --against proto/api-baseline.binpb

## api-baseline: record the current API as the baseline (on a release, after review)
api-baseline: $(BUF)
	$(BUF) build -o proto/api-baseline.binpb

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

## bench: the append benchmark (SQLite and PostgreSQL, 1 and 2 processes) against a bare gRPC echo server
bench: setup
	$(PY) benchmarks/append.py

## bench-subscribe: Subscribe catch-up over 100,000 events against raw in-process decoding
bench-subscribe: setup
	$(PY) benchmarks/subscribe.py

## bench-projection: statistics rebuild rate against raw decoding, and live projection lag
bench-projection: setup
	$(PY) benchmarks/projection.py

## bench-replicas: lag from a write on one PostgreSQL replica to another replica's Subscribe stream
bench-replicas: setup
	$(PY) benchmarks/replica_visibility.py

## bench-cli-import: `incidents import` of a 100,000-event export into a fresh SQLite registry
bench-cli-import: setup
	$(PY) benchmarks/cli_import.py

## bench-import: ImportEvents (and ReportShootings) into a fresh SQLite registry against a raw insert
bench-import: setup
	$(PY) benchmarks/import_events.py

## bench-all: the whole benchmark suite (about 20-30 minutes on 2 cores); report in benchmarks/report/
bench-all: setup
	$(PY) benchmarks/suite.py

## bench-all-quick: the whole suite at small sizes, a smoke run of a few minutes
bench-all-quick: setup
	$(PY) benchmarks/suite.py --quick

SOAK_SECONDS ?= 1800
SOAK_STORE ?= sqlite
SOAK_CLIENTS ?= 3

## soak: the server under a bounded mixed load for SOAK_SECONDS (1800) on SOAK_STORE (sqlite|postgres); fails on growth
soak: setup
	$(PY) benchmarks/soak.py --seconds $(SOAK_SECONDS) --store $(SOAK_STORE) --clients $(SOAK_CLIENTS)

clean:
	rm -rf $(VENV) tools/node_modules .mypy_cache .ruff_cache .pytest_cache
