"""Summary statistics over the repetitions of a method: mean, standard deviation and a confidence interval."""

import math
from dataclasses import dataclass

import mpmath
import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """The mean of ``count`` values, their sample standard deviation and a confidence interval of the mean.

    ``std``, ``low`` and ``high`` are NaN when ``count`` is 1, and every field
    but ``count`` is NaN when it is 0.
    """

    count: int
    mean: float
    std: float
    low: float
    high: float


def summarize(values, confidence=CONFIDENCE, lower_bound=None, upper_bound=None):
    """Return the Summary of ``values``: mean, sample standard deviation (ddof=1) and a Student-t interval.

    The interval is mean ± t(1 - (1 - confidence) / 2, n - 1) · std / √n,
    which assumes the values are independent draws from a normal
    distribution. NaN values are left out. The interval is cut at
    ``lower_bound`` and ``upper_bound`` when given, such as 0 for an error,
    which cannot be negative, and 1 for R², which cannot exceed 1.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    count = int(values.size)
    if count == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(np.mean(values))
    if count == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)

    std = float(np.std(values, ddof=1))
    half_width = t_quantile(1 - (1 - confidence) / 2, count - 1) * std / math.sqrt(count)
    low, high = mean - half_width, mean + half_width
    if lower_bound is not None:
        low = max(low, lower_bound)
    if upper_bound is not None:
        high = min(high, upper_bound)
    return Summary(count, mean, std, low, high)


def t_quantile(probability, degrees_of_freedom):
    """Return the ``probability`` quantile of Student's t distribution with ``degrees_of_freedom``.

    Solves CDF(t) = probability with mpmath, where for t ≥ 0 the CDF is
    1 - I_{ν/(ν+t²)}(ν/2, 1/2) / 2 with I the regularized incomplete beta
    function. mpmath comes with sympy, so no statistics package is needed.
    """
    if not 0.5 <= probability < 1:
        raise ValueError(f"probability {probability} is outside [0.5, 1)")
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom {degrees_of_freedom} is below 1")
    if probability == 0.5:
        return 0.0
    nu = mpmath.mpf(degrees_of_freedom)

    def tail(t):
        return mpmath.betainc(nu / 2, mpmath.mpf(1) / 2, 0, nu / (nu + t * t), regularized=True) / 2 - (1 - probability)

    # The tail falls from 1/2 at t = 0 towards 0, so the root lies between 0 and an upper bound found by doubling.
    upper = mpmath.mpf(1)
    while tail(upper) > 0:
        upper *= 2
    return float(mpmath.findroot(tail, (mpmath.mpf(0), upper), solver="anderson"))
