# Cloud Sentry portal: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# npm packages the tests run: the OpenID provider (oidc-provider) and axe-core.
NODE_SUPPORT := tests/support/oidc tests/support/a11y
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_SUPPORT))
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# The SQLite pass uses Redis only in tests that are about Redis; its own database number.
TEST_SQLITE_REDIS_URL ?= redis://127.0.0.1:6379/14
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgres lint install browser nginx bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## make run: the portal on the embedded default (SQLite in var/), with the worker and a mail catcher.
run: $(STAMP)
	PORTAL_DEBUG=true $(BIN)/portal dev

# The test-only pieces that do not come from PyPI: Debian's Chromium and nginx, and the npm
# OpenID provider.
browser:
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium (browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The tests start their own nginx (tests/support/proxy.py); the system service is not used.
nginx:
	@test -x /usr/sbin/nginx || { echo "Installing Debian's nginx (tests behind a reverse proxy)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

tests/support/%/node_modules/.installed: tests/support/%/package.json
	npm install --prefix tests/support/$* --no-audit --no-fund --loglevel=error
	touch $@

## make test: the whole suite on SQLite (embedded default: database cache and counters)
## and on PostgreSQL + Redis (the production path), the two passes side by side. Each has its
## own database and Redis database, and every server a test starts takes a free port, so
## they do not meet; much of each pass waits on browsers and child processes, which is why
## two at once finish sooner than one after the other. Output is kept per pass.
test: $(STAMP) browser nginx $(NODE_STAMPS)
	$(MAKE) --no-print-directory --output-sync=target -j2 test-sqlite test-postgres

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite (database cache and rate-limit counters)"
	env -u REDIS_URL DATABASE_URL=sqlite:///var/test.sqlite3 TEST_REDIS_URL=$(TEST_SQLITE_REDIS_URL) \
	  $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@echo "== test suite on PostgreSQL + Redis ($(TEST_DATABASE_URL), $(TEST_REDIS_URL))"
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# make bench: the portal beside the hello ceiling and the peer (django-allauth) on one
# loopback stack; writes docs/benchmarks.{md,json} and docs/img/benchmarks.png (about 20
# minutes; BENCH_QUICK=1 for a minute or two). The peer, the load driver and the plot live
# in their own virtualenv, never in the portal's dependencies.
BENCH_VENV := bench/.venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(STAMP) nginx $(BENCH_STAMP)
	@command -v wrk >/dev/null || { echo "Installing Debian's wrk (the load generator)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BENCH_VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) var/*.sqlite3* var/mail var/static test-results
