# minidock: every target installs what a fresh Debian 12 machine lacks.
#   make demo   the main job: replay the default-bridge walkthrough on a sandboxed daemon
#   make test   lint, unit, kernel and end-to-end tests (needs root)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := iproute2 iptables busybox-static netcat-openbsd bridge-utils tcpdump dnsutils \
                procps util-linux kmod iputils-ping python3-venv python3-pip

.PHONY: all install deps venv demo test lint unit e2e bench clean

all: test

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

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

bench: install
	@command -v dnsperf >/dev/null && command -v dnsmasq >/dev/null && command -v iperf3 >/dev/null && \
	  command -v socat >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq dnsperf dnsmasq-base iperf3 socat >/dev/null)
	$(PY) -m tests.bench.bench_core

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
