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
        assert edge["closed_form"]
        assert not edge["a_at_edge"]
        assert not edge["b_at_edge"]
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


# As many evenly spaced inputs on [-0.5, 0.5] as the default profile snaps each edge on.
X_EVEN = np.linspace(-0.5, 0.5, 500)


def angle_difference(first, second):
    """Return first - second wrapped into [-π, π), so phases either side of ±π compare as close."""
    return (first - second + math.pi) % (2 * math.pi) - math.pi


# (a, b, c, d) of the data, then the fit expected back: c ≥ 0, because c·sin(θ) = -c·sin(θ + π),
# and b in (-π, π].
SINE_CASES = [
    ((62.8, 0.4, 1.3, 0.2), (62.8, 0.4, 1.3, 0.2)),
    ((188.5, -1.0, 0.7, -0.3), (188.5, -1.0, 0.7, -0.3)),
    ((62.8, 0.5, -2.0, 0.1), (62.8, 0.5 - math.pi, 2.0, 0.1)),
    ((62.8, math.pi - 0.01, 1.0, 0.0), (62.8, math.pi - 0.01, 1.0, 0.0)),
    ((188.5, -math.pi + 0.01, 1.5, 0.2), (188.5, -math.pi + 0.01, 1.5, 0.2)),
    ((188.5, 0.3, -0.5, 0.0), (188.5, 0.3 - math.pi, 0.5, 0.0)),
]


@pytest.mark.parametrize(("true", "expected"), SINE_CASES)
def test_fit_sine_recovers_parameters(true, expected):
    a, b, c, d = true
    y = c * np.sin(a * X_EVEN + b) + d
    params, r2 = kan_snap.fit_sine(X_EVEN, y, kan_snap.sine_range(X_EVEN, y, relative_width=0.25))
    assert params[0] == pytest.approx(expected[0], abs=1e-3)
    assert -math.pi < params[1] <= math.pi
    assert angle_difference(params[1], expected[1]) == pytest.approx(0, abs=1e-3)
    assert params[2] == pytest.approx(expected[2], rel=1e-4)
    assert params[3] == pytest.approx(expected[3], abs=1e-4)
    assert r2 == pytest.approx(1, abs=1e-8)


def test_fit_sine_beats_pykan_grid():
    # pykan's default ranges, a and b in (-10, 10), contain a and b, but neither is on its first grid (step 0.2),
    # so its zoomed grid only approximates b, while fit_sine solves b exactly for each a.
    from kan.utils import fit_params

    x = np.linspace(-1, 1, 500)
    y = 1.5 * np.sin(3.137 * x + 1.2345) + 0.7
    _, r2 = kan_snap.fit_sine(x, y, kan_snap.STOCK_RANGE)
    with kan_training.float64_deterministic():
        pykan_params, pykan_r2 = fit_params(torch.tensor(x), torch.tensor(y), torch.sin, verbose=False)
    a, b, c, d = (float(value) for value in pykan_params)
    pykan_sse = float(np.sum((c * np.sin(a * x + b) + d - y) ** 2))
    assert r2 >= float(pykan_r2)
    assert r2 >= 1 - pykan_sse / float(np.sum((y - y.mean()) ** 2))


def test_fit_line_recovers_slope_and_intercept():
    params, r2 = kan_snap.fit_line(X_EVEN, -2.5 * X_EVEN + 0.7)
    assert params == pytest.approx([1.0, 0.0, -2.5, 0.7], abs=1e-12)
    assert r2 == pytest.approx(1, abs=1e-12)


@pytest.mark.parametrize("true", [(1.0, 0.3, -1.5, 2.0), (1.0, -2.0, 0.8, -1.0)])
def test_fit_square_recovers_vertex_form(true):
    _, b, c, d = true
    params, r2 = kan_snap.fit_square(X_EVEN, c * (X_EVEN + b) ** 2 + d)
    assert params == pytest.approx(list(true), abs=1e-9)
    assert r2 == pytest.approx(1, abs=1e-12)


def test_nearly_linear_square_falls_back_to_pykan():
    x, y = torch.tensor(X_EVEN), torch.tensor(3 * X_EVEN - 1)
    assert kan_snap.fit_square(X_EVEN, y.numpy()) is None
    with kan_training.float64_deterministic():
        fit = kan_snap._fit(x, y, "x^2", relative_width=0.25)
    a, b, c, d = fit["params"]
    sse = float(torch.sum((c * (a * x + b) ** 2 + d - y) ** 2))
    assert not fit["closed_form"]
    assert fit["a_range"] == list(kan_snap.STOCK_RANGE)
    assert fit["b_range"] == list(kan_snap.STOCK_RANGE)
    assert fit["r2"] == pytest.approx(1 - sse / float(torch.sum((y - y.mean()) ** 2)), abs=1e-12)
    assert fit["r2"] > 0.99


