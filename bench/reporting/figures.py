"""The report's figures: which runs and windows they show, their captions and alt text.

Figures are drawn from the stored prediction arrays. A published bundle has
no arrays, so it keeps the figures it was exported with, together with their
captions in ``figures/figures.json``.
"""

import json
from dataclasses import asdict, dataclass

import numpy as np

from bench.errors import DataError
from bench.reporting import plotting
from bench.reporting.markdown import escape
from bench.reporting.results import bench_command, ordered_methods
from bench.reporting.targets import SEED_SIGNAL, stored_signal, target_values

FIGURES_FOLDER = "figures"
FIGURES_INDEX = "figures.json"
# The sections of the Figures page, in page order; each figure belongs to one.
SECTIONS = ("target", "fits", "zoom", "residuals", "seeds")
# The section of the one figure of a suite signal's page, which a bundle keeps beside the Figures page's.
SIGNAL_SECTION = "signal"
SIGNAL_FIGURE = "signal.svg"
# The title of the zoomed window at the end of the interval. The seed signal's chirp is fastest there.
SEED_END_TITLE = "the end, where the chirp is fastest"
END_TITLE = "the end of the interval"
# The width of a zoomed window, in units of x.
WINDOW_WIDTH = 0.1
# The step between candidate starts of the window of largest disagreement. Half a window
# makes candidates overlap, so a difference near a boundary is not split in two.
WINDOW_STEP = WINDOW_WIDTH / 2


@dataclass(frozen=True)
class RenderedFigure:
    """One figure: its file name, the Figures page section it belongs to, its caption, alt text and SVG bytes."""

    name: str
    section: str
    caption: str
    alt: str
    svg: bytes


def build_figures(results, target):
    """Draw every figure of the report from the arrays of ``results`` and the true formula ``target``.

    ``target`` None stands for a data series, whose values are the target.
    Each method is shown by its first ok repetition, so a figure does not
    pick a run by how well it did.
    """
    x = results.grid()
    y = target_values(results, target)
    curves = _first_ok_curves(results)
    domain = [float(value) for value in results.manifest["config"]["signal"]["domain"]]
    signal = stored_signal(results)
    is_seed = signal.name == SEED_SIGNAL
    windows, titles = zoom_windows(x, curves, domain, end_title=SEED_END_TITLE if is_seed else END_TITLE)
    interval = _interval(results)
    shape = ("two sines and a chirp whose frequency rises with x" if is_seed
             else f"{signal.description} ({signal.name})")

    figures = [_target_figure(x, y, windows, interval, shape)]
    figures += [_fit_figure(x, y, method, label, predictions, interval) for method, (label, predictions) in curves.items()]
    if curves:
        figures.append(_zoom_figure(x, y, curves, windows, titles))
        figures.append(_residuals_figure(x, y, curves, interval))
    figures.append(_seeds_figure(results.runs))
    return figures


def signal_figure(results, target):
    """Draw the figure of a suite signal's page: the target and each method's first ok run on the whole interval.

    ``target`` None stands for a data series, whose values are the target.
    """
    x = results.grid()
    y = target_values(results, target)
    curves = _first_ok_curves(results)
    signal = stored_signal(results)
    interval = _interval(results)
    labels = ", ".join(label for label, _ in curves.values()) or "no method, because none has an ok run"
    return RenderedFigure(
        name=SIGNAL_FIGURE,
        section=SIGNAL_SECTION,
        caption=f"The target of signal {signal.name} on {interval} and the predictions of each method's first ok run: "
                f"{labels}.",
        alt=(f"Line plot against x of the target, {signal.description}, in black, with the predictions of "
             f"{labels} over it in the colours and dash patterns of the legend."),
        svg=plotting.overlay_svg(x, y, curves, f"Signal {signal.name}: target and each method's first ok run"),
    )


def _first_ok_curves(results):
    """Return {method: (label, predictions on the grid)} of each method's first ok run."""
    return {method: (f"{method}, repetition {repetition}", results.predictions(key))
            for method, (repetition, key) in representative_runs(results).items()}


def representative_runs(results):
    """Return, for each method with an ok run, the repetition and cache key of its first ok run."""
    first_ok = {}
    for method in ordered_methods(results.runs["method"]):
        ok = results.runs[(results.runs["method"] == method) & (results.runs["status"] == "ok")]
        if not ok.empty:
            first = ok.iloc[0]
            first_ok[method] = (int(first["repetition"]), first["key"])
    return first_ok


def zoom_windows(x, curves, domain, end_title=SEED_END_TITLE):
    """Return the zoomed windows of the interval ``domain``, as (start, stop) pairs of x, and a title for each.

    The first window is the start of the interval. The second is its end,
    titled ``end_title``: on the seed signal the chirp sin(2π(50x + 20x²)),
    whose frequency 50 + 40x rises with x, is fastest there. The third, when
    at least two methods have runs to compare, is the window outside those
    two where the methods' predictions spread most: the largest mean over x
    of their variance across methods.
    """
    start, stop = domain
    width = min(WINDOW_WIDTH, (stop - start) / 3)
    windows = [(start, start + width), (stop - width, stop)]
    titles = [
        f"x in [{start:g}, {start + width:g}]: the start of the interval",
        f"x in [{stop - width:g}, {stop:g}]: {end_title}",
    ]
    if len(curves) >= 2:
        spread = np.var(np.stack([predictions for _, predictions in curves.values()]), axis=0)
        best = None
        for left in np.arange(start + width, stop - 2 * width + 1e-12, WINDOW_STEP):
            inside = (x >= left) & (x <= left + width)
            score = float(np.mean(spread[inside])) if inside.any() else -1.0
            if best is None or score > best[0]:
                best = (score, float(left))
        if best is not None:
            # Adding 0.0 turns a -0.0 from rounding into 0.0, which prints as "0", not "-0".
            left = round(best[1], 6) + 0.0
            windows.append((left, left + width))
            titles.append(f"x in [{left:g}, {left + width:g}]: where the methods' predictions differ most")
    order = sorted(range(len(windows)), key=lambda index: windows[index][0])
    return [windows[index] for index in order], [titles[index] for index in order]


