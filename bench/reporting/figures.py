"""SVG figures of the target and of each method's fit, drawn the same way on every rerun."""

import io
from dataclasses import dataclass

import matplotlib
from matplotlib.figure import Figure

from bench.reporting.markdown import escape
from bench.reporting.results import ordered_methods
from bench.signal import evaluate_expression

# Okabe-Ito colours, which stay distinct under the common colour-vision deficiencies.
TARGET_COLOUR = "#0072B2"  # blue
PREDICTION_COLOUR = "#D55E00"  # vermillion
RESIDUAL_COLOUR = "#000000"

# svg.hashsalt fixes the ids that matplotlib otherwise draws at random, and the Date metadata is
# left out, so an unchanged figure is byte-identical on every rerun.
STYLE = {
    "svg.hashsalt": "kan-sr-bench",
    "svg.fonttype": "path",
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}
SVG_METADATA = {"Date": None}
WIDTH_INCHES = 9.0


@dataclass(frozen=True)
class RenderedFigure:
    """One figure: its file name, its SVG bytes, and the caption and alt text for the page."""

    name: str
    svg: bytes
    caption: str
    alt: str


def build_figures(results, target):
    """Draw ``target.svg`` and one ``fit_<method>.svg`` per method with an ok run (its first ok repetition)."""
    x = results.grid()
    y = evaluate_expression(target, x)
    start, stop = results.manifest["config"]["signal"]["domain"]
    interval = f"[{start}, {stop})"

    figures = [
        RenderedFigure(
            name="target.svg",
            svg=_target_svg(x, y),
            caption=f"The true target f(x) on the full interval {interval}.",
            alt=(
                f"Line plot of the true target f(x) against x on {interval}: "
                "two sines and a chirp whose frequency rises with x."
            ),
        )
    ]
    for method in ordered_methods(results.runs["method"]):
        ok = results.runs[(results.runs["method"] == method) & (results.runs["status"] == "ok")]
        if ok.empty:
            continue
        first = ok.iloc[0]
        repetition = int(first["repetition"])
        predictions = results.predictions(first["key"])
        label = f"{method}, repetition {repetition}"
        figures.append(
            RenderedFigure(
                name=f"fit_{method}.svg",
                svg=_fit_svg(x, y, predictions, label),
                caption=(
                    f"Target and predictions of {method} (repetition {repetition}, its first ok run) "
                    f"on {interval}, with the residual below."
                ),
                alt=(
                    f"Two panels against x: the true target and the predictions of {label} overlaid, "
                    "and below them the residual, predictions minus target."
                ),
            )
        )
    return figures


def figures_section(figures, prefix):
    """Return Markdown image lines for ``figures``.

    ``prefix`` is the folder of the SVG files, relative to the page that includes the Markdown.
    """
    lines = []
    for figure in figures:
        alt = figure.alt.replace('"', "'")
        lines.append(f'![{escape(figure.caption)}]({prefix}/{figure.name}){{fig-alt="{alt}"}}')
    return "\n\n".join(lines) + "\n"


def _target_svg(x, y):
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 3.2), layout="constrained")
        axes = figure.subplots()
        axes.plot(x, y, color=TARGET_COLOUR, linewidth=0.8, label="target")
        axes.set_xlabel("x")
        axes.set_ylabel("f(x)")
        axes.set_title("True target", loc="left")
        axes.set_xlim(x[0], x[-1])
        return _svg_bytes(figure)


def _fit_svg(x, y, predictions, label):
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_INCHES, 4.6), layout="constrained")
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        top.plot(x, y, color=TARGET_COLOUR, linewidth=1.0, label="target")
        top.plot(x, predictions, color=PREDICTION_COLOUR, linewidth=0.7, label="predictions")
        top.set_ylabel("f(x)")
        top.set_title(label, loc="left")
        # Above the axes, so the legend never hides the curves.
        top.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2)
        bottom.plot(x, predictions - y, color=RESIDUAL_COLOUR, linewidth=0.6)
        bottom.set_xlabel("x")
        bottom.set_ylabel("residual")
        bottom.set_xlim(x[0], x[-1])
        return _svg_bytes(figure)


def _svg_bytes(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata=SVG_METADATA)
    return buffer.getvalue()
