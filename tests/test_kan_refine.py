"""Nested grid refinement: knot insertion keeps every spline, and so the model's function, exactly."""

import numpy as np
import pytest
import torch
from kan.spline import coef2curve, extend_grid

from bench.methods import kan_refine, kan_training

SETTINGS = {"width": [1, 4, 3, 1], "k": 3, "fast_splines": False, "refine": "nested",
            "adam_steps": 20, "adam_lr": 0.01, "lbfgs_steps": 2, "lbfgs_max_iter": 5, "lbfgs_history": 10,
            "grid_update_steps": 20, "grid_updates": 2}


def test_split_points_halve_the_widest_intervals_first():
    knots = torch.tensor([0.0, 1.0, 3.0, 4.0], dtype=torch.float64)
    assert kan_refine.split_points(knots, 1) == [2.0]
    # After [1, 3] is halved every interval has width 1: ties go left.
    assert kan_refine.split_points(knots, 3) == [0.5, 1.5, 2.0]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_insert_knot_keeps_the_spline(k):
    generator = np.random.default_rng(k)
    inner = torch.from_numpy(np.sort(generator.uniform(-1, 1, 9)))[None, :]
    grid = extend_grid(inner, k_extend=k)
    coef = torch.from_numpy(generator.normal(size=(1, 2, grid.shape[1] - k - 1)))
    knots, values = kan_refine.insert_knot(grid[0], coef[0], 0.123, k)
    x = torch.linspace(-2, 2, 801, dtype=torch.float64)[:, None]
    before = coef2curve(x, grid, coef, k)
    after = coef2curve(x, knots[None, :], values[None], k)
    assert knots.shape[0] == grid.shape[1] + 1
    assert torch.allclose(after, before, rtol=0, atol=1e-12)


def trained_model(grid):
    x = torch.linspace(-0.5, 0.5, 600, dtype=torch.float64)[:, None]
    y = torch.sin(2 * torch.pi * 3 * x) + x ** 2
    model = kan_training.build_model(SETTINGS, grid, seed=3)
    kan_training.train_stage(model, x, y, SETTINGS, grid)
    return model, x


@pytest.mark.parametrize("new_grid", [8, 15, 20])
def test_refined_model_computes_the_same_function(new_grid):
    with kan_training.float64_deterministic():
        model, x = trained_model(5)
        refined = kan_training.refine(model, new_grid, x, SETTINGS)
        # Inputs past the training range reach the hidden grids' extension intervals.
        probe = torch.linspace(-0.8, 0.8, 1601, dtype=torch.float64)[:, None]
        with torch.no_grad():
            assert torch.allclose(refined(probe), model(probe), rtol=0, atol=1e-12)
        assert all(layer.grid.shape[1] == new_grid + 2 * layer.k + 1 for layer in refined.act_fun)
        assert not refined.auto_save


def test_refining_to_a_coarser_grid_is_refused():
    grid = extend_grid(torch.linspace(-1, 1, 11, dtype=torch.float64)[None, :], k_extend=3)
    coef = torch.zeros(1, 1, grid.shape[1] - 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="cannot refine a grid of 10 intervals to 5"):
        kan_refine.refine_layer(grid, coef, 3, 5)


def test_later_stages_use_the_later_adam_settings():
    settings = dict(SETTINGS, later_adam_lr=0.001, later_grid_updates=0)
    first = kan_training.stage_settings(settings, 0)
    later = kan_training.stage_settings(settings, 3)
    assert (first["adam_lr"], first["grid_updates"]) == (0.01, 2)
    assert (later["adam_lr"], later["grid_updates"]) == (0.001, 0)
    assert later["lbfgs_steps"] == settings["lbfgs_steps"]
