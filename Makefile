# Hearten: `make run` serves the app with demo data; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run run-cluster test lint audit setup dev-setup translations chromium nginx clean

$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(BIN)/.dev: requirements-dev.txt $(BIN)/.runtime
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Lighthouse (the page budgets), pinned in package-lock.json; npm ci starts from an empty folder.
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

translations: $(BIN)/.runtime
	$(BIN)/python scripts/i18n.py compile

setup: $(BIN)/.runtime translations

dev-setup: setup $(BIN)/.dev chromium nginx node_modules/.installed

# Browser tests drive Debian's Chromium; install it when it is missing (needs root, as CI has).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The scale-out topology and its tests put Debian's nginx in front of the app processes.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null)

run: setup
	bash scripts/run.sh

# The production topology on loopback: nginx, 2 app processes, a job worker, PostgreSQL, Redis.
run-cluster: setup nginx
	$(BIN)/python scripts/cluster.py run

lint: dev-setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python scripts/i18n.py check

test: dev-setup
	bash scripts/test.sh

# Lighthouse on every main page: scores, bytes and LCP against the budgets (also run by make test).
audit: dev-setup
	$(BIN)/python benchmarks/page_budgets.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
