# The README commands: `make demo` (the study's story at small scale, demo/config.yaml, about
# 10 minutes on 2 cores), `make docs` (the demo's figures into docs/ for the README) and
# `make test`; `make unit` is the fast part of the tests (no end-to-end workflow runs),
# `make mini` the CI-sized target. All create .venv on first use and are safe to run again.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# rules call `latentage …`; find it (and snakemake) in the venv
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed

.PHONY: install demo docs mini test unit lint clean-results

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# first, pinned: the only torch/torchvision pair whose torchvision imports here
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e '.[torch,analysis,workflow,dev]'
	touch $(STAMP)

demo: $(STAMP)
	# one thread per job: the GAN's phases and the two CNNs train side by side (demo/config.yaml)
	snakemake --cores 2 --max-threads 1 --configfile demo/config.yaml
	@cat results/summary.md
	@python scripts/check_demo.py --report-only

docs: demo
	python scripts/demo_docs.py

mini: $(STAMP)
	snakemake --cores 2 --configfile tests/mini/config.yaml

lint: $(STAMP)
	snakemake --lint
	snakefmt --check .
	ruff check

test: $(STAMP)
	pytest
	$(MAKE) --no-print-directory lint

unit: $(STAMP)
	pytest -m "not slow"

clean-results:
	rm -rf results logs benchmarks .snakemake
