# Two commands do everything: `make run` (the PS5 report) and `make test` (the suite).
# Both bootstrap .venv through `make install`, which re-runs when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test bench browser clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m scratchnet ps5 --out ps5-report

# Browser tests need Debian's chromium; install it when it is missing (root on CI machines).
# The playground's server also needs a WebSocket library for uvicorn (websockets), in case the
# installed extras lack it.
browser: install
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "warning: could not install chromium; browser tests will fail"

test: install browser
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) ps5-report build dist src/*.egg-info
