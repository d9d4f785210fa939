# Two entry points: `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PY ?= python3
UV := $(PY) -m uv
VENV := .venv
export PYTHONUNBUFFERED := 1
# Modules are compiled to bytecode as they are first imported, and kept: with PYTHONDONTWRITEBYTECODE set (as in
# many CI images) every dagster step, dbt call and test worker would compile pymc, dagster and dbt again. Compiling
# the whole environment up front instead (uv sync --compile-bytecode) took 31 s of a 32 s sync; what the demo
# imports compiles in about 12 s.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-fast ui env bench clean

$(VENV)/.synced: pyproject.toml uv.lock
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 12), f"Python 3.12 is needed, found {sys.version.split()[0]}"'
	@$(UV) --version >/dev/null 2>&1 || $(PY) -m pip install --quiet uv
	@echo "setting up .venv from uv.lock"
	@$(UV) sync --frozen --all-extras --quiet
	@touch $@

env: $(VENV)/.synced

demo: env
	@$(VENV)/bin/weathervane demo

# Two workers on the 2-core CI machine; the slowest tests are scheduled first (tests/conftest.py).
TEST_WORKERS ?= 2

test: env
	@$(VENV)/bin/python -m compileall -q weathervane dagster_project >/dev/null
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15

test-fast: env
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow"

ui: env
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/data/dagster_home} $(VENV)/bin/weathervane ui

bench: env
	for b in bench/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf data dbt/target dbt/logs
