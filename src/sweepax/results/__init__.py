"""Results: one Zarr store per task (store), the labelled score tensor (parse), winners (best),
checks against each store's completion record (verify) and removal of dead leftovers (clean)."""

from sweepax.results.store import (
    Leftover,
    StoreState,
    complete_stores,
    corrupt_stores,
    is_complete,
    leftovers,
    open_store,
    read_attrs,
    store_state,
    write_task_store,
)

__all__ = [
    "Leftover",
    "StoreState",
    "complete_stores",
    "corrupt_stores",
    "is_complete",
    "leftovers",
    "open_store",
    "read_attrs",
    "store_state",
    "write_task_store",
]
