"""`curate inspect PATH...` (contact sheets) and `curate report PATH` (figures + one page)."""

from __future__ import annotations

import argparse
from pathlib import Path

from curate.core.errors import ConfigError
from curate.core.storage import local_path

HELP = "contact sheet of samples (ledger, shard, build or mixture), boxes drawn"
REPORT_HELP = "report plots of a filter run, task build or mixture (PNG + one HTML page)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from curate.format.image_plan import PLANS

    p.add_argument("paths", nargs="+", help="filter run / build / mix output dirs, .tar shards or .parquet files")
    p.add_argument("--task", help="only samples of this task (caption, vqa, grounding, ref_grounding, ocr, ...)")
    p.add_argument(
        "--status",
        help="ledger rows only: kept, rejected, or a reason (clip_score, download, ...); duplicate or contaminated "
        "shows each removed row beside the row (or reference image) kept in its place, with the distance",
    )
    p.add_argument("--plan", choices=PLANS, help="draw the image plan's tile grid and tokens")
    p.add_argument("--n", type=int, default=16, help="samples to show (default 16)")
    p.add_argument("--seed", type=int, help="draw the samples at random with this seed (default: the first n)")
    p.add_argument("--out", default="preview.png", help="preview.png (contact sheet) or preview.html (default PNG)")


def main(args: argparse.Namespace) -> int:
    from curate.inspect.api import preview

    out = Path(args.out)
    if out.suffix not in (".png", ".html"):
        raise ConfigError(f"--out {out} must end in .png (contact sheet) or .html (self-contained page)")
    paths = [local_path(p) for p in args.paths]
    shown, drawn = preview(paths, out, plan=args.plan, task=args.task, status=args.status, n=args.n, seed=args.seed)
    print(f"{shown} samples ({len(drawn)} boxes/quads drawn) -> {out}")
    return 0 if shown else 1


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="output dir of curate filter, build or mix")
    p.add_argument("--out", help="HTML file to write (default PATH/report.html); PNGs go beside it")


def report(args: argparse.Namespace) -> int:
    from curate.inspect.api import write_report

    path = local_path(args.path)
    out = Path(args.out) if args.out else path / "report.html"
    pngs = write_report(path, out)
    print(f"report of {path} -> {out} ({len(pngs)} figures, also as {out.stem}_<figure>.png)")
    return 0
