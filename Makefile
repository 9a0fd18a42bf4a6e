# tradefleet: every target sets up what it needs on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: help venv run test lint bench exsim clean crds

help:
	@echo "make run    - the main job (see README)"
	@echo "make test   - create the virtualenv, install, run the test suite"
	@echo "make bench  - run the benchmarks under bench/ (figures printed and written as JSON)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tradefleet exsim --data data/binance-um --speed 20

exsim: run

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/exsim_orders.py

lint: $(STAMP)
	$(PY) -m ruff check . || true

# CRD YAML in crds/ generated from the pydantic API models (tradefleet/api/crd.py).
crds: $(STAMP)
	$(PY) -m tradefleet.api.crd

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
