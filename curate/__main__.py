"""`curate` command line: argument parsing only; each subcommand calls one library function."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from curate.errors import ConfigError, FilterBugError
from curate.log import setup_logging

log = logging.getLogger("curate")


def _offline_defaults() -> None:
    # Weights never come from a hub at run time: fail in seconds instead of retrying for ~46 s (DEVELOPERS.md).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # img2dataset's albumentations phones home otherwise


def _overrides(args: argparse.Namespace) -> list[str]:
    """--set values plus the flags that are shorthands for config keys (--out, --address)."""
    overrides = list(args.set or [])
    if args.out:
        overrides.append(f"output.dir={args.out}")
    if getattr(args, "address", None):
        overrides.append(f"ray.address={args.address}")
    return overrides


def cmd_filter(args: argparse.Namespace) -> int:
    from curate import config, pipeline, stats

    cfg = config.load(args.config, _overrides(args))
    result = pipeline.run_filter(cfg, overwrite=args.overwrite)
    print(stats.summary_table(result, cfg.out_dir))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from curate import build, stage2_config

    cfg = stage2_config.load_build(args.config, _overrides(args))
    print(build.summary_table(build.run_build(cfg, overwrite=args.overwrite), cfg.out_dir))
    return 0


def cmd_ocr(args: argparse.Namespace) -> int:
    from curate import stage2_config
    from curate.ocr.run import run_ocr

    cfg = stage2_config.load_ocr(args.config, _overrides(args))
    stats = run_ocr(cfg, overwrite=args.overwrite)
    print(
        f"curate ocr {cfg.name} -> {cfg.out_dir}: {stats['documents']} documents ({stats['languages']}), "
        f"{stats['samples']} samples in {stats['shards']} shards, {stats['elapsed_s']:.1f} s, "
        f"{stats['documents_per_s_per_core']:.1f} documents/s/core on {stats['workers']} workers"
    )
    return 0


def cmd_mix(args: argparse.Namespace) -> int:
    from curate import stage2_config
    from curate.mix.run import mixture_table, run_mix

    cfg = stage2_config.load_mix(args.config, _overrides(args))
    print(mixture_table(run_mix(cfg, overwrite=args.overwrite)))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from curate.train.config import load_train
    from curate.train.loop import main as train

    cfg = load_train(args.config, _overrides(args))
    summary = train(cfg, overwrite=args.overwrite, stop_after=args.stop_after)
    if summary["finished"]:
        print(
            f"curate train {cfg.name} -> {cfg.out_dir}: {summary['steps']} steps, loss {summary['first_loss']:.3f} "
            f"at step 0 -> {summary['final_loss']:.3f} (mean of the last 10; {summary['loss_reduction']:.1%} lower), "
            f"{summary['tokens_per_s']:.0f} tokens/s; eval report {cfg.out_dir / 'eval_report.md'}"
        )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from curate.inspect.api import preview

    out = Path(args.out)
    if out.suffix not in (".png", ".html"):
        raise ConfigError(f"--out {out} must end in .png (contact sheet) or .html (self-contained page)")
    shown, drawn = preview([Path(p) for p in args.paths], out, task=args.task, status=args.status, n=args.n,
                           seed=args.seed)  # fmt: skip
    print(f"{shown} samples ({len(drawn)} boxes/quads drawn) -> {out}")
    return 0 if shown else 1


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from curate.inspect.api import write_report

    path = Path(args.path)
    out = Path(args.out) if args.out else path / "report.html"
    pngs = write_report(path, out)
    print(f"report of {path} -> {out} ({len(pngs)} figures, also as {out.stem}_<figure>.png)")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from curate.format.validate import validate_paths
    from curate.mix.validate import is_mix_output, validate_mix

    checked, bad = 0, {}
    for path in map(Path, args.paths):
        if not path.exists():
            raise ConfigError(f"{path} not found")
        n, problems = validate_mix(path) if is_mix_output(path) else validate_paths([path])
        checked += n
        bad |= problems
    for key, errors in sorted(bad.items()):
        print(f"{key}: {'; '.join(errors)}")
    print(f"{checked} samples checked, {len(bad)} invalid")
    return 1 if bad or not checked else 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from curate.demo.make import make_demo

    path = make_demo(args.out, rows=args.rows, seed=args.seed)
    print(f"demo input written to {path}")
    return 0


def cmd_train_clip(args: argparse.Namespace) -> int:
    from curate.clip.train import train_tiny_clip

    report = train_tiny_clip(args.pairs, args.out, steps=args.steps, seed=args.seed)
    print(
        f"tiny CLIP saved to {args.out}: matched mean {report['matched_mean']:.3f}, shuffled mean "
        f"{report['shuffled_mean']:.3f}, AUC {report['auc']:.3f} on held-out pairs"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from curate.bench.report import table
    from curate.bench.settings import load_bench
    from curate.bench.suite import run_bench

    overrides = list(args.set or []) + ([f"out={args.out}"] if args.out else [])
    if args.parts:
        overrides.append(f"parts=[{args.parts}]")
    figures, saved = run_bench(load_bench(args.config, overrides))
    print(table(figures))
    print(f"saved to {saved}")
    return 0


def _run_command(
    sub: Any, name: str, help_text: str, *, example: str, func: Any, overwrite_help: str
) -> argparse.ArgumentParser:
    """A subcommand that runs a YAML config: CONFIG, --set (repeatable), --out, --overwrite."""
    p = sub.add_parser(name, help=help_text)
    p.add_argument("config", help=f"YAML config, e.g. {example}")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. filters.clip_score.min_score=0.3 (repeatable)",
    )
    p.add_argument("--out", help="output dir (default out/<name>)")
    p.add_argument("--overwrite", action="store_true", help=overwrite_help)
    if name != "train":
        p.add_argument("--address", help="Ray cluster address (default: local Ray, or $RAY_ADDRESS)")
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description="Vision-language training data engine (Qwen-VL).")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = _run_command(
        sub,
        "filter",
        "stage-1 filtering: ingest, filter, write ledger + shards + stats",
        example="pipelines/filter_demo.yaml",
        func=cmd_filter,
        overwrite_help="delete an existing output dir instead of resuming",
    )
    _run_command(
        sub,
        "build",
        "stage-2 task building: sources -> the seven Qwen-VL task formats -> shards",
        example="pipelines/tasks_shared.yaml",
        func=cmd_build,
        overwrite_help="delete an existing output dir instead of resuming",
    )
    _run_command(
        sub,
        "ocr",
        "render synthetic OCR documents (en + zh) with line quads -> ocr task shards",
        example="pipelines/ocr_synth.yaml",
        func=cmd_ocr,
        overwrite_help="delete an existing output dir instead of resuming",
    )
    _run_command(
        sub,
        "mix",
        "stage-2 task mixture: weighted sample, packed sequences, SFT export",
        example="pipelines/stage2_mix.yaml",
        func=cmd_mix,
        overwrite_help="delete an existing output dir instead of resuming",
    )

    p = _run_command(
        sub,
        "train",
        "train the reference Qwen-VL model on curate shards (stage 1, 2 or 3; resumes from the last checkpoint)",
        example="pipelines/train_demo.yaml",
        func=cmd_train,
        overwrite_help="delete an existing run in the output dir instead of resuming it",
    )
    p.add_argument("--stop-after", type=int, metavar="STEP", help="stop (with a checkpoint) after this step")

    p = sub.add_parser("bench", help="throughput and memory beside the raw model and peer tools, as ratios")
    p.add_argument(
        "config", nargs="?", default="pipelines/bench.yaml", help="bench YAML (default pipelines/bench.yaml)"
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a bench value, e.g. metadata_rows=10000"
    )
    p.add_argument("--parts", help="comma-separated subset of P1,P2,P3,P4,P5,P6,peer (default: the config's)")
    p.add_argument("--out", help="output dir (default out/bench)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("inspect", help="contact sheet of samples (ledger, shard, build or mixture), boxes drawn")
    p.add_argument("paths", nargs="+", help="filter run / build / mix output dirs, .tar shards or .parquet files")
    p.add_argument("--task", help="only samples of this task (caption, vqa, grounding, ref_grounding, ocr, ...)")
    p.add_argument("--status", help="ledger rows only: kept, rejected, or a reason (clip_score, download, ...)")
    p.add_argument("--n", type=int, default=16, help="samples to show (default 16)")
    p.add_argument("--seed", type=int, help="draw the samples at random with this seed (default: the first n)")
    p.add_argument("--out", default="preview.png", help="preview.png (contact sheet) or preview.html (default PNG)")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("report", help="report plots of a filter run, task build or mixture (PNG + one HTML page)")
    p.add_argument("path", help="output dir of curate filter, build, ocr or mix")
    p.add_argument("--out", help="HTML file to write (default PATH/report.html); PNGs go beside it")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "validate",
        help="check task samples (shards, parquet, folders) against the format rules; mix outputs also: images "
        "resolve, boundaries re-count, no unintended duplicates, sft.json",
    )
    p.add_argument("paths", nargs="+", help=".tar shards, .parquet parts or folders holding them")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("demo-data", help="generate the embedded demo input (images + URL list)")
    p.add_argument("--out", default="out/demo_input", help="folder to write (default out/demo_input)")
    p.add_argument("--rows", type=int, default=600, help="rows in the demo URL list (default 600)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("train-clip", help="train the tiny demo CLIP on matched image-caption pairs (CPU, seconds)")
    p.add_argument("--pairs", default="out/demo_input/clip_train.parquet", help="parquet with image_path, caption")
    p.add_argument("--out", default="models/curate-tiny-clip.pt", help="checkpoint to write")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train_clip)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    _offline_defaults()
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"curate: error: {err}", file=sys.stderr)
        return 2
    except FilterBugError as err:  # a bug, not bad data: exit 1 with the filter and the sample key
        print(f"curate: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
