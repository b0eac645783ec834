# Two commands set everything up on a fresh machine:
#   make demo   - create .venv if needed, run the whole job on the built-in synthetic web
#   make test   - create .venv if needed, lint, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PAIRS ?= 1000
DEMO_OUT ?= out/demo

.PHONY: demo test test-fast lint browser bench clean engines engines-for-tests

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch and torchvision first and exactly pinned: pip takes them from this
	# machine's local wheel cache instead of pulling a multi-GB build.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO_OUT)
	$(VENV)/bin/paircurate demo --output $(DEMO_OUT) --pairs $(PAIRS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The report's test opens the page in headless Chromium: Debian's chromium and
# chromium-driver, installed where missing (as root, as CI runs).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		apt-get install -y --no-install-recommends chromium chromium-driver || \
		{ apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver; }

# Flink, Spark and Beam's job servers for tests/engines and bench/engines.py, in a
# cache outside the checkout (the engine tests also fetch them on first use).
engines:
	bash deploy/engines/fetch.sh

# Fetched before the tests, so that no test's time limit includes the downloads;
# where it fails the engine tests skip, except under CI=true (there both fail).
engines-for-tests:
	bash deploy/engines/fetch.sh || [ "$$CI" != true ]

test: lint browser engines-for-tests
	$(PY) -m pytest -q

test-fast: $(STAMP) browser
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) bench/e2e.py --pairs 20000

clean:
	rm -rf out .pytest_cache .ruff_cache
