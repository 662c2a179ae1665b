# Every target creates .venv and installs what it needs when missing, so a fresh clone
# with only Python 3.11 and make is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean mermaid-parser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m provena_ops.sandbox.demo

# Four workers on two cores: most tests wait on servers, subprocesses and job phases, not the CPU.
TEST_WORKERS ?= 4

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# Optional (needs node and npm): Mermaid's own parser, which the tests then run on every plan picture.
mermaid-parser: tests/mermaid/node_modules/.package-lock.json

tests/mermaid/node_modules/.package-lock.json: tests/mermaid/package.json tests/mermaid/package-lock.json
	cd tests/mermaid && npm ci --no-audit --no-fund --loglevel=error

lint: $(STAMP)
	$(BIN)/ruff check runner tests benchmarks
	$(BIN)/ruff format --check runner tests benchmarks
	$(BIN)/mypy

# `make bench QUICK=1`: the sandbox's throughput and the growth table to 10,000 runs (a few minutes).
bench: $(STAMP)
	$(BIN)/python benchmarks/fetch_throughput.py
ifndef QUICK
	$(BIN)/python benchmarks/validate_large.py
	$(BIN)/python benchmarks/input_scale.py
	$(BIN)/python benchmarks/plan_scale.py
	$(BIN)/python benchmarks/apply_scale.py
	$(BIN)/python benchmarks/undo_scale.py --runs 10000
endif
	$(BIN)/python benchmarks/scale_growth.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) .provena-ops .pytest_cache .mypy_cache .ruff_cache
