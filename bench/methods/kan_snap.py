"""Snapping a KAN's edges to symbolic functions, with the sine's search range taken from each edge's spectrum.

pykan's ``auto_symbolic`` fits y ≈ c·f(a·x + b) + d on every edge by a
grid search of a and b in (-10, 10) (``kan.utils.fit_params``). A tone of
10 Hz on x in [-0.5, 0.5] needs a = 2π·10 ≈ 62.8, outside that range, so
the stock search cannot find it. Here each edge's sine range is centred on
the largest peak of the edge activation's spectrum, and every fit records
whether a or b ended at the edge of its range.
"""

import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

STOCK_RANGE = (-10.0, 10.0)
PHASE_RANGE = (-math.pi, math.pi)
GRID_NUMBER = 101  # pykan's fit_params default: a and b are each tried at this many values per zoom

# pykan's suggest_symbolic ranks functions by w · complexity + (1 - w) · log2(1 + 1e-5 - r²), w = 0.8.
PYKAN_SIMPLICITY_WEIGHT = 0.8


def dominant_frequency(x, y, oversample=8):
    """Return the frequency of the largest spectral peak of y(x), in cycles per unit of x, and x's span.

    The samples are sorted, interpolated onto an even grid, centred and
    Hann-windowed; the spectrum is zero-padded ``oversample`` times.
    """
    order = np.argsort(x, kind="stable")
    xs, ys = np.asarray(x, dtype=np.float64)[order], np.asarray(y, dtype=np.float64)[order]
    span = float(xs[-1] - xs[0])
    if span <= 0:
        return 0.0, 0.0
    even = np.linspace(xs[0], xs[-1], xs.size)
    values = np.interp(even, xs, ys)
    values = (values - values.mean()) * np.hanning(values.size)
    length = values.size * oversample
    spectrum = np.abs(np.fft.rfft(values, length))
    frequencies = np.fft.rfftfreq(length, d=span / (xs.size - 1))
    return float(frequencies[1 + int(np.argmax(spectrum[1:]))]), span


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


def _ranking_loss(r2, complexity, simplicity_weight):
    return simplicity_weight * complexity + (1 - simplicity_weight) * math.log2(1 + 1e-5 - r2)


def _fit(x, y, name, relative_width):
    from kan.utils import SYMBOLIC_LIB, fit_params

    a_range = sine_range(x.numpy(), y.numpy(), relative_width) if name == "sin" else STOCK_RANGE
    b_range = PHASE_RANGE if name == "sin" else STOCK_RANGE
    params, r2 = fit_params(x, y, SYMBOLIC_LIB[name][0], a_range=a_range, b_range=b_range,
                            grid_number=GRID_NUMBER, verbose=False)
    return {"function": name, "params": [float(v) for v in params], "r2": float(r2),
            "a_range": list(a_range), "b_range": list(b_range), "complexity": SYMBOLIC_LIB[name][2]}


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
    """Return the stored description of one snapped edge, with its range-edge flags."""
    a, b = fit["params"][:2]
    summary = {
        "edge": [layer, i, j],
        "function": fit["function"],
        "a": a, "b": b, "c": fit["params"][2], "d": fit["params"][3],
        "r2": fit.get("r2"),
        "a_range": fit["a_range"],
        "b_range": fit["b_range"],
        # In c·(a·x + b) + d, c and d absorb any a and b, so a linear fit has no edge to hit.
        "a_at_edge": fit["function"] != "x" and at_range_edge(a, fit["a_range"]),
        "b_at_edge": fit["function"] != "x" and at_range_edge(b, fit["b_range"]),
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
    """Snap every edge of ``model`` with spectrum-centred sine ranges; return the edge summaries."""
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
    return summaries


def stock_edge_summaries(model):
    """Return the edge summaries of a model snapped by pykan's auto_symbolic, which searches a and b in (-10, 10)."""
    summaries = []
    for layer, i, j in _edges(model):
        symbolic = model.symbolic_fun[layer]
        if symbolic.mask[j][i] == 0:
            continue
        fit = {"function": symbolic.funs_name[j][i], "params": [float(v) for v in symbolic.affine[j][i].detach()],
               "r2": None, "a_range": list(STOCK_RANGE), "b_range": list(STOCK_RANGE)}
        summaries.append(edge_summary(layer, i, j, fit))
    return summaries
