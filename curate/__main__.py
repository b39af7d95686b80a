"""`curate` command line: a table of commands. Each is a module of curate.commands with its own arguments and
`main`; nothing heavy is imported until a command runs."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from curate.core.errors import ConfigError, FilterBugError
from curate.core.log import setup_logging

# name -> (module, help attribute, arguments function, run function)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "filter": ("curate.commands.filter.cli", "HELP", "add_arguments", "main"),
    "build": ("curate.commands.build.cli", "HELP", "add_arguments", "main"),
    "mix": ("curate.commands.mix.cli", "HELP", "add_arguments", "main"),
    "train": ("curate.commands.train.cli", "HELP", "add_arguments", "main"),
    "validate": ("curate.commands.validate.cli", "HELP", "add_arguments", "main"),
    "inspect": ("curate.commands.inspect.cli", "HELP", "add_arguments", "main"),
    "report": ("curate.commands.inspect.cli", "REPORT_HELP", "add_report_arguments", "report"),
    "tiles": ("curate.commands.tiles.cli", "HELP", "add_arguments", "main"),
    "export": ("curate.commands.export.cli", "HELP", "add_arguments", "main"),
    "bench": ("curate.commands.bench.cli", "HELP", "add_arguments", "main"),
    "demo-data": ("curate.commands.demo.cli", "DATA_HELP", "add_data_arguments", "data"),
    "train-clip": ("curate.commands.demo.cli", "CLIP_HELP", "add_clip_arguments", "clip"),
}


def _offline_defaults() -> None:
    # Weights never come from a hub at run time: fail in seconds instead of retrying for ~46 s (DEVELOPERS.md).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # img2dataset's albumentations phones home otherwise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description="Vision-language training data engine (Qwen-VL).")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print what Ray and img2dataset print (default: into the run folder's logs/<command>.log)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_name, arguments, run) in COMMANDS.items():
        cli = importlib.import_module(module)
        p = sub.add_parser(name, help=getattr(cli, help_name))
        getattr(cli, arguments)(p)
        p.set_defaults(func=getattr(cli, run))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, verbose=args.verbose)
    _offline_defaults()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as err:
        print(f"curate: error: {err}", file=sys.stderr)
        return 2
    except FilterBugError as err:  # a bug, not bad data: exit 1 with the filter and the sample key
        print(f"curate: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
