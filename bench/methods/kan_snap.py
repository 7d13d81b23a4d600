"""Snapping a KAN's edges to symbolic functions, with the sine's search range taken from each edge's spectrum.

pykan's ``auto_symbolic`` fits y ≈ c·f(a·x + b) + d on every edge by a
grid search of a and b in (-10, 10) (``kan.utils.fit_params``). A tone of
10 Hz on x in [-0.5, 0.5] needs a = 2π·10 ≈ 62.8, outside that range, so
the stock search cannot find it. Here each edge's sine range is centred on
the largest peak of the edge activation's spectrum.

The functions sin, x and x² are fitted by float64 least squares instead of
fit_params' 101 × 101 grid of (a, b). The sine searches a alone, because
for each a a linear fit on sin(a·x), cos(a·x) and 1 gives the best b, c
and d. x and x² are linear in their coefficients and need no search. Any
other function name goes to fit_params, and so do sine and x² fits that
only an ill-conditioned form reaches (see CANCELLATION_LIMIT). Every fit's
R² is 1 - SSE/SST, so an edge's candidate functions are ranked on one
scale. Each fit records whether a searched parameter ended at the edge of
its range.
"""

import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

STOCK_RANGE = (-10.0, 10.0)
PHASE_RANGE = (-math.pi, math.pi)
# pykan 0.2.8's fit_params defaults: grid values per zoom level, for a here and for both a and b in fit_params,
# and zoom levels.
GRID_NUMBER = 101
ZOOM_ITERATIONS = 3
# The functions fitted here by least squares; any other name goes to pykan's fit_params.
CLOSED_FORM_FUNCTIONS = ("sin", "x", "x^2")
# The largest |c·f(a·x + b)| on the data that a closed-form fit may reach, in multiples of the range of y. For
# the sine the bound applies to its amplitude c. Beyond it the terms c·f(a·x + b) and d cancel each other,
# losing about 4 of float64's 16 significant digits, and the fit is a polynomial in disguise.
# As a → 0 with c growing, c·sin(a·x + b) + d can approach any quadratic in x, so an unbounded sine ties with
# every x² fit at an absurd c. fit_sine therefore skips the values of a past the limit. An x² fit past it has
# its vertex about 4e4 data half-widths away and departs from a straight line by about 6e-6 of y's range, so
# fit_square gives up and fit_params searches instead.
# NOTE: the value is a judgement. On one trained quick-profile KAN (51 edges), sine limits of 10, 100 and 1e4
# gave the same function counts and the same formula R² after the refit.
CANCELLATION_LIMIT = 1e4

# pykan's suggest_symbolic ranks functions by w · complexity + (1 - w) · log2(1 + 1e-5 - r²), w = 0.8.
PYKAN_SIMPLICITY_WEIGHT = 0.8


def even_spectrum(x, y, oversample=8):
    """Return the frequencies, in cycles per unit of x, and magnitudes of y(x)'s spectrum, and x's span.

    The samples are sorted, interpolated onto an even grid, centred and
    Hann-windowed; the spectrum is zero-padded ``oversample`` times. Where
    x spans nothing, both arrays are empty.
    """
    order = np.argsort(x, kind="stable")
    xs, ys = np.asarray(x, dtype=np.float64)[order], np.asarray(y, dtype=np.float64)[order]
    span = float(xs[-1] - xs[0])
    if span <= 0:
        return np.zeros(0), np.zeros(0), 0.0
    even = np.linspace(xs[0], xs[-1], xs.size)
    values = np.interp(even, xs, ys)
    values = (values - values.mean()) * np.hanning(values.size)
    length = values.size * oversample
    magnitudes = np.abs(np.fft.rfft(values, length))
    return np.fft.rfftfreq(length, d=span / (xs.size - 1)), magnitudes, span


def dominant_frequency(x, y, oversample=8):
    """Return the frequency of the largest peak of ``even_spectrum``, leaving out zero, and x's span."""
    frequencies, magnitudes, span = even_spectrum(x, y, oversample)
    if span == 0:
        return 0.0, 0.0
    return float(frequencies[1 + int(np.argmax(magnitudes[1:]))]), span


