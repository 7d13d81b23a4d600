"""The curvature penalty of kan_numeric_smoothed, on known functions and on a small real pykan model."""

import math

import pytest
import torch

from bench.methods import kan_smoothing, kan_training

SETTINGS = {"width": [1, 4, 1], "k": 3, "fast_splines": True, "refine": "nested",
            "adam_steps": 30, "adam_lr": 0.01, "lbfgs_steps": 3, "lbfgs_max_iter": 10, "lbfgs_history": 10,
            "grid_update_steps": 10, "grid_updates": 1}


def smoothing(weight, steps):
    return {"curvature_weight": weight, "points_per_sample": 2.0, "lbfgs_steps": steps, "lbfgs_max_iter": 10,
            "lbfgs_history": 10}


def sparse_data():
    generator = torch.Generator().manual_seed(5)
    x = torch.sort(torch.rand(80, 1, generator=generator, dtype=torch.float64) - 0.5, dim=0).values
    return x, torch.sin(2 * math.pi * 2 * x)


@pytest.fixture(scope="module")
def trained_state():
    """The state of a [1, 4, 1] KAN at grid 30, trained on 80 inputs: many knots per input, so it can bend between them."""
    x, y = sparse_data()
    with kan_training.float64_deterministic():
        model = kan_training.build_model(SETTINGS, 30, seed=11)
        kan_training.train_stage(model, x, y, SETTINGS, 30)
    return state(model)


def trained_model(trained_state):
    """Return a copy of the trained model and its training data."""
    model = kan_training.build_model(SETTINGS, 30, seed=11)
    model.load_state_dict(trained_state)
    x, y = sparse_data()
    return model, x, y


def state(model):
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def assert_same_state(model, expected):
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_points_span_the_training_inputs():
    x, _ = sparse_data()
    points, spacing, span = kan_smoothing.curvature_points(x, 2.5)
    assert points.shape == (200, 1)
    assert span == pytest.approx(float(x.max() - x.min()))
    assert spacing == pytest.approx(span / 199)
    assert float(points.min()) == float(x.min())
    assert float(points.max()) == pytest.approx(float(x.max()), abs=1e-15)


def test_penalty_measures_the_curvature_of_a_sine():
    x = torch.linspace(-0.5, 0.5, 101, dtype=torch.float64).reshape(-1, 1)
    points, spacing, span = kan_smoothing.curvature_points(x, 10)
    penalty = kan_smoothing.CurvaturePenalty(points, spacing, span, weight=0.5)
    omega = 2 * math.pi * 3
    exact = torch.mean((span ** 2 * omega ** 2 * torch.sin(omega * points[1:-1])) ** 2)
    assert float(penalty.mean_square(lambda z: torch.sin(omega * z))) == pytest.approx(float(exact), rel=1e-4)
    # A straight line has no curvature, so the loss is the squared error alone.
    line = lambda z: 3 * z + 1  # noqa: E731
    assert float(penalty.mean_square(line)) == pytest.approx(0, abs=1e-6)
    assert float(penalty.loss(line, x, 3 * x)) == pytest.approx(1.0, rel=1e-9)


def test_smoothing_lowers_the_penalised_loss_and_the_curvature(trained_state):
    with kan_training.float64_deterministic():
        model, x, y = trained_model(trained_state)
        record = kan_smoothing.smooth(model, x, y, smoothing(1e-7, 3))
    before, after = record["before"], record["after"]
    weight = 1e-7
    assert after["train_mse"] + weight * after["curvature"] < before["train_mse"] + weight * before["curvature"]
    assert after["curvature"] < 0.5 * before["curvature"]
    assert record["points"] == 160


def test_no_steps_leave_the_model_unchanged(trained_state):
    with kan_training.float64_deterministic():
        model, x, y = trained_model(trained_state)
        expected = state(model)
        record = kan_smoothing.smooth(model, x, y, smoothing(1e-7, 0))
    assert_same_state(model, expected)
    assert record["before"] == record["after"]


def test_divergence_restores_the_model(trained_state):
    with kan_training.float64_deterministic():
        model, x, y = trained_model(trained_state)
        expected = state(model)
        y = y.clone()
        y[3] = float("nan")
        with pytest.raises(kan_training.Diverged, match="smoothing loss became nan"):
            kan_smoothing.smooth(model, x, y, smoothing(1e-7, 2))
    assert_same_state(model, expected)
    assert model.symbolic_enabled and model.save_act