def test_fit_sine_bounds_amplitude_on_parabola():
    # As a → 0 a sine of growing c approaches any parabola. Without the bound this one reaches R² 1 at c ≈ 3.5e6.
    y = 0.8 * (X_EVEN - 2) ** 2
    params, r2 = kan_snap.fit_sine(X_EVEN, y, kan_snap.sine_range(X_EVEN, y, relative_width=0.25))
    _, square_r2 = kan_snap.fit_square(X_EVEN, y)
    assert params[2] <= kan_snap.CANCELLATION_LIMIT * np.ptp(y)
    assert r2 < square_r2


def test_fit_sine_none_when_every_scale_degenerate():
    y = 0.8 * (X_EVEN - 2) ** 2
    assert kan_snap.fit_sine(X_EVEN, y, (1e-6, 2e-6)) is None


def test_degenerate_sine_falls_back_to_pykan(monkeypatch):
    monkeypatch.setattr(kan_snap, "sine_range", lambda x, y, relative_width: (1e-6, 2e-6))
    x, y = torch.tensor(X_EVEN), torch.tensor(0.8 * (X_EVEN - 2) ** 2)
    with kan_training.float64_deterministic():
        fit = kan_snap._fit(x, y, "sin", relative_width=0.25)
    a, b, c, d = fit["params"]
    sse = float(torch.sum((c * torch.sin(a * x + b) + d - y) ** 2))
    assert not fit["closed_form"]
    assert fit["a_range"] == [1e-6, 2e-6]
    assert fit["b_range"] == list(kan_snap.PHASE_RANGE)
    assert fit["r2"] == pytest.approx(1 - sse / float(torch.sum((y - y.mean()) ** 2)), abs=1e-12)


@pytest.mark.parametrize("name", kan_snap.CLOSED_FORM_FUNCTIONS)
def test_constant_edge_fits_the_constant(name):
    x, y = torch.tensor(X_EVEN), torch.full((X_EVEN.size,), 0.25, dtype=torch.float64)
    with np.errstate(all="raise"):
        fit = kan_snap._fit(x, y, name, relative_width=0.25)
    summary = kan_snap.edge_summary(0, 0, 0, fit)
    assert fit["params"][2:] == [0.0, 0.25]
    assert fit["r2"] == 0.0
    assert fit["closed_form"]
    assert not summary["a_at_edge"]
    assert not summary["b_at_edge"]


@pytest.mark.parametrize("name", kan_snap.CLOSED_FORM_FUNCTIONS)
def test_fit_r2_is_one_minus_sse_over_sst(name):
    from kan.utils import SYMBOLIC_LIB

    noise = np.random.default_rng(1).normal(0, 0.1, X_EVEN.size)
    x, y = torch.tensor(X_EVEN), torch.tensor(np.sin(40 * X_EVEN) + 2 * X_EVEN**2 + noise)
    fit = kan_snap._fit(x, y, name, relative_width=0.25)
    a, b, c, d = fit["params"]
    sse = float(torch.sum((c * SYMBOLIC_LIB[name][0](a * x + b) + d - y) ** 2))
    assert fit["closed_form"]
    assert fit["r2"] == pytest.approx(1 - sse / float(torch.sum((y - y.mean()) ** 2)), abs=1e-12)


def test_closed_form_sine_flags_a_but_not_b():
    fit = {"function": "sin", "params": [10.0, math.pi, 1.0, 0.0], "r2": 0.9, "closed_form": True,
           "a_range": [0.0, 10.0], "b_range": list(kan_snap.PHASE_RANGE)}
    summary = kan_snap.edge_summary(0, 0, 0, fit)
    assert summary["closed_form"]
    assert summary["a_at_edge"]
    assert not summary["b_at_edge"]


def test_grid_search_fit_still_flags_b():
    fit = {"function": "sin", "params": [5.0, math.pi, 1.0, 0.0], "r2": 0.9,
           "a_range": [0.0, 10.0], "b_range": list(kan_snap.PHASE_RANGE)}
    summary = kan_snap.edge_summary(0, 0, 0, fit)
    assert not summary["closed_form"]
    assert not summary["a_at_edge"]
    assert summary["b_at_edge"]


def test_closed_form_square_is_never_flagged():
    fit = kan_snap._fit(torch.tensor(X_EVEN), torch.tensor(0.8 * (X_EVEN - 2) ** 2), "x^2", relative_width=0.25)
    summary = kan_snap.edge_summary(0, 0, 0, fit)
    assert summary["a_range"] is None
    assert summary["b_range"] is None
    assert not summary["a_at_edge"]
    assert not summary["b_at_edge"]
