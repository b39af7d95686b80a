"""The filters as a Ray Data plan: each filter that loads a model in its own actor pool, runs of model-free filters
chained in one task per batch (curate filter's stages; the bench measures the same plan)."""

from __future__ import annotations

import pyarrow as pa

from curate.core.ray_session import worker_env
from curate.filters.base import Filter, FilterChain
from curate.filters.clip_pixels import IMAGE_BYTES, PIXELS
from curate.filters.clip_score import ClipScore
from curate.ledger.local_images import probe_local_images

PIXEL_ROWS = 256  # rows per pixel-stage task: its fixed cost spread over more than one model batch
PIPELINE_BLOCK_BYTES = 32 * 1024**2  # Ray Data blocks of a plan with a model stage (its default: 128 MiB)
PIPELINE_OBJECT_STORE_BYTES = 256 * 1024**2  # the plan's object-store budget (in-flight blocks)


class FilterActor:
    """Holds one filter whose model loads once per Ray actor."""

    def __init__(self, filt: Filter) -> None:
        self.filt = filt
        filt.setup()

    def __call__(self, table: pa.Table) -> pa.Table:
        """An Arrow batch in and out, converted here: Ray sizing pandas blocks of Python bytes (the pixels) cost
        more than the conversion (bench P1). The pixels (or image bytes) stop here."""
        batch = self.filt(table.to_pandas())
        return pa.Table.from_pandas(batch.drop(columns=[PIXELS, IMAGE_BYTES], errors="ignore"), preserve_index=False)


def build_dataset(raw: list[pa.Table], filters: list[Filter], local: bool, batch_rows: int = 50000):  # noqa: ANN201
    """The Ray Data plan (a ray.data.Dataset): (probe local images) -> filters in config order (cheap ones
    should come first, so CLIP sees only their survivors). Consecutive model-free filters share one task."""
    import ray

    # Process-wide settings (a run with them on the dataset's own context failed tests/test_memory_scale.py's
    # flatness bound, one with them here passed), so every plan sets all of them: one plan's limits never carry
    # over to the next plan of the same process (`curate bench` runs several).
    context = ray.data.DataContext.get_current()
    # Ray Data reserves a share of the cluster for each operator by default; on a 2-CPU machine that left the
    # model-free filter stage one task at a time (its other CPU held back), measured in `curate bench` P2. Plans
    # without a model stage turn it off.
    defaults = ray.data.DataContext()
    context.op_resource_reservation_enabled = False
    context.target_max_block_size = defaults.target_max_block_size
    context.execution_options.resource_limits = defaults.execution_options.resource_limits
    if any(f.uses_model for f in filters):
        # Pixel tasks outrun a CPU model actor. A fixed object-store budget and smaller blocks bound the queue of
        # their output (uint8 pixels, 12 KB-150 KB a row) whatever the input size, and only with the per-operator
        # reservation on does Ray Data hold the pixel stage to that budget: without it, the queue grew through the
        # last third of a 100k-row demo run. Object-store pages a process has touched stay in its RSS (a Ray
        # behaviour: ray-project/ray#53261), so that queue counted twice, in the pixel worker and in the actor,
        # against issue 8's 4 GiB bound (tests/test_memory_scale.py).
        context.target_max_block_size = PIPELINE_BLOCK_BYTES
        context.op_resource_reservation_enabled = True
        context.execution_options.resource_limits = ray.data.ExecutionResources(
            object_store_memory=PIPELINE_OBJECT_STORE_BYTES
        )
    ds = ray.data.from_arrow(raw)
    if local:
        ds = ds.map_batches(probe_local_images, batch_format="pandas", batch_size=64)
    gpus = ray.cluster_resources().get("GPU", 0)
    for stage in filter_stages(filters):
        f = stage[0]
        if not f.uses_model:
            ds = ds.map_batches(FilterChain(stage).on_arrow, batch_format="pyarrow", batch_size=batch_rows)
            continue
        pixels = f.pixel_stage() if isinstance(f, ClipScore) else None
        if pixels is not None:  # decode + resize in tasks over all cores; the actor gets ready pixels (issue 20)
            ds = ds.map_batches(pixels.on_arrow, batch_format="pyarrow", batch_size=max(f.batch_size, PIXEL_ROWS))
        ds = ds.map_batches(
            FilterActor,
            fn_constructor_kwargs={"filt": f},
            batch_format="pyarrow",
            # Ray batches of several model batches (the filter loops over batch_size itself): fewer hand-offs
            batch_size=max(f.batch_size, PIXEL_ROWS),
            compute=ray.data.ActorPoolStrategy(size=f.concurrency),
            num_gpus=f.num_gpus(gpus),
            # torch's OpenMP threads spin between ops by default, taking the cores the pixel tasks decode on; passive
            # waiting roughly doubled the tiny CLIP stage on 2 cores (bench P1, issue 20)
            runtime_env={"env_vars": {**worker_env(), "OMP_WAIT_POLICY": "PASSIVE"}},
        )
    return ds


def filter_stages(filters: list[Filter]) -> list[list[Filter]]:
    """Ray stages in config order: each model filter alone (its actor pool), runs of model-free ones together."""
    stages: list[list[Filter]] = []
    for f in filters:
        if not f.uses_model and stages and not stages[-1][0].uses_model:
            stages[-1].append(f)
        else:
            stages.append([f])
    return stages
