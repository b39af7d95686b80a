"""The shared shape of the training comparisons (`make train-plans`, `make train-connectors`): finished run
folders in, one list of rows out as comparison.json and a Markdown table as comparison.md."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from curate.core.atomic import write_bytes_atomic
from curate.core.errors import ConfigError
from curate.core.tables import markdown_table

Rows = list[dict[str, Any]]


def markdown(title: str, columns: Sequence[str], rows: Rows) -> str:
    return f"# {title}\n\n" + markdown_table(columns, [[row[c] for c in columns] for row in rows]) + "\n"


def compare_main(
    argv: list[str] | None, *, module: str, doc: str | None, title: str, columns: Sequence[str],
    rows_of: Callable[[list[Path]], Rows],
) -> int:  # fmt: skip
    """`python -m <module> RUN... --out DIR`: rows_of(runs) written as comparison.json + comparison.md; a run
    that is not a finished one of the kind rows_of expects is an error (exit 2)."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc)
    parser.add_argument("runs", nargs="+", type=Path, help="finished curate train run folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for comparison.json and comparison.md")
    args = parser.parse_args(argv)
    try:
        rows = rows_of(args.runs)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = markdown(title, columns, rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out / "comparison.json", json.dumps(rows, indent=2).encode())
    write_bytes_atomic(args.out / "comparison.md", table.encode())
    print(table, end="")
    print(f"-> {args.out / 'comparison.json'}")
    return 0
