# Two commands: `make run` (set up, load the demo data, serve on SQLite) and
# `make test` (set up, lint, run the whole suite on SQLite and on PostgreSQL).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install chromium run test test-sqlite test-postgres lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed chromium

# The browser tests (tests/e2e) drive Debian's chromium; install it when missing and we may
# (root with apt-get); otherwise those tests skip with a notice (and fail under CI=true).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "NOTICE: chromium not installed (needs root and apt-get); browser tests will skip"; \
		fi; }

run: install
	$(BIN)/gateway demo --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test-sqlite: install
	GATEWAY_TEST_DATABASE=sqlite $(BIN)/pytest -q -n auto

test-postgres: install
	GATEWAY_TEST_DATABASE=postgresql GATEWAY_TEST_POSTGRES_URL=$(POSTGRES_URL) $(BIN)/pytest -q -n auto

# PostgreSQL is required under CI; elsewhere its run is skipped (with a notice) when no
# server answers at POSTGRES_URL.
test: lint test-sqlite
	@if [ -n "$$CI" ] || $(BIN)/python -m tests.pg_available "$(POSTGRES_URL)"; then \
		$(MAKE) --no-print-directory test-postgres; \
	else \
		echo "NOTICE: no PostgreSQL at $(POSTGRES_URL); skipped the PostgreSQL run"; \
	fi

bench: install
	$(BIN)/python -m bench.crud

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache gateway.db gateway.db-*
