"""Results: one Zarr store per task (store), the labelled score tensor (parse), winners (best)."""

from sweepax.results.store import (
    complete_stores,
    is_complete,
    open_store,
    read_attrs,
    write_task_store,
)

__all__ = ["complete_stores", "is_complete", "open_store", "read_attrs", "write_task_store"]
