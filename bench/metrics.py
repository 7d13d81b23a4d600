"""Regression metrics. Names carry the direction: ``*_error`` lower is better, ``*_score`` higher."""

import warnings

import numpy as np


class UndefinedMetricWarning(UserWarning):
    """A metric is mathematically undefined for the given input and was set to NaN."""


def check_pair(y_true, y_pred):
    """Return ``y_true`` and ``y_pred`` as 1-D float64 arrays after checking them.

    Raises ValueError for mismatched lengths, empty input or non-finite
    values, naming the first bad index. A column vector (n, 1), the shape
    some engines predict, is flattened.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_pred.ndim == 2 and y_pred.shape[1] == 1:
        y_pred = y_pred[:, 0]
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(f"expected 1-D arrays, got shapes {y_true.shape} and {y_pred.shape}")
    if y_true.size != y_pred.size:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("cannot score empty arrays")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"{name} is not finite at index {bad[0]} (value {values[bad[0]]!r})")
    return y_true, y_pred


def mean_squared_error(y_true, y_pred):
    """Return the mean of squared residuals. Best value 0."""
    y_true, y_pred = check_pair(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def r2_score(y_true, y_pred):
    """Return the coefficient of determination 1 - SS_res / SS_tot. Best value 1.

    R² is undefined when ``y_true`` is constant (SS_tot = 0); it is then NaN
    and an UndefinedMetricWarning is issued.
    """
    y_true, y_pred = check_pair(y_true, y_pred)
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    residual = float(np.sum((y_true - y_pred) ** 2))
    if total == 0.0:
        warnings.warn("R² is undefined for a constant target; returning NaN", UndefinedMetricWarning, stacklevel=2)
        return float("nan")
    return 1.0 - residual / total
