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

demo: $(STAMP) ## the main job on embedded defaults: data, evaluation, season replay, pipeline run, served A/B
	$(BIN)/nba-forecast data stats
	$(BIN)/nba-forecast evaluate --out reports/evaluate
	$(BIN)/nba-forecast replay --season 2014 --out reports/replay
	$(BIN)/nba-forecast pipeline run continuous_improvement --local --root reports/pipeline-runs \
	  --param database_url=sqlite:///$(CURDIR)/reports/replay/state/continuous/predictions.db \
	  --param registry_url=file://$(CURDIR)/reports/replay/state/continuous/registry \
	  --param gitops_repo=$(CURDIR)/reports/replay/state/continuous/gitops --param environment=production \
	  --param as_of=2015-04-16T12:00:00Z
	rm -rf reports/gitops-remote.git reports/served-ab
	git clone -q --bare reports/replay/state/continuous/gitops reports/gitops-remote.git
	NBA_FORECAST_HOME=$(CURDIR)/reports/served-ab NBA_FORECAST_ENVIRONMENT=production \
	  NBA_FORECAST_DATABASE_URL=sqlite:///$(CURDIR)/reports/replay/state/continuous/predictions.db \
	  NBA_FORECAST_REGISTRY_URL=file://$(CURDIR)/reports/replay/state/continuous/registry \
	  NBA_FORECAST_GITOPS_REPO=file://$(CURDIR)/reports/gitops-remote.git \
	  $(BIN)/nba-forecast served-ab --season 2013 --count 40

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
