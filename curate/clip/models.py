"""Load an open_clip model from a pretrained tag, a local checkpoint path or a local dir, with clear errors.

Nothing is fetched from a hub unless the environment allows it: with HF_HUB_OFFLINE=1 (set by the CLI) a
missing checkpoint fails in seconds with a message that says what to do instead.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from curate.core.errors import ConfigError

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "assets" / "clip_configs"
CONFIG_ERROR_EXIT = 2  # `python -m curate.clip.models`: the weights cannot be had; stdout says why
TINY_MODEL = "curate-tiny-clip"  # the demo model `curate train-clip` trains (assets/clip_configs)

HINT = (
    "Point clip_score.pretrained at a local checkpoint file (e.g. an open_clip .pt/.safetensors you copied "
    "here), use model 'local-dir:/path/to/dir', train the demo model with `curate train-clip`, or set "
    "clip_score.skip: true to run without the CLIP stage (the report will say it was skipped)."
)


def register_project_configs() -> None:
    """Make the project's model configs (curate-tiny-clip; curate-tiny-vit-p14, the same size with 14 px patches as
    SigLIP and Qwen-VL's ViT, for the image-plan comparison) known to open_clip."""
    import open_clip

    if TINY_MODEL not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def check_weights(model: str, pretrained: str | None) -> None:
    """Fail fast (before Ray starts) when the weights cannot be had; never falls back to random weights."""
    import open_clip

    register_project_configs()
    if model.startswith(("local-dir:", "hf-hub:")):
        if model.startswith("local-dir:") and not Path(model.removeprefix("local-dir:")).is_dir():
            raise ConfigError(f"clip_score.model {model}: directory not found. {HINT}")
        return
    if model not in open_clip.list_models():
        raise ConfigError(f"clip_score.model {model!r} is not an open_clip model; e.g. ViT-B-32, {TINY_MODEL}")
    if not pretrained:
        raise ConfigError(f"clip_score.pretrained is empty: a CLIP score needs trained weights. {HINT}")
    if looks_like_path(pretrained):
        if not Path(pretrained).is_file():
            raise ConfigError(f"CLIP checkpoint {pretrained} not found. {HINT}")
        return
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained not in tags:
        raise ConfigError(f"clip_score.pretrained {pretrained!r} is not a tag of {model}; tags: {', '.join(tags)}")
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    try:
        open_clip.download_pretrained(cfg)  # a cache hit returns at once; offline misses raise
    except Exception as err:  # noqa: BLE001 - any failure here means "weights not available"
        raise ConfigError(
            f"CLIP weights {model}/{pretrained} are not available offline ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}). {HINT}"
        ) from None


def check_weights_in_child(model: str, pretrained: str | None) -> dict[str, Any]:
    """`check_weights` in a fresh interpreter, for drivers that never load the model themselves; returns the
    model's image preprocessing (`preprocess_config`), which the CPU pixel stage needs without the model.

    Why: importing open_clip imports torch (a CUDA build here): ~0.9 GiB of RSS that a Python process never
    gives back. The `curate filter` driver held it through the whole run beside the CLIP worker's own copy,
    and issue 8's 4 GiB bound failed in CI. Costs one interpreter start and a model load on the CPU."""
    proc = subprocess.run(
        [sys.executable, "-m", "curate.clip.models", model, pretrained or ""],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode == CONFIG_ERROR_EXIT:
        raise ConfigError(proc.stdout.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"checking the CLIP weights failed (exit status {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def preprocess_config(clip: Any) -> dict[str, Any]:
    """open_clip's image preprocessing of a loaded model as JSON-able values (open_clip.transform.PreprocessCfg)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(clip.visual.preprocess_cfg).items()}


def load_clip(model: str, pretrained: str | None, device: str) -> tuple[Any, Any, Any]:
    """(model in eval mode, image preprocess, tokenizer) on `device`."""
    import open_clip

    check_weights(model, pretrained)
    name_or_dir = model
    clip, _, preprocess = open_clip.create_model_and_transforms(
        name_or_dir, pretrained=None if model.startswith(("local-dir:", "hf-hub:")) else pretrained, device=device
    )
    clip.eval()
    tokenizer = open_clip.get_tokenizer(name_or_dir)
    log.info("loaded CLIP %s (%s) on %s", model, pretrained, device)
    return clip, preprocess, tokenizer


def local_weight_files(model: str, pretrained: str | None) -> list[str]:
    """The local files the weights come from (for the run identity); hub/cached tags have none."""
    if model.startswith("local-dir:"):
        folder = Path(model.removeprefix("local-dir:"))
        return sorted(str(p) for p in folder.glob("*") if p.is_file())
    if pretrained and looks_like_path(pretrained):
        return [pretrained]
    return []


def looks_like_path(value: str) -> bool:
    return "/" in value or "\\" in value or value.endswith((".pt", ".pth", ".bin", ".safetensors"))


if __name__ == "__main__":  # python -m curate.clip.models MODEL PRETRAINED (see check_weights_in_child)
    try:
        check_weights(sys.argv[1], sys.argv[2] or None)
    except ConfigError as err:
        print(err)
        sys.exit(CONFIG_ERROR_EXIT)
    loaded, _, _ = load_clip(sys.argv[1], sys.argv[2] or None, "cpu")
    print(json.dumps(preprocess_config(loaded)))
