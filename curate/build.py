"""`curate build`: sources -> task builders -> per-task WebDataset shards + Parquet parts + stats.json.

Every Example is checked against the format rules before it is written (a failure is a builder bug and stops
the build). Records a builder cannot use are counted per task and reason, never dropped silently.
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.config import fingerprint, to_yaml
from curate.errors import ConfigError
from curate.io.atomic import write_atomic, write_bytes_atomic, write_parquet_atomic
from curate.io.images import TarReader, read_image_bytes, to_jpeg
from curate.io.tar import add_member
from curate.schema import SCHEMA_VERSION
from curate.stage2_config import BuildConfig
from curate.tasks import TASKS, Example, Skip
from curate.tasks.validate import check_sample

log = logging.getLogger(__name__)
SAMPLE_SCHEMA = pa.schema(
    [
        ("schema_version", pa.int32()),
        ("task", pa.string()),
        ("source", pa.string()),
        ("key", pa.string()),
        ("images", pa.list_(pa.string())),
        ("prefix", pa.string()),
        ("target", pa.string()),
        ("image", pa.binary()),  # JPEG bytes of images[0] (null for text-only or URL-only samples)
    ]
)


class TaskWriter:
    """Writes one task's samples as shards/shard-NNNNNN.tar + parquet/part-NNNNNN.parquet pairs of fixed size."""

    def __init__(self, folder: Path, samples_per_shard: int) -> None:
        self.folder, self.size = folder, samples_per_shard
        self.buffer: list[tuple[dict[str, Any], bytes | None]] = []
        self.shards = 0
        self.samples = 0

    def add(self, sample: dict[str, Any], image: bytes | None) -> None:
        self.buffer.append((sample, image))
        if len(self.buffer) == self.size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        name = f"{self.shards:06d}"
        write_atomic(self.folder / "shards" / f"shard-{name}.tar", lambda tmp: _write_tar(tmp, self.buffer))
        rows = [{**s, "image": img} for s, img in self.buffer]
        table = pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)
        write_parquet_atomic(self.folder / "parquet" / f"part-{name}.parquet", table)
        self.samples += len(self.buffer)
        self.shards += 1
        self.buffer = []


def _write_tar(tmp: Path, samples: list[tuple[dict[str, Any], bytes | None]]) -> None:
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for sample, image in samples:
            if image is not None:
                add_member(tar, f"{sample['key']}.jpg", image)
            add_member(tar, f"{sample['key']}.json", json.dumps(sample, ensure_ascii=False, sort_keys=True).encode())


def run_build(cfg: BuildConfig, overwrite: bool = False) -> dict[str, Any]:
    """Build every task of every source; returns the stats written to stats.json."""
    out = cfg.out_dir
    started = time.time()
    prepare_output(out, cfg, overwrite)
    writers: dict[str, TaskWriter] = {}
    skipped: dict[str, Counter] = defaultdict(Counter)
    per_source: dict[str, Counter] = defaultdict(Counter)
    tars = TarReader()
    for source in cfg.sources:
        builders = [TASKS[t]() for t in source.tasks]
        records = 0
        for record in source.records():
            records += 1
            image = _image_bytes(record, source.require_local_images, tars)
            for builder in builders:
                for item in builder(record):
                    if isinstance(item, Skip):
                        skipped[builder.name][item.reason] += 1
                    elif isinstance(image, Skip) and item.images:
                        skipped[builder.name][image.reason] += 1
                    else:
                        _write(item, None if isinstance(image, Skip) else image, writers, out, cfg)
                        per_source[source.name][builder.name] += 1
        log.info("source %s: %d records -> %s", source.name, records, dict(per_source[source.name]))
    for writer in writers.values():
        writer.flush()
    stats = _stats(cfg, writers, skipped, per_source, time.time() - started)
    write_bytes_atomic(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False).encode())
    write_bytes_atomic(out / "_SUCCESS", b"")
    return stats


def _write(example: Example, image: bytes | None, writers: dict[str, TaskWriter], out: Path, cfg: BuildConfig) -> None:
    sample = example.to_json()
    errors = check_sample(sample)
    if errors:  # builders must only produce valid samples: a failure here is a bug, not bad data
        raise RuntimeError(f"builder {example.task} produced an invalid sample {example.key}: {errors}")
    if example.task not in writers:
        writers[example.task] = TaskWriter(out / example.task, cfg.output.samples_per_shard)
    writers[example.task].add(sample, image if example.images else None)


def _image_bytes(record: dict[str, Any], required: bool, tars: TarReader) -> bytes | Skip | None:
    """JPEG bytes of the record's image; a Skip when it is needed but missing or undecodable."""
    if "image" not in record:
        return None
    if record.get("image_bytes") is not None:  # generated in memory (synthetic sources)
        return to_jpeg(record["image_bytes"])
    path = record.get("image_file")
    if not path:
        return Skip("image_not_local") if required else None
    try:
        return to_jpeg(read_image_bytes(path, record.get("image_member"), tars))
    except FileNotFoundError:
        return Skip("image_not_found")
    except Exception:  # noqa: BLE001 - undecodable image bytes are bad data
        return Skip("image_decode_error")


def prepare_output(out: Path, cfg: Any, overwrite: bool) -> None:
    """A build is cheap to redo: an unfinished one is cleared; a finished one with another config is refused."""
    identity = fingerprint(cfg)
    run_file = out / "build.json"
    if out.exists() and overwrite:
        shutil.rmtree(out)
    elif run_file.exists() and json.loads(run_file.read_text()).get("config") != identity:
        raise ConfigError(f"{out} holds output of a different configuration; use --out DIR or --overwrite")
    elif out.exists() and any(out.iterdir()) and not run_file.exists():
        raise ConfigError(f"{out} exists and was not written by curate; choose another --out or use --overwrite")
    if out.exists():
        shutil.rmtree(out)  # same config: rebuild from scratch (deterministic), never mix two builds' shards
    out.mkdir(parents=True)
    write_bytes_atomic(run_file, json.dumps({"config": identity}).encode())
    write_bytes_atomic(out / "config.yaml", to_yaml(cfg).encode())


def _stats(
    cfg: BuildConfig,
    writers: dict[str, TaskWriter],
    skipped: dict[str, Counter],
    per_source: dict[str, Counter],
    elapsed: float,
) -> dict[str, Any]:
    tasks = sorted(set(writers) | set(skipped))
    return {
        "schema_version": SCHEMA_VERSION,
        "name": cfg.name,
        "tasks": {
            t: {
                "samples": writers[t].samples if t in writers else 0,
                "shards": writers[t].shards if t in writers else 0,
                "skipped": dict(sorted(skipped[t].items())),
            }
            for t in tasks
        },
        "sources": {s: dict(c) for s, c in per_source.items()},
        "elapsed_s": round(elapsed, 2),
    }


def summary_table(stats: dict[str, Any], out: Path) -> str:
    lines = [f"curate build {stats['name']} -> {out}", f"  {'task':<20}{'samples':>9}  skipped (reason: count)"]
    for task, info in stats["tasks"].items():
        skips = ", ".join(f"{r}: {c}" for r, c in info["skipped"].items()) or "-"
        lines.append(f"  {task:<20}{info['samples']:>9}  {skips}")
    lines.append(f"  {stats['elapsed_s']:.1f} s")
    return "\n".join(lines)
