# tuxai — two commands: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
DEV_STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint typecheck layers unit bench test-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

## run: set up, check the machine, start the daemon and run example PyTorch + TensorFlow jobs
run: $(RUN_STAMP)
	-$(BIN)/tuxai doctor --no-frameworks
	$(BIN)/python examples/demo.py

## test: set up, lint, type-check, check the layers, run the tests
test: $(DEV_STAMP) lint typecheck layers unit

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

layers: $(DEV_STAMP)
	$(BIN)/lint-imports

unit: $(DEV_STAMP)
	$(BIN)/pytest

## bench: the performance benchmarks (ratios against a baseline in the same process)
bench: $(DEV_STAMP)
	$(BIN)/python bench/doctor.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/sim.py
	$(BIN)/python bench/dispatch.py

## test-gpu: the opt-in tests for a machine with a real GPU
test-gpu: $(DEV_STAMP)
	$(BIN)/pytest tests/gpu -m gpu

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
