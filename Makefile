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

.PHONY: bench-gpu install lock fonts browser filter filter-dedup mixture train train-shapes train-plans train-connectors langid-eval demo test test-integration test-slow bench bench-peer lint fmt size clean

# Fonts for synthetic OCR documents come from Debian packages (curate/assets/ocr_fonts.yaml).
FONT_PACKAGES := fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-wqy-microhei fonts-arphic-uming

install: $(STAMP)

# torch/torchvision first, pinned to the builds on this machine's disk, so nothing resolves a different build.
# Everything else at the versions in constraints.txt, the set the tests last passed with.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## Re-pin constraints.txt to what .venv holds now (after upgrading a dependency and passing make test-slow).
lock: $(STAMP)
	{ head -3 constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.tmp && mv constraints.txt.tmp constraints.txt

fonts: $(STAMP)
	@if ! $(PY) -c "from curate.ocr.fonts import available_fonts; available_fonts()" 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FONT_PACKAGES); \
	  else \
	    echo "curate needs fonts for synthetic OCR: sudo apt-get install $(FONT_PACKAGES)"; exit 1; \
	  fi; \
	fi

# Headless Chromium + ChromeDriver (Debian packages) for the report-page tests (issue 7).
BROWSER_PACKAGES := chromium chromium-driver

browser:
	@if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); \
	  else \
	    echo "the report-page tests need headless Chromium: sudo apt-get install $(BROWSER_PACKAGES)"; exit 1; \
	  fi; \
	fi

$(DEMO)/_SUCCESS: | $(STAMP)
	$(CURATE) demo-data --out $(DEMO)

$(DEMO_CLIP): | $(DEMO)/_SUCCESS
	$(CURATE) train-clip --pairs $(DEMO)/clip_train.parquet --out $(DEMO_CLIP)

demo: $(DEMO)/_SUCCESS $(DEMO_CLIP)

## The main job: stage-1 filtering of the embedded demo (600 rows served from 127.0.0.1), offline.
filter: demo
	$(CURATE) filter pipelines/filter_demo.yaml

## The demo with the dedup stages (issue 17): planted copies, re-encodes, resizes, mirror images and a reference set.
filter-dedup: demo
	$(CURATE) filter pipelines/filter_dedup.yaml

## Stage 2 on the embedded demo: filter output + text + synthetic OCR -> tasks -> packed mixture + SFT JSON.
mixture: filter fonts
	$(CURATE) build pipelines/build_demo.yaml --overwrite
	$(CURATE) mix pipelines/mix_demo.yaml --overwrite

## The reference model trained on the demo mixture (CPU, a few minutes); rerunning resumes the same run.
train: mixture
	$(CURATE) train pipelines/train_demo.yaml

## Grounding from scratch on synthetic shapes: mean IoU vs a predict-the-mean-box baseline (CPU, ~10 min).
train-shapes: $(STAMP)
	$(CURATE) build pipelines/build_shapes.yaml --overwrite
	$(CURATE) train pipelines/train_shapes.yaml

## Connectors (issue 19): each connector trained with equal steps on the shapes grounding set, the resampler and
## MLP also evaluated with SparseVLM pruning; out/connectors/comparison.{json,md} (CPU, <= 30 min).
CONNECTOR_RUN = $(CURATE) train pipelines/train_connectors.yaml --set model.connector=$(1) --out out/connectors/$(1) $(2)
train-connectors: $(STAMP)
	$(CURATE) build pipelines/build_shapes.yaml
	$(call CONNECTOR_RUN,qwen_resampler)
	$(call CONNECTOR_RUN,mlp2x_gelu)
	$(call CONNECTOR_RUN,perceiver,--set 'eval.sparse.keep_ratios=[1.0]')
	$(call CONNECTOR_RUN,qformer,--set 'eval.sparse.keep_ratios=[1.0]')
	$(PY) -m curate.commands.train.connector_comparison $(addprefix out/connectors/,qwen_resampler mlp2x_gelu perceiver qformer) --out out/connectors

## Image plans (issue 18): the same model, steps and 768-1024 px OCR pages under qwen_vl and deepseek_vl2, then
## their held-out OCR loss (also with blank images) and tokens per sample side by side in
## out/plans/comparison.{json,md} (CPU, ~56 min on 2 shared cores).
train-plans: $(STAMP) fonts
	$(CURATE) build pipelines/build_docs.yaml
	$(CURATE) train pipelines/train_docs.yaml --set image_plan=qwen_vl --out out/plans/qwen_vl
	$(CURATE) train pipelines/train_docs.yaml --set image_plan=deepseek_vl2 --out out/plans/deepseek_vl2
	$(PY) -m curate.commands.train.plan_comparison out/plans/qwen_vl out/plans/deepseek_vl2 --out out/plans

## Language ID (issue 22): lid.176, its variants, the English vocabulary, CLD2, langid.py, Lingua and the chosen
## default side by side on the labelled captions (tests/data/langid): precision, recall and us per caption on the
## tune and test rows; out/langid/comparison.{json,md} (about a minute). Installs the other packages first.
langid-eval: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,langid-eval]'
	$(PY) -m curate.commands.bench.langid --out out/langid

