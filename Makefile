# The two commands of the README: `make run` (install, then the default sweep) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install install-test browser interpreters

run: install
	$(BIN)/snakemake --cores 8

test: install-test browser
	$(BIN)/pytest

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Debian's Chromium for the report's browser test (needs root; elsewhere install it yourself).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: the browser test will be skipped"

# CPython 3.13 and the free-threaded 3.13t from one source, with run environments in interpreters/
# (tools/build-interpreters.sh; about 5 minutes once per machine, then seconds; needs root for its Debian packages).
interpreters:
	bash tools/build-interpreters.sh
