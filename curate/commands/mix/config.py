"""`curate mix`'s config: inputs, budget, task weights, packing, tokenizer, SFT export (pipelines/mix_*.yaml)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from curate.core.config import OutputConfig, RayConfig, build_dataclass, read_yaml
from curate.core.errors import ConfigError
from curate.core.storage import output_path
from curate.format.image_plan import PLANS
from curate.mixture.plan import TaskWeights


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
    # tokens per image (issue 18): qwen_vl (256 queries, every image), deepseek_vl2 (dynamic 384 px tiling) or
    # anyres_max_9 (LLaVA-OneVision), the last two counted from each sample's recorded image size; `curate train`
    # takes the same key (qwen_vl, deepseek_vl2)
    image_plan: str = "qwen_vl"
    sft: SftConfig = field(default_factory=SftConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def __post_init__(self) -> None:
        if not self.inputs or self.budget < 1 or self.seq_len < 300:
            raise ConfigError("inputs must be listed, budget >= 1, seq_len >= 300 (an image alone is 258 tokens)")
        if self.image_plan not in PLANS:
            raise ConfigError(f"image_plan {self.image_plan!r} is not valid; valid: {', '.join(PLANS)}")
        if self.window < 1:
            raise ConfigError("window must be >= 1 (drawn samples packed together)")
        unknown = set(self.with_replacement) - {f.name for f in dataclasses.fields(TaskWeights)}
        if unknown:
            raise ConfigError(f"with_replacement names unknown task(s) {', '.join(sorted(unknown))}")

    @property
    def out_dir(self) -> Path:
        return output_path(self.output.dir or f"out/{self.name}")


def load_mix(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> MixConfig:
    """Read a mixture YAML (curate mix), apply overrides, validate."""
    return build_dataclass(MixConfig, read_yaml(path, overrides), Path(path).name)
