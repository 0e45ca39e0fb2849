# The two commands of the README: `make demo` and `make test`.
# Both create their own virtual environment (.venv) and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: demo test lint typecheck test-sqlite test-postgresql install screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Install and start the demo territory on the embedded default (SQLite).
demo: $(STAMP)
	$(BIN)/territoire demo

## Install and run every check: lint, types, tests on SQLite and on PostgreSQL.
test: $(STAMP) lint typecheck test-sqlite test-postgresql

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test-sqlite: $(STAMP)
	TERRITOIRE_TEST_DB=sqlite $(BIN)/pytest -q

test-postgresql: $(STAMP)
	TERRITOIRE_TEST_DB=postgresql TERRITOIRE_TEST_PG_URL=$(PG_URL) $(BIN)/pytest -q

## Regenerate the screenshots of the main screens in docs/screenshots/.
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) territoire-data .pytest_cache .mypy_cache .ruff_cache
