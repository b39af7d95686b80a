# Every target that runs code first makes sure .venv exists with everything installed (one stamp file).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CURATE := $(VENV)/bin/curate
STAMP := $(VENV)/.curate-installed
DEMO := out/demo_input
DEMO_CLIP := models/curate-tiny-clip.pt

# Offline by design: no model hub at run time (fail in seconds, not after 46 s of retries).
export HF_HUB_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: install filter demo test test-slow lint fmt size clean

install: $(STAMP)

# torch/torchvision first, pinned to the builds on this machine's disk, so nothing resolves a different build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DEMO)/_SUCCESS: | $(STAMP)
	$(CURATE) demo-data --out $(DEMO)

$(DEMO_CLIP): | $(DEMO)/_SUCCESS
	$(CURATE) train-clip --pairs $(DEMO)/clip_train.parquet --out $(DEMO_CLIP)

demo: $(DEMO)/_SUCCESS $(DEMO_CLIP)

## The main job: stage-1 filtering of the embedded demo (600 rows served from 127.0.0.1), offline.
filter: demo
	$(CURATE) filter pipelines/filter_demo.yaml

## Offline, CPU-only test suite (slow tests excluded).
test: $(STAMP)
	$(VENV)/bin/pytest

test-slow: $(STAMP)
	$(VENV)/bin/pytest -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check curate tests
	$(VENV)/bin/ruff format --check curate tests

fmt: $(STAMP)
	$(VENV)/bin/ruff format curate tests
	$(VENV)/bin/ruff check --fix curate tests

## Line budget for the package (DESIGN.md 4.7): raise it only in a deliberate commit.
size:
	@total=$$(cat curate/*.py curate/*/*.py | wc -l); echo "curate/: $$total lines (budget 4000)"; test $$total -le 4000

clean:
	rm -rf out models .pytest_cache .ruff_cache
