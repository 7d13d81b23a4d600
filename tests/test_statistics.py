"""Tests of the paired bootstrap of the test-MSE ratio, its verdicts and the pairing of runs by repetition."""

import itertools
import logging
import math

import numpy as np
import pandas as pd
import pytest

from bench.errors import DataError
from bench.reporting.statistics import (
    MIN_PAIRS,
    bootstrap_seed,
    compare_paired,
    paired_test_errors,
)

# Test errors that span orders of magnitude, as the methods of the bench do.
ERRORS = np.array([3e-5, 2e-3, 0.4, 1.1, 7e-2, 5e-4])
# Twenty log-normal ratios: enough distinct resampled means that two seeds give different intervals.
VARIED_RATIOS = np.exp(np.random.default_rng(0).normal(0.0, 1.0, size=20))


def runs_table(rows):
    """Return a run table with the columns that pairing reads, from (method, repetition, status, mse_test) rows."""
    return pd.DataFrame(rows, columns=["method", "repetition", "status", "mse_test"]).astype({"repetition": float})


def exact_bootstrap_quantile(log_ratios, probability):
    """Return the ``probability`` quantile of the mean over every equally likely resample, by enumeration."""
    means = sorted(np.mean(resample) for resample in itertools.product(log_ratios, repeat=len(log_ratios)))
    return means[math.ceil(probability * len(means)) - 1]


# Verdicts.


def test_identical_methods_equivalent():
    comparison = compare_paired("a", "b", ERRORS, ERRORS.copy())
    assert comparison.pairs == len(ERRORS)
    assert comparison.ratio == 1.0
    assert (comparison.low, comparison.high) == (1.0, 1.0)
    assert comparison.verdict == "equivalent"
    assert comparison.reason == ""


def test_ten_times_lower_error_better():
    comparison = compare_paired("a", "b", ERRORS / 10, ERRORS)
    assert comparison.ratio == pytest.approx(0.1)
    assert comparison.low == pytest.approx(0.1)
    assert comparison.high == pytest.approx(0.1)
    assert comparison.verdict == "better"


def test_ten_times_higher_error_worse():
    comparison = compare_paired("a", "b", ERRORS * 10, ERRORS)
    assert comparison.ratio == pytest.approx(10.0)
    assert comparison.verdict == "worse"


def test_mixed_ratios_undecided():
    # Method a is 10 times better on half of the repetitions and 10 times worse on the others.
    first = ERRORS * np.array([0.1, 10, 0.1, 10, 0.1, 10])
    comparison = compare_paired("a", "b", first, ERRORS)
    assert comparison.ratio == pytest.approx(1.0)
    assert comparison.low < 1 / 1.1
    assert comparison.high > 1.1
    assert comparison.verdict == "undecided"
    assert comparison.reason == "the interval contains 0.909 and 1.1"


@pytest.mark.parametrize(
    ("ratio", "verdict"),
    [(0.5, "better"), (0.90, "better"), (0.92, "equivalent"), (1.0, "equivalent"), (1.09, "equivalent"),
     (1.11, "worse"), (3.0, "worse")],
)  # fmt: skip
def test_constant_ratio_against_margin(ratio, verdict):
    # A constant ratio gives an interval of one point, so only the 10% margin decides: 1 / 1.1 = 0.909 and 1.1.
    comparison = compare_paired("a", "b", ERRORS * ratio, ERRORS)
    assert comparison.verdict == verdict


def test_interval_crossing_one_bound_undecided():
    # With ratios 1.0 and 1.3 on alternate repetitions, the interval starts inside the margin and ends outside it.
    first = ERRORS * np.array([1.0, 1.3, 1.0, 1.3, 1.0, 1.3])
    comparison = compare_paired("a", "b", first, ERRORS)
    assert 1.0 <= comparison.low < 1.1
    assert 1.1 < comparison.high <= 1.3
    assert comparison.verdict == "undecided"
    assert comparison.reason == "the interval contains 1.1"


def test_too_few_pairs_undecided():
    comparison = compare_paired("a", "b", [0.1, 0.4], [1.0, 1.0])
    assert MIN_PAIRS == 3
    assert comparison.pairs == 2
    assert comparison.ratio == pytest.approx(0.2)
    assert math.isnan(comparison.low)
    assert math.isnan(comparison.high)
    assert comparison.verdict == "undecided"
    assert comparison.reason == "2 paired repetitions, at least 3 needed"


def test_one_pair_reason_singular():
    comparison = compare_paired("a", "b", [0.1], [1.0])
    assert comparison.reason == "1 paired repetition, at least 3 needed"


def test_no_pairs_undecided():
    comparison = compare_paired("a", "b", [], [])
    assert comparison.pairs == 0
    assert math.isnan(comparison.ratio)
    assert comparison.verdict == "undecided"
    assert comparison.reason == "no repetition where both runs are ok"


