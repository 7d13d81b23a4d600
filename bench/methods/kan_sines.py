"""KAN symbolic sines: a KAN whose output edges are sines from the start, so that its snap has sines to find.

The other symbolic variants snap a trained KAN numeric model, whose edges
split the signal among themselves in ways no library function fits (README,
Accuracy). pykan lets an edge be fixed to a symbolic function before
training, with its affine parameters a, b, c and d still trained. This
method builds ``KAN(width=[1, K, 1])`` and fixes every output edge to sin,
so its output is::

    Σ_j c_j · sin(a_j · φ_j(x) + b_j) + d_j

Each first-layer edge φ_j is a pykan spline with an identity base function:
the phase of sine j, free to bend, so a chirp's quadratic phase is in
reach. The model is fitted to the standardised training targets, and its
formula is mapped back to their units. The phases start as straight lines
at the K largest peaks of the spectrum of the targets in the first,
narrowest window (see below), with amplitudes and offsets from a linear fit.

A phase that is wrong by a few cycles at the ends of the domain leaves the
loss flat there. So training starts on a window around the centre of the
training inputs and widens it in steps. Each step adds only a little data,
where the phases fitted so far are still close to right. Sines whose values
end with a standard deviation below a share of the targets' are pruned. The
phase edges are then snapped by ``kan_snap``'s least-squares fits, the whole
symbolic model is refitted, and its formula is read from pykan.

The sine output layer is a prior: the method can only return a sum of at
most K sines of snapped phases. The report states it beside the method,
and K is set above the seed signal's three terms by default.
"""

import logging
import math

import numpy as np

from bench import formulas
from bench.methods import kan, kan_snap
from bench.methods.base import CHOSEN_HERE, FitResult, Method, RunFailed
from bench.seeds import isolated_global_rng

logger = logging.getLogger(__name__)

# pykan's spline order.
SPLINE_ORDER = 3
# pykan's default noise in the initial spline coefficients. It perturbs each
# starting phase by a few hundredths of a radian, different in every repetition.
INIT_NOISE = 0.3
# Spectral peaks closer than this many bins of the unpadded spectrum count as one.
PEAK_SEPARATION_BINS = 2
OVERSAMPLE = 8


def spectral_peaks(x, y, count):
    """Return the frequencies of the ``count`` largest peaks of y(x)'s spectrum, in cycles per unit of x.

    The spectrum is ``kan_snap.even_spectrum``'s, zero-padded OVERSAMPLE times.
    The zero frequency is never a peak. After each peak, the bins within
    PEAK_SEPARATION_BINS unpadded bins of it are excluded, so a short
    spectrum can hold fewer than ``count`` peaks, and fewer are returned.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 4 or np.ptp(x) == 0:
        raise ValueError(f"a spectrum needs at least 4 inputs over a nonzero span, got {x.size} spanning "
                         f"{np.ptp(x) if x.size else 0:g}; widen the first window or sample more densely")
    frequencies, magnitudes, _ = kan_snap.even_spectrum(x, y, OVERSAMPLE)
    remaining = magnitudes.copy()
    remaining[0] = -np.inf
    half_width = PEAK_SEPARATION_BINS * OVERSAMPLE
    peaks = []
    for _ in range(count):
        index = int(np.argmax(remaining))
        if remaining[index] == -np.inf:
            break
        peaks.append(float(frequencies[index]))
        remaining[max(index - half_width, 0):index + half_width + 1] = -np.inf
    return peaks


def sine_coefficients(x, y, angular_frequencies):
    """Fit y ≈ Σ_j c_j·sin(ω_j·x + b_j) + d by linear least squares; return the amplitudes c, phases b and d."""
    columns = [function(omega * x) for omega in angular_frequencies for function in (np.sin, np.cos)]
    design = np.stack(columns + [np.ones_like(x)], axis=1)
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    sines, cosines = solution[0:-1:2], solution[1:-1:2]
    return np.hypot(sines, cosines), np.arctan2(cosines, sines), float(solution[-1])


def build_model(settings, x, y, seed):
    """Build the KAN [1, K, 1] with sine output edges, its phases starting at the spectral peaks of the first window.

    Returns the model and the starting frequencies in cycles per unit of x.
    """
    import torch
    from kan import KAN

    first = window_mask(x, settings["windows"][0])
    frequencies = spectral_peaks(x[first], y[first], settings["terms"])
    omegas = [2 * math.pi * frequency for frequency in frequencies]
    amplitudes, phases, offset = sine_coefficients(x[first], y[first], omegas)
    model = KAN(width=[1, len(omegas), 1], grid=settings["grid"], k=SPLINE_ORDER, base_fun="identity",
                grid_range=[float(x.min()), float(x.max())], noise_scale=INIT_NOISE, seed=seed,
                symbolic_enabled=True, auto_save=False)
    with torch.no_grad():
        model.act_fun[0].scale_base[0, :] = torch.tensor(omegas)
    for j, (amplitude, phase) in enumerate(zip(amplitudes, phases)):
        model.fix_symbolic(1, j, 0, "sin", fit_params_bool=False, log_history=False)
        constant = offset if j == 0 else 0.0
        model.symbolic_fun[1].affine.data[0][j] = torch.tensor([1.0, float(phase), float(amplitude), constant])
    return model, frequencies


def _lbfgs_settings(settings, steps):
    """Return kan_training.train_once settings for ``steps`` LBFGS steps and no Adam."""
    return {"adam_steps": 0, "adam_lr": 1.0, "grid_updates": 0, "grid_update_steps": 0, "lbfgs_steps": steps,
            "lbfgs_max_iter": settings["lbfgs_max_iter"], "lbfgs_history": settings["lbfgs_history"]}


def window_mask(x, fraction):
    """Return which inputs lie within ``fraction`` of the half-span from the centre of x's range."""
    low, high = float(x.min()), float(x.max())
    centre, half_span = (low + high) / 2, (high - low) / 2
    return np.abs(x - centre) <= fraction * half_span


