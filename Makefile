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
	$(PY) -m pip install -q -e '.[test]'
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
	$(PY) -m tests.bench.bench_core

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
