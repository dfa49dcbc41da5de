# shipway: `make up` runs it, `make test` tests it.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
ARGS   ?=

.PHONY: up system test fuzz lint format bench clean

up: system $(VENV)/.installed
	$(BIN)/shipway up $(ARGS)

# The host packages builds and sandboxes need: installed with apt-get when run as root on a
# Debian-like system, otherwise named with the one command that installs them.
system:
	@$(PYTHON) -m shipway.system --install

# Files are handed to the workers in the order tests/conftest.py gives them, the end-to-end ones
# first; pytest-xdist would otherwise hand out the files with the most tests first, and the
# long end-to-end files, with few tests each, last. Bytecode is written even where the caller's
# environment says not to: the tests start hundreds of shipway processes, each of which would
# otherwise compile shipway's modules again, and each worker would rewrite every test module.
# mypy (16 s of one core from a clean clone) checks beside the tests; both must pass.
test: export PYTHONDONTWRITEBYTECODE :=
test: $(VENV)/.dev-installed
	$(BIN)/ruff check shipway tests bench
	$(BIN)/lint-imports
	@typing=$$(mktemp); $(BIN)/mypy shipway > $$typing 2>&1 & mypy=$$!; \
	$(BIN)/pytest -n 3 --dist loadfile --no-loadscope-reorder $(ARGS); tests=$$?; \
	wait $$mypy; typed=$$?; echo "mypy shipway:"; cat $$typing; rm -f $$typing; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

# schemathesis over the OpenAPI schema against a real `shipway up`: 30 s of cases (FUZZ_SECONDS).
# `make test` runs it too, as tests/e2e/test_fuzz.py.
fuzz: $(VENV)/.dev-installed
	$(BIN)/python -m tests.fuzz

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check shipway tests bench
	$(BIN)/ruff format --check shipway tests bench
	$(BIN)/mypy shipway
	$(BIN)/lint-imports

format: $(VENV)/.dev-installed
	$(BIN)/ruff format shipway tests bench
	$(BIN)/ruff check --fix shipway tests bench

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/run.py
	$(BIN)/python bench/deploy.py
	$(BIN)/python bench/live.py
	$(BIN)/python bench/router.py
	$(BIN)/python bench/functions.py
	$(BIN)/python bench/js_host.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/fleet_sim.py
	$(BIN)/python bench/fleet_faults.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/dataplane.py
	$(BIN)/python bench/addons.py
	$(BIN)/python bench/idle.py
	$(BIN)/python bench/dockerfile.py
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/trace_push.py

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "shipway needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python requirements.lock pyproject.toml
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.lock
	$(BIN)/pip install -q -r requirements-dev.lock
	@touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
