"""scikit-learn's OpenMP loops run on one thread for small inputs, on OpenMP's default
for large ones."""

from __future__ import annotations

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
