# The two commands: `make run` starts Rallypoint, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
TEST_STAMP := $(STAMP)-test
POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/rallypoint
TEST_ENV := RP_DATA_DIR=$(CURDIR)/.test-data

.PHONY: run test lint test-sqlite test-postgres roles-doc personal-data-doc messages clean

run: $(STAMP)
	$(BIN)/rallypoint run

test: $(TEST_STAMP) lint test-sqlite test-postgres

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP) $@

lint: $(TEST_STAMP)
	$(BIN)/ruff check rallypoint tests
# Quoted: the shell must not expand the glob; bandit matches it (fnmatch) against each file's path.
	$(BIN)/bandit -q -r rallypoint -x 'rallypoint/*/migrations/*'

test-sqlite: $(TEST_STAMP)
	@echo "== tests on SQLite =="
	$(TEST_ENV) $(BIN)/python -m pytest -q

# The browser tests drive the pages of a `rallypoint run` with the embedded defaults; they run once, in
# the SQLite pass. Everything else, the multi-process tests included, runs on PostgreSQL too.
test-postgres: $(TEST_STAMP)
	@echo "== tests on PostgreSQL ($(POSTGRES_URL)) =="
	$(TEST_ENV) RP_DATABASE_URL=$(POSTGRES_URL) $(BIN)/python -m pytest -q -m "not browser"

roles-doc: $(STAMP)
	$(BIN)/rallypoint roles_doc

personal-data-doc: $(STAMP)
	$(BIN)/rallypoint personal-data-doc

messages: $(STAMP)
	cd rallypoint && RP_DATA_DIR=$(CURDIR)/data ../$(BIN)/rallypoint makemessages -l de -l en --no-obsolete --no-location && RP_DATA_DIR=$(CURDIR)/data ../$(BIN)/rallypoint compilemessages

clean:
	rm -rf $(VENV) .test-data test-artifacts
