"""Tests of the reference rows: the ceiling that fits the target's form, the two floors, and how the report shows them."""

import copy
import csv
import math

import numpy as np
import pytest
import sympy

from bench import config as config_module
from bench import registry, runner
from bench.errors import ConfigError
from bench.methods.base import CHOSEN_HERE, REFERENCE, SETTINGS_LABELS, RunFailed, Task
from bench.methods.reference import CeilingNLS, FloorLinear, FloorMean
from bench.recovery import judge
from bench.reporting import write_report
from bench.signal import X, make_split, target_expression

REFERENCE_METHODS = ["ceiling_nls", "floor_mean", "floor_linear"]
# The target's terms as (amplitude, phase, frequency, chirp rate), written out from its formula:
# 4/π·sin(2π·10x) + 4/(3π)·sin(2π·30x) + 2/π·sin(2π(50x + 20x²)).
TRUE_TERMS = [
    (4 / math.pi, 0.0, 10.0, 0.0),
    (4 / (3 * math.pi), 0.0, 30.0, 0.0),
    (2 / math.pi, 0.0, 50.0, 20.0),
]
# A tenth of the default rate keeps a fit to about a second, and every term stays far below Nyquist.
TEST_RATE_HZ = 1500


def ceiling_settings(**changes):
    settings = config_module.load_config("default")["methods"]["ceiling_nls"]
    return {**settings, **changes}


def split_at(rate_hz):
    return make_split(target_expression(), [-0.5, 0.5], rate_hz, 0.2, 0)


def fit_ceiling(split, seed=1, **changes):
    task = Task(x_train=split.x_train, y_train=split.y_train, x_all=split.x, seed=seed)
    return CeilingNLS(ceiling_settings(**changes)).fit(task)


def r2_by_hand(y, predictions):
    return 1 - np.sum((y - predictions) ** 2) / np.sum((y - np.mean(y)) ** 2)


def wrapped_phase_difference(first, second):
    difference = (first - second) % (2 * math.pi)
    return min(difference, 2 * math.pi - difference)


@pytest.fixture(scope="module")
def ceiling_fit():
    split = split_at(TEST_RATE_HZ)
    return split, fit_ceiling(split)


# The ceiling.


def test_ceiling_recovers_true_parameters(ceiling_fit):
    _, result = ceiling_fit
    fitted = [(term["amplitude"], term["phase"], term["frequency"], term["chirp_rate"])
              for term in result.details["terms"]]
    assert len(fitted) == len(TRUE_TERMS)
    for (amplitude, phase, frequency, chirp_rate), (true_a, true_phase, true_f, true_r) in zip(fitted, TRUE_TERMS):
        assert abs(amplitude - true_a) / true_a <= 1e-6
        assert abs(frequency - true_f) / true_f <= 1e-6
        # A tone's chirp rate is measured against its frequency, as the recovery judge does.
        assert abs(chirp_rate - true_r) / (true_r or true_f) <= 1e-6
        assert wrapped_phase_difference(phase, true_phase) / (2 * math.pi) <= 1e-6


def test_ceiling_test_r2_near_one(ceiling_fit):
    split, result = ceiling_fit
    assert r2_by_hand(split.y_test, result.predictions[split.test]) > 0.999999


def test_ceiling_formula_is_exact(ceiling_fit):
    split, result = ceiling_fit
    recovery = judge(result.expression, domain=(-0.5, 0.5), sampling_rate_hz=TEST_RATE_HZ)
    assert [term.verdict for term in recovery.terms] == ["exact"] * 3
    values = sympy.lambdify(X, result.expression, "numpy")(split.x)
    np.testing.assert_array_equal(result.predictions, values)


def test_ceiling_deterministic():
    split = split_at(TEST_RATE_HZ)
    first = fit_ceiling(split, seed=1)
    second = fit_ceiling(split, seed=987654321)
    np.testing.assert_array_equal(first.predictions, second.predictions)
    assert first.details == second.details
    assert str(first.expression) == str(second.expression)


def test_ceiling_fails_on_exhausted_budget():
    with pytest.raises(RunFailed, match="max_nfev = 1 evaluations"):
        fit_ceiling(split_at(TEST_RATE_HZ), max_nfev=1)


# The floors, on data whose least-squares fits are worked out by hand.


def test_floor_mean_constant():
    x = np.array([-0.5, -0.25, 0.0, 0.25])
    task = Task(x_train=x, y_train=np.array([1.0, 2.0, 3.0, 6.0]), x_all=np.linspace(-1, 1, 7), seed=0)
    result = FloorMean({}).fit(task)
    assert result.expression == sympy.Float(3.0)
    np.testing.assert_array_equal(result.predictions, np.full(7, 3.0))


