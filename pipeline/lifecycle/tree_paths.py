"""Customers a fitted tree ensemble cannot tell apart, so that it is applied once per kind.

The risk model is three calibrated gradient-boosted ensembles of 100 trees each. Every
split compares one feature with a threshold (``x <= t``, NaN going one fixed way), so two
customers whose features fall between the same thresholds, feature by feature, take the
same path through every tree: they get the same raw score, the same calibrated
probability, bit for bit. Applying the model to one customer of each such group and
spreading the result is exact, and cheaper: on the lifecycle bench (610k customers) half
of the customers shared a group with another, and the share grows with the customers,
while the number of groups is bounded by the thresholds (docs/benchmarks.md).

The thresholds are read from scikit-learn's fitted ``HistGradientBoostingClassifier``
predictors (``_predictors``, a private attribute of the locked version). Whatever this
module does not recognise (another estimator, a categorical split, too many thresholds
for one 64-bit key) gets ``None``: the caller applies the model to every row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Thresholds = list[npt.NDArray[np.float64]]


def split_thresholds(estimator: Any, features: int) -> Thresholds | None:
    """Per feature, the sorted thresholds of every split of every tree of ``estimator``
    (a ``CalibratedClassifierCV`` of ``HistGradientBoostingClassifier``); None if it is
    not one, or if a split is categorical."""
    calibrated = getattr(estimator, "calibrated_classifiers_", None)
    if not calibrated:
        return None
    found: list[set[float]] = [set() for _ in range(features)]
    for member in calibrated:
        predictors = getattr(member.estimator, "_predictors", None)
        if predictors is None:
            return None
        for iteration in predictors:
            for tree in iteration:
                nodes = tree.nodes[tree.nodes["is_leaf"] == 0]
                if nodes["is_categorical"].any():
                    return None
                for feature, threshold in zip(
                    nodes["feature_idx"].tolist(), nodes["num_threshold"].tolist(), strict=True
                ):
                    found[feature].add(threshold)
    return [np.array(sorted(values), dtype=np.float64) for values in found]


def distinct_paths(
    thresholds: Thresholds, matrix: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]] | None:
    """(one row of each group, each row's group) for the rows of ``matrix`` that no split
    tells apart, so that ``predict(matrix[first])[group]`` equals ``predict(matrix)``.

    A value's code is the number of thresholds below it (so ``x <= t`` holds for the same
    thresholds exactly when two codes are equal); NaN gets a code of its own. The codes
    of a row make one integer key; None when they could overflow 64 bits.
    """
    sizes = [len(values) + 2 for values in thresholds]  # codes 0..len, and NaN
    if int(np.prod([float(size) for size in sizes])) >= 2**62:
        return None
    key = np.zeros(len(matrix), dtype=np.int64)
    for column, (values, size) in enumerate(zip(thresholds, sizes, strict=True)):
        feature = matrix[:, column]
        code = np.searchsorted(values, feature, side="left").astype(np.int64)
        code[np.isnan(feature)] = size - 1
        key = key * size + code
    _, first, group = np.unique(key, return_index=True, return_inverse=True)
    return first, group.reshape(-1)
