"""The table `curate filter` prints and its report page shows: kept, rejected by reason, throughput."""

from __future__ import annotations

from pathlib import Path


def summary_table(stats: dict, out: Path) -> str:
    """Human-readable end-of-run summary: kept / rejected by reason, throughput."""
    n = stats["input_rows"] or 1
    lines = [
        f"curate filter {stats['name']} -> {out}",
        f"  {'input rows':<34}{stats['input_rows']:>8}",
        f"  {'kept':<34}{stats['kept_rows']:>8}  {100 * stats['kept_rows'] / n:5.1f}%",
    ]
    lines.append(f"  {'rejected':<34}{stats['input_rows'] - stats['kept_rows']:>8}")
    for reason, count in stats["rejected"].items():
        lines.append(f"    {reason:<32}{count:>8}  {100 * count / n:5.1f}%")
    for name, why in stats["skipped_filters"].items():
        lines.append(f"  SKIPPED {name}: {why}")
    if stats["rows_processed"]:
        lines.append(
            f"  {stats['rows_processed']} rows processed in this invocation, {stats['elapsed_s']:.1f} s "
            f"({stats['rows_per_s']:.1f} rows/s)"
        )
    else:
        lines.append("  every chunk was already done: nothing processed in this invocation (resumed run)")
    return "\n".join(lines)
