"""Statistics over the repetitions of methods: a mean with its confidence interval, and paired comparisons.

``summarize`` gives one method's mean, standard deviation and Student-t
interval. ``compare_paired`` compares two methods' test MSE repetition by
repetition with a seeded bootstrap and returns a verdict.
"""

import hashlib
import logging
import math
from dataclasses import dataclass

import mpmath
import numpy as np

from bench.errors import DataError
from bench.reporting.markdown import counted

logger = logging.getLogger(__name__)

CONFIDENCE = 0.95
# Bootstrap resamples per comparison. With 10,000 resamples, the probability below each estimated
# bound of a 95% interval is 2.5% ± 0.3 percentage points (two binomial standard errors).
BOOTSTRAP_RESAMPLES = 10_000
# Two methods are called equivalent when the interval of their geometric mean MSE ratio lies within a
# factor 1 + margin of 1. A 10% difference in MSE is about 5% in root mean square error.
EQUIVALENCE_MARGIN = 0.10
# Fewer pairs than this give no verdict: the bootstrap of two pairs has only three distinct means,
# so its percentile interval is little more than the range of the two ratios.
MIN_PAIRS = 3
VERDICTS = ("better", "worse", "equivalent", "undecided")


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


@dataclass(frozen=True)
class PairedComparison:
    """The test MSE of method ``first`` relative to method ``second`` over their paired repetitions.

    ``ratio`` is the geometric mean over the pairs of MSE(first) / MSE(second),
    so a ratio below 1 means that ``first`` had the lower error. ``low`` and
    ``high`` bound its bootstrap percentile interval and are NaN below
    MIN_PAIRS pairs. ``verdict`` is one of VERDICTS, about ``first``.
    ``reason`` explains an ``undecided`` verdict and is empty for the others.
    """

    first: str
    second: str
    pairs: int
    ratio: float
    low: float
    high: float
    verdict: str
    reason: str


def paired_test_errors(runs, first, second):
    """Return the test MSE of ``first`` and of ``second`` on each repetition where both runs are ok.

    ``runs`` is the run table. The two arrays are aligned by repetition
    index, in increasing order, and every run fits the same train/test
    split. Raises DataError when a method has two ok runs of the same
    repetition, which would make the pairing ambiguous.
    """
    errors = []
    for method in (first, second):
        ok = runs[(runs["method"] == method) & (runs["status"] == "ok")]
        repeated = ok["repetition"][ok["repetition"].duplicated()]
        if not repeated.empty:
            raise DataError(f"method {method} has more than one ok run of repetition {int(repeated.iloc[0])}, "
                            "so its runs cannot be paired. Run the bench again to rewrite runs.csv.")
        errors.append(ok.set_index("repetition")["mse_test"])
    paired = errors[0].to_frame("first").join(errors[1].to_frame("second"), how="inner").sort_index()
    return paired["first"].to_numpy(dtype=np.float64), paired["second"].to_numpy(dtype=np.float64)


def bootstrap_seed(first, second):
    """Return the seed of the bootstrap that compares methods ``first`` and ``second``.

    The seed is a hash of the two names in sorted order, so the report draws
    the same resamples every time it is written, and swapping the two methods
    gives exactly the reciprocal ratio and interval.
    """
    text = "paired-bootstrap/" + "/".join(sorted((first, second)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def compare_paired(first, second, first_errors, second_errors, seed=None, resamples=BOOTSTRAP_RESAMPLES,
                   confidence=CONFIDENCE, margin=EQUIVALENCE_MARGIN):
    """Compare the paired test MSE of methods ``first`` and ``second`` and return a PairedComparison.

    ``first_errors[i]`` and ``second_errors[i]`` are the test MSE of the two
    methods on the same repetition, as ``paired_test_errors`` returns them.
    The statistic is the geometric mean of the per-repetition ratios, the
    exponential of the mean log ratio. A ratio does not depend on the scale
    of the signal, and test errors span orders of magnitude across methods,
    so an arithmetic mean of errors or of ratios would be dominated by the
    largest values. The interval is the percentile interval of that statistic
    over ``resamples`` resamples of the pairs drawn with replacement from a
    numpy Generator seeded with ``seed``, by default ``bootstrap_seed``.

    The verdict is ``better`` when the interval lies entirely below
    1 / (1 + ``margin``) and ``worse`` when it lies entirely above
    1 + ``margin``. It is ``equivalent`` when the interval lies entirely
    inside those two bounds. It is ``undecided`` otherwise, and with fewer
    than MIN_PAIRS pairs, which get no interval.
    """
    first_errors = np.asarray(first_errors, dtype=np.float64)
    second_errors = np.asarray(second_errors, dtype=np.float64)
    if first_errors.shape != second_errors.shape or first_errors.ndim != 1:
        raise ValueError(f"the paired errors need the same 1-D shape, got {first_errors.shape} and {second_errors.shape}")
    if seed is None:
        seed = bootstrap_seed(first, second)

    # A ratio needs two positive errors. NaN marks a missing error, and an MSE of exactly 0 has no logarithm.
    usable = np.isfinite(first_errors) & np.isfinite(second_errors) & (first_errors > 0) & (second_errors > 0)
    # NOTE: a pair with an MSE of exactly 0 is left out, although a zero error is the best possible result.
    # A formula evaluated in float64 with fitted constants is not expected to reach it.
    if not usable.all():
        logger.info("left out %d of %d pairs of %s and %s whose test MSE is missing, zero or negative",
                    int((~usable).sum()), usable.size, first, second)
    log_ratios = np.log(first_errors[usable]) - np.log(second_errors[usable])
    pairs = int(log_ratios.size)
    ratio = float(np.exp(log_ratios.mean())) if pairs else math.nan

    if pairs < MIN_PAIRS:
        reason = ("no repetition where both runs are ok" if pairs == 0
                  else f"{counted(pairs, 'paired repetition')}, at least {MIN_PAIRS} needed")
        comparison = PairedComparison(first, second, pairs, ratio, math.nan, math.nan, "undecided", reason)
    else:
        low, high = _bootstrap_interval(log_ratios, np.random.default_rng(seed), resamples, confidence)
        verdict, reason = _verdict(low, high, margin)
        comparison = PairedComparison(first, second, pairs, ratio, low, high, verdict, reason)
    logger.debug("paired bootstrap of %s against %s: %d pairs, ratio %.3g [%.3g, %.3g], %s",
                 first, second, pairs, comparison.ratio, comparison.low, comparison.high, comparison.verdict)
    return comparison


def _bootstrap_interval(log_ratios, generator, resamples, confidence):
    """Return the percentile interval of the geometric mean ratio over bootstrap resamples of ``log_ratios``."""
    indices = generator.integers(0, log_ratios.size, size=(resamples, log_ratios.size))
    means = log_ratios[indices].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(np.exp(low)), float(np.exp(high))


def _verdict(low, high, margin):
    """Return the verdict and, for ``undecided``, its reason, from an interval of the ratio first / second."""
    lower_bound, upper_bound = 1 / (1 + margin), 1 + margin
    if high < lower_bound:
        return "better", ""
    if low > upper_bound:
        return "worse", ""
    if lower_bound <= low and high <= upper_bound:
        return "equivalent", ""
    # The interval overlaps the equivalence band but is not inside it, so it contains at least one bound.
    contained = [f"{bound:.3g}" for bound in (lower_bound, upper_bound) if low <= bound <= high]
    return "undecided", f"the interval contains {' and '.join(contained)}"
