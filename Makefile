# eCRM developer commands. `make run` and `make test` do all their own set-up.
PY_SYS ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-stamp
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-pg lint setup deps browser messages migrate seed bench clean

$(PY):
	$(PY_SYS) -m venv $(VENV)

$(STAMP): $(PY) requirements.txt requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

deps: $(STAMP)

# Debian's Chromium drives the real-browser tests (Playwright's own download does not work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium"; fi; }

messages: deps
	$(PY) manage.py compile_translations

setup: deps messages
	mkdir -p var

migrate: setup
	$(PY) manage.py migrate --noinput -v 0

run: migrate
	$(PY) manage.py serve

seed: migrate
	$(PY) manage.py seed --customers $${CUSTOMERS:-5000}
	$(PY) manage.py seed_contact_center

test: setup browser
	$(PY) manage.py makemigrations --check --dry-run -v 0 --settings=config.settings.test
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

test-pg: setup browser
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(PY) -m pytest --create-db $(PYTEST_ARGS)

lint: deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

bench: migrate
	$(PY) bench/ingest.py
	$(PY) bench/customers.py
	$(PY) bench/import_lines.py
	$(PY) bench/analytics.py
	$(PY) bench/contact_center.py
	$(PY) bench/routing.py
	$(PY) bench/workflows.py
	$(PY) bench/webhooks.py
	$(PY) bench/recovery.py

clean:
	rm -rf $(VENV) var/*.sqlite3*