def sine_range(x, y, relative_width):
    """Return the range of a to search for y ≈ c·sin(a·x + b) + d: the dominant angular frequency ± a margin.

    The margin is ``relative_width`` times that frequency, and at least two
    bins of the unpadded spectrum (2π·2/span), so a peak the window smears
    is still inside. a ≥ 0 loses nothing, because sin(-a·x + b) = sin(a·x + π - b).
    """
    frequency, span = dominant_frequency(x, y)
    if span == 0:
        return STOCK_RANGE
    centre = 2 * math.pi * frequency
    margin = max(relative_width * centre, 2 * math.pi * 2 / span)
    return (max(centre - margin, 0.0), centre + margin)


def at_range_edge(value, bounds):
    """Return whether ``value`` is within one search step of either end of ``bounds``."""
    step = (bounds[1] - bounds[0]) / (GRID_NUMBER - 1)
    return min(abs(value - bounds[0]), abs(value - bounds[1])) <= step


def _at_searched_edge(value, bounds):
    return bounds is not None and at_range_edge(value, bounds)


def _ranking_loss(r2, complexity, simplicity_weight):
    return simplicity_weight * complexity + (1 - simplicity_weight) * math.log2(1 + 1e-5 - r2)


def _least_squares(design, y):
    """Fit y ≈ design · coef + intercept for each design matrix of a stack; return coef, intercept and R².

    ``design`` has shape (..., n, k) and ``y`` shape (n,). Centring the
    columns and y separates the intercept, and an SVD solves for the rest.
    Singular values at or below numpy.linalg.lstsq's default cutoff (eps ·
    max(n, k) times the largest) are dropped, so a constant or collinear
    column gets zero weight instead of a division by zero. R² = 1 - SSE/SST,
    computed as the explained sum of squares over SST, and is 0 when y is
    constant.
    """
    y_mean = y.mean()
    centred_y = y - y_mean
    sst = float(centred_y @ centred_y)
    column_means = design.mean(axis=-2)
    u, s, vt = np.linalg.svd(design - column_means[..., None, :], full_matrices=False)
    kept = s > np.finfo(np.float64).eps * max(design.shape[-2:]) * s[..., :1]
    projections = np.where(kept, np.einsum("...nk,n->...k", u, centred_y), 0.0)
    coef = np.einsum("...kj,...k->...j", vt, projections / np.where(kept, s, 1.0))
    intercept = y_mean - np.einsum("...k,...k->...", column_means, coef)
    if sst == 0:
        return coef, intercept, np.zeros(s.shape[:-1])
    return coef, intercept, np.sum(projections**2, axis=-1) / sst


def _r2(y, prediction):
    """Return 1 - SSE/SST of ``prediction`` against ``y``, or 0 when y is constant."""
    centred = y - y.mean()
    sst = float(centred @ centred)
    if sst == 0:
        return 0.0
    residuals = y - prediction
    return 1.0 - float(residuals @ residuals) / sst


def fit_sine(x, y, a_range):
    """Fit y ≈ c·sin(a·x + b) + d with a searched in ``a_range``; return [a, b, c, d] and R², or None.

    c·sin(a·x + b) = p·sin(a·x) + q·cos(a·x) with p = c·cos(b) and
    q = c·sin(b), so for each a of a grid of GRID_NUMBER values a linear fit
    on sin(a·x), cos(a·x) and 1 gives the best b, c and d. As in pykan's
    fit_params, the grid zooms in ZOOM_ITERATIONS times on the a of highest
    R²: the next range is that a ± one grid step, clipped to the current
    range. Values of a whose c exceeds CANCELLATION_LIMIT times the range of
    y are skipped, and None is returned when a zoom level has no other value.
    The returned a is a grid value of the last zoom level, c ≥ 0 and b is in
    (-π, π].
    """
    # NOTE: a fit held back by CANCELLATION_LIMIT is not flagged, because its a is not at a range edge.
    max_amplitude = CANCELLATION_LIMIT * np.ptp(y)
    low, high = a_range
    for _ in range(ZOOM_ITERATIONS):
        a_values = np.linspace(low, high, GRID_NUMBER)
        phases = a_values[:, None] * x
        coef, intercept, r2 = _least_squares(np.stack([np.sin(phases), np.cos(phases)], axis=-1), y)
        allowed = np.hypot(coef[:, 0], coef[:, 1]) <= max_amplitude
        if not allowed.any():
            logger.debug("sine fit: every a in [%.4g, %.4g] needs c above %.3g", low, high, max_amplitude)
            return None
        best = int(np.argmax(np.where(allowed, r2, -np.inf)))
        low, high = a_values[max(best - 1, 0)], a_values[min(best + 1, GRID_NUMBER - 1)]

    p, q = coef[best]
    phase = math.atan2(q, p)
    if phase == -math.pi:  # atan2 returns -π when q is -0.0 and p < 0, the same angle as π
        phase = math.pi
    return [float(a_values[best]), phase, math.hypot(p, q), float(intercept[best])], float(r2[best])


