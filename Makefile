# Two commands: `make demo` runs the product, `make test` runs the suite.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTHON ?= python3

.PHONY: demo test check lint typecheck system-deps bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,scaip]'
	@touch $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

demo: system-deps $(STAMP)
	$(BIN)/tillsyn demo

lint: $(STAMP)
	$(BIN)/ruff check gateway detectors firmware_stubs tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

test: system-deps $(STAMP) check
	$(BIN)/pytest

bench: system-deps $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
