"""Configuration of the stage-2 commands (curate build, curate ocr, curate mix), on config.py's strict loader."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.config import OutputConfig, RayConfig, build_dataclass, build_named, read_yaml
from curate.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """A stage-2 task build (curate build): sources -> task builders -> shards per task."""

    name: str
    sources: tuple[Any, ...]
    records_per_chunk: int = 1000  # source records per unit of resumable work (one Ray task)
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ConfigError(f"name {self.name!r} must be non-empty, without spaces or slashes")
        if not self.sources:
            raise ConfigError("sources must list at least one source")
        if self.records_per_chunk < 1:
            raise ConfigError("records_per_chunk must be >= 1")

    @property
    def out_dir(self) -> Path:
        return Path(self.output.dir or f"out/{self.name}")


@dataclass(frozen=True, kw_only=True)
class OcrSynthConfig:
    """Synthetic OCR documents (curate ocr): how many, from which corpora, at what size."""

    name: str
    count: int = 1000
    seed: int = 0
    corpus_en: tuple[str, ...] = ()  # globs of one-document-per-line text files
    corpus_zh: tuple[str, ...] = ()
    zh_share: float = 0.5
    short_side: tuple[int, ...] = (448, 1024)  # canvas short side range in pixels
    backgrounds: tuple[str, ...] = ()  # image globs; empty = scikit-image's bundled photos (+ textures)
    workers: int = 0  # Ray workers rendering; 0 = one per CPU of the Ray cluster
    documents_per_chunk: int = 50  # documents per unit of resumable work (one Ray task)
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if self.count < 1 or self.workers < 0 or self.documents_per_chunk < 1:
            raise ConfigError("count must be >= 1, workers >= 0 and documents_per_chunk >= 1")
        if not 0 <= self.zh_share <= 1:
            raise ConfigError("zh_share must be within [0, 1]")
        if len(self.short_side) != 2 or not 64 <= self.short_side[0] <= self.short_side[1]:
            raise ConfigError("short_side must be [min, max] pixels with 64 <= min <= max")
        if self.zh_share < 1 and not self.corpus_en or self.zh_share > 0 and not self.corpus_zh:
            raise ConfigError("corpus_en / corpus_zh must list text files for the languages zh_share asks for")

    @property
    def out_dir(self) -> Path:
        return Path(self.output.dir or f"out/{self.name}")


@dataclass(frozen=True, kw_only=True)
class TaskWeights:
    """Relative task weights; defaults are Qwen-VL's stage-2 sample counts in millions (paper Table 3, §2.1)."""

    caption: float = 19.7
    vqa: float = 3.6
    grounding: float = 3.5
    ref_grounding: float = 8.7
    grounded_caption: float = 8.7
    ocr: float = 24.8
    text: float = 7.8

    def __post_init__(self) -> None:
        if any(w < 0 for w in dataclasses.astuple(self)) or not sum(dataclasses.astuple(self)):
            raise ConfigError("weights must be >= 0 and not all zero")


@dataclass(frozen=True, kw_only=True)
class SftConfig:
    conversations: int = 200  # stage-3 conversations to export (0 = none)
    max_turns: int = 4  # question/answer rounds per image conversation


@dataclass(frozen=True, kw_only=True)
class MixConfig:
    """A stage-2 mixture (curate mix): task samples -> weighted sample -> packed sequences (+ SFT export)."""

    name: str
    inputs: tuple[str, ...]  # output dirs of `curate build` / `curate ocr` (each holding <task>/parquet/)
    budget: int = 20000  # samples in the mixture
    weights: TaskWeights = field(default_factory=TaskWeights)
    with_replacement: tuple[str, ...] = (
        "caption",
        "vqa",
        "grounding",
        "ref_grounding",
        "grounded_caption",
        "ocr",
        "text",
    )  # tasks sampled with replacement; others fail if too few
    seed: int = 0
    seq_len: int = 2048  # packed sequence capacity in tokens (paper §2.2)
    window: int = 10000  # drawn samples packed together (best-fit decreasing within each window)
    tokenizer: str = "qwen_vl"  # qwen_vl (Qwen-VL's own vocabulary, offline), bytes, or a local HF tokenizer folder
    sft: SftConfig = field(default_factory=SftConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if not self.inputs or self.budget < 1 or self.seq_len < 300:
            raise ConfigError("inputs must be listed, budget >= 1, seq_len >= 300 (an image alone is 258 tokens)")
        if self.window < 1:
            raise ConfigError("window must be >= 1 (drawn samples packed together)")
        unknown = set(self.with_replacement) - {f.name for f in dataclasses.fields(TaskWeights)}
        if unknown:
            raise ConfigError(f"with_replacement names unknown task(s) {', '.join(sorted(unknown))}")

    @property
    def out_dir(self) -> Path:
        return Path(self.output.dir or f"out/{self.name}")


def load_build(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> BuildConfig:
    """Read a task-build YAML (curate build), apply overrides, validate."""
    return build_from_dict(read_yaml(path, overrides), where=Path(path).name)


def load_ocr(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> OcrSynthConfig:
    """Read a synthetic-OCR YAML (curate ocr), apply overrides, validate."""
    return build_dataclass(OcrSynthConfig, read_yaml(path, overrides), Path(path).name)


def load_mix(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> MixConfig:
    """Read a mixture YAML (curate mix), apply overrides, validate."""
    return build_dataclass(MixConfig, read_yaml(path, overrides), Path(path).name)


def build_from_dict(raw: dict[str, Any], where: str = "config") -> BuildConfig:
    from curate.sources import SOURCES

    raw = dict(raw)
    raw["sources"] = tuple(build_named(e, SOURCES, "sources", where) for e in raw.get("sources") or [])
    return build_dataclass(BuildConfig, raw, where)