def _interval(results):
    start, stop = results.manifest["config"]["signal"]["domain"]
    return f"[{start}, {stop})"


def _target_figure(x, y, windows, interval, shape):
    return RenderedFigure(
        name="target.svg",
        section="target",
        caption=f"The true target f(x) on the full interval {interval}; the shaded bands are the windows zoomed in below.",
        alt=(
            f"Line plot of the true target f(x) against x on {interval}: {shape}, "
            f"with {len(windows)} shaded bands that mark the zoomed windows."
        ),
        svg=plotting.target_svg(x, y, windows),
    )


def _fit_figure(x, y, method, label, predictions, interval):
    return RenderedFigure(
        name=f"fit_{method}.svg",
        section="fits",
        caption=(
            f"Target f(x) and the predictions of {label} (its first ok run) on {interval}, "
            "training and test samples together, with the residual below."
        ),
        alt=(
            f"Two panels against x: the true target in black with the predictions of {label} over it, "
            "and below them the residual, prediction minus target."
        ),
        svg=plotting.fit_svg(x, y, predictions, method, label),
    )


def _zoom_figure(x, y, curves, windows, titles):
    labels = ", ".join(label for label, _ in curves.values())
    return RenderedFigure(
        name="zoom.svg",
        section="zoom",
        caption=f"Target f(x) and each method's first ok run ({labels}) in {len(windows)} windows of x.",
        alt=(
            f"{len(windows)} stacked panels, one per window of x ({'; '.join(titles)}), each with the target in "
            f"thick black and the predictions of {labels} in the colours and dash patterns of the legend."
        ),
        svg=plotting.zoom_svg(x, y, curves, windows, titles),
    )


def _residuals_figure(x, y, curves, interval):
    residuals = {method: (label, predictions - y) for method, (label, predictions) in curves.items()}
    return RenderedFigure(
        name="residuals.svg",
        section="residuals",
        caption=(
            f"Residual, prediction minus target, of each method's first ok run on {interval}. "
            "Each panel has its own y scale; its title gives the root mean square."
        ),
        alt=f"{len(residuals)} stacked panels of residual against x, one per method: {', '.join(residuals)}.",
        svg=plotting.residuals_svg(x, residuals),
    )


def _seeds_figure(runs):
    rows = []
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        ok = method_runs[method_runs["status"] == "ok"].dropna(subset=["mse_test"])
        points = [(int(run.repetition), float(run.mse_test)) for run in ok.itertuples(index=False)]
        not_ok = method_runs[method_runs["status"] != "ok"]
        counts = not_ok.groupby("status", sort=False).size()
        note = ", ".join(f"{count} {status}" for status, count in counts.items())
        rows.append((method, points, note))
    missing = [method for method, points, _ in rows if not points]
    alt = "Dot plot of test MSE, one row per method and one marker per ok repetition."
    if missing:
        alt += f" Methods with no ok run, marked only by their status counts: {', '.join(missing)}."
    return RenderedFigure(
        name="test_mse_per_seed.svg",
        section="seeds",
        caption=(
            "Test MSE of every ok run, one row per method and one marker per repetition (seed). "
            "Runs that are not ok have no error to plot; their counts stand at the right."
        ),
        alt=alt,
        svg=plotting.seeds_svg(rows),
    )


def figures_index(figures):
    """Return the JSON that lists ``figures`` with their sections, captions and alt text, for a bundle."""
    entries = [{key: value for key, value in asdict(figure).items() if key != "svg"} for figure in figures]
    return (json.dumps(entries, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def load_bundle_figures(results):
    """Return the figures kept in a published bundle, read from its ``figures/figures.json`` and SVG files."""
    folder = results.directory / FIGURES_FOLDER
    index_path = folder / FIGURES_INDEX
    try:
        entries = json.loads(index_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{index_path} is missing from the bundle. Export the bundle again from results that include the arrays "
            f"(`{bench_command(results.profile)}` writes them)."
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{index_path} is not valid JSON: {error}") from error

    figures = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("section") not in (*SECTIONS, SIGNAL_SECTION):
            raise DataError(f"{index_path} has an entry that is not a figure of one of the sections "
                            f"{(*SECTIONS, SIGNAL_SECTION)}: {entry!r}")
        path = folder / str(entry["name"])
        if not path.is_file() or path.parent != folder:
            raise DataError(f"{index_path} lists {entry['name']!r}, which is not a file in {folder}.")
        figures.append(RenderedFigure(name=path.name, section=entry["section"], caption=str(entry["caption"]),
                                      alt=str(entry["alt"]), svg=path.read_bytes()))
    return figures


def figures_section(figures, section, prefix):
    """Return Markdown image lines for the figures of ``section``, or a sentence when there are none.

    ``prefix`` is the folder of the SVG files, relative to the page that includes the Markdown.
    """
    lines = []
    for figure in figures:
        if figure.section != section:
            continue
        alt = figure.alt.replace('"', "'")
        lines.append(f'![{escape(figure.caption)}]({prefix}/{figure.name}){{fig-alt="{alt}"}}')
    if not lines:
        return "No method has an ok run, so there is nothing to draw here.\n"
    return "\n\n".join(lines) + "\n"
