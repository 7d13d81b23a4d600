"""The target signal, its sampling and the shared train/test split.

The signal is kept as a sympy expression: the ground truth that recovered
formulas are compared with, and the source of the sampled values.
"""

from dataclasses import dataclass

import numpy as np
import sympy

from bench.errors import DataError

X = sympy.Symbol("x", real=True)


def target_expression():
    """Return the seed experiment's target f(x) as a sympy expression of ``X``."""
    pi = sympy.pi
    return (
        4 / pi * sympy.sin(2 * pi * 10 * X)
        + 4 / (3 * pi) * sympy.sin(2 * pi * 30 * X)
        + 2 / pi * sympy.sin(2 * pi * (50 * X + 20 * X**2))
    )


@dataclass(frozen=True)
class Split:
    """Sampled signal and the indices of its train and test parts."""

    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray

    @property
    def x_train(self):
        return self.x[self.train]

    @property
    def y_train(self):
        return self.y[self.train]

    @property
    def x_test(self):
        return self.x[self.test]

    @property
    def y_test(self):
        return self.y[self.test]


def sample_grid(start, stop, sampling_rate_hz):
    """Return the sample positions of ``[start, stop)`` at ``sampling_rate_hz``.

    The interval is half-open: x_i = start + i / rate for i = 0 .. n - 1 with
    n = round((stop - start) * rate), so 15 kHz on [-0.5, 0.5) gives exactly
    15,000 samples spaced 1/15000 apart, the first at -0.5 and the last at
    0.5 - 1/15000.
    """
    count = int(round((stop - start) * sampling_rate_hz))
    return start + np.arange(count, dtype=np.float64) / sampling_rate_hz


def evaluate_expression(expression, x):
    """Evaluate a sympy expression of ``X`` on the float64 array ``x``."""
    function = sympy.lambdify(X, expression, modules="numpy")
    # Non-finite values are reported by check_finite with their index, so
    # NumPy's own warnings would only repeat them.
    with np.errstate(all="ignore"):
        values = np.asarray(function(x), dtype=np.float64)
    return np.broadcast_to(values, x.shape).copy()


def check_finite(name, values):
    """Raise DataError naming the first non-finite entry of ``values``."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        first = int(bad[0])
        raise DataError(
            f"{name} has {bad.size} non-finite values; the first is {values[first]!r} at index {first}. "
            "Check the signal expression and its domain."
        )


def make_split(expression, domain, sampling_rate_hz, test_fraction, data_seed):
    """Sample ``expression`` and draw the train/test split from ``data_seed``.

    The split depends only on the data seed, so every method and every
    repetition sees the same training and test points. Indices are sorted
    so that stored arrays read in x order.
    """
    x = sample_grid(domain[0], domain[1], sampling_rate_hz)
    y = evaluate_expression(expression, x)
    check_finite("x", x)
    check_finite("y", y)

    order = np.random.default_rng(data_seed).permutation(x.size)
    test_count = int(round(test_fraction * x.size))
    if not 0 < test_count < x.size:
        raise DataError(
            f"test_fraction={test_fraction} leaves {test_count} of {x.size} samples for testing; "
            "use a fraction that leaves both parts non-empty."
        )
    test = np.sort(order[:test_count])
    train = np.sort(order[test_count:])
    return Split(x=x, y=y, train=train, test=test)
