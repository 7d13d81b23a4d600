"""The sine-output KAN: spectral starting points, windows, pruning, and recovery of a tone plus a chirp."""

import math

import numpy as np
import pytest
import sympy
import torch

from bench import config as config_module
from bench import formulas, registry
from bench.methods import kan_sines, kan_training
from bench.methods.base import RunFailed, Task
from bench.seeds import isolated_global_rng
from bench.signal import X, make_split, target_expression


def _inputs(count=1200):
    return np.linspace(-0.5, 0.5, count)


def _tone_and_chirp(x):
    return 1.5 * np.sin(2 * np.pi * 3 * x + 0.4) + 0.5 * np.sin(2 * np.pi * (8 * x + 4 * x**2))


@pytest.fixture
def tiny_split():
    return make_split(target_expression(), [-0.5, 0.5], 300, 0.2, 0)


@pytest.fixture
def settings():
    """The default profile's settings: the tiny configuration's windows are too few to fit a chirp."""
    return registry.create(config_module.load_config("default"), "kan_symbolic_sines").settings


def test_spectral_peaks_find_tones_largest_first():
    x = _inputs()
    y = 2.0 + 0.3 * np.sin(2 * np.pi * 7 * x) + 1.0 * np.sin(2 * np.pi * 19 * x)
    peaks = kan_sines.spectral_peaks(x, y, 2)
    assert peaks[0] == pytest.approx(19, abs=0.2)
    assert peaks[1] == pytest.approx(7, abs=0.2)


def test_spectral_peaks_skip_the_neighbours_of_a_peak():
    x = _inputs()
    peaks = kan_sines.spectral_peaks(x, np.sin(2 * np.pi * 12 * x), 2)
    separation = kan_sines.PEAK_SEPARATION_BINS / np.ptp(x)
    assert abs(peaks[1] - peaks[0]) > separation


def test_spectral_peaks_stop_when_bins_run_out():
    x = _inputs(20)
    peaks = kan_sines.spectral_peaks(x, np.sin(2 * np.pi * 3 * x), 10)
    assert 0 < len(peaks) < 10
    assert 0.0 not in peaks


def test_spectral_peaks_reject_short_input():
    with pytest.raises(ValueError, match="at least 4 inputs over a nonzero span"):
        kan_sines.spectral_peaks(np.zeros(10), np.arange(10.0), 1)


def test_sine_coefficients_solve_known_frequencies():
    x = _inputs()
    y = 0.7 * np.sin(5 * x + 1.1) - 0.2 * np.sin(13 * x - 0.3) + 0.25
    amplitudes, phases, offset = kan_sines.sine_coefficients(x, y, [5, 13])
    assert amplitudes == pytest.approx([0.7, 0.2])
    assert phases[0] == pytest.approx(1.1)
    assert phases[1] == pytest.approx(-0.3 + math.pi)  # -0.2·sin(θ) = 0.2·sin(θ + π)
    assert offset == pytest.approx(0.25)


def test_window_mask_is_centred_on_the_inputs_range():
    x = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    assert kan_sines.window_mask(x, 0.2).tolist() == [False, False, True, False, False]
    assert kan_sines.window_mask(x, 1.0).all()


def _built(settings, x, y, seed=3):
    with kan_training.float64_deterministic(), isolated_global_rng(seed):
        return kan_sines.build_model(settings, x, y, seed)


def _predict(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x).reshape(-1, 1)).numpy()[:, 0]


def test_model_starts_at_window_fit(settings):
    x = _inputs()
    y = _tone_and_chirp(x)
    model, frequencies = _built(dict(settings, terms=3), x, y)
    assert [row for row in model.symbolic_fun[1].funs_name] == [["sin", "sin", "sin"]]
    first = kan_sines.window_mask(x, settings["windows"][0])
    assert frequencies == kan_sines.spectral_peaks(x[first], y[first], 3)
    omegas = [2 * math.pi * frequency for frequency in frequencies]
    assert model.act_fun[0].scale_base[0].tolist() == pytest.approx(omegas)
    amplitudes, phases, offset = kan_sines.sine_coefficients(x[first], y[first], omegas)
    linear_fit = offset + sum(a * np.sin(w * x + b) for a, w, b in zip(amplitudes, omegas, phases))
    # The initial spline noise shifts each phase by a few hundredths of a radian.
    difference = _predict(model, x)[first] - linear_fit[first]
    assert 0 < np.max(np.abs(difference)) < 0.1 * np.ptp(y)


