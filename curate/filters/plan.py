"""The filters as a Ray Data plan: each filter that loads a model in its own actor pool, runs of model-free filters
chained in one task per batch (curate filter's stages; the bench measures the same plan)."""

from __future__ import annotations

import pyarrow as pa

from curate.filters.base import Filter, FilterChain
from curate.ledger.local_images import probe_local_images


class FilterActor:
    """Holds one filter whose model loads once per Ray actor."""

    def __init__(self, filt: Filter) -> None:
        self.filt = filt
        filt.setup()

    def __call__(self, batch):  # noqa: ANN001, ANN204 - Ray batch in, batch out
        return self.filt(batch)


def build_dataset(raw: list[pa.Table], filters: list[Filter], local: bool, batch_rows: int = 50000):  # noqa: ANN201
    """The Ray Data plan (a ray.data.Dataset): (probe local images) -> filters in config order (cheap ones
    should come first, so CLIP sees only their survivors). Consecutive model-free filters share one task."""
    import ray

    # Ray Data reserves a share of the cluster for each operator by default; on a 2-CPU machine that left the
    # model-free filter stage one task at a time (its other CPU held back), measured in `curate bench` P2. The
    # model stages are actor pools of a fixed size, which hold their CPUs whatever the reservation says.
    ray.data.DataContext.get_current().op_resource_reservation_enabled = False
    ds = ray.data.from_arrow(raw)
    if local:
        ds = ds.map_batches(probe_local_images, batch_format="pandas", batch_size=64)
    gpus = ray.cluster_resources().get("GPU", 0)
    for stage in filter_stages(filters):
        f = stage[0]
        if not f.uses_model:
            ds = ds.map_batches(FilterChain(stage).on_arrow, batch_format="pyarrow", batch_size=batch_rows)
            continue
        ds = ds.map_batches(
            FilterActor,
            fn_constructor_kwargs={"filt": f},
            batch_format="pandas",
            batch_size=f.batch_size,
            compute=ray.data.ActorPoolStrategy(size=f.concurrency),
            num_gpus=f.num_gpus(gpus),
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
