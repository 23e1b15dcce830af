# The front door: `make book` builds the site from a fresh clone, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.requirements-installed
NODE_STAMP := node_modules/.package-lock-installed
WIDGET_ASSETS := site_assets/.copied
BUILD_DIR := _build
HTML := $(BUILD_DIR)/html
PORT ?= 8000

.PHONY: all venv assets book test lint serve bench clean
all: book

venv: $(VENV_STAMP)
$(VENV_STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# The JavaScript the site serves itself: MathJax and the widget runtime (the figures' front
# end and the module that brings them to life from the page's widget state).
assets: $(WIDGET_ASSETS)
$(WIDGET_ASSETS): $(VENV_STAMP) $(NODE_STAMP) losslab/site/assets.py losslab/site/static/widget-loader.js \
		losslab/engine/static/lossplot.js
	$(PY) -m losslab.site.assets site_assets
	touch $@

book: $(VENV_STAMP) $(WIDGET_ASSETS)
	$(PY) -m losslab.site.build

test: book
	$(PY) -m pytest

lint: $(VENV_STAMP)
	$(PY) -m ruff check .

serve: book
	@echo "Serving $(HTML) on http://127.0.0.1:$(PORT)/"
	$(PY) -m http.server --bind 127.0.0.1 --directory $(HTML) $(PORT)

bench: book
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(BUILD_DIR) site_assets/widgets site_assets/mathjax site_assets/.copied

-include mk/*.mk
