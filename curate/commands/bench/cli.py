"""`curate bench [CONFIG]`."""

from __future__ import annotations

import argparse

HELP = "throughput and memory beside the raw model and peer tools, as ratios"
DEFAULT = "pipelines/bench_demo.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", default=DEFAULT, help=f"bench YAML (default {DEFAULT})")
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a bench value, e.g. metadata_rows=10000"
    )
    p.add_argument("--parts", help="comma-separated subset of P1,P2,P3,P4,P5,P6,P7,peer (default: the config's)")
    p.add_argument("--out", help="output dir (default out/bench)")


def main(args: argparse.Namespace) -> int:
    from curate.commands.bench.config import load_bench
    from curate.commands.bench.report import table
    from curate.commands.bench.run import run_bench

    found = list(args.set or []) + ([f"out={args.out}"] if args.out else [])
    if args.parts:
        found.append(f"parts=[{args.parts}]")
    figures, saved = run_bench(load_bench(args.config, found))
    print(table(figures))
    print(f"saved to {saved}")
    return 0
