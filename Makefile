# minidock: every target installs what a fresh Debian 12 machine lacks.
#   make demo   the main job: replay the default-bridge walkthrough on a sandboxed daemon
#   make test   lint, unit, kernel and end-to-end tests, the labs (needs root)
#   make labs   every lab of vagrant/labs: its steps, then its check, on a sandboxed daemon
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: all install deps venv demo test lint unit e2e labs soak bench clean

all: test

# one package list, the lab box's: CI installs through the provisioning script on every run
deps:
	bash vagrant/provision.sh --deps-only

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null
	@# compat: the checkout goes on sys.path through a plain .pth line; the default
	@# editable mode's import-hook finder costs ~15 ms on every `minidock` start
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@# pip's wrapper script imports re (~10 ms, half a `docker ps`): go straight to the entry point
	printf '#!%s\nimport sys\nfrom minidock.cli.entry import main\nsys.exit(main())\n' \
	  "$(abspath $(PY))" > $(VENV)/bin/minidock
	@# bytecode now: with PYTHONDONTWRITEBYTECODE set, every start would compile again
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m compileall -q $(VENV)/lib minidock >/dev/null
	touch $@

venv: $(VENV)/.installed

install: deps venv

demo: install
	$(PY) -m minidock.demo

lint: install
	$(VENV)/bin/ruff check minidock tests

unit: install
	$(PY) -m pytest -q tests/unit

test: install lint
	$(PY) -m pytest -q -p no:cacheprovider tests

# the crash soak of the tests, longer: SOAK_ROUNDS rounds of concurrent runs cut by kill -9
soak: install
	SOAK_ROUNDS=$${SOAK_ROUNDS:-40} $(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_crash.py -k soak

labs: install
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e/test_labs.py

bench: install
	@command -v dnsperf >/dev/null && command -v dnsmasq >/dev/null && command -v iperf3 >/dev/null && \
	  command -v socat >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq dnsperf dnsmasq-base iperf3 socat >/dev/null)
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m compileall -q minidock >/dev/null
	$(PY) -m tests.bench.bench_core

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
