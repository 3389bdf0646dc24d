"""How many OpenMP threads scikit-learn may use for a piece of work.

scikit-learn's K-means and gradient boosting run OpenMP loops with one thread per core.
On small inputs (a demo's or a small shop's few thousand customers) the threads spend more
time waiting for each other than working, and far more when the cores are busy with
something else (Airflow's other tasks, the test workers): measured on these 2-core
machines, predicting 3,000 customers' risk took 0.03 s on one thread and 0.1 to 3.7 s on
two with the other core busy. Below :data:`PARALLEL_FROM_ROWS` rows the work runs on one
thread; at or above it, on as many as OpenMP chooses.

The limit is the process's (threadpoolctl sets OpenMP's), and K-means' results depend on
the number of threads in the last digits: so scikit-learn's work runs one block at a
time, whichever thread asks (a backfill's lanes score one date while they stage
another), and each block runs on the threads a lone run would give it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

PARALLEL_FROM_ROWS = 100_000
_ONE_BLOCK_AT_A_TIME = threading.RLock()


@contextmanager
def one_openmp_thread() -> Iterator[None]:
    """Within the block, OpenMP uses one thread (the risk model's fits, on a sample)."""
    from threadpoolctl import threadpool_limits

    with _ONE_BLOCK_AT_A_TIME, threadpool_limits(limits=1, user_api="openmp"):
        yield


@contextmanager
def openmp_threads_for(rows: int) -> Iterator[None]:
    """Within the block, OpenMP uses one thread when ``rows`` is below
    :data:`PARALLEL_FROM_ROWS`, and its default otherwise."""
    if rows >= PARALLEL_FROM_ROWS:
        with _ONE_BLOCK_AT_A_TIME:
            yield
        return
    with one_openmp_thread():
        yield
