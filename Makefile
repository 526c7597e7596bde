# tuxai — two commands: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
DEV_STAMP  := $(VENV)/.installed-dev
RAY_STAMP  := $(VENV)/.installed-ray
MLFLOW_STAMP := $(VENV)/.installed-mlflow

.PHONY: run test bytecode system-deps vm-deps lint typecheck layers unit test-vm test-ray test-mlflow ui-deps ui-assets wheel test-ui bench test-gpu clean containers-deps container-images test-containers slurm-deps test-slurm

# Real programs the tests drive (program:package): a Prometheus server scrapes the daemon, tmux shows `tuxai top`.
SYSTEM_TOOLS := prometheus:prometheus tmux:tmux
# The VM tier's programs (tests/vm, docs/testing.md).
VM_TOOLS := qemu-system-x86_64:qemu-system-x86 mmdebstrap:mmdebstrap mkfs.ext4:e2fsprogs debugfs:e2fsprogs
# The containers tier's programs (tests/containers; docs/containers.md): podman, its runtimes, mmdebstrap.
CONTAINER_TOOLS := podman:podman runc:runc crun:crun conmon:conmon mmdebstrap:mmdebstrap
# The Slurm tier's programs (tests/slurm): Debian's Slurm 22.05 and munge.
SLURM_TOOLS := slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge
# The browser tier's program (tests/browser): Debian's Chromium, driven by Playwright (a dev dependency).
UI_TOOLS := chromium:chromium

# Waits for apt's locks (another apt running: exit 100 otherwise). `update` takes the lists
# lock, which DPkg::Lock::Timeout does not cover on every apt: it is retried for 10 minutes.
APT_OPTS    := -o DPkg::Lock::Timeout=600
APT_UPDATE  := for try in $$(seq 60); do apt-get $(APT_OPTS) -q update && break; \
               [ $$try = 60 ] && exit 1; echo "apt-get update failed (another apt?): retrying in 10 s"; sleep 10; done
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get $(APT_OPTS) install -y --no-install-recommends

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# pip, not uv: a fresh dev venv is ~85 s of CPU, nearly all bytecode compilation, which both do on
# every core (uv measured: 56 s against pip's 52 s at load 2, the same packages; docs/testing.md).
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

## run: set up, check the machine, start a demo daemon (its own home, DEMO_HOME) and run example PyTorch + TensorFlow jobs
DEMO_HOME ?= build/demo-home
run: $(RUN_STAMP)
	-$(BIN)/tuxai doctor --no-frameworks
	$(BIN)/python examples/demo.py --home $(DEMO_HOME)

## test: set up, lint, type-check, check the layers, run the tests, then the VM, Ray and browser tiers (docs/testing.md)
test: $(DEV_STAMP) system-deps lint typecheck layers unit test-vm test-ray test-mlflow test-ui test-containers test-slurm

# $(call install-missing,PROGRAM:PACKAGE …,WHO): install the packages of the programs not on
# PATH when root (as in CI), else say which and fail.
define install-missing
@missing=""; for pair in $(1); do PATH="$$PATH:/usr/sbin:/sbin" command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
    $(APT_UPDATE); $(APT_INSTALL) $$missing; \
  else echo "$(2) needs:$$missing (Debian: sudo apt-get install --no-install-recommends$$missing)"; exit 1; fi; \
fi
endef

## system-deps: Debian packages the tests need (installed when root, as in CI; else says what to install)
system-deps:
	$(call install-missing,$(SYSTEM_TOOLS),make test)

## vm-deps: Debian packages of the VM tier: qemu, mmdebstrap, e2fsprogs (installed when root)
vm-deps:
	$(call install-missing,$(VM_TOOLS),make test-vm)

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

# mypy's cache outside the clone: a fresh clone (CI) checks only what changed (a file's cache entry is
# trusted after its content hash matches, whatever its path): 24 s of CPU cold, 6 s from another clone's.
MYPY_CACHE ?= $(HOME)/.cache/tuxai/mypy
typecheck: $(DEV_STAMP)
	$(BIN)/mypy --cache-dir $(MYPY_CACHE)

layers: $(DEV_STAMP)
	$(BIN)/lint-imports

# Every test process (each daemon, each tuxai command) imports src/ anew; with PYTHONDONTWRITEBYTECODE
# (set in CI) Python compiles it every time (~0.2 s CPU a process): compiled once here, kept while fresh.
bytecode: $(DEV_STAMP)
	$(BIN)/python -m compileall -q -j 0 src >/dev/null

unit: $(DEV_STAMP) bytecode
	$(BIN)/pytest -n 2 --dist loadfile --durations=20  # two workers, a module's tests on one; the slowest named

## ui-deps: Debian's Chromium for the browser tier (installed when root)
ui-deps:
	$(call install-missing,$(UI_TOOLS),make test-ui)

