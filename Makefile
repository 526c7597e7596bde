# tuxai — two commands: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
DEV_STAMP  := $(VENV)/.installed-dev

.PHONY: run test system-deps lint typecheck layers unit bench test-gpu clean

# Real programs the tests drive: a Prometheus server scrapes the daemon, tmux shows `tuxai top`.
SYSTEM_TOOLS := prometheus tmux

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
test: $(DEV_STAMP) system-deps lint typecheck layers unit

## system-deps: Debian packages the tests need (installed when root, as in CI; else says what to install)
system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	  else echo "make test needs:$$missing (Debian: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

layers: $(DEV_STAMP)
	$(BIN)/lint-imports

unit: $(DEV_STAMP)
	$(BIN)/pytest

## bench: the performance benchmarks (ratios against a baseline in the same process)
bench: $(DEV_STAMP) system-deps
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y wrk; } || { echo "bench/serving.py needs wrk"; exit 1; }
	$(BIN)/pip install --quiet litserve
	$(BIN)/python bench/doctor.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/sim.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/telemetry.py
	$(BIN)/python bench/serving.py

## test-gpu: the opt-in tests for a machine with a real GPU
test-gpu: $(DEV_STAMP)
	$(BIN)/pytest tests/gpu -m gpu

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
