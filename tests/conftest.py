"""Shared fixtures: a tiny configuration that runs the real engines in seconds."""

import copy

import pytest

from bench import config as config_module


@pytest.fixture
def tiny_overrides():
    """Overrides of the quick profile small enough for unit tests (300 samples, KAN [1,2,1], one grid)."""
    return {
        "signal": {"sampling_rate_hz": 300},
        "run": {"repetitions": 1},
        "methods": {
            "kan": {"width": [1, 2, 1], "grids": [3], "adam_steps": 5, "lbfgs_steps": 1, "lbfgs_max_iter": 3,
                    "grid_update_steps": 2, "grid_updates": 1},
            "kan_symbolic": {"lib": ["sin", "x"], "refit_lbfgs_steps": 1},
            "kan_symbolic_sines": {"windows": [0.5, 1.0], "window_lbfgs_steps": 2, "refit_lbfgs_steps": 1},
            "operon": {"population_size": 50, "generations": 5, "max_evaluations": 5000},
        },
    }


@pytest.fixture
def tiny_config(tiny_overrides):
    """The validated tiny configuration."""
    return config_module.load_config("quick", copy.deepcopy(tiny_overrides))
