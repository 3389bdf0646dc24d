"""scikit-learn's OpenMP loops run on one thread for small inputs, on OpenMP's default
for large ones."""

from __future__ import annotations

import threading
import time

import sklearn.cluster  # noqa: F401  (loads the OpenMP runtime threadpoolctl reports on)
from threadpoolctl import threadpool_info

from pipeline.threads import PARALLEL_FROM_ROWS, openmp_threads_for


def _openmp_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"}


def test_small_inputs_run_on_one_thread_and_the_limit_is_lifted_after() -> None:
    before = _openmp_threads()
    assert before, "no OpenMP runtime loaded"
    with openmp_threads_for(PARALLEL_FROM_ROWS - 1):
        assert _openmp_threads() == {1}
    assert _openmp_threads() == before


def test_large_inputs_keep_openmps_default() -> None:
    before = _openmp_threads()
    with openmp_threads_for(PARALLEL_FROM_ROWS):
        assert _openmp_threads() == before


def test_two_threads_blocks_run_one_at_a_time_each_with_its_own_limit() -> None:
    """A backfill's lanes: a small fit in one thread cannot hand its one-thread limit to a
    large fit in another, nor lift it under a small one's feet."""
    default = _openmp_threads()
    small_inside, small_may_leave = threading.Event(), threading.Event()
    seen: list[tuple[str, set[int]]] = []

    def small() -> None:
        with openmp_threads_for(10):
            small_inside.set()
            small_may_leave.wait(10)
            seen.append(("small", _openmp_threads()))

    def large() -> None:
        small_inside.wait(10)
        with openmp_threads_for(PARALLEL_FROM_ROWS):
            seen.append(("large", _openmp_threads()))

    threads = [threading.Thread(target=small), threading.Thread(target=large)]
    for thread in threads:
        thread.start()
    small_inside.wait(10)
    time.sleep(0.2)
    assert seen == []  # the large block waits for the small one
    small_may_leave.set()
    for thread in threads:
        thread.join(10)
    assert seen == [("small", {1}), ("large", default)]
