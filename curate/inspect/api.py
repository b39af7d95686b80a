"""The inspection entry points the CLI and the notebooks call: previews and reports written to files."""

from __future__ import annotations

from pathlib import Path

from curate.core.atomic import write_bytes_atomic
from curate.core.images import TarReader
from curate.inspect import plots
from curate.inspect.sheet import Drawn, contact_sheet, html_sheet, png_bytes
from curate.inspect.views import View, collect, collect_pairs, is_pair_status, sample


def views(paths: list[Path], *, task: str | None = None, status: str | None = None, n: int = 16,
          seed: int | None = None) -> list[View]:  # fmt: skip
    """Up to n samples from the outputs at `paths` (the first n, or a seeded random draw), image bytes loaded.
    --status duplicate / contaminated: n // 2 pairs, each duplicate followed by the row kept in its place."""
    if is_pair_status(status):
        pairs = [(a, b) for path in paths for a, b in collect_pairs(path, status)]  # type: ignore[arg-type]
        chosen = sample(iter(range(len(pairs))), max(1, n // 2), seed, load=False)
        tars = TarReader()
        return [v.load(tars) for i in chosen for v in pairs[i]]
    return sample((v for path in paths for v in collect(path, task=task, status=status)), n, seed)


def task_names(paths: list[Path]) -> list[str]:
    """The tasks the outputs at `paths` hold ('pairs' for filter runs)."""
    return sorted({view.task for path in paths for view in collect(path)})


def preview(paths: list[Path], out: Path, plan: str | None = None, **selection: object) -> tuple[int, list[Drawn]]:
    """A contact sheet (.png) or page (.html) of the selected samples: (samples shown, regions drawn); with
    `plan`, each image also shows the image plan's tile grid and token count."""
    chosen = views(paths, **selection)  # type: ignore[arg-type]
    if not chosen:
        return 0, []
    if out.suffix == ".html":
        page, drawn = html_sheet(chosen, f"curate inspect: {', '.join(p.name for p in paths)}", plan)
        write_bytes_atomic(out, page.encode())
    else:
        sheet, drawn = contact_sheet(chosen, plan=plan)
        write_bytes_atomic(out, png_bytes(sheet))
    return len(chosen), drawn


def write_report(path: Path, out: Path) -> dict[str, bytes]:
    """The report page of an output dir at `out`, and each figure beside it as `<stem>_<figure>.png`."""
    page, pngs = plots.report_html(path)
    for name, png in pngs.items():
        write_bytes_atomic(out.with_name(f"{out.stem}_{name}.png"), png)
    write_bytes_atomic(out, page.encode())
    return pngs
