"""`curate filter CONFIG`: stage-1 filtering."""

from __future__ import annotations

import argparse

from curate.commands.cli import config_arguments, overrides
from curate.core.storage import shown

HELP = "stage-1 filtering: ingest, filter, write ledger + shards + stats"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arguments(p, "pipelines/filter_demo.yaml")


def main(args: argparse.Namespace) -> int:
    from curate.commands.filter.config import load
    from curate.commands.filter.run import run_filter
    from curate.ledger.summary import summary_table

    cfg = load(args.config, overrides(args))
    print(summary_table(run_filter(cfg, overwrite=args.overwrite), shown(cfg.out_dir)))
    return 0
