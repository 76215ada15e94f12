# Self-documenting Makefile: `make` or `make help` lists the targets.
# Every target creates the virtual environment from requirements.lock if it is missing,
# so the two README commands (`make study`, `make test`) work on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The Jupyter kernel of this environment (python -m analysis.kernel): the notebooks name it.
KERNEL := $(VENV)/share/jupyter/kernels/study/kernel.json
SEED   ?= 20230601
# Test processes for the default tier (pytest-xdist; tests are split by file, so a file's
# session fixtures are built once). 2 matches the 2-core machines CI runs on.
TEST_WORKERS ?= 2

# One BLAS thread: faster on 2 cores with worker processes and kernels side by side, and the same
# floating-point summation order on every machine (bit-for-bit reproducible tables).
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
# A fixed string-hash seed: set iteration order inside libraries then does not vary between processes.
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
# Scaled cities (bench/bench_national.py): villages, and the memory at which any step is stopped (GB; each
# notebook kernel: two run at a time, so 10 keeps both within a 24 GB machine).
NATIONAL_VILLAGES ?= 500000
PROVINCIAL_VILLAGES ?= 30000
MEMORY_LIMIT ?= 10

.PHONY: help venv data study study-national study-provincial test test-slow lint typecheck lock notebooks lab clean \
	clean-outputs clean-store

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

$(KERNEL): $(STAMP) src/analysis/kernel.py
	@$(BIN)/python -m analysis.kernel && touch $@

venv: $(STAMP) $(KERNEL) ## create .venv from the lock and register its Jupyter kernel (done by the other targets)

data: $(STAMP) ## simulate the default synthetic city into data/ and ingest it into the store
	@$(BIN)/study simulate --seed $(SEED) --quiet

study: data $(KERNEL) ## run the whole study on the default data: notebooks, tables, figures, results.json, brief
	@$(BIN)/study run --seed $(SEED)
	@$(BIN)/study brief --run latest

study-national: $(STAMP) $(KERNEL) ## whole study + brief on a national city (500,000 villages x 10 years) in data/national/, timed per stage
	$(BIN)/python bench/bench_national.py --villages $(NATIONAL_VILLAGES) --name national --memory-limit $(MEMORY_LIMIT)

study-provincial: $(STAMP) $(KERNEL) ## the same on a provincial city (30,000 villages x 10 years) in data/provincial/
	$(BIN)/python bench/bench_national.py --villages $(PROVINCIAL_VILLAGES) --name provincial --memory-limit $(MEMORY_LIMIT)

lab: $(STAMP) $(KERNEL) ## open JupyterLab on notebooks/ with the project's kernel ("Python (study)")
	$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/notebooks \
		--MappingKernelManager.default_kernel_name=study $(LAB_ARGS)

test: $(STAMP) $(KERNEL) lint typecheck ## ruff, mypy, then the test suite (default tier, notebooks included)
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile tests

test-slow: $(STAMP) $(KERNEL) ## run the heavy tier (Monte Carlo coverage, national-scale checks)
	$(BIN)/python -m pytest -m slow tests

lint: $(STAMP) ## ruff lint
	$(BIN)/ruff check src tests bench tools notebooks

typecheck: $(STAMP) ## mypy over src/ and tools/ (settings: pyproject.toml; no module exempt)
	$(BIN)/mypy

lock: ## re-resolve requirements.in into requirements.lock (needs the registry)
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet -r requirements.in
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^analysis' > requirements.lock
	rm -rf .lockenv
	$(PYTHON) tools/sync_environment.py

notebooks: $(STAMP) ## regenerate notebooks/*.ipynb (stripped) from their jupytext sources notebooks/*.py
	$(BIN)/python tools/make_notebooks.py

clean: clean-outputs clean-store ## clean-outputs, then clean-store (keeps .venv)

clean-outputs: ## remove every run folder under outputs/
	rm -rf outputs/[!.]*

clean-store: $(STAMP) ## remove data/study.duckdb only if it holds nothing but the simulated city (CONFIRM=yes: always)
	@$(BIN)/study clean-store$(if $(filter yes,$(CONFIRM)), --yes)