def train_windows(model, x, y, settings):
    """Train ``model`` with LBFGS on each window of ``settings["windows"]`` in turn; return their records.

    The records' training MSEs are those of ``y``, which ``fit_sines``
    receives standardised. Raises kan_training.Diverged when a window's loss or predictions become non-finite.
    """
    from bench.methods import kan_training

    records = []
    stage = _lbfgs_settings(settings, settings["window_lbfgs_steps"])
    model.save_act = False
    for fraction in settings["windows"]:
        inside = window_mask(x, fraction)
        trained = kan_training.train_once(model, kan._column(x[inside]), kan._column(y[inside]), stage, 1.0)
        records.append({"window": fraction, "inputs": int(inside.sum()), "train_mse_standardised": trained["train_mse"]})
        logger.info("window %.3g (%d inputs): train MSE %.3e", fraction, inside.sum(), trained["train_mse"])
    model.save_act = True
    return records


def sine_values(model, x):
    """Return each output sine's values c·sin(a·φ(x) + b) + d on the inputs ``x`` (a column tensor), one column each."""
    import torch

    with torch.no_grad():
        model.save_act = True
        model(x)
        phases = model.acts[1]  # the hidden nodes: each is one sine's phase φ(x)
        a, b, c, d = model.symbolic_fun[1].affine[0].unbind(-1)
        return c * torch.sin(a * phases + b) + d


def prune_small_sines(model, x, threshold):
    """Replace the sines whose values on ``x`` spread less than ``threshold`` (a standard deviation) by their mean.

    Such a sine is a constant or nearly one: a tiny amplitude, or a phase
    that hardly moves across the inputs. It and its phase edge become
    pykan's zero function, which keeps the offset d, so the sum keeps the
    sine's mean. Returns the indices of the pruned sines.
    """
    values = sine_values(model, x)
    pruned = [j for j, spread in enumerate(values.std(dim=0).tolist()) if spread < threshold]
    for j in pruned:
        mean = float(values[:, j].mean())
        model.fix_symbolic(1, j, 0, "0", fit_params_bool=False, log_history=False)
        model.fix_symbolic(0, 0, j, "0", fit_params_bool=False, log_history=False)
        model.symbolic_fun[1].affine.data[0][j] = model.symbolic_fun[1].affine.data[0][j].new_tensor(
            [1.0, 0.0, 0.0, mean])
    return pruned


