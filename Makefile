# medtune: `make demo` runs the whole pipeline on sample data; `make test` runs the tests.
# Both set up .venv from pyproject.toml + constraints.txt (the one source of pinned versions).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
NPZ ?= ../shared/data/pneumoniamnist/pneumoniamnist.npz
PYTEST_ARGS ?=
# Test processes: two keep both cores busy while one test waits on a subprocess, Ray or a server
# (README, Development: what it saves); 0 runs everything in this process, in order.
TEST_WORKERS ?= 2
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Keep every Ray connection on loopback on these machines (docs/architecture.md, decisions: Ray).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export DVC_NO_ANALYTICS := 1

.PHONY: install postgres-server demo sample-data test lint bench clean

install: $(STAMP)

# torch first, by exact version, so pip takes the local CPU build and nothing pulls a CUDA one.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q "torch==2.13.0" -c constraints.txt
	$(VENV)/bin/pip install -q -c constraints.txt -e ".[test]"
	touch $@

sample-data: install
	@if [ -d data/raw ]; then echo "data/raw exists; keeping it"; \
	elif [ -f "$(NPZ)" ]; then medtune sample-data --npz "$(NPZ)"; \
	else medtune sample-data; fi

demo: sample-data
	dvc add -q data/raw data/labels.csv
	time dvc repro
	dvc metrics show
	@echo "MLflow UI: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlruns.db"

# The cluster tests start their own PostgreSQL (tests/integration/postgres.py) from the distribution's
# server binaries: install them once when missing (Debian/Ubuntu; as root, or through sudo).
PG_BINARIES := $(wildcard /usr/lib/postgresql/*/bin/pg_ctl) $(shell command -v pg_ctl 2>/dev/null)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
postgres-server:
ifeq ($(strip $(PG_BINARIES)),)
	@echo "make: installing the PostgreSQL server for the cluster tests (apt-get install postgresql)"
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
endif

# Two test processes share the cores, each with torch's OpenMP threads: idle ones sleep rather than spin on a
# core the other test needs (beside bench.small_cohort's smoke test, bench.hpo's took 107 s instead of 183 s).
test: export OMP_WAIT_POLICY := PASSIVE
test: install postgres-server
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15 $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests bench

bench: install
	$(VENV)/bin/python -m bench.overhead
	$(VENV)/bin/python -m bench.hpo --seeds 3 --trials 32

clean:
	rm -rf data/raw data/labels.csv data/*.dvc data/interim data/processed data/splits models reports \
	  ray_results mlruns.db mlartifacts dvc.lock .dvc/cache
