"""The dataset card (README.md) of a Hugging Face export (issue 21): YAML front matter that `datasets` and the Hub
read (data files, features, split sizes, licence), then provenance, every filter with its settings, the funnel,
task shares, per-source licences, the schema and the counts measured while exporting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from curate import __version__
from curate.core.run_folder import read_run
from curate.core.tables import markdown_table

# (column, Hugging Face feature dtype, what it holds)
SCHEMA = (
    ("key", "string", "unique sample key: `<source>-<id>[-<n>]`"),
    ("task", "string", "one of Qwen-VL's seven task formats"),
    ("source", "string", "the build source that produced the sample"),
    ("prefix", "string", "Qwen-VL text the model is given (`<img>path</img>` + prompt); no loss on it"),
    ("target", "string", "Qwen-VL text the model learns, ending in `<|endoftext|>`"),
    ("images", "`list<string>`", "image paths as written inside `<img>...</img>`"),
    ("image_sizes", "`list<list<int32>>`", "[width, height] of each image as recorded by the source"),
    ("image", "image", "the image (bytes; null for text-only samples)"),
)
# The export's parquet schema; the card's `features` are derived from it (hf_features)
HF_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("task", pa.string()),
        ("source", pa.string()),
        ("prefix", pa.string()),
        ("target", pa.string()),
        ("images", pa.list_(pa.string())),
        ("image_sizes", pa.list_(pa.list_(pa.int32()))),
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),  # the Hugging Face Image feature
    ]
)


def _feature(kind: pa.DataType) -> Any:
    if pa.types.is_list(kind):
        return {"sequence": _feature(kind.value_type)}
    if pa.types.is_struct(kind):
        return "image"
    return str(kind)


def hf_features(schema: pa.Schema = HF_SCHEMA) -> list[dict[str, Any]]:
    """The `dataset_info.features` of the card for the export's parquet schema."""
    out = []
    for field in schema:
        feature = _feature(field.type)
        out.append({"name": field.name, **(feature if isinstance(feature, dict) else {"dtype": feature})})
    return out


def _sources(resolved: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, spec) for entry in resolved.get("sources", []) for kind, spec in entry.items()]


def card(src: Path, counts: dict[str, Any], data_glob: str) -> str:
    """README.md text for an export of the build output `src` whose measured counts are `counts`
    ({samples, images, bytes, tasks: {task: n}, sources: {source: n}})."""
    run = read_run(src) or {}
    resolved = run.get("resolved_config") or {}
    licences = {spec.get("label") or kind: spec.get("license") or "" for kind, spec in _sources(resolved)}
    declared = sorted({v for v in licences.values() if v})
    front = {
        "license": declared[0].lower() if len(declared) == 1 else "other" if declared else "unknown",
        "task_categories": ["image-to-text", "visual-question-answering"],
        "tags": ["curate", "qwen-vl", "vision-language"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_glob}]}],
        "dataset_info": {
            "features": hf_features(),
            "splits": [{"name": "train", "num_examples": counts["samples"]}],
            "dataset_size": counts["bytes"],
        },
    }
    parts = [
        "---\n" + yaml.safe_dump(front, sort_keys=False) + "---",
        f"# {resolved.get('name') or src.name}",
        f"Vision-language training samples in Qwen-VL's task formats, exported by curate {__version__} "
        f"(`curate export {src} --format hf`) from a `curate {run.get('command', 'build')}` output. "
        f"{counts['samples']:,} samples, {counts['images']:,} images.",
        "## Provenance",
        _provenance(src, run, resolved),
        "## Filters",
        *_filters(resolved),
        "## Tasks",
        markdown_table(
            ["task", "samples", "share"],
            [[t, f"{n:,}", f"{n / max(1, counts['samples']):.1%}"] for t, n in sorted(counts["tasks"].items())],
        ),
        "## Sources and licences",
        markdown_table(
            ["source", "samples", "licence"],
            [[s, f"{n:,}", licences.get(s) or "not declared"] for s, n in sorted(counts["sources"].items())],
        ),
        "## Schema",
        markdown_table(["column", "type", "holds"], [list(row) for row in SCHEMA]),
        "## Counts",
        "Measured while exporting: "
        + ", ".join(f"{k} {counts[k]:,}" for k in ("samples", "images", "bytes"))
        + " (parquet bytes on disk).",
        "## Loading",
        '```python\nfrom datasets import load_dataset\nds = load_dataset("path/to/this/folder", split="train")\n```',
    ]
    return "\n\n".join(parts) + "\n"


def _provenance(src: Path, run: dict[str, Any], resolved: dict[str, Any]) -> str:
    rows = [
        ["command", f"curate {run.get('command', '?')} (curate {run.get('curate_version', '?')})"],
        ["started", run.get("started", "?")],
        ["config", f"`{resolved.get('name', '?')}`, fingerprint {run.get('config', '?')}"],
        ["inputs fingerprint", run.get("input", "?")],
    ]
    for kind, spec in _sources(resolved):
        settings = {
            k: v for k, v in spec.items() if k not in ("label", "require_local_images") and v not in ("", None)
        }
        rows.append([f"source `{spec.get('label') or kind}` ({kind})", f"`{json.dumps(settings, sort_keys=True)}`"])
    return markdown_table(["what", "value"], rows)


def _filters(resolved: dict[str, Any]) -> list[str]:
    """Per curated source: the filter run's filters with their settings, and its funnel."""
    out: list[str] = []
    for kind, spec in _sources(resolved):
        if kind != "curated":
            continue
        run_dir = Path(spec["run"])
        filtered = read_run(run_dir) or {}
        filters = (filtered.get("resolved_config") or {}).get("filters", [])
        rows = []
        for entry in filters:
            for name, settings in entry.items():
                shown = {
                    k: v
                    for k, v in settings.items()
                    if k not in ("device", "concurrency", "batch_size", "threads", "decode", "save_embeddings")
                }
                rows.append([name, "skipped" if shown.pop("skip", False) else "on", f"`{json.dumps(shown)}`"])
        out.append(f"Filter run `{run_dir}` (source `{spec.get('label') or kind}`):")
        out.append(
            markdown_table(["filter", "state", "settings (thresholds)"], rows) if rows else "no filters recorded"
        )
        stats_path = run_dir / "stats.json"
        if stats_path.exists():
            stats = json.loads(stats_path.read_text())
            total = max(1, stats["input_rows"])
            funnel = [["input rows", f"{stats['input_rows']:,}", "100.0%"]]
            funnel += [
                [f"rejected: {reason}", f"{n:,}", f"{n / total:.1%}"]
                for reason, n in stats.get("rejected", {}).items()
            ]
            funnel.append(["kept", f"{stats['kept_rows']:,}", f"{stats['kept_rows'] / total:.1%}"])
            out.append("Funnel:")
            out.append(markdown_table(["rows", "count", "share of input"], funnel))
    return out or ["No curated (filtered) source: the samples come from annotated or synthetic sources as listed."]
