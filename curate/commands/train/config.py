"""Configuration of `curate train` (pipelines/train_*.yaml) on config.py's strict loader.

Defaults are the paper's stage-2 values (QWENVL_FORMAT.md §5.1, Table 8) except where a tiny CPU run needs less;
the stage picks what is trained and the image size (stage 1: LM frozen, 224 px; 2: all, 448 px; 3: ViT frozen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.core.config import build_dataclass, read_yaml
from curate.core.errors import ConfigError
from curate.core.storage import output_path
from curate.format.image_plan import PLANS, TRAINED_PLANS
from curate.train.connectors import CONNECTORS, AdapterConfig
from curate.train.model import DecoderConfig, VisionConfig
from curate.train.optim import OptimConfig
from curate.train.sparse import SparseConfig

STAGE_IMAGE_SIZE = {1: 224, 2: 448, 3: 448}  # paper Table 8
PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    vision: VisionConfig = field(default_factory=VisionConfig)
    # qwen_resampler (Qwen-VL, the default), mlp2x_gelu (LLaVA), perceiver (Flamingo), qformer (BLIP-2): issue 19
    connector: str = "qwen_resampler"
    adapter: AdapterConfig = field(default_factory=AdapterConfig)  # the connector's queries, heads, depth
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    tokenizer: str | None = None  # qwen_vl, bytes (None), or a local Hugging Face tokenizer folder

    def __post_init__(self) -> None:
        if self.connector not in CONNECTORS:
            raise ConfigError(f"model.connector {self.connector!r} is not valid; valid: {', '.join(CONNECTORS)}")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Stages 1-2 read WebDataset shards (`curate mix` sequences or `curate build` task samples); stage 3 reads
    the SFT JSON of `curate mix`, its images looked up by path in task outputs."""

    train: tuple[str, ...] = ()  # shard globs or folders (searched for *.tar)
    eval: tuple[str, ...] = ()  # held-out shards; empty = the last `holdout_shards` of train
    holdout_shards: int = 1
    sft: str | None = None  # stage 3: sft.json
    image_sources: tuple[str, ...] = ()  # stage 3: images not beside sft.json: `curate build`/`ocr` outputs
    batch_size: int = 8  # sequences per micro-batch per process
    seq_len: int = 2048  # longest sequence a batch may hold (paper §2.2); longer samples are skipped, never cut
    image_size: int | None = None  # None = the stage's (224 / 448)
    workers: int = 0  # DataLoader worker processes per training process (0 = in the main process)
    shuffle_buffer: int = 1000  # per-worker sample shuffle buffer (shards are shuffled per epoch as well)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.seq_len < 8 or self.workers < 0 or self.holdout_shards < 0:
            raise ConfigError("data: batch_size >= 1, seq_len >= 8, workers >= 0, holdout_shards >= 0")
        if self.shuffle_buffer < 0:
            raise ConfigError("data.shuffle_buffer must be >= 0 (0 or 1: no buffer shuffle)")
        if self.image_size is not None and self.image_size < 8:
            raise ConfigError("data.image_size must be >= 8 pixels or null")


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    every: int = 0  # steps between evaluations; 0 = only at the end
    batches: int = 50  # held-out batches read (at most) for the per-task loss and the generation samples
    generate: int = 16  # held-out samples per task (among those batches) for greedy generation
    max_new_tokens: int = 128
    # also the per-task loss with every image's pixels replaced by the normalisation mean (zeros after it), over
    # the same batches: how much the model's predictions depend on what the images show (`loss_blank_images`)
    blank_images: bool = False
    # SparseVLM at evaluation (issue 19): keep ratios of the visual tokens, with and/or without recycling; each
    # (ratio, recycle) pair adds a row of generation measures and decoder FLOPs to the report. Empty = off.
    sparse: SparseConfig = field(default_factory=SparseConfig)


@dataclass(frozen=True, kw_only=True)
class OutputConfig:
    dir: str | None = None  # default out/<name>
    checkpoint_every: int = 100  # steps; a checkpoint is also written at the end
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ConfigError("output: checkpoint_every >= 1 and keep_checkpoints >= 1")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A reference-model training run: `curate train CONFIG` (or `torchrun ... -m curate train CONFIG`)."""

    name: str
    stage: int = 2  # 1: ViT + adapter (LM frozen); 2: everything; 3: LM + adapter (ViT frozen), chat data
    steps: int = 1000
    grad_accum: int = 1
    seed: int = 0
    precision: str = "auto"  # auto = bf16 autocast where the device supports it, else fp32
    device: str = "auto"
    # torch.compile the training forward (issue 20): faster steps on a GPU after a compile of a minute or more;
    # off by default, since short runs and CPU runs lose more to compiling than they gain
    compile: bool = False
    init_from: str | None = None  # a checkpoint of an earlier stage: model weights only (Table 8: "Stage-N ViT")
    log_interval: int = 10
    # tokens and views per image (issue 18), the same key and values as `curate mix`: qwen_vl (the adapter's
    # n_queries, one square image of data.image_size) or deepseek_vl2 (thumbnail + 384 px tiles through
    # DeepSeek-VL2's 2 x 2-unfold MLP connector; the adapter settings are unused)
    image_plan: str = "qwen_vl"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ConfigError(f"name {self.name!r} must be non-empty, without spaces or slashes")
        if self.stage not in STAGE_IMAGE_SIZE:
            raise ConfigError(f"stage {self.stage} is not valid; valid: 1, 2, 3 (paper Table 8)")
        if self.image_plan not in TRAINED_PLANS:
            counted_only = (
                " (it counts tokens for curate mix and curate tiles only)" if self.image_plan in PLANS else ""
            )
            raise ConfigError(
                f"image_plan {self.image_plan!r} cannot train the reference model{counted_only}; "
                f"valid: {', '.join(TRAINED_PLANS)}"
            )
        if self.image_plan == "deepseek_vl2" and self.model.connector != CONNECTORS[0]:
            raise ConfigError("image_plan deepseek_vl2 brings its own connector: leave model.connector unset")
        if self.precision not in PRECISIONS or self.device not in DEVICES:
            raise ConfigError(f"precision: {', '.join(PRECISIONS)}; device: {', '.join(DEVICES)}")
        if self.steps < 1 or self.grad_accum < 1 or self.log_interval < 1:
            raise ConfigError("steps, grad_accum and log_interval must be >= 1")
        if self.stage == 3 and not self.data.sft:
            raise ConfigError("stage 3 trains on chat data: set data.sft to the sft.json of `curate mix`")
        if self.stage != 3 and not self.data.train:
            raise ConfigError("data.train must list shards (globs or folders) for stages 1 and 2")

    @property
    def out_dir(self) -> Path:
        return output_path(self.output.dir or f"out/{self.name}")

    @property
    def image_size(self) -> int:
        return self.data.image_size or STAGE_IMAGE_SIZE[self.stage]


def load_train(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a training YAML, apply `key=value` overrides, validate."""
    return from_dict(read_yaml(path, overrides), where=Path(path).name)


def from_dict(raw: dict[str, Any], where: str = "config") -> TrainConfig:
    return build_dataclass(TrainConfig, raw, where)
