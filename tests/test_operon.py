import numpy as np
import pytest

from bench import formulas
from bench.methods import selection
from bench.methods.base import Task
from bench.methods.operon import OperonDirect, features
from bench.metrics import r2_score
from bench.signal import target_expression, make_split


def fit_once(tiny_config, seed):
    split = make_split(target_expression(), [-0.5, 0.5], 300, 0.2, 0)
    task = Task(split.x_train, split.y_train, split.x, seed)
    return split, OperonDirect(tiny_config["methods"]["operon"]).fit(task)


def test_same_seed_same_formula(tiny_config):
    _, first = fit_once(tiny_config, 11)
    _, second = fit_once(tiny_config, 11)
    assert formulas.to_string(first.expression) == formulas.to_string(second.expression)
    assert np.array_equal(first.predictions, second.predictions)


def test_predictions_are_formula_values(tiny_config):
    split, result = fit_once(tiny_config, 3)
    assert result.predictions.shape == split.x.shape
    assert np.allclose(result.predictions, formulas.evaluate(result.expression, split.x), rtol=0, atol=0)
    # Operon evaluates in single precision; its own predictions agree to about 1e-6.
    assert result.details["formula_vs_engine_max_abs_diff"] < 1e-4


def test_features_are_x_and_square():
    assert np.array_equal(features([1.0, -2.0]), np.array([[1.0, 1.0], [-2.0, 4.0]]))


@pytest.mark.parametrize("factor", [1.0, 1e-12, 1e20])
def test_recovers_simple_sine_at_any_scale(factor):
    x = np.linspace(-0.5, 0.5, 400)
    y = factor * (2.0 * np.sin(3.0 * x) + 0.5)
    settings = {"allowed_symbols": "add,sub,mul,sin,constant,variable", "population_size": 200, "generations": 30,
                "max_evaluations": 100000, "max_length": 20, "n_threads": 1, "max_time_s": 60,
                "model_selection": "accuracy"}
    result = OperonDirect(settings).fit(Task(x, y, x, seed=1))
    assert r2_score(y, result.predictions) > 0.999


def test_formula_is_rule_pick_from_front(tiny_config):
    _, result = fit_once(tiny_config, 5)
    front = result.details["front"]
    chosen = front[selection.select(front, tiny_config["methods"]["operon"]["model_selection"])]
    assert result.details["chosen_complexity"] == chosen["complexity"]
    assert chosen["formula"] == formulas.to_string(result.expression)
    assert [candidate["complexity"] for candidate in front] == sorted({c["complexity"] for c in front})


def test_front_losses_are_in_target_units(tiny_config):
    split, result = fit_once(tiny_config, 5)
    front = result.details["front"]
    chosen = front[selection.select(front, tiny_config["methods"]["operon"]["model_selection"])]
    train_mse = np.mean((formulas.evaluate(result.expression, split.x_train) - split.y_train) ** 2)
    # The engine's losses are single precision.
    assert chosen["loss"] == pytest.approx(train_mse, rel=1e-4)
    assert result.details["target_scale"] == pytest.approx(np.std(split.y_train))


def test_engine_difference_in_double_precision():
    # An offset a billion times the signal's spread: in float32 the offset alone rounds by 0.06.
    x = np.linspace(-0.5, 0.5, 400)
    y = 1e6 + 1e-3 * np.sin(3.0 * x)
    settings = {"allowed_symbols": "add,sub,mul,sin,constant,variable", "population_size": 200, "generations": 30,
                "max_evaluations": 100000, "max_length": 20, "n_threads": 1, "max_time_s": 60,
                "model_selection": "accuracy"}
    result = OperonDirect(settings).fit(Task(x, y, x, seed=1))
    assert r2_score(y, result.predictions) > 0.999
    assert result.details["formula_vs_engine_max_abs_diff"] < 1e-7
