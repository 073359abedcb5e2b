# The two commands of the README: `make run` (install, then the default sweep) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test browser interpreters lock

run: install
	$(BIN)/snakemake --cores 8

test: install-test browser
	$(BIN)/pytest

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Installed under requirements.lock: the same versions on every machine (`make lock` writes it).
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

# requirements.lock from pyproject.toml's ranges, as pip resolves them today (tools/lock.py); commit it.
lock:
	$(PYTHON) tools/lock.py

# Debian's Chromium for the report's browser test (needs root; elsewhere install it yourself).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: the browser test will be skipped"

# CPython 3.13 and the free-threaded 3.13t from one source, with run environments in interpreters/
# (tools/build-interpreters.sh; about 5 minutes once per machine, then seconds; needs root for its Debian packages).
interpreters:
	bash tools/build-interpreters.sh
