# The README's commands: `make run`, `make test`, `make screenshots`, ... Each installs what
# it needs.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SYSTEM_PACKAGES := samba samba-ad-dc ldb-tools chromium

# The embedded development stack: SQLite, tasks in-process, the dry-run backend.
RUN_ENV := DEBUG=true DATABASE_URL=sqlite:///db.sqlite3 CELERY_TASK_ALWAYS_EAGER=true \
           PROVISIONING_BACKEND=dryrun

.PHONY: run test lint system-packages bench bench-provision reliability screenshots

# The pages benchmark's own database, dropped when it is done.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_scale
BENCH_REQUESTS ?= 200

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(RUN_ENV) $(PY) manage.py migrate --no-input
	$(RUN_ENV) $(PY) manage.py seed_demo
	$(RUN_ENV) $(PY) manage.py runserver 127.0.0.1:8000

# Samba (the test directory) and chromium (the browser tests) come from Debian's packages.
system-packages:
	@missing=""; \
	command -v samba-tool >/dev/null || missing="$$missing samba samba-ad-dc"; \
	command -v ldbmodify >/dev/null || missing="$$missing ldb-tools"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "The tests need these Debian packages:$$missing"; \
	    echo "Install them with: sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; \
	  fi; \
	fi

test: $(STAMP) system-packages
	$(PY) -m pytest $(PYTEST_ARGS)

# The browser tests write their screenshots to a temporary folder; this refreshes the
# README's, in docs/screenshots/, on purpose.
screenshots: $(STAMP) system-packages
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -m browser tests/test_browser.py \
	  $(PYTEST_ARGS)

# The live scenario with injected faults; writes docs/reliability.md.
reliability: $(STAMP) system-packages
	RELIABILITY_REPORT=docs/reliability.md $(PY) -m pytest -m reliability \
	  tests/test_reliability.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Every page at provider scale; writes docs/performance.md.
bench: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/seed_scale.py
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/pages.py \
	  --requests $(BENCH_REQUESTS) --write docs/performance.md
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/seed_scale.py --drop
	$(MAKE) bench-provision

# Provisioning through the whole pipeline against Samba (needs root).
bench-provision: $(STAMP) system-packages
	$(PY) bench/provision.py --write docs/performance.md
