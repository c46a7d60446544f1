# Convolution in Deep Learning — the two commands of the README's quick start:
#   make book   set everything up (.venv, pinned dependencies) and build the website
#   make test   set everything up (plus test-only tools) and run every test
# Everything else here is a step of those two, or a convenience listed by `make help`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BUILD  := _build
JB_FLAGS := -n -W --keep-going
# Web assets from the npm registry, pinned by web/package-lock.json: MathJax and Font Awesome
# (served by the site itself, no CDN) and axe-core (accessibility tests).
WEB_STAMP := web/node_modules/.installed
# The browser of the website tests (tests/test_website.py): Debian's chromium, driven by
# Playwright for Python (requirements-test.txt); Playwright's own browser download is not used.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup setup-test web hub browser sandbox book book-clean test lint serve bench clean

help:
	@echo "make book    set up and build the website into $(BUILD)/html (clean cache)"
	@echo "make test    set up and run every test (lint, book build, pytest)"
	@echo "make serve   serve the built website on http://127.0.0.1:8000"
	@echo "make web     install the site's web assets (npm ci in web/)"
	@echo "make hub     install the course JupyterHub's proxy (npm ci in hub/)"
	@echo "make browser install chromium for the website tests (apt-get, as root)"
	@echo "make sandbox install bubblewrap for the grading sandbox (apt-get, as root)"
	@echo "make lint    ruff on conv_lib, course, tests, bench and web"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make clean   remove $(BUILD) and caches (keeps $(VENV))"

# The virtual environment: re-created whenever the lock or pyproject changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[book,grading,cluster,hub,test]"
	touch $@

# Test-only tools that are not dependencies of conv_lib: PyTorch (CPU) as an oracle.
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/python -m pip install --quiet -c requirements.lock -r requirements-test.txt
	touch $@

setup: $(STAMP)
setup-test: $(TEST_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web: $(WEB_STAMP)

# The course's JupyterHub (hub/jupyterhub_config.py): its proxy, configurable-http-proxy from
# npm, pinned by hub/package-lock.json (tests/test_jupyterhub.py starts the hub).
HUB_STAMP := hub/node_modules/.installed

$(HUB_STAMP): hub/package.json hub/package-lock.json
	cd hub && npm ci --no-audit --no-fund
	touch $@

hub: $(HUB_STAMP)

browser:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium for the website tests"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

# The grading sandbox (course/sandbox.py) runs each submission under Debian's bubblewrap.
sandbox:
	@command -v bwrap >/dev/null || { \
	  echo "Installing Debian's bubblewrap for the grading sandbox"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q bubblewrap; }

# Build the book from an empty execution cache (jupyter-cache keys on cell source only,
# so a change in conv_lib would otherwise not re-execute the chapters).
book: setup web
	rm -rf $(BUILD)
	$(BIN)/jupyter-book build $(JB_FLAGS) --path-output . .

lint: setup-test
	$(BIN)/ruff check conv_lib course coursekit tests bench web deploy hub

test: setup-test browser sandbox hub lint book
	$(BIN)/python -m pytest

serve:
	@test -d $(BUILD)/html || { echo "No site yet: run 'make book' first"; exit 1; }
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory $(BUILD)/html 8000

bench: setup-test
	$(BIN)/python bench/bench_conv.py

clean:
	rm -rf $(BUILD) .pytest_cache .hypothesis
