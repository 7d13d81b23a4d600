"""The drawing of every report figure: one matplotlib style, one colour per method, SVG output.

The functions here take arrays and labels and return SVG bytes. Which runs
and windows to draw, and the captions, are chosen in ``bench.reporting.figures``.
"""

import io
import math
import re

import matplotlib
import numpy as np
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

# Okabe and Ito's palette, which stays distinct under the common colour-vision deficiencies.
# Each method keeps its colour and dash pattern in every figure; the target is always black and solid.
TARGET_STYLE = {"color": "#000000", "linestyle": "-"}
METHOD_STYLES = {
    "kan_numeric": {"color": "#E69F00", "linestyle": "-"},  # orange
    "kan_numeric_smoothed": {"color": "#E69F00", "linestyle": (0, (6, 1.5, 1, 1.5))},  # orange, dash-dot
    "kan_numeric_minimal": {"color": "#E69F00", "linestyle": (0, (2, 1))},  # orange, short dashes
    "kan_symbolic": {"color": "#56B4E9", "linestyle": (0, (5, 2))},  # sky blue
    "kan_symbolic_spectral": {"color": "#56B4E9", "linestyle": (0, (1, 1))},  # sky blue, dotted
    "kan_symbolic_sines": {"color": "#56B4E9", "linestyle": (0, (6, 1.5, 1, 1.5, 1, 1.5))},  # sky blue, dash-dot-dot
    "pysr_direct": {"color": "#009E73", "linestyle": (0, (1, 1.5))},  # bluish green
    "pysr_distilled": {"color": "#CC79A7", "linestyle": (0, (6, 2, 1, 2))},  # reddish purple
    "operon_direct": {"color": "#0072B2", "linestyle": (0, (3, 1.5))},  # blue
    "operon_distilled": {"color": "#D55E00", "linestyle": (0, (8, 2, 1, 2, 1, 2))},  # vermillion
    # The reference rows are grey, outside the palette, because they are not competitors. The two
    # floors share a grey that keeps a 3:1 contrast with white, and differ in their dashes.
    "ceiling_nls": {"color": "#333333", "linestyle": (0, (4, 2))},  # dark grey, dashed
    "floor_mean": {"color": "#8C8C8C", "linestyle": (0, (1, 2))},  # grey, dotted
    "floor_linear": {"color": "#8C8C8C", "linestyle": (0, (6, 2, 2, 2))},  # grey, dash-dot
}
# For a method this module does not know: a mid grey that no listed method uses.
OTHER_STYLE = {"color": "#666666", "linestyle": (0, (2, 2))}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

# svg.hashsalt fixes the ids that matplotlib otherwise draws at random, and the Date metadata is
# left out, so an unchanged figure is byte-identical on every rerun. Text becomes paths, so the
# figure looks the same without the font installed; the page carries the alt text.
STYLE = {
    "svg.hashsalt": "kan-sr-bench",
    "svg.fonttype": "path",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "legend.fontsize": 9,
}
SVG_METADATA = {"Date": None}
WIDTH_INCHES = 9.0
X_LABEL = "x (s)"
Y_LABEL = "f(x)"
RESIDUAL_LABEL = "prediction − f(x)"
# A line keeps at most two points per bin (its minimum and maximum), so a 15,000-sample
# curve costs about 2,400 points in the SVG. At 1,200 bins across the plot, a bin is narrower
# than a pixel at the width the pages show the figures, so the drawn line looks the same.
ENVELOPE_BINS = 1200
# The sideways shift between neighbouring methods in the noise figure, in points, so that runs of
# different methods at one noise level do not hide each other.
DODGE_POINTS = 3.0
# The noise figure's x axis leaves this fraction of a decade free at each end.
NOISE_AXIS_MARGIN_DECADES = 0.4
PATH_DECIMALS = 2
# The path data of an SVG element, and a number with decimals in it.
_PATH_DATA = re.compile(rb' d="([^"]*)"')
_DECIMAL = re.compile(rb"-?\d+\.\d+")


def style_of(method):
    """Return the colour and line style of ``method``."""
    return METHOD_STYLES.get(method, OTHER_STYLE)


