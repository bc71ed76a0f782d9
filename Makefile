# Two commands do everything: `make run` (the main job) and `make test`. Both set the machine up first;
# set-up is idempotent and takes a second when already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Packages type-checked strictly by `make test` and `make lint` (mypy, [tool.mypy] in pyproject.toml)
TYPED := serving compose bot jobs
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export TF_ENABLE_ONEDNN_OPTS ?= 0
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: setup system run test lint bench clean cluster cluster-stop

setup: system $(STAMP)

system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	@echo "setup: creating $(VENV) and installing the project (first time: a few minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@$(BIN)/python -m pip check
	@rm -f $(VENV)/.installed-*
	@touch $@

run: setup
	$(BIN)/lofi run

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(TYPED)
	$(BIN)/python -m pytest -n 2 --timeout 600 --durations=15 tests

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

# The scale-out shape on this machine, without Docker: Redis, PostgreSQL, the model server, 2 workers, the bot
cluster: setup
	scripts/local-cluster.sh start --workers $${CLUSTER_WORKERS:-2}

cluster-stop:
	scripts/local-cluster.sh stop

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports && $(BIN)/mypy $(TYPED)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
