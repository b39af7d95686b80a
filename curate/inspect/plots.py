"""Report figures for a filter run (funnel, score histograms, languages), a task build (samples and skips per
task) and a mixture (task shares, token lengths), as PNG bytes keyed by figure name."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402

from curate.core import storage
from curate.core.errors import ConfigError  # noqa: E402
from curate.core.run_folder import read_run  # noqa: E402
from curate.core.shards import output_files, read_parquet  # noqa: E402
from curate.ledger.parts import read_ledger  # noqa: E402

KEPT, REJECTED = "#4C72B0", "#C44E52"


def _png(draw: Callable[..., None], size: tuple[float, float] = (7, 4), panels: int = 1) -> bytes:
    """PNG bytes of a figure of `panels` axes side by side, drawn by draw(*axes)."""
    fig, axes = plt.subplots(1, panels, figsize=size, squeeze=False)
    try:
        draw(*axes[0])
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=100)
        return out.getvalue()
    finally:
        plt.close(fig)


def kind_of(path: Path) -> str:
    """'filter', 'build' or 'mix': the command its run.json names."""
    run = read_run(path)
    if run is None or run.get("command") not in ("filter", "build", "mix"):
        raise ConfigError(f"{path} is not the output dir of curate filter, build or mix (no run.json)")
    if not (path / "stats.json").exists():
        raise ConfigError(f"{path} holds an unfinished run (no stats.json): run the command to the end first")
    return run["command"]


def figures(path: Path) -> dict[str, bytes]:
    kinds = {"filter": filter_figures, "build": build_figures, "mix": mix_figures}
    return kinds[kind_of(path)](path)


def filter_figures(run: Path) -> dict[str, bytes]:
    """Funnel by reason, CLIP score / aspect ratio / size histograms (kept vs rejected), languages."""
    stats = json.loads((run / "stats.json").read_text())
    ledger = read_ledger(run).to_pandas()
    kept = ledger["reject_reason"].isna()
    out = {"funnel": _png(lambda ax: _funnel(ax, stats), (8, 0.35 * len(stats["funnel"]) + 2))}
    out["rejects"] = _png(lambda ax: _bars(ax, stats["rejected"], REJECTED, "rejected rows by reason"))
    for column, title, log in (
        ("clip_score", "CLIP score", False),
        ("aspect_ratio", "aspect ratio max(w/h, h/w)", True),
        ("min_side", "shorter image side (pixels)", True),
    ):
        values = ledger[["width", "height"]].min(axis=1) if column == "min_side" else ledger[column]
        out[column] = _png(lambda ax, v=values, t=title, lg=log: _histogram(ax, v, kept, t, lg))
    languages = ledger["lang"].fillna("(none)").value_counts().head(15).to_dict()
    out["languages"] = _png(lambda ax: _bars(ax, languages, KEPT, "language (fastText lid.176)"))
    return out


def funnel_figure(stats: dict[str, Any]) -> bytes:
    """funnel.png of a filter run: rows remaining after each stage beside the rejects by reason."""

    def draw(left: Any, right: Any) -> None:
        _funnel(left, stats)
        _bars(right, stats["rejected"], REJECTED, "rejected rows by reason")

    return _png(draw, (12, 0.5 * len(stats["funnel"]) + 2.5), panels=2)


def _funnel(ax: Any, stats: dict[str, Any]) -> None:
    funnel = stats["funnel"]
    labels = [f["stage"] + (" (skipped)" if f.get("skipped") else "") for f in funnel][::-1]
    remaining = [f["remaining"] for f in funnel][::-1]
    ax.barh(labels, remaining, color=KEPT)
    for y, value in enumerate(remaining):
        ax.text(value, y, f" {value}", va="center", fontsize=8)
    ax.set_title(f"rows remaining after each stage ({stats['kept_rows']} of {stats['input_rows']} kept)")


def _bars(ax: Any, counts: dict[str, float], colour: str, title: str) -> None:
    items = list(counts.items())[::-1]
    ax.barh([str(k) for k, _ in items], [v for _, v in items], color=colour)
    ax.set_title(title)


def _histogram(ax: Any, values: Any, kept: Any, title: str, log: bool) -> None:
    data = np.asarray(values, dtype="float64")
    mask = np.isfinite(data) & (data > 0 if log else True)
    if not mask.any():
        ax.text(0.5, 0.5, "no values (stage skipped or never reached)", ha="center", transform=ax.transAxes)
    else:
        edges = np.geomspace(data[mask].min(), data[mask].max() * 1.001, 30) if log else 30
        keep = np.asarray(kept)
        ax.hist([data[mask & keep], data[mask & ~keep]], bins=edges, stacked=True, color=[KEPT, REJECTED])
        ax.legend(["kept", "rejected"])
        if log:
            ax.set_xscale("log")
    ax.set_title(title)


def build_figures(build: Path) -> dict[str, bytes]:
    """Samples per task and the reasons records were skipped; for OCR, text lines per sample and the synthetic
    documents' languages."""
    stats = json.loads((build / "stats.json").read_text())
    tasks = stats["tasks"]
    out = {"samples": _png(lambda ax: _bars(ax, {t: v["samples"] for t, v in tasks.items()}, KEPT, "samples"))}
    skips = {f"{t}: {r}": c for t, v in tasks.items() for r, c in v["skipped"].items()}
    if skips:
        out["skipped"] = _png(lambda ax: _bars(ax, skips, REJECTED, "skipped records by task and reason"))
    languages = {
        f"{s}: {lang}": n for s, t in stats.get("tags", {}).items() for lang, n in t.get("language", {}).items()
    }
    if languages:
        out["languages"] = _png(lambda ax: _bars(ax, languages, KEPT, "synthetic documents per language"))
    if (build / "ocr").is_dir():
        parts = storage.glob(build / "ocr" / "parquet", "part-*.parquet")
        lines = [row["target"].count("<quad>") for part in parts for row in read_parquet(part, ["target"])]
        out["lines"] = _png(
            lambda ax: (ax.hist(lines, bins=30, color=KEPT), ax.set_title("text lines per OCR sample"))
        )
    return out