def test_missing_and_zero_errors_left_out(caplog):
    first = np.array([0.1, np.nan, 0.0, 0.1, 0.1])
    second = np.ones(5)
    with caplog.at_level(logging.INFO, logger="bench.reporting.statistics"):
        comparison = compare_paired("a", "b", first, second)
    assert comparison.pairs == 3
    assert comparison.verdict == "better"
    assert "left out 2 of 5 pairs of a and b" in caplog.text


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match=r"same 1-D shape, got \(3,\) and \(2,\)"):
        compare_paired("a", "b", [1.0, 2.0, 3.0], [1.0, 2.0])


# The bootstrap interval.


def test_three_pairs_interval_spans_ratios():
    # Of the 27 equally likely resamples of three pairs, each of the two extreme means has probability 1/27 > 2.5%,
    # so the 95% percentile interval runs from the smallest ratio to the largest.
    comparison = compare_paired("a", "b", [0.5, 1.0, 2.0], [1.0, 1.0, 1.0])
    assert comparison.low == pytest.approx(0.5)
    assert comparison.high == pytest.approx(2.0)


def test_interval_matches_exact_enumeration():
    ratios = np.array([0.2, 0.5, 0.7, 1.0, 3.0])
    log_ratios = np.log(ratios)
    comparison = compare_paired("a", "b", ratios, np.ones(5))
    # With 10,000 resamples the tail beyond each bound contains 2.5% ± 0.3 percentage points, inside the 2% to 3% checked.
    assert exact_bootstrap_quantile(log_ratios, 0.02) <= np.log(comparison.low) <= exact_bootstrap_quantile(log_ratios, 0.03)
    assert exact_bootstrap_quantile(log_ratios, 0.97) <= np.log(comparison.high) <= exact_bootstrap_quantile(log_ratios, 0.98)
    assert comparison.ratio == pytest.approx(np.exp(log_ratios.mean()))


# Seeded resampling.


def test_same_inputs_same_interval():
    assert compare_paired("a", "b", VARIED_RATIOS, np.ones(20)) == compare_paired("a", "b", VARIED_RATIOS, np.ones(20))


def test_seed_drives_resampling():
    default = compare_paired("a", "b", VARIED_RATIOS, np.ones(20))
    assert compare_paired("a", "b", VARIED_RATIOS, np.ones(20), seed=bootstrap_seed("a", "b")) == default
    assert compare_paired("a", "b", VARIED_RATIOS, np.ones(20), seed=1).low != default.low


def test_global_rng_unused():
    np.random.seed(1)
    state = np.random.get_state()[1].copy()
    before = compare_paired("a", "b", VARIED_RATIOS, np.ones(20))
    assert np.array_equal(np.random.get_state()[1], state)
    np.random.seed(2)
    assert compare_paired("a", "b", VARIED_RATIOS, np.ones(20)) == before


def test_seed_ignores_name_order():
    assert bootstrap_seed("kan_numeric", "operon_direct") == bootstrap_seed("operon_direct", "kan_numeric")
    assert bootstrap_seed("kan_numeric", "operon_direct") != bootstrap_seed("kan_numeric", "operon_distilled")


def test_swapped_methods_reciprocal():
    forward = compare_paired("a", "b", VARIED_RATIOS, np.ones(20))
    backward = compare_paired("b", "a", np.ones(20), VARIED_RATIOS)
    assert backward.ratio == pytest.approx(1 / forward.ratio)
    assert backward.low == pytest.approx(1 / forward.high)
    assert backward.high == pytest.approx(1 / forward.low)


# Pairing runs by repetition.


def test_pairs_only_ok_runs():
    runs = runs_table([
        ("a", 0, "ok", 0.1), ("a", 1, "ok", 0.2), ("a", 2, "ok", 0.3), ("a", 3, "failed", 9.0), ("a", 4, "ok", 0.5),
        ("b", 0, "ok", 1.0), ("b", 1, "failed", 2.0), ("b", 2, "ok", 3.0), ("b", 3, "ok", 4.0),
        ("b", 4, "unavailable", None),
    ])  # fmt: skip
    first, second = paired_test_errors(runs, "a", "b")
    assert first.tolist() == [0.1, 0.3]
    assert second.tolist() == [1.0, 3.0]


def test_pairs_aligned_by_repetition():
    # Rows out of order, and repetition 3 of a has no partner in b.
    runs = runs_table([
        ("b", 2, "ok", 30.0), ("a", 3, "ok", 0.4), ("a", 0, "ok", 0.1), ("b", 0, "ok", 10.0), ("a", 2, "ok", 0.3),
        ("b", 1, "ok", 20.0), ("a", 1, "ok", 0.2),
    ])  # fmt: skip
    first, second = paired_test_errors(runs, "a", "b")
    assert first.tolist() == [0.1, 0.2, 0.3]
    assert second.tolist() == [10.0, 20.0, 30.0]


def test_repeated_repetition_raises():
    runs = runs_table([("a", 0, "ok", 0.1), ("a", 0, "ok", 0.2), ("b", 0, "ok", 1.0)])
    with pytest.raises(DataError, match="method a has more than one ok run of repetition 0"):
        paired_test_errors(runs, "a", "b")