## ui-assets: the dashboard's chart library (uPlot) from npm, built into src/tuxai/ui/static/dist/ (git-ignored, in the wheel)
UI_ASSETS := src/tuxai/ui/static/dist/BUILT
ui-assets: $(UI_ASSETS)
$(UI_ASSETS): web/package.json web/package-lock.json web/build.mjs
	$(call install-missing,npm:npm,make ui-assets)
	cd web && npm ci --ignore-scripts --no-audit --no-fund && node build.mjs

## wheel: the package with its built dashboard assets, in dist/
wheel: $(UI_ASSETS) $(DEV_STAMP)
	$(BIN)/pip wheel --no-deps --no-build-isolation -w dist .

## test-ui: the dashboard in headless Chromium against a real daemon; screenshots in build/ui/ (docs/ui.md)
test-ui: $(DEV_STAMP) ui-deps $(UI_ASSETS) bytecode
	$(BIN)/pytest -m browser tests/browser

## containers-deps: Debian packages of the containers tier: podman, runc, crun, mmdebstrap (installed when root)
containers-deps:
	$(call install-missing,$(CONTAINER_TOOLS),make test-containers)

## container-images: the tier's PyTorch, TensorFlow and serving images (cold: about 5 min each here; then a cache hit
## in seconds; the serving image's tuxai wheel is a layer of seconds over its cached base: docs/containers.md)
container-images: $(DEV_STAMP) containers-deps
	for name in torch tensorflow; do $(BIN)/python -m tuxai image build --name tier-$$name --package python3-minimal \
	  --requirements tests/containers/images/$$name.txt || exit 1; done
	rm -rf build/serve-wheel && $(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w build/serve-wheel .
	$(BIN)/python -m tuxai image build --name tier-serve --package python3-minimal \
	  --requirements tests/containers/images/serve.txt --wheel build/serve-wheel/tuxai-*.whl

## test-containers: container jobs through real podman, fake GPUs through CDI; the images built once (cached by their inputs)
test-containers: $(DEV_STAMP) containers-deps container-images bytecode
	$(BIN)/pytest -m containers tests/containers

## test-vm: boot a Debian 12 VM (systemd, cgroup v2) and run the daemon there as a service (docs/testing.md)
test-vm: $(DEV_STAMP) vm-deps
	$(BIN)/pytest -m vm tests/vm

$(RAY_STAMP): pyproject.toml $(DEV_STAMP)
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $@

## test-ray: a real Ray cluster on loopback addresses (a head, two workers of 2 simulated GPUs), started and stopped once
test-ray: $(RAY_STAMP) bytecode
	$(BIN)/pytest -m ray tests/ray

## slurm-deps: Debian packages of the Slurm tier: slurmctld, slurmd, the client commands, munge (installed when root)
slurm-deps:
	$(call install-missing,$(SLURM_TOOLS),make test-slurm)

## test-slurm: a two-node Slurm (munge, slurmctld, slurmd -N n1/n2, fake GPUs) brought up once; ddp.py across both; a job in an image (podman)
test-slurm: $(DEV_STAMP) slurm-deps containers-deps bytecode
	$(BIN)/pytest -m slurm tests/slurm

$(MLFLOW_STAMP): pyproject.toml $(DEV_STAMP)
	$(BIN)/pip install --quiet -e '.[dev,mlflow]' 'scikit-learn>=1.4'  # the digits of examples/lifecycle
	$(BIN)/pip install --quiet "mlflow[auth]==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("mlflow-skinny"))')"  # the UI (tuxai mlflow ui) and its login (auth), of the client's version
	touch $@

## test-mlflow: pipeline steps as MLflow runs (MLflow's own client, a real SQLite store), serve by alias, examples/lifecycle
test-mlflow: $(MLFLOW_STAMP) bytecode
	$(BIN)/pytest -m mlflow tests/mlflow

## bench: the performance benchmarks (ratios against a baseline in the same process)
bench: $(DEV_STAMP) system-deps $(UI_ASSETS)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && $(APT_INSTALL) wrk; } || { echo "bench/serving.py needs wrk"; exit 1; }
	$(BIN)/pip install --quiet litserve
	$(BIN)/python bench/doctor.py
	$(BIN)/python bench/scheduler.py
	$(BIN)/python bench/sim.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/telemetry.py
	$(BIN)/python bench/ui.py
	$(BIN)/python bench/serving.py
	$(BIN)/pip install --quiet -e '.[ray]' 'ray[default]'
	$(BIN)/python bench/scale.py

## test-gpu: the opt-in tests for a machine with a real GPU
test-gpu: $(DEV_STAMP)
	$(BIN)/pytest tests/gpu -m gpu

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