def fit_line(x, y):
    """Fit y ≈ c·x + d, which is c·(a·x + b) + d with a = 1 and b = 0; return [a, b, c, d] and R²."""
    coef, intercept, r2 = _least_squares(x[:, None], y)
    return [1.0, 0.0, float(coef[0]), float(intercept)], float(r2)


def fit_square(x, y):
    """Fit y ≈ c·(x + b)² + d with a = 1; return [a, b, c, d] and R², or None where that form is ill-conditioned.

    The regression y ≈ α·x² + β·x + γ gives b = β/(2α), c = α and
    d = γ - α·b². It is ill-conditioned when b is not finite (α = 0) or when
    the largest |c·(x + b)²| on the data exceeds CANCELLATION_LIMIT times
    the range of y, which happens as α approaches 0.
    """
    (alpha, beta), gamma, r2 = _least_squares(np.stack([x * x, x], axis=-1), y)
    with np.errstate(all="ignore"):
        shift = beta / (2 * alpha)
        largest_term = float(np.max(np.abs(alpha * (x + shift) ** 2)))
    if not (math.isfinite(shift) and largest_term <= CANCELLATION_LIMIT * np.ptp(y)):
        logger.debug("x^2 fit: alpha = %.3g, beta = %.3g put the vertex at x = %.3g, too far from the data",
                     alpha, beta, -shift)
        return None
    return [1.0, float(shift), float(alpha), float(gamma - alpha * shift**2)], float(r2)


def _closed_form_fit(x, y, name, a_range):
    """Fit sin, x or x² by least squares; return params, r2, a_range and b_range, or None when the fit falls back.

    ``a_range`` is the sine's. A range is None where that parameter was not
    searched. A constant edge gets c = 0 and d equal to the constant, with
    R² 0.
    """
    if np.ptp(y) == 0:
        return {"params": [1.0, 0.0, 0.0, float(y[0])], "r2": 0.0, "a_range": None, "b_range": None}
    if name == "sin":
        found = fit_sine(x, y, a_range)
        ranges = {"a_range": list(a_range), "b_range": list(PHASE_RANGE)}
    else:
        found = fit_line(x, y) if name == "x" else fit_square(x, y)
        ranges = {"a_range": None, "b_range": None}
    if found is None:
        return None
    return {"params": found[0], "r2": found[1], **ranges}


def _pykan_fit(x, y, name, a_range, b_range):
    """Fit c·f(a·x + b) + d by pykan's fit_params over ``a_range`` and ``b_range``; return params, r2 and the ranges.

    fit_params ranks its grid by a squared correlation with 1e-4 added to
    its denominator, so the R² is recomputed here as 1 - SSE/SST, evaluating
    f with NaN and ±inf replaced by finite numbers as fit_params does.
    """
    import torch
    from kan.utils import SYMBOLIC_LIB, fit_params

    function = SYMBOLIC_LIB[name][0]
    params, _ = fit_params(x, y, function, a_range=a_range, b_range=b_range,
                           grid_number=GRID_NUMBER, iteration=ZOOM_ITERATIONS, verbose=False)
    a, b, c, d = (float(value) for value in params)
    values = torch.nan_to_num(function(a * x + b)).numpy().astype(np.float64)
    r2 = _r2(y.numpy().astype(np.float64), c * values + d)
    return {"params": [a, b, c, d], "r2": r2, "a_range": list(a_range), "b_range": list(b_range)}


def _fit(x, y, name, relative_width):
    """Fit c·f(a·x + b) + d for the library function ``name`` to one edge's values ``x`` and ``y`` (1-D tensors)."""
    from kan.utils import SYMBOLIC_LIB

    x_values, y_values = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    a_range, b_range = STOCK_RANGE, STOCK_RANGE
    if name == "sin":
        a_range, b_range = sine_range(x_values, y_values, relative_width), PHASE_RANGE
    fit = None
    if name in CLOSED_FORM_FUNCTIONS:
        fit = _closed_form_fit(x_values, y_values, name, a_range)
    closed_form = fit is not None
    if not closed_form:
        fit = _pykan_fit(x, y, name, a_range, b_range)
    return {"function": name, **fit, "closed_form": closed_form, "complexity": SYMBOLIC_LIB[name][2]}


