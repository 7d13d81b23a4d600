import math

import numpy as np
import pytest
import sympy

from bench.errors import DataError
from bench.signal import X, check_finite, make_split, sample_grid, target_expression


def reference_target(x):
    """The target written out by hand with NumPy, independently of the sympy expression."""
    return (4 / math.pi * np.sin(2 * math.pi * 10 * x)
            + 4 / (3 * math.pi) * np.sin(2 * math.pi * 30 * x)
            + 2 / math.pi * np.sin(2 * math.pi * (50 * x + 20 * x**2)))


def test_grid_has_15000_samples_at_15khz():
    x = sample_grid(-0.5, 0.5, 15000)
    assert x.size == 15000
    assert x[0] == -0.5
    assert x[-1] == pytest.approx(0.5 - 1 / 15000, abs=1e-15)
    assert np.allclose(np.diff(x), 1 / 15000, rtol=0, atol=1e-15)


def test_expression_matches_hand_written_target():
    x = np.array([-0.5, -0.123, 0.0, 0.25, 0.4999])
    values = sympy.lambdify(X, target_expression(), "numpy")(x)
    assert np.allclose(values, reference_target(x), rtol=0, atol=1e-13)


def test_split_sizes_and_disjointness():
    split = make_split(target_expression(), [-0.5, 0.5], 15000, 0.2, data_seed=0)
    assert split.test.size == 3000
    assert split.train.size == 12000
    assert np.intersect1d(split.train, split.test).size == 0
    assert np.array_equal(np.union1d(split.train, split.test), np.arange(15000))


def test_split_depends_only_on_data_seed():
    first = make_split(target_expression(), [-0.5, 0.5], 1500, 0.2, data_seed=7)
    again = make_split(target_expression(), [-0.5, 0.5], 1500, 0.2, data_seed=7)
    other = make_split(target_expression(), [-0.5, 0.5], 1500, 0.2, data_seed=8)
    assert np.array_equal(first.test, again.test)
    assert not np.array_equal(first.test, other.test)


def test_split_values_follow_indices():
    split = make_split(target_expression(), [-0.5, 0.5], 1500, 0.2, data_seed=0)
    assert np.allclose(split.y_test, reference_target(split.x_test), rtol=0, atol=1e-13)


def test_non_finite_data_names_first_index():
    values = np.array([0.0, 1.0, np.nan, np.inf])
    with pytest.raises(DataError, match="at index 2"):
        check_finite("y", values)


def test_non_finite_expression_rejected():
    with pytest.raises(DataError, match="non-finite"):
        make_split(1 / X, [-0.5, 0.5], 100, 0.2, data_seed=0)
