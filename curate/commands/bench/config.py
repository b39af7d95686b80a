"""`curate bench` configuration (pipelines/bench_demo.yaml), on the strict config loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curate.core.config import build_dataclass, read_yaml
from curate.core.errors import ConfigError

PARTS = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "peer")


@dataclass(frozen=True, kw_only=True)
class ClipCase:
    """One CLIP model for P1. Threads and actors are the filter config's clip_score settings; batch size and
    decode too unless the case sets them."""

    model: str
    # None: weights are random-initialized and saved once under <out>/models. Throughput does not depend on the
    # weights' values; the scores of such a model are meaningless and the bench discards them.
    pretrained: str | None = None
    samples: int = 256  # rows through the pipeline's CLIP stage (the first output batch is start-up)
    raw_batches: int = 3  # timed raw forward batches, after one warm-up batch
    repeats: int = 1  # runs of the stage at each of its two sizes; the fastest of each is kept
    batch_size: int | None = None  # None: the filter config's clip_score.batch_size
    decode: str | None = None  # cpu or device (clip_score.decode); None: the filter config's
    device: str | None = None  # cpu or cuda; None: every device this machine has

    def __post_init__(self) -> None:
        if min(self.samples, self.raw_batches, self.repeats, self.batch_size or 1) < 1:
            raise ConfigError("bench clip: samples, raw_batches, repeats and batch_size must be >= 1")
        if self.decode not in (None, "cpu", "device") or self.device not in (None, "cpu", "cuda"):
            raise ConfigError("bench clip: decode is cpu or device, device is cpu or cuda (or leave them out)")


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    filter_config: str = "pipelines/filter_demo.yaml"  # its download settings and filters are what is measured
    filter_overrides: tuple[str, ...] = ()  # `key=value` overrides for it, as `curate filter --set` takes them
    ocr_config: str = "pipelines/build_synthdog.yaml"  # P4: a build config with a synthdog source
    out: str = "out/bench"
    parts: tuple[str, ...] = PARTS
    clip: tuple[ClipCase, ...] = (ClipCase(model="ViT-B-32"),)
    metadata_rows: int = 100_000  # P2 (issue 9: 100k LAION-style rows)
    download_urls: int = 2400  # P3: the demo URL list cycled to this many rows
    ocr_documents: int = 200  # P4, rendered on one worker process
    memory_rows: tuple[int, ...] = (1000, 5000)  # P5: two run sizes
    stage2_sizes: tuple[int, ...] = (20_000, 100_000)  # P6: two build sizes, each mixed with budget = size
    stage2_budget: int = 1_000_000  # P6: a mix with replacement from the larger build (issue 15)
    stage2_bare_samples: int = 10_000  # P6: the bare build loop's sample count (its rate is per core)
    # P7 (issue 17): planted duplicates from the shared data's real photos through a dedup-only filter run (and
    # Data-Juicer's image_deduplicator on the same files, with peer_python), then the near stage on synthetic hashes.
    dedup_shared_data: str = "../shared/data"
    dedup_planted_per_variant: int | None = None  # originals given each variant; None = every original (101)
    dedup_scale_hashes: int = 1_000_000  # synthetic 64-bit hashes through the near stage, 2 CPUs
    dedup_scale_pairs: int = 10_000  # planted near pairs among them (1..radius bits apart)
    dedup_scale_subset: int = 20_000  # hashes compared with brute force
    dedup_scale_radii: tuple[int, ...] = (4, 2)  # one measured run per radius (4: dedup_near's default)
    dedup_scale_timeout_s: int = 900  # a run past this is killed and reported as not finished
    peer_samples: int = 5000  # Data-Juicer comparison (issue 9: the same 5k samples)
    peer_python: str = ".venv-dj/bin/python"  # the venv `make bench-peer` installs Data-Juicer into
    peer_clip: str = "curate-tiny-clip"  # CLIP architecture both tools run on the 5k samples
    peer_clip_pretrained: str = "models/curate-tiny-clip.pt"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.parts) - set(PARTS))
        if unknown:
            raise ConfigError(f"bench parts {', '.join(unknown)} unknown; valid: {', '.join(PARTS)}")
        sizes = (self.metadata_rows, self.download_urls, self.ocr_documents, self.peer_samples, *self.memory_rows,
                 *self.stage2_sizes, self.stage2_budget, self.stage2_bare_samples)  # fmt: skip
        sizes += (self.dedup_scale_hashes, self.dedup_scale_pairs, self.dedup_scale_subset, self.dedup_scale_timeout_s)
        if self.dedup_planted_per_variant is not None:
            sizes += (self.dedup_planted_per_variant,)
        if not self.dedup_scale_radii or not all(0 <= r <= 12 for r in self.dedup_scale_radii):
            raise ConfigError("dedup_scale_radii must list radii within 0..12, e.g. [4, 2]")
        if len(self.stage2_sizes) != 2:
            raise ConfigError("stage2_sizes must list two build sizes, e.g. [20000, 100000]")
        if min(sizes) < 1:
            raise ConfigError("bench sizes (rows, urls, documents, samples) must be >= 1")

    @property
    def out_dir(self) -> Path:
        return Path(self.out)


def load_bench(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> BenchConfig:
    return build_dataclass(BenchConfig, read_yaml(path, overrides), Path(path).name)