def test_floor_linear_exact_quadratic():
    x = np.linspace(-0.5, 0.5, 11)
    task = Task(x_train=x, y_train=2 + 3 * x - 4 * x**2, x_all=np.array([-1.0, 2.0]), seed=0)
    result = FloorLinear({}).fit(task)
    np.testing.assert_allclose(result.details["coefficients"], [2.0, 3.0, -4.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.predictions, [2 - 3 - 4, 2 + 6 - 16], rtol=0, atol=1e-12)


def test_floor_linear_projects_cubic():
    # x³ on symmetric inputs has no even part, so the constant and x² coefficients vanish,
    # and the x coefficient is Σx⁴ / Σx² = 34 / 10.
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    result = FloorLinear({}).fit(Task(x_train=x, y_train=x**3, x_all=x, seed=0))
    np.testing.assert_allclose(result.details["coefficients"], [0.0, 3.4, 0.0], rtol=0, atol=1e-12)
    assert float(sympy.Poly(result.expression, X).coeff_monomial(X)) == pytest.approx(3.4, rel=1e-12)


# Settings and labels.


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"terms": 0}, r"invalid methods.ceiling_nls.terms = 0: expected an integer from 1 to 20"),
        ({"terms": 3.0}, r"invalid methods.ceiling_nls.terms = 3.0: expected an integer"),
        ({"max_chirp_rate": -1}, r"invalid methods.ceiling_nls.max_chirp_rate = -1"),
        ({"chirp_rate_step": 0}, r"invalid methods.ceiling_nls.chirp_rate_step = 0"),
        ({"method": "newton"}, r'invalid methods.ceiling_nls.method = "newton"'),
        ({"ftol": 1e-20}, r"invalid methods.ceiling_nls.ftol = 1e-20: expected a number from 2.22e-16"),
        ({"xtol": 1.0}, r"invalid methods.ceiling_nls.xtol = 1.0"),
        ({"gtol": float("nan")}, r"invalid methods.ceiling_nls.gtol = nan"),
        ({"max_nfev": 0}, r"invalid methods.ceiling_nls.max_nfev = 0"),
        ({"max_chirp_rate": 1e6}, r"max_chirp_rate = 1000000.0 at chirp_rate_step = 0.5 gives about 4e\+06 chirp rates"),
        ({"seed": 3}, r"unknown key 'seed' in methods.ceiling_nls"),
    ],
)
def test_ceiling_settings_invalid(changes, message):
    with pytest.raises(ConfigError, match=message):
        config_module.load_config("default", {"methods": {"ceiling_nls": changes}})


def test_floors_take_no_settings():
    with pytest.raises(ConfigError, match="unknown key 'floor_mean' in methods"):
        config_module.load_config("default", {"methods": {"floor_mean": {}}})
    assert registry.settings_for(config_module.load_config("default"), "floor_linear") == {}


def test_every_method_has_settings_label():
    for name in config_module.METHOD_NAMES:
        assert registry.settings_label(name) in SETTINGS_LABELS, name
    for name in REFERENCE_METHODS:
        assert registry.settings_label(name) == REFERENCE
    for name in ("kan_numeric", "kan_symbolic", "kan_symbolic_spectral", "pysr_direct", "operon_distilled"):
        assert registry.settings_label(name) == CHOSEN_HERE


# Through the runner and the report.


@pytest.fixture
def benched(tmp_path, tiny_overrides):
    """A results folder in which the tiny configuration ran the reference rows and Operon."""
    overrides = copy.deepcopy(tiny_overrides)
    overrides["run"]["methods"] = REFERENCE_METHODS + ["operon_direct"]
    config = config_module.load_config("quick", overrides)
    summary = runner.run_benchmark(config, "quick", tmp_path / "results")
    return tmp_path / "results", summary, config


def test_runner_records_reference_rows(benched):
    results, summary, config = benched
    assert summary.failed == 0
    with open(results / "runs.csv", newline="") as stream:
        rows = {row["method"]: row for row in csv.DictReader(stream)}
    for name in REFERENCE_METHODS:
        assert rows[name]["status"] == "ok", rows[name]["reason"]
        assert rows[name]["formula"], name
    assert float(rows["ceiling_nls"]["r2_test"]) > 0.999999
    split = make_split(target_expression(), config["signal"]["domain"], config["signal"]["sampling_rate_hz"],
                       config["split"]["test_fraction"], config["split"]["data_seed"])
    assert float(rows["floor_mean"]["formula"]) == pytest.approx(np.mean(split.y_train), rel=1e-12)


def test_report_labels_reference_rows(benched, tmp_path):
    results, _, _ = benched
    out = tmp_path / "report" / "_generated"
    write_report(results, out)
    headline = (out / "headline.md").read_text(encoding="utf-8")
    assert "| `ceiling_nls` | reference |" in headline
    assert "| `operon_direct` | settings chosen here |" in headline
    answer = (out / "answer.md").read_text(encoding="utf-8")
    assert "`operon_direct` had the lowest mean test error" in answer
    assert "left out of this comparison" in answer
    settings = (out / "settings.md").read_text(encoding="utf-8")
    assert "### `ceiling_nls` (reference)" in settings
    assert "### `floor_mean`, `floor_linear` (reference)\n\nThese methods have no settings." in settings
