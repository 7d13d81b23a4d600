import numpy as np
import pytest

from bench.metrics import UndefinedMetricWarning, mean_squared_error, r2_score


def test_r2_hand_computed():
    # SS_res = 1, SS_tot = 5, so R² = 1 - 1/5.
    assert r2_score([1, 2, 3, 4], [1, 2, 3, 5]) == pytest.approx(0.8, abs=1e-15)


def test_mse_hand_computed():
    assert mean_squared_error([1, 2, 3, 4], [1, 2, 3, 5]) == pytest.approx(0.25, abs=1e-15)


def test_perfect_prediction_scores():
    y = np.linspace(-1, 1, 11)
    assert r2_score(y, y) == 1.0
    assert mean_squared_error(y, y) == 0.0


def test_column_prediction_flattened():
    assert mean_squared_error([1.0, 2.0], np.array([[1.0], [4.0]])) == pytest.approx(2.0)


def test_constant_target_r2_is_nan():
    with pytest.warns(UndefinedMetricWarning, match="constant target"):
        value = r2_score([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    assert np.isnan(value)


def test_length_mismatch_rejected():
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        mean_squared_error([1, 2, 3], [1, 2])


def test_non_finite_prediction_rejected():
    with pytest.raises(ValueError, match="y_pred is not finite at index 1"):
        r2_score([1.0, 2.0, 3.0], [1.0, np.nan, 3.0])


def test_empty_input_rejected():
    with pytest.raises(ValueError, match="empty"):
        mean_squared_error([], [])