def snap_phases(model, x_snap, settings, pruned):
    """Snap every phase edge that was not pruned with ``kan_snap``; return the edge summaries of both layers."""
    model.save_act = True
    model(x_snap)
    summaries = []
    for j in range(model.width_out[1]):
        if j in pruned:
            continue
        fit = kan_snap.snap_edge(model, 0, 0, j, settings["lib"], settings["sine_range_width"],
                                 settings["simplicity_weight"])
        summaries.append(kan_snap.edge_summary(0, 0, j, fit))
    for j in range(model.width_out[1]):
        if j in pruned:
            continue
        params = [float(value) for value in model.symbolic_fun[1].affine[0][j].detach()]
        fixed = {"function": "sin", "params": params, "r2": None, "a_range": None, "b_range": None}
        summaries.append(kan_snap.edge_summary(1, j, 0, fixed))
    return summaries


def fit_sines(x, y, settings, seed):
    """Build, train, prune, snap and refit the sine-output KAN on (x, y); return the model, its formula and details.

    ``y`` should be standardised (``KANSymbolicSines.fit`` does it): the
    starting amplitudes, the pruning threshold and the loss are then on
    one scale whatever the signal's units.
    """
    from bench.methods import kan_training

    try:
        model, frequencies = build_model(settings, x, y, seed)
    except ValueError as error:  # spectral_peaks rejects a first window of fewer than 4 inputs
        raise RunFailed("spectral peaks", str(error)) from error
    try:
        windows = train_windows(model, x, y, settings)
    except kan_training.Diverged as error:
        raise RunFailed("window training", str(error)) from error
    x_column, y_column = kan._column(x), kan._column(y)
    pruned = prune_small_sines(model, x_column, settings["prune_share"] * float(np.std(y)))
    if len(pruned) == len(frequencies):
        raise RunFailed("pruning", f"every sine's standard deviation fell below {settings['prune_share']} times std(y)")
    try:
        edges = snap_phases(model, kan.snap_points(x_column, settings["snap_samples"]), settings, pruned)
    except Exception as error:  # pykan's fit_params, used for functions other than sin, x and x², raises several types
        raise RunFailed("phase snap", f"{type(error).__name__}: {error}") from error
    refit_mse = kan.refit_symbolic(model, x_column, y_column, _lbfgs_settings(settings, 0),
                                   settings["refit_lbfgs_steps"])
    details = {"start_frequencies": frequencies, "windows": windows, "pruned_sines": pruned,
               "refit_train_mse_standardised": refit_mse, "edges": edges}
    return model, kan.formula_of(model), details


class KANSymbolicSines(Method):
    """A KAN [1, K, 1] with sine output edges, trained from spectral peaks on widening windows, then snapped."""

    name = "kan_symbolic_sines"
    settings_label = CHOSEN_HERE
    symbolic = True

    def library_versions(self):
        return kan.KANNumeric.library_versions(self)

    def unavailable_reason(self):
        return kan.KANNumeric.unavailable_reason(self)

    def fit(self, task, upstream=None):
        from bench.methods import kan_training

        x, y = np.asarray(task.x_train, dtype=np.float64), np.asarray(task.y_train, dtype=np.float64)
        mean, scale = float(y.mean()), float(y.std())
        if not (math.isfinite(scale) and scale > 0):
            raise RunFailed("standardising", f"the training targets' standard deviation is {scale}, so they "
                                             "have no oscillation to fit")
        with kan_training.float64_deterministic(self.settings["torch_threads"]), isolated_global_rng(task.seed), \
                kan._pykan_output_to_log():
            model, standardised, details = fit_sines(x, (y - mean) / scale, self.settings, task.seed)
            model_predictions = mean + scale * kan._predict(model, task.x_all)
        # The formula in the targets' units: sympy distributes the scale over the standardised formula's terms.
        expression = mean + scale * standardised
        predictions = formulas.evaluate(expression, task.x_all)
        details.update(target_mean=mean, target_scale=scale)
        details["formula_vs_model_max_abs_diff"] = float(np.max(np.abs(predictions - model_predictions)))
        details["edges_at_range_edge"] = sum(edge["a_at_edge"] or edge["b_at_edge"] for edge in details["edges"])
        return FitResult(predictions=predictions, expression=expression, details=details)
