# make demo  — set up .venv and run the main job (dlref verify, then the CPU benchmark)
# make test  — set up .venv, lint, run the whole test suite (notebooks included)
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Parallel test workers; CI machines have 2 cores.
TEST_WORKERS ?= 2

.PHONY: help venv demo test lint clean

help:
	@echo "make demo   set up .venv, run 'dlref verify' and 'dlref bench' (CPU suite)"
	@echo "make test   set up .venv, run ruff and the test suite"
	@echo "(override the interpreter with PYTHON=/path/to/python3.12)"

$(STAMP): pyproject.toml
	@py=$$(./scripts/find-python.sh) || exit 1; \
	if [ ! -x $(BIN)/python ]; then echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV) || exit 1; fi
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/dlref verify
	$(BIN)/dlref bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check dlref kernels tests bench

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=15

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
