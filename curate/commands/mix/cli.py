"""`curate mix CONFIG`: a weighted stage-2 mixture, packed, with the stage-3 SFT export."""

from __future__ import annotations

import argparse

from curate.commands.cli import config_arguments, overrides

HELP = "stage-2 task mixture: weighted sample, packed sequences, SFT export"


def add_arguments(p: argparse.ArgumentParser) -> None:
    config_arguments(p, "pipelines/mix_demo.yaml")


def main(args: argparse.Namespace) -> int:
    from curate.commands.mix.config import load_mix
    from curate.commands.mix.run import run_mix
    from curate.mixture.table import mixture_table

    print(mixture_table(run_mix(load_mix(args.config, overrides(args)), overwrite=args.overwrite)))
    return 0
