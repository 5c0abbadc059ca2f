# Quickstart: `make demo` runs the whole strategy locally; `make test` runs every test.
# Both install everything first (Python lock + pinned Azurite), so they work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
PYTEST_FLAGS ?=
# Test processes (pytest-xdist): most of the suite's time is spent waiting on the emulators and
# PostgreSQL, so two workers use the two cores of the dev machines and CI; each worker starts
# its own servers. `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= 2

.PHONY: install test demo bench plan lint clean browser lambda-python

install: $(VENV)/.installed node_modules/.installed browser lambda-python

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(PY) --require-hashes requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	touch $@

# The report's browser test opens report.html in Debian's chromium, driven by Playwright (from
# the lock; it never downloads a browser of its own). Installed when missing and we are root
# (CI and the dev machines are); otherwise say how, and the test fails under CI.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium; \
	  else echo "make: chromium is missing: run 'sudo apt-get install chromium' (the report's browser test needs it)" >&2; fi; }

# The Lambda artifact's bytecode is compiled by the Lambda runtime's Python (3.12: pyenv's on
# the dev machines, actions/setup-python in CI); infra/packaging.py finds it. Say so now if it is
# missing (the artifact build and its tests would fail later), and fail under CI.
lambda-python: $(VENV)/.installed
	@$(PY) -m infra.packaging --check-python || [ -z "$$CI" ]

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Regenerate the locks after changing dependencies in pyproject.toml: requirements.lock holds
# everything (runtime, CLI, dev); requirements-runtime.lock only the job's runtime closure
# (the Lambda artifact and the Cloud Run image), constrained to the same versions and hashes.
lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra cli --extra dev -o requirements.lock \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes
	$(VENV)/bin/uv pip compile pyproject.toml -c requirements.lock -o requirements-runtime.lock \
	  --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The tests write bytecode caches even where PYTHONDONTWRITEBYTECODE is set (uv installs none):
# otherwise every worker and every Python subprocess of the tests compiles the SDKs and the
# Pulumi providers from source again (about 6 CPU-s per process that imports them).
test: install lint
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_FLAGS)

demo: install
	$(PY) -m dev.demo

bench: install
	$(PY) -m bench.run

# Builds (or finds cached) each stack's Lambda artifact first, so the plan can show its size
# against Lambda's direct-upload limit (needs PyPI the first time, no cloud credentials).
plan: install
	for s in $(or $(STACK),staging production); do \
	  $(PY) -m infra.packaging --stack $$s > /dev/null || exit 1; done
	$(PY) -m dev.plan $(STACK)

clean:
	rm -rf $(VENV) node_modules