def envelope(x, y, bins=ENVELOPE_BINS):
    """Return ``x`` and ``y`` reduced to the minimum and maximum of ``y`` in each of ``bins`` runs of samples.

    The two points of a bin stay in x order, so the line drawn through them
    covers the same band as the full curve. Curves with at most
    ``2 * bins`` samples are returned unchanged.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.size <= 2 * bins:
        return x, y
    edges = np.linspace(0, x.size, bins + 1).astype(int)
    keep = []
    for start, stop in zip(edges[:-1], edges[1:]):
        segment = y[start:stop]
        low, high = start + int(np.argmin(segment)), start + int(np.argmax(segment))
        keep += sorted({low, high})
    keep = np.asarray(keep)
    return x[keep], y[keep]


def target_svg(x, y, windows):
    """Draw the target on the whole interval, with the zoom ``windows`` (pairs of x) shaded."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 3.2), layout="constrained")
        axes = figure.subplots()
        for start, stop in windows:
            axes.axvspan(start, stop, color="#999999", alpha=0.2, linewidth=0)
        axes.plot(*envelope(x, y), linewidth=0.8, label="target f(x)", **TARGET_STYLE)
        axes.set_xlabel(X_LABEL)
        axes.set_ylabel(Y_LABEL)
        axes.set_title("True target f(x); shaded: the zoomed windows", loc="left")
        axes.set_xlim(x[0], x[-1])
        return svg_bytes(figure)


def fit_svg(x, y, predictions, method, label):
    """Draw the target and one run's predictions on the whole interval, with the residual below."""
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 4.6), layout="constrained")
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        top.plot(*envelope(x, y), linewidth=1.0, label="target f(x)", **TARGET_STYLE)
        top.plot(*envelope(x, predictions), linewidth=0.8, label=label, **style_of(method))
        top.set_ylabel(Y_LABEL)
        top.set_title(label, loc="left")
        # Above the axes, so the legend never hides the curves.
        top.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2)
        bottom.plot(*envelope(x, predictions - y), linewidth=0.6, color=style_of(method)["color"])
        bottom.set_xlabel(X_LABEL)
        bottom.set_ylabel(RESIDUAL_LABEL)
        bottom.set_xlim(x[0], x[-1])
        return svg_bytes(figure)


def overlay_svg(x, y, curves, title):
    """Draw the target and every curve on the whole interval in one panel.

    ``curves`` maps a method name to (label, predictions on ``x``). The
    target is drawn last, thin, so that it stays visible over the curves
    that follow it closely.
    """
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 4.2), layout="constrained")
        axes = figure.subplots()
        for method, (label, predictions) in curves.items():
            axes.plot(*envelope(x, predictions), linewidth=1.2, label=label, **style_of(method))
        axes.plot(*envelope(x, y), linewidth=0.9, label="target f(x)", **TARGET_STYLE)
        axes.set_xlabel(X_LABEL)
        axes.set_ylabel(Y_LABEL)
        axes.set_title(title, loc="left")
        axes.set_xlim(x[0], x[-1])
        handles, labels = axes.get_legend_handles_labels()
        # The target first in the legend, as in the other figures, and the legend above the axes.
        order = [len(handles) - 1, *range(len(handles) - 1)]
        figure.legend([handles[i] for i in order], [labels[i] for i in order], loc="outside upper center",
                      ncols=min(3, len(handles)))
        return svg_bytes(figure)


def zoom_svg(x, y, curves, windows, titles):
    """Draw the target and every curve in each window, one panel per window.

    ``curves`` maps a method name to (label, predictions on ``x``).
    """
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 2.6 * len(windows) + 0.6), layout="constrained")
        panels = np.atleast_1d(figure.subplots(len(windows), 1))
        for axes, (start, stop), title in zip(panels, windows, titles):
            inside = (x >= start) & (x <= stop)
            axes.plot(x[inside], y[inside], linewidth=2.0, label="target f(x)", **TARGET_STYLE)
            for method, (label, predictions) in curves.items():
                axes.plot(x[inside], predictions[inside], linewidth=1.2, label=label, **style_of(method))
            axes.set_xlim(start, stop)
            axes.set_ylabel(Y_LABEL)
            axes.set_title(title, loc="left")
        panels[-1].set_xlabel(X_LABEL)
        figure.legend(*panels[0].get_legend_handles_labels(), loc="outside upper center", ncols=min(3, len(curves) + 1))
        return svg_bytes(figure)


