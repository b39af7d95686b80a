"""Run the bench parts in an order that shares their work: P3's download feeds P1 and the peer comparison,
and one local Ray session serves P1, P2 and curate's side of the peer comparison."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from curate.commands.bench import report
from curate.commands.bench.config import BenchConfig
from curate.commands.bench.report import Figure

log = logging.getLogger(__name__)


def run_bench(cfg: BenchConfig) -> tuple[list[Figure], Path]:
    from curate.commands.bench.download_stage import bench_download, url_run
    from curate.core.ray_session import ray_session

    started, info, work = time.time(), report.machine(), cfg.out_dir
    work.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    json_path = work / "bench.json"

    def record(*new: Figure) -> None:
        figures.extend(new)
        report.save(json_path, figures, started, info)
        for f in new:
            ratio = f.ratio
            log.info("%s %s: %s %s%s", f.part, f.measure, "n/a" if f.value is None else f"{f.value:.4g}", f.unit,
                     "" if ratio is None else f" (ratio {ratio:.3f} vs {f.baseline_name})")  # fmt: skip

    parts = set(cfg.parts)
    needs_demo = parts & {"P1", "P2", "P3", "peer"}  # P4-P7 make their own inputs
    run_cfg = (
        url_run(cfg.filter_config, cfg.filter_overrides, cfg.download_urls, work / "download") if needs_demo else None
    )
    images = None
    if parts & {"P1", "P3", "peer"}:
        figure, images = bench_download(run_cfg, work / "download")
        if "P3" in parts:
            record(figure)
    if parts & {"P1", "P2", "peer"}:
        with ray_session(None, run_cfg.ray.num_cpus):
            import ray

            cores = int(ray.cluster_resources().get("CPU", 1))
            if "P1" in parts:
                record(*_clip_figures(cfg, run_cfg, images, work))
            if "P2" in parts:
                from curate.commands.bench.metadata import bench_metadata

                record(bench_metadata(run_cfg, cfg.metadata_rows, cores))
            if "peer" in parts:
                from curate.commands.bench.peer import curate_side

                ours = curate_side(cfg, run_cfg, images, work / "peer", cores)
        if "peer" in parts:
            from curate.commands.bench.peer import bench_peer

            record(bench_peer(cfg, ours, work / "peer"))
    _standalone_parts(cfg, parts, work, record)
    report.save(json_path, figures, started, info)
    return figures, json_path


def _standalone_parts(cfg: BenchConfig, parts: set[str], work: Path, record) -> None:  # noqa: ANN001
    """P4, P5, P6 and P7: each runs its own commands (and Ray sessions) in child processes."""
    if "P4" in parts:
        from curate.commands.bench.ocr_render import bench_ocr

        record(bench_ocr(cfg.ocr_config, cfg.ocr_documents, work))
    if "P5" in parts:
        from curate.commands.bench.memory import bench_memory

        record(
            *bench_memory(cfg.filter_config, cfg.filter_overrides, _demo_dir(cfg), cfg.memory_rows, work / "memory")
        )
    if "P6" in parts:
        from curate.commands.bench.stage2 import bench_stage2

        sizes = (min(cfg.stage2_sizes), max(cfg.stage2_sizes))
        record(*bench_stage2(work / "stage2", sizes, cfg.stage2_budget, cfg.stage2_bare_samples))
    if "P7" in parts:
        from curate.commands.bench.dedup import bench_dedup

        record(
            *bench_dedup(
                work / "dedup",
                Path(cfg.dedup_shared_data),
                per_variant=cfg.dedup_planted_per_variant,
                scale_hashes=cfg.dedup_scale_hashes,
                scale_pairs=cfg.dedup_scale_pairs,
                scale_subset=cfg.dedup_scale_subset,
                scale_radii=cfg.dedup_scale_radii,
                scale_timeout_s=cfg.dedup_scale_timeout_s,
                peer_python=cfg.peer_python,
            )
        )


def _clip_figures(cfg: BenchConfig, run_cfg, images, work: Path) -> list[Figure]:  # noqa: ANN001
    from curate.commands.bench.clip_stage import bench_clip, clip_template, devices

    template = clip_template(run_cfg.filters)
    return [
        figure
        for case in cfg.clip
        for device in devices()
        if case.device in (None, device)
        for figure in bench_clip(case, template, images, work / "models", device)
    ]


def _demo_dir(cfg: BenchConfig) -> Path:
    from curate.commands.filter.config import load as load_filter

    url_list = load_filter(cfg.filter_config, cfg.filter_overrides).input.url_list
    assert url_list is not None
    return Path(url_list.path).parent
