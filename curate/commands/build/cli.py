"""`curate build CONFIG`: stage-2 task building from named sources (annotated sets, filter runs, synthetic OCR)."""

from __future__ import annotations

import argparse

from curate.commands.cli import config_arguments, overrides
from curate.core.storage import shown

HELP = "stage-2 task building: sources (datasets, filter runs, synthetic OCR) -> the seven task formats -> shards"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arguments(p, "pipelines/build_shared.yaml")


def main(args: argparse.Namespace) -> int:
    from curate.commands.build.config import load_build
    from curate.commands.build.run import run_build
    from curate.tasks.summary import build_table

    cfg = load_build(args.config, overrides(args))
    print(build_table(run_build(cfg, overwrite=args.overwrite), shown(cfg.out_dir)))
    return 0