def residuals_svg(x, residuals):
    """Draw each run's residual on the whole interval, one panel per method, sharing the x axis.

    ``residuals`` maps a method name to (label, residual on ``x``). Each
    panel has its own y scale, so a small residual is not flattened by a
    large one.
    """
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 1.5 * len(residuals) + 0.8), layout="constrained")
        panels = np.atleast_1d(figure.subplots(len(residuals), 1, sharex=True))
        for axes, (method, (label, residual)) in zip(panels, residuals.items()):
            axes.plot(*envelope(x, residual), linewidth=0.6, color=style_of(method)["color"])
            axes.axhline(0.0, color="#000000", linewidth=0.5)
            rms = math.sqrt(float(np.mean(residual**2)))
            axes.set_title(f"{label}: root mean square {rms:.3g}", loc="left")
        panels[-1].set_xlabel(X_LABEL)
        panels[-1].set_xlim(x[0], x[-1])
        figure.supylabel(RESIDUAL_LABEL, fontsize=10)
        return svg_bytes(figure)


def seeds_svg(rows):
    """Draw the test MSE of every ok run, one row per method, one marker per repetition.

    ``rows`` is a list of (method, [(repetition, test MSE), ...], note) in
    display order, top to bottom. ``note`` is written at the right of the
    row, such as the count of runs that are not ok.
    """
    values = [mse for _, points, _ in rows for _, mse in points]
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 0.55 * len(rows) + 1.4), layout="constrained")
        axes = figure.subplots()
        repetitions = sorted({repetition for _, points, _ in rows for repetition, _ in points})
        marker_of = {repetition: MARKERS[i % len(MARKERS)] for i, repetition in enumerate(repetitions)}
        for position, (method, points, note) in enumerate(rows):
            row_y = len(rows) - 1 - position
            for repetition, mse in points:
                axes.plot(mse, row_y, linestyle="none", marker=marker_of[repetition], markersize=7,
                          markerfacecolor="none", markeredgewidth=1.4, color=style_of(method)["color"])
            if note:
                axes.annotate(note, xy=(1.0, row_y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                              textcoords="offset points", va="center", fontsize=9, color="#444444")
        # Positive errors span orders of magnitude; an MSE of exactly 0 cannot be shown on a log axis.
        if values and min(values) > 0:
            axes.set_xscale("log")
            axes.set_xlabel("test MSE (log scale; lower is better)")
        else:
            axes.set_xlabel("test MSE (lower is better)")
        axes.set_yticks(range(len(rows)), [method for method, _, _ in reversed(rows)])
        axes.set_ylim(-0.6, len(rows) - 0.4)
        axes.grid(axis="y", visible=False)
        handles = [
            axes.plot([], [], linestyle="none", marker=marker_of[repetition], markerfacecolor="none",
                      markeredgewidth=1.4, color="#444444", label=f"repetition {repetition}")[0]
            for repetition in repetitions
        ]
        if handles:
            axes.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=min(len(handles), 6))
        return svg_bytes(figure)