def snap_edge(model, layer, i, j, lib, relative_width, simplicity_weight):
    """Fit every function of ``lib`` to edge (layer, i, j), fix the best one on ``model``; return the fit.

    The edge activations are those of ``model``'s last forward pass. The
    functions are ranked as pykan's suggest_symbolic ranks them, with
    ``simplicity_weight`` in place of its 0.8: at 0, by r² alone.
    """
    import torch

    x = model.acts[layer][:, i].detach()
    y = model.spline_postacts[layer][:, j, i].detach()
    fits = [_fit(x, y, name, relative_width) for name in lib]
    best = min(fits, key=lambda fit: _ranking_loss(fit["r2"], fit["complexity"], simplicity_weight))
    model.fix_symbolic(layer, i, j, best["function"], fit_params_bool=False, log_history=False)
    model.symbolic_fun[layer].affine.data[j][i] = torch.tensor(best["params"], dtype=torch.float64)
    return best


def edge_summary(layer, i, j, fit):
    """Return the stored description of one snapped edge, with its range-edge flags.

    A parameter whose range is None was not searched and is never flagged.
    The b of a closed-form fit is never flagged either, because the sine's
    phase is solved over the whole circle rather than searched.
    """
    a, b = fit["params"][:2]
    closed_form = fit.get("closed_form", False)
    # In c·(a·x + b) + d, c and d absorb any a and b, so a linear fit has no edge to hit.
    flaggable = fit["function"] != "x"
    summary = {
        "edge": [layer, i, j],
        "function": fit["function"],
        "a": a, "b": b, "c": fit["params"][2], "d": fit["params"][3],
        "r2": fit.get("r2"),
        "a_range": fit["a_range"],
        "b_range": fit["b_range"],
        "closed_form": closed_form,
        "a_at_edge": flaggable and _at_searched_edge(a, fit["a_range"]),
        "b_at_edge": flaggable and not closed_form and _at_searched_edge(b, fit["b_range"]),
    }
    if summary["a_at_edge"] or summary["b_at_edge"]:
        logger.warning("edge %s: %s fit ended at the edge of its range (a = %.4g in %s, b = %.4g in %s)",
                       summary["edge"], fit["function"], a, fit["a_range"], b, fit["b_range"])
    return summary


def _edges(model):
    for layer in range(len(model.width_in) - 1):
        for i in range(model.width_in[layer]):
            for j in range(model.width_out[layer + 1]):
                yield layer, i, j


def snap_spectral(model, x_snap, lib, relative_width, simplicity_weight=PYKAN_SIMPLICITY_WEIGHT):
    """Snap every edge of ``model`` with spectrum-centred sine ranges; return the edge summaries.

    The snapped model is then switched to ``kan_symbolic_path``'s vectorised
    forward pass, which the refit uses.
    """
    from bench.methods import kan_symbolic_path

    model.save_act = True
    model.symbolic_enabled = True
    model(x_snap)
    summaries = []
    for layer, i, j in _edges(model):
        if model.act_fun[layer].mask[i][j] == 0:
            model.fix_symbolic(layer, i, j, "0", fit_params_bool=False, log_history=False)
            continue
        fit = snap_edge(model, layer, i, j, lib, relative_width, simplicity_weight)
        summaries.append(edge_summary(layer, i, j, fit))
    kan_symbolic_path.enable(model)
    return summaries


def stock_edge_summaries(model):
    """Return the edge summaries of a model snapped by pykan's auto_symbolic, which searches a and b in (-10, 10).

    Like ``snap_spectral``, it then switches the model to
    ``kan_symbolic_path``'s vectorised forward pass for the refit.
    """
    from bench.methods import kan_symbolic_path

    # NOTE: the switch belongs in KANSymbolic.snap, but bench/methods/kan.py is part of every KAN
    # method's cache key, so it waits for a change that republishes them all.
    summaries = []
    for layer, i, j in _edges(model):
        symbolic = model.symbolic_fun[layer]
        if symbolic.mask[j][i] == 0:
            continue
        fit = {"function": symbolic.funs_name[j][i], "params": [float(v) for v in symbolic.affine[j][i].detach()],
               "r2": None, "a_range": list(STOCK_RANGE), "b_range": list(STOCK_RANGE)}
        summaries.append(edge_summary(layer, i, j, fit))
    kan_symbolic_path.enable(model)
    return summaries
