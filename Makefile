# make demo  — set up .venv and run the main job (dlref verify, its transformation table, then the CPU benchmark)
# make test  — set up .venv, lint, run the whole test suite (notebooks and the docs site included)
# make docs  — set up .venv with the docs extra, build the site offline into docs/_build/html
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed
CHROMIUM := /usr/bin/chromium
# Parallel test workers; CI machines have 2 cores.
TEST_WORKERS ?= 2

.PHONY: help venv demo test lint clean docs browser

help:
	@echo "make demo   set up .venv, run 'dlref verify', 'dlref verify --transforms' and 'dlref bench' (CPU suite)"
	@echo "make test   set up .venv, run ruff and the test suite"
	@echo "make docs   set up .venv, build the documentation site into docs/_build/html (offline)"
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
	$(BIN)/dlref verify --transforms
	$(BIN)/dlref bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check dlref kernels tests bench

test: lint browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=15

# The docs extra (Sphinx, myst-nb, furo, MathJax inside sphinx-mathjax-offline); the dev extra
# includes it, this step makes `make docs` work from a venv made before the extra existed.
$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	@touch $(DOCS_STAMP)

# From nothing: the generated pages are rewritten and every page is read again (-E); a warning
# fails the build (-W). The notebooks are rendered from their saved outputs, not executed.
docs: $(DOCS_STAMP)
	rm -rf docs/_build/html docs/_build/doctrees
	MPLBACKEND=Agg $(BIN)/sphinx-build -W --keep-going -q -E -b html \
		-d docs/_build/doctrees docs docs/_build/html
	@echo "built docs/_build/html/index.html (open it in a browser; no server or network needed)"

# tests/test_docs.py opens the site in Debian's Chromium (never a downloaded browser), with a CJK
# font for the Chinese headings. Installed here when missing and possible (root with apt-get);
# elsewhere the browser test skips, loudly.
browser:
	@if [ -x $(CHROMIUM) ] && fc-list 2>/dev/null | grep -qi wenquanyi; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for tests/test_docs.py"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei \
			>/dev/null || echo "WARNING: could not install chromium: the browser test will skip"; \
	else \
		echo "WARNING: $(CHROMIUM) is missing and cannot be installed here (not root or no"; \
		echo "apt-get): tests/test_docs.py's browser test will skip"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis docs/_build docs/api/generated \
		docs/tests docs/_generated docs/notebooks