def noise_svg(levels, curves, y_label, floor=None):
    """Draw each method's values against the noise level: every run as a hollow marker, the median per level as a line.

    ``levels`` are the noise levels of the sweep. ``curves`` is a list of
    (method, label, points, medians) in legend order: ``points`` contains the
    (level, value) of every run and ``medians`` one (level, median) per level
    with runs. Every value must be positive, because the y axis is
    logarithmic. When some level is positive, the x axis is symlog: linear
    from 0 to the smallest positive level, over the width of one decade, and
    logarithmic above it. So 0 and the positive levels are evenly spaced when
    those are powers of ten. Each method's markers and line are
    shifted sideways by DODGE_POINTS from its neighbour's. Values below
    ``floor``, when given, are drawn at the floor, runs as triangles that
    point down, and the y axis starts just below it.
    """
    positive = sorted(level for level in levels if level > 0)
    values = [value for _, _, points, _ in curves for _, value in points]
    if floor is not None:
        values = [max(value, floor) for value in values]
    clipped = False
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 4.8), layout="constrained")
        axes = figure.subplots()
        for index, (method, label, points, medians) in enumerate(curves):
            shift = (index - (len(curves) - 1) / 2) * DODGE_POINTS
            # The shift is added after the data transform, so it is the same on any axis scale.
            shifted = transforms.offset_copy(axes.transData, fig=figure, x=shift, y=0.0, units="points")
            style = style_of(method)
            if floor is not None:
                medians = [(level, max(value, floor)) for level, value in medians]
                below = [(level, floor) for level, value in points if value < floor]
                points = [(level, value) for level, value in points if value >= floor]
                if below:
                    clipped = True
                    axes.plot(*zip(*below), transform=shifted, linestyle="none", marker="v", markersize=5,
                              markerfacecolor="none", markeredgewidth=1.0, color=style["color"])
            if medians:
                axes.plot(*zip(*medians), transform=shifted, linewidth=1.4, label=label, **style)
            else:
                axes.plot([], [], linewidth=1.4, label=label, **style)
            if points:
                axes.plot(*zip(*points), transform=shifted, linestyle="none", marker="o", markersize=4.5,
                          markerfacecolor="none", markeredgewidth=1.0, color=style["color"])

        # The limits are set here because matplotlib's autoscaling does not follow shifted transforms.
        if positive:
            low = positive[0]
            axes.set_xscale("symlog", linthresh=low, linscale=1.0)
            axes.set_xlim(-low * NOISE_AXIS_MARGIN_DECADES, positive[-1] * 10**NOISE_AXIS_MARGIN_DECADES)
        else:
            axes.set_xlim(-1.0, 1.0)
        axes.set_xticks(levels, [f"{level:g}" for level in levels])
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xlabel("label noise level s (noise σ = s · std(y)); symlog axis, linear between 0 and the "
                        "smallest positive level" if positive else "label noise level s (noise σ = s · std(y))")
        axes.set_yscale("log")
        if values:
            bottom, top = math.log10(min(values)), math.log10(max(values))
            margin = max(0.3, 0.05 * (top - bottom))
            axes.set_ylim(10 ** (bottom - margin), 10 ** (top + margin))
        axes.set_ylabel(y_label)
        axes.grid(axis="x", visible=False)

        method_handles, _ = axes.get_legend_handles_labels()
        key_handles = [
            axes.plot([], [], linewidth=1.4, color="#444444", label="median over the seeds")[0],
            axes.plot([], [], linestyle="none", marker="o", markersize=4.5, markerfacecolor="none",
                      markeredgewidth=1.0, color="#444444", label="one run (seed)")[0],
        ]
        if clipped:
            key_handles.append(axes.plot([], [], linestyle="none", marker="v", markersize=5, markerfacecolor="none",
                                         markeredgewidth=1.0, color="#444444", label=f"one run below {floor:.0e}")[0])
        axes.legend(handles=key_handles + method_handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return svg_bytes(figure)


def svg_bytes(figure):
    """Return ``figure`` as SVG bytes without a date, so that the same figure gives the same bytes.

    matplotlib writes path coordinates in points with six decimals. They
    are rounded to PATH_DECIMALS, a hundredth of a point, far below a pixel,
    which makes a figure of long curves about a third smaller.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata=SVG_METADATA)
    return _PATH_DATA.sub(lambda match: b' d="' + _round_numbers(match[1]) + b'"', buffer.getvalue())


def _round_numbers(path_data):
    def rounded(match):
        text = f"{float(match[0]):.{PATH_DECIMALS}f}".rstrip("0").rstrip(".")
        return (text if text not in ("-0", "") else "0").encode()

    return _DECIMAL.sub(rounded, path_data)
