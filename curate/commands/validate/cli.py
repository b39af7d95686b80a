"""`curate validate PATH...`."""

from __future__ import annotations

import argparse

from curate.core.errors import ConfigError
from curate.core.storage import local_path

HELP = (
    "check task samples (shards, parquet, folders) against the format rules; mix outputs also: images resolve, "
    "boundaries re-count, no unintended duplicates, sft.json"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help=".tar shards, .parquet parts or folders holding them")


def main(args: argparse.Namespace) -> int:
    from curate.core.run_folder import read_run
    from curate.format.validate import validate_paths
    from curate.mixture.validate import is_mix_output, validate_mix

    checked, bad = 0, {}
    for path in map(local_path, args.paths):
        if not path.exists():
            raise ConfigError(f"{path} not found")
        if (read_run(path) or {}).get("command") == "filter":
            raise ConfigError(f"{path} is a filter output (image-text pairs); validate checks task samples: "
                              "give it a build or mix output")  # fmt: skip
        n, problems = validate_mix(path) if is_mix_output(path) else validate_paths([path])
        checked += n
        bad |= problems
    for key, errors in sorted(bad.items()):
        print(f"{key}: {'; '.join(errors)}")
    print(f"{checked} samples checked, {len(bad)} invalid")
    return 1 if bad or not checked else 0
