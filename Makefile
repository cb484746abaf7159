# nba-forecast: `make help` lists the targets.
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test images lint compile bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev extras (pins: pyproject.toml)

demo: $(STAMP) ## the main job on embedded defaults: data, evaluation, two seasons replayed, pipeline run, served A/B (each step timed)
	scripts/demo.sh

test: $(STAMP) ## run the test suite
	$(BIN)/pytest

images: ## build the CPU and CUDA images with podman (bases from Debian where none can be pulled)
	images/build.sh

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

compile: $(STAMP) ## compile every KFP pipeline to build/pipelines/*.yaml
	$(BIN)/nba-forecast pipeline compile --out build/pipelines

bench: $(STAMP) ## run the benchmarks (each prints a table)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
