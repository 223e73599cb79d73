# The two commands a data engineer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DURATION ?= 30
PYTEST_ARGS ?=

.PHONY: install demo test unit lint bench bench-floor clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

install: $(VENV)/.installed

## demo: broker + registry + simulator + connector on loopback for DURATION seconds
demo: install
	$(VENV)/bin/sequence-connector demo --duration $(DURATION) --summary-json demo-summary.json

## test: the whole suite (unit, integration with the real broker and registry, end-to-end)
test: install
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest -q tests/unit

## bench: the connector against peers and limits on the same feed (not part of `make test`)
bench: install
	$(PY) -m bench.run

## bench-floor: the broker's own produce -> ack latency across producer settings (~2 minutes)
bench-floor: install
	$(PY) -m bench.floor

lint: install
	$(VENV)/bin/ruff check connector tests
	$(VENV)/bin/mypy connector

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info demo-summary.json
