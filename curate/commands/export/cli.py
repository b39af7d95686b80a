"""`curate export SRC --format hf|llava|qwen2vl|deepseek_vl2 --out DIR`."""

from __future__ import annotations

import argparse

from curate.core.storage import is_url, local_path, mirror, output_path, release_mirror, sync_mirror

EXPORT_BULK = frozenset({"data", "images"})  # an export's parquet files and images: uploaded, then dropped locally
HELP = (
    "task samples as a Hugging Face dataset with a dataset card (hf), or as the conversation JSON of LLaVA, "
    "Qwen2-VL or DeepSeek-VL2 with its images"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="a curate build output (or any folder of task shards)")
    formats = ("hf", "llava", "qwen2vl", "deepseek_vl2")
    p.add_argument("--format", required=True, choices=formats, help="hf: parquet + README.md card; or a chat JSON")
    p.add_argument("--out", required=True, help="the export folder")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty export folder")


def main(args: argparse.Namespace) -> int:
    from curate.commands.export.run import run_export

    out = output_path(args.out)
    if is_url(args.out):  # written in a working folder, each file uploaded as it is complete
        mirror(args.out, bulk=EXPORT_BULK)
    counts = run_export(local_path(args.src), args.format, out, overwrite=args.overwrite)
    if sync_mirror(out):
        release_mirror(out)
    print(f"curate export {args.format}: {counts['samples']:,} samples, {counts['images']:,} images -> {args.out}")
    for task, n in sorted(counts["tasks"].items()):
        print(f"  {task:<18}{n:>9,}")
    return 0