## Offline, CPU-only tests in three tiers (issue 16): the fast tier (unit and small integration, a few minutes),
## the end-to-end chains (demo filter run, build, mix, training, notebooks, report pages; each built once), and
## the slow tier (kill -9 resume, 2-node cluster, memory at scale, grounding from scratch). CI runs all three.
test: $(STAMP) fonts
	$(VENV)/bin/pytest

test-integration: $(STAMP) fonts browser
	$(VENV)/bin/pytest -m integration

test-slow: $(STAMP) fonts browser
	$(VENV)/bin/pytest -m slow

## Throughput and memory beside the raw model and peer tools, as ratios (pipelines/bench_demo.yaml; README
## "Benchmarks"). Data-Juicer is installed first for the peer comparison; if it cannot be, the table says why.
bench: $(STAMP) fonts demo
	@$(MAKE) --no-print-directory bench-peer || echo "Data-Juicer did not install (see $(DJ_VENV)/install.log): the bench reports why"
	$(CURATE) bench pipelines/bench_demo.yaml

## Issue 20's GPU figures, on a machine with a CUDA GPU (a few minutes): P1 on the GPU, then the training step of
## the 300m preset on synthetic batches and, when TRAIN_DATA holds shards (e.g. `make mixture`'s), over them.
TRAIN_DATA ?= out/mix_demo/shards
bench-gpu: $(STAMP) fonts demo
	$(CURATE) bench pipelines/bench_gpu.yaml
	$(PY) -m curate.train.bench --preset 300m --steps 20 --warmup 5 | tee out/bench_gpu/train_300m.json
	$(PY) -m curate.train.bench --preset 300m --steps 20 --warmup 5 --compile | tee out/bench_gpu/train_300m_compiled.json
	if [ -d $(TRAIN_DATA) ]; then $(PY) -m curate.train.bench --preset 300m --steps 30 --warmup 5 --compile \
	  --data $(TRAIN_DATA) --workers 8 | tee out/bench_gpu/train_300m_data.json; \
	else echo "no $(TRAIN_DATA): the data-wait figure needs shards (make mixture)"; fi

# Data-Juicer (the peer) in its own venv that sees .venv's packages (torch, transformers) through a .pth file
# instead of installing a second torch; its own pins (dill, multiprocess, emoji) stay in its venv.
DJ_VENV := .venv-dj
DJ_VERSION := 1.6.1
# Data-Juicer's image_deduplicator (the dedup peer) needs imagededup, which Data-Juicer does not depend on.
IMAGEDEDUP_VERSION := 0.3.3.post2
bench-peer: $(DJ_VENV)/.installed

$(DJ_VENV)/.installed: $(STAMP)
	test -x $(DJ_VENV)/bin/python || python3 -m venv $(DJ_VENV)
	$(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$$($(DJ_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_curate_venv.pth"
	$(DJ_VENV)/bin/pip install --quiet py-data-juicer==$(DJ_VERSION) imagededup==$(IMAGEDEDUP_VERSION) > $(DJ_VENV)/install.log 2>&1 || { tail -5 $(DJ_VENV)/install.log; exit 1; }
	$(DJ_VENV)/bin/python -c 'import data_juicer.ops, imagededup.methods' >> $(DJ_VENV)/install.log 2>&1 || { tail -5 $(DJ_VENV)/install.log; exit 1; }
	$(DJ_VENV)/bin/python -c 'import data_juicer.ops' >> $(DJ_VENV)/install.log 2>&1 || { tail -5 $(DJ_VENV)/install.log; exit 1; }
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check curate tests
	$(VENV)/bin/ruff format --check curate tests

fmt: $(STAMP)
	$(VENV)/bin/ruff format curate tests
	$(VENV)/bin/ruff check --fix curate tests

## Line budget for the package (DESIGN.md 4.7): raise it only in a deliberate commit.
## 4000 -> 6000 when stage 2 (tasks, sources) and synthetic OCR joined stage 1 (issues 3 and 4).
## 6000 -> 8000 when the reference model's training loop, data stream and evaluation joined (issue 6).
## 8000 -> 9000 when reliability joined: URL policy, guarded fetch, download attempts, process memory (issue 8).
## 9000 -> 10000 when the bench suite joined (curate/bench: six parts, their baselines and the peer; issue 9).
## 10000 -> 12000 when stage 2 moved onto Ray (run folders, shards, chunked workers, the mixture's index, plan,
## writers and checks; issue 15) and the library was split from its commands, with the qwen_vl tokenizer (issue 16).
## 12000 -> 14000 when deduplication joined (curate/dedup: fingerprints, banded index, semantic search, keep rule,
## reference sets, the global pass, the planted set; the dedup stages; bench part P7 and its peer; issue 17),
## and the image plans began (issue 18).
## 14500 -> 15500 with the image plans in mix and train (per-image slots, views, DeepSeek-VL2's tile connector,
## the plan comparison; issue 18) and the connector family with SparseVLM pruning (issue 19).
## 15500 -> 17500 with the CLIP pixel stage and device decode (issue 20), the language evaluation and English
## vocabulary (issue 22), and URL encoding, progress output, the shape scenes and curate export (issue 21).
SIZE_BUDGET := 18000
size:
	@total=$$(find curate -name '*.py' -exec cat {} + | wc -l); echo "curate/: $$total lines (budget $(SIZE_BUDGET))"; \
	test $$total -le $(SIZE_BUDGET)

clean:
	rm -rf out models .pytest_cache .ruff_cache
