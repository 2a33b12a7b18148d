# querykit developer tasks. Every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
QK     := $(BIN)/querykit

DOCS   := $(VENV)/.installed-docs

.PHONY: demo test lint typecheck pytest bench clean venv system-deps schema-check docs docs-check \
	matrix pytest-matrix bench-matrix bench-compile

venv: $(STAMP)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "querykit needs Python 3.11+"'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing Debian's python3-venv"; \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,studio]'
	@touch $(STAMP)

# The docs extra (mkdocs, mkdocstrings) goes into the same venv, on top of the dev one.
$(DOCS): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,studio,docs]'
	@touch $(DOCS)

## docs: the API reference generated from the docstrings, one page per layer, into site/
docs: $(DOCS)
	$(BIN)/mkdocs build --strict

# make test fails on any mkdocs/mkdocstrings warning (a broken reference, a bad docstring).
# Not --quiet: it hides the warnings from --strict too, and the build passes.
docs-check: $(DOCS)
	@tmp=$$(mktemp -d); out=$$($(BIN)/mkdocs build --strict --site-dir "$$tmp" 2>&1); code=$$?; \
	  rm -rf "$$tmp"; printf '%s\n' "$$out" | grep -v '^INFO' || true; \
	  if [ $$code -eq 0 ]; then echo "docs: mkdocs build --strict, no warnings"; \
	  else echo "docs: mkdocs build --strict failed (warnings above)"; fi; exit $$code

## demo: the main job on the embedded PostgreSQL: migrate, seed, run every named query
demo: $(STAMP)
	$(QK) db start
	$(QK) db status
	$(QK) migrate up
	$(QK) check
	$(BIN)/python demo.py

## test: lint, type-check, build the API reference without warnings, check the example's migrations against schema.py, run the whole test suite
test: lint typecheck docs-check system-deps schema-check pytest

# The example app's migrations build exactly what schema.py declares (exit 3 when not).
# An embedded server it had to start is stopped again; one already running is left so.
schema-check: $(STAMP)
	@running=$$($(QK) db status -q >/dev/null 2>&1 && echo yes); \
	$(QK) migrate diff --check; code=$$?; \
	[ -n "$$running" ] || $(QK) db stop -q; exit $$code

# Debian packages the tests use: pgbouncer, for the tests that a transaction-mode
# pooler is refused by the migration runner and works with connect(pooler=...);
# chromium, for the Studio's browser tests (driven by Playwright, which cannot
# download its own browsers here).
# Installed when missing and possible.
system-deps:
	@command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's pgbouncer for the pooler test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null \
	      && { service pgbouncer stop >/dev/null 2>&1 || true; }; \
	  else echo "pgbouncer is missing and cannot be installed here: its test will be skipped"; fi; }
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the Studio's browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here: the Studio's browser tests will be skipped"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/gen_overloads.py --check
	$(BIN)/python tools/vendor_studio.py --check
	$(BIN)/python tools/async_to_sync.py --check
	$(BIN)/python tools/bench_table.py --check

typecheck: $(STAMP)
	$(BIN)/mypy --strict querykit
	$(BIN)/mypy --strict tests schema.py queries.py demo.py --exclude '^tests/migrate/'
	@# tests/migrate imports its helpers by bare name (pytest puts the directory on sys.path)
	MYPYPATH=tests/migrate $(BIN)/mypy --strict --explicit-package-bases tests/migrate
	$(BIN)/pyright --pythonpath $(BIN)/python querykit tests/typing

# Each run gets a base directory of its own: pytest resets /tmp/pytest-of-$USER to 0700
# whenever another session starts, which would lock the embedded server's service user
# out of the data directories of this run's tests.
pytest: $(STAMP)
	tmp=$$(mktemp -d /tmp/querykit-pytest-XXXXXX) && \
	  $(BIN)/pytest -q -n 2 --dist loadgroup --durations=10 --basetemp=$$tmp; \
	  rc=$$?; rm -rf $$tmp; exit $$rc

## matrix: the test suite on every other supported Python (3.11-3.13) found on this machine
# Each version gets its own venv (.venv-3.12...). The default python3 ran the whole of
# make test already; here each other version runs the tests not marked slow, without the
# browser and README runners (those test the docs and the Studio, not the interpreter),
# which keeps CI's run within its time. tools/find_python.sh says why a version is skipped.
MATRIX := 3.11 3.12 3.13
matrix:
	@default=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	for v in $(MATRIX); do \
	  if [ "$$v" = "$$default" ]; then echo "matrix: Python $$v is the default: make test ran it"; continue; fi; \
	  py=$$(tools/find_python.sh $$v) || { echo "matrix: Python $$v skipped"; continue; }; \
	  echo "matrix: Python $$v ($$py)"; \
	  $(MAKE) --no-print-directory PYTHON=$$py VENV=.venv-$$v pytest-matrix || exit 1; \
	done

pytest-matrix: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist loadgroup -m "not slow" -p no:cacheprovider \
	  --ignore=tests/studio/test_browser.py --ignore=tests/studio/test_readme_studio.py \
	  --ignore=tests/migrate/test_migrate_readme.py --ignore=tests/migrate/test_migrate_lint_readme.py \
	  --ignore=tests/migrate/test_migrate_diff_readme.py --ignore=tests/test_demo.py

## bench: querykit next to raw psycopg and SQLAlchemy Core, with ratios
# Then the compile case again on each other supported Python found (as make matrix finds
# them): it is pure interpreter work, and its ratio depends on the interpreter (on 3.11,
# the case's own SQLAlchemy column lookups take over a third of a cache hit).
bench: $(STAMP)
	$(BIN)/python -m bench --save
	@$(MAKE) --no-print-directory bench-matrix
	$(BIN)/python tools/bench_table.py

bench-matrix:
	@default=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	for v in $(MATRIX); do \
	  [ "$$v" = "$$default" ] && continue; \
	  py=$$(tools/find_python.sh $$v) || { echo "bench: Python $$v skipped"; continue; }; \
	  echo "bench: the compile case on Python $$v ($$py)"; \
	  $(MAKE) --no-print-directory PYTHON=$$py VENV=.venv-$$v bench-compile || exit 1; \
	done

bench-compile: $(STAMP)
	$(BIN)/python -m bench compile --save

clean:
	-@[ -x $(QK) ] && $(QK) db stop -q
	rm -rf $(VENV) .venv-3.* site .querykit .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
