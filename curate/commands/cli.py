"""What every config-running command shares on the command line: CONFIG, --set, --out, --overwrite, --address."""

from __future__ import annotations

import argparse

OVERWRITE_HELP = "delete an existing output dir instead of resuming"


def config_arguments(p: argparse.ArgumentParser, example: str, *, address: bool = True) -> None:
    p.add_argument("config", help=f"YAML config, e.g. {example}")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. filters.clip_score.min_score=0.3 (repeatable)",
    )
    p.add_argument("--out", help="output dir (default out/<name>)")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    if address:
        p.add_argument("--address", help="Ray cluster address (default: local Ray, or $RAY_ADDRESS)")


def overrides(args: argparse.Namespace) -> list[str]:
    """--set values plus the flags that are shorthands for config keys (--out, --address)."""
    found = list(args.set or [])
    if args.out:
        found.append(f"output.dir={args.out}")
    if getattr(args, "address", None):
        found.append(f"ray.address={args.address}")
    return found
