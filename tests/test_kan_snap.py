"""Snapping KAN edges: spectrum-centred sine ranges against pykan's fixed (-10, 10)."""

import math

import numpy as np
import pytest
import torch
from kan.spline import curve2coef, extend_grid

from bench.methods import kan, kan_snap, kan_training

TONE = 2 * math.pi * 10  # a 10 Hz tone on x in [-0.5, 0.5]


def test_dominant_frequency_of_unevenly_sampled_tone():
    x = np.sort(np.random.default_rng(0).uniform(-0.5, 0.5, 3000))
    frequency, span = kan_snap.dominant_frequency(x, 0.7 * np.sin(TONE * x + 0.4))
    assert frequency == pytest.approx(10, rel=0.02)
    assert span == pytest.approx(1, abs=0.01)


def test_sine_range_contains_the_tone():
    x = np.linspace(-0.5, 0.5, 1000)
    low, high = kan_snap.sine_range(x, np.sin(TONE * x), relative_width=0.25)
    assert low < TONE < high
    assert high < 2 * TONE


def test_constant_input_gets_the_stock_range():
    assert kan_snap.sine_range(np.zeros(10), np.ones(10), 0.25) == kan_snap.STOCK_RANGE


def test_range_edge_is_one_search_step():
    step = 20 / (kan_snap.GRID_NUMBER - 1)
    assert kan_snap.at_range_edge(-10.0, (-10.0, 10.0))
    assert kan_snap.at_range_edge(10 - step, (-10.0, 10.0))
    assert not kan_snap.at_range_edge(10 - 2 * step, (-10.0, 10.0))


def tone_model(target=lambda x: torch.sin(TONE * x)):
    """Return a [1, 1] KAN whose one edge is ``target`` (by default sin(2π·10·x)) on [-0.5, 0.5], and the inputs."""
    settings = {"width": [1, 1], "k": 3, "fast_splines": False}
    model = kan_training.build_model(settings, grid=200, seed=0)
    layer = model.act_fun[0]
    x = torch.linspace(-0.5, 0.5, 2000, dtype=torch.float64)[:, None]
    layer.grid.data = extend_grid(torch.linspace(-0.5, 0.5, 201, dtype=torch.float64)[None, :], k_extend=layer.k)
    layer.scale_base.data.zero_()
    layer.scale_sp.data.fill_(1.0)
    layer.coef.data = curve2coef(x, target(x)[:, :, None], layer.grid, layer.k)
    return model, x


def test_spectral_snap_finds_the_tone():
    with kan_training.float64_deterministic():
        model, x = tone_model()
        [edge] = kan_snap.snap_spectral(model, x, ["sin", "x"], relative_width=0.25)
        assert edge["function"] == "sin"
        assert abs(edge["a"]) == pytest.approx(TONE, rel=0.01)
        assert edge["r2"] > 0.999
        assert not edge["a_at_edge"]
        with torch.no_grad():
            assert torch.allclose(model(x), torch.sin(TONE * x), atol=0.05)


def test_stock_snap_misses_the_tone_and_flags_it():
    with kan_training.float64_deterministic():
        model, x = tone_model()
        kan.snap_symbolic(model, x, ["sin", "x"])
        [edge] = kan_snap.stock_edge_summaries(model)
        with torch.no_grad():
            error = float(torch.mean((model(x) - torch.sin(TONE * x)) ** 2))
        assert error > 0.1
        assert edge["function"] == "x" or edge["a_at_edge"]


@pytest.mark.parametrize(("weight", "expected"), [(0.8, "x"), (0.0, "sin")])
def test_simplicity_weight_decides_between_sine_and_line(weight, expected):
    # A tone on a slope: the sine explains about 80 % of the variance and the line about 20 %.
    with kan_training.float64_deterministic():
        model, x = tone_model(lambda x: torch.sin(TONE * x) + 1.2 * x)
        [edge] = kan_snap.snap_spectral(model, x, ["sin", "x"], relative_width=0.25, simplicity_weight=weight)
    assert edge["function"] == expected
