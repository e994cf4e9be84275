# Two commands do all the set-up: `make run` and `make test`. Both build .venv from the lock file.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# This machine's pip config names local indexes that may not exist; hide only that warning.
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := backend/requirements-dev.lock
PYTEST_ARGS ?=

.PHONY: run test lint fmt typecheck migrate bench clean venv

venv: $(STAMP)

# Reinstall only when the lock or the project metadata changes.
$(STAMP): $(LOCK) backend/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r $(LOCK) $(QUIET_PIP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e backend $(QUIET_PIP)
	@touch $(STAMP)

migrate: $(STAMP)
	cd backend && ../$(BIN)/alembic upgrade head

run: $(STAMP)
	cd backend && ../$(BIN)/todochat serve

lint: $(STAMP)
	cd backend && ../$(BIN)/ruff check . && ../$(BIN)/ruff format --check .

fmt: $(STAMP)
	cd backend && ../$(BIN)/ruff format . && ../$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	cd backend && ../$(BIN)/mypy

test: lint typecheck
	cd backend && ../$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	cd backend && ../$(BIN)/python -m bench $(if $(SCENARIO),--scenario $(SCENARIO),)

clean:
	rm -rf $(VENV) backend/.pytest_cache backend/.mypy_cache backend/.ruff_cache