def mix_figures(mix: Path) -> dict[str, bytes]:
    """Realized task shares against their targets, and token lengths of samples and packed sequences."""
    stats = json.loads((mix / "stats.json").read_text())
    tasks = stats["tasks"]
    out = {"shares": _png(lambda ax: _shares(ax, tasks))}
    rows = [r for part in output_files(mix, "parquet") for r in _lengths(part)]
    out["sample_tokens"] = _png(lambda ax: _per_task(ax, rows, "sample", "sample length (tokens)"))
    out["sequence_tokens"] = _png(
        lambda ax: _per_task(ax, rows, "sequence", f"packed sequence length (tokens, capacity {stats['seq_len']})")
    )
    return out


def _lengths(part: Path) -> list[tuple[str, str, int]]:
    table = list(read_parquet(part, ["task", "tokens", "boundaries"]))
    rows = [(r["task"], "sequence", r["tokens"]) for r in table]
    return rows + [(r["task"], "sample", length) for r in table for _, length in r["boundaries"]]


def _shares(ax: Any, tasks: dict[str, dict]) -> None:
    names = list(tasks)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [tasks[t]["share"] for t in names], 0.4, label="realized", color=KEPT)
    ax.bar(x + 0.2, [tasks[t]["target_share"] for t in names], 0.4, label="target", color="#999999")
    ax.set_xticks(x, names)
    ax.legend()
    ax.set_title("task shares of the mixture (samples)")


def _per_task(ax: Any, rows: list[tuple[str, str, int]], kind: str, title: str) -> None:
    tasks = sorted({t for t, k, _ in rows if k == kind})
    ax.hist([[n for t, k, n in rows if k == kind and t == task] for task in tasks], bins=30, stacked=True)
    ax.legend(tasks)
    ax.set_title(title)


def summary_text(path: Path) -> str:
    """The end-of-run table the command printed (filter, build or mix)."""
    stats = json.loads((path / "stats.json").read_text())
    kind = kind_of(path)
    if kind == "filter":
        from curate.ledger.summary import summary_table

        return summary_table(stats, path)
    if kind == "build":
        from curate.tasks.summary import build_table

        return build_table(stats, path)
    from curate.mixture.table import mixture_table

    return mixture_table(stats)


def report_html(path: Path) -> tuple[str, dict[str, bytes]]:
    """One self-contained page (figures inline) for the output dir, and the figures as PNG bytes."""
    import html

    from curate.inspect.sheet import data_uri, page

    pngs = figures(path)
    body = f'<figure class="wide"><pre>{html.escape(summary_text(path))}</pre></figure>'
    body += "".join(
        f'<figure class="wide"><img alt="{name}" src="{data_uri(png)}"><figcaption>{name}</figcaption></figure>'
        for name, png in pngs.items()
    )
    return page(f"curate report: {path.name} ({kind_of(path)})", body), pngs
