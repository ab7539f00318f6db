# The two commands of the README: `make run` and `make test`. Each installs what it needs.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SYSTEM_PACKAGES := samba samba-ad-dc ldb-tools chromium

# The embedded development stack: SQLite, tasks in-process, the dry-run backend.
RUN_ENV := DEBUG=true DATABASE_URL=sqlite:///db.sqlite3 CELERY_TASK_ALWAYS_EAGER=true \
           PROVISIONING_BACKEND=dryrun

.PHONY: run test lint system-packages bench

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

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP) system-packages
	$(PY) bench/provision.py
