# `make run` serves Linli on http://127.0.0.1:5000 (or $PORT); `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-pg bench setup setup-dev lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

MO := translations/zh_Hans/LC_MESSAGES/messages.mo

$(MO): translations/zh_Hans/LC_MESSAGES/messages.po $(VENV)/.runtime
	$(BIN)/pybabel -q compile -d translations

setup: $(VENV)/.runtime $(MO)

setup-dev: $(VENV)/.dev $(MO)

# The outbox worker (and the Telegram bot, when TELEGRAM_BOT_TOKEN is set) run beside the web
# process and stop with it; without provider accounts, notices go to the worker's log.
run: setup
	$(BIN)/flask --app web init-db
	$(BIN)/flask --app web demo-data --if-empty
	$(BIN)/python -m botapp.worker & pids=$$!; \
	if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then $(BIN)/python -m botapp & pids="$$pids $$!"; fi; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	if [ -f instance/demo-credentials.txt ]; then (sleep 2; echo; cat instance/demo-credentials.txt) & fi; \
	$(BIN)/flask --app web run --host 127.0.0.1 --port $${PORT:-5000}

test: setup-dev
	scripts/test

test-pg: setup-dev
	LINLI_TEST_PG=required scripts/test

# Every figure in BENCHMARKS.md, on SQLite and PostgreSQL (BENCH_DATABASE_URL, or a throw-away
# server from scripts/pg-test-server, stopped and removed afterwards); under 15 minutes on 2 cores.
# BENCH_ARGS=--quick checks that it all works in about 3; BENCH_ARGS=--huge adds 10 million entries.
BENCH_ARGS ?=
bench: setup-dev
	@if [ -n "$$BENCH_DATABASE_URL" ]; then exec $(BIN)/python -m bench $(BENCH_ARGS); fi; \
	export LINLI_PG_DIR=$${LINLI_PG_DIR:-/tmp/linli-pg-bench} LINLI_PG_PORT=$${LINLI_PG_PORT:-54343} LINLI_PG_DURABLE=1; \
	trap 'scripts/pg-test-server stop >/dev/null 2>&1 || true; rm -rf "$$LINLI_PG_DIR"' EXIT; \
	trap 'exit 130' INT TERM; \
	url=$$(scripts/pg-test-server start) || exit 1; \
	BENCH_DATABASE_URL=$$url $(BIN)/python -m bench $(BENCH_ARGS)

lint: setup-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
