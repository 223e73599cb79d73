# The two commands a data engineer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DURATION ?= 30
PYTEST_ARGS ?=
# The broker of `make demo` (default tansu: needs no Java) and of the bench
# (tansu, or kafka: Apache Kafka from Maven Central, needs java and mvn).
# `make test` runs on Apache Kafka wherever java and mvn are on PATH, else on
# tansu with a notice; BROKER=tansu|kafka forces one.
BROKER ?=

.PHONY: install demo test chaos unit lint bench bench-floor soak clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev,sandbox]'
	touch $@

install: $(VENV)/.installed

## demo: broker + registry + simulator + connector on loopback for DURATION seconds
demo: install
	$(VENV)/bin/sequence-connector demo --duration $(DURATION) --summary-json demo-summary.json \
		--broker $(or $(BROKER),tansu)

## test: the whole suite (unit, integration with the real broker and registry, end-to-end)
test: install
	$(PY) -m pytest -q -p no:cacheprovider $(if $(BROKER),--broker $(BROKER)) -m "not slow" $(PYTEST_ARGS)

## chaos: the long chaos variants left out of make test (a minute-long broker freeze then
## kill -9, replicas scaled 1 -> 3 -> 1 and rolled, the quick bench); CI runs it too
chaos: install
	$(PY) -m pytest -q -p no:cacheprovider $(if $(BROKER),--broker $(BROKER)) -m slow $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest -q tests/unit

## bench: the connector against peers and limits on the same feed (not part of `make test`)
bench: install
	$(PY) -m bench.run --broker $(or $(BROKER),tansu)

## bench-floor: the broker's own produce -> ack latency across producer settings (~2 minutes)
bench-floor: install
	$(PY) -m bench.floor --broker $(or $(BROKER),tansu)

## soak: connector RSS under steady load, sampled every 10 s (DURATION s, default 1800; RATE
## simulated events/s, default 3000); writes bench/results/soak.{json,md}, exit 1 unless flat
soak: install
	$(PY) -m bench.soak --duration $(if $(filter file,$(origin DURATION)),1800,$(DURATION)) \
		--rate $(or $(RATE),3000)

## warehouse-demo: Apache Kafka + registry + simulator + connector for DURATION s, then Apache
## Flink lands fills/orders/book/prices as Parquet and DuckDB reports; writes
## warehouse-summary.json (about 1.5 min after the first fetch; needs java and mvn)
warehouse-demo: $(VENV)/.warehouse
	$(PY) -m deploy.warehouse.demo --duration $(DURATION) --summary-json warehouse-summary.json

## warehouse-test: the landed Parquet equals the simulator's REST history exactly (about 2 min)
warehouse-test: $(VENV)/.warehouse
	$(PY) -m pytest -q -p no:cacheprovider $(if $(BROKER),--broker $(BROKER)) tests/e2e/test_warehouse.py

.PHONY: warehouse-demo warehouse-test
$(VENV)/.warehouse: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[warehouse]'
	touch $@

## lint: ruff (rules in pyproject.toml), mypy --strict and the import map of
## docs/ARCHITECTURE.md (lint-imports)
lint: install
	$(VENV)/bin/ruff check connector bench tests
	$(VENV)/bin/mypy connector bench
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info demo-summary.json warehouse-summary.json