@pytest.mark.parametrize("affine", [[1.0, 0.2, 1e-9, 0.5], [0.0, 0.7, 3.0, 0.5]], ids=["tiny amplitude", "flat phase"])
def test_pruning_keeps_mean_of_flat_sines(settings, affine):
    x = _inputs()
    column = torch.from_numpy(x).reshape(-1, 1)
    model, _ = _built(dict(settings, terms=3), x, _tone_and_chirp(x))
    with torch.no_grad():
        model.symbolic_fun[1].affine.data[0, 1] = torch.tensor(affine)
        before = _predict(model, x)
        pruned = kan_sines.prune_small_sines(model, column, 1e-6)
        after = _predict(model, x)
    assert pruned == [1]
    assert model.symbolic_fun[1].funs_name[0][1] == "0"
    assert model.symbolic_fun[0].funs_name[1][0] == "0"
    assert np.max(np.abs(after - before)) < 1e-8


def test_pruning_keeps_sines_that_vary(settings):
    x = _inputs()
    model, _ = _built(dict(settings, terms=3), x, _tone_and_chirp(x))
    assert kan_sines.prune_small_sines(model, torch.from_numpy(x).reshape(-1, 1), 1e-3) == []


def test_fit_recovers_a_tone_and_a_chirp(settings):
    x = _inputs(600)
    y = _tone_and_chirp(x)
    with kan_training.float64_deterministic(), isolated_global_rng(7):
        _, expression, details = kan_sines.fit_sines(x, y, dict(settings, terms=3), seed=7)
    fitted = formulas.evaluate(expression, x)
    assert 1 - np.mean((fitted - y) ** 2) / np.var(y) > 1 - 1e-9
    phases = [edge["function"] for edge in details["edges"] if edge["edge"][0] == 0]
    assert sorted(phases) == ["x", "x^2"]
    assert len(details["pruned_sines"]) == 1
    assert expression.has(sympy.sin)
    assert expression.free_symbols == {X}


def test_fit_fails_when_all_pruned(settings):
    # Above the configurable range: a sine's amplitude is √2 times its standard deviation.
    x = _inputs(300)
    with pytest.raises(RunFailed, match="pruning"):
        with kan_training.float64_deterministic(), isolated_global_rng(1):
            kan_sines.fit_sines(x, 1e-3 * np.sin(2 * np.pi * 4 * x), dict(settings, prune_share=2.0, windows=[1.0], window_lbfgs_steps=1), seed=1)


def test_fit_fails_on_a_sparse_first_window(settings):
    x = _inputs(20)
    with pytest.raises(RunFailed, match="spectral peaks: a spectrum needs at least 4 inputs"):
        with kan_training.float64_deterministic(), isolated_global_rng(1):
            kan_sines.fit_sines(x, np.sin(2 * np.pi * 4 * x), dict(settings, windows=[0.1, 1.0]), seed=1)


def test_method_predictions_are_its_formula(tiny_config, tiny_split):
    adapter = registry.create(tiny_config, "kan_symbolic_sines")
    task = Task(tiny_split.x_train, tiny_split.y_train, tiny_split.x, seed=2)
    result = adapter.fit(task)
    assert np.array_equal(result.predictions, formulas.evaluate(result.expression, tiny_split.x))
    assert result.details["formula_vs_model_max_abs_diff"] < 1e-9
    assert isinstance(result.details["edges_at_range_edge"], int)


def test_method_fits_in_the_targets_units(tiny_config, tiny_split):
    adapter = registry.create(tiny_config, "kan_symbolic_sines")
    plain = adapter.fit(Task(tiny_split.x_train, tiny_split.y_train, tiny_split.x, seed=2))
    scaled = adapter.fit(Task(tiny_split.x_train, 1e6 * tiny_split.y_train + 3.0, tiny_split.x, seed=2))
    # Rounding differs in the last bits between the two standardised targets, and training amplifies it.
    assert np.allclose((scaled.predictions - 3.0) / 1e6, plain.predictions, rtol=0, atol=1e-4)
    assert scaled.details["target_scale"] == pytest.approx(1e6 * plain.details["target_scale"])


def test_method_fails_on_constant_targets(tiny_config, tiny_split):
    adapter = registry.create(tiny_config, "kan_symbolic_sines")
    task = Task(tiny_split.x_train, np.full_like(tiny_split.y_train, 2.0), tiny_split.x, seed=2)
    with pytest.raises(RunFailed, match="standardising: the training targets' standard deviation is 0.0"):
        adapter.fit(task)
