"""The includes of one suite signal's page: the signal, its sampling, each method's metrics, the figure and the formulas.

Every page is written from one template (``report/_signal_template.qmd``),
in which ``bench.reporting.suite`` puts the signal's name. The includes
come from the signal's stored results only.
"""

import numpy as np
import sympy

from bench import signals
from bench.methods.base import REFERENCE
from bench.reporting.experiment import sampling_table
from bench.reporting.figures import SIGNAL_FIGURE, SIGNAL_SECTION, load_bundle_figures, signal_figure
from bench.reporting.formulas import formulas_section, recovery_section
from bench.reporting.markdown import (
    MISSING,
    code,
    display_math,
    escape,
    fenced_div,
    format_mse,
    format_r2,
    format_seconds,
    nowrap,
    pipe_table,
)
from bench.reporting.overview import banner
from bench.reporting.results import STATUSES, is_reference, ordered_methods
from bench.reporting.statistics import CONFIDENCE, summarize
from bench.reporting.tables import R2_MAX, mean_interval, method_cell, not_ok_reasons
from bench.reporting.targets import stored_signal

# The includes of a signal's page, as the template names them.
INCLUDES = ("banner.md", "signal.md", "sampling.md", "metrics.md", "figure.md", "recovery.md", "formulas.md")
FIGURES_FOLDER = "figures"
# The id of the fenced div around the metrics table, which the tests find it by.
METRICS_TABLE_ID = "signal-metrics"
METRICS_HEADER = (
    "Method",
    "Runs ok / failed / unavailable",
    "Test MSE, median",
    f"Test MSE, mean [{CONFIDENCE:.0%} CI]",
    "Test R², median",
    f"Test R², mean [{CONFIDENCE:.0%} CI]",
    "Seconds per run, median",
)
# The model that each reference method fits. On a signal other than the seed, the ceiling is not handed that
# signal's form.
REFERENCE_FITS = {
    "ceiling_nls": "a sum of chirped sinusoids A·sin(φ + 2π(f·x + r·x²)), the seed target's form",
    "floor_mean": "the mean of the training targets",
    "floor_linear": "a quadratic in x",
}
# The source of each data series, as the page names it.
DATA_SOURCES = {
    "sunspots": (
        "the yearly sunspot numbers from 1700 to 2008 that statsmodels ships (`statsmodels.datasets.sunspots`, "
        "column `SUNACTIVITY`), one value per year in time order"
    ),
}


def signal_page_files(results, compared, shown_path, note, figure_prefix):
    """Return the includes of the page of the signal of ``results``, keyed by path relative to the signal's folder.

    ``compared`` are the runs that the page shows, those at the lowest noise
    level. ``shown_path`` is the results folder as the page names it, and
    ``note`` a sentence that the banner appends. ``figure_prefix`` is the
    folder of the signal's figure relative to the page. The values are
    text, except the figure's SVG bytes. A published bundle keeps the
    figure it was exported with. A bundle exported before suites existed has
    none, and the page states that.
    """
    signal = stored_signal(results)
    kind = "published bundle" if results.is_bundle else "results folder"
    source = f"Signal {code(signal.name)} of the suite, read from the {kind} {code(shown_path)}."
    figure = _stored_or_drawn_figure(compared, signal)
    files = {
        "banner.md": banner(compared, f"{source} {note}".strip()),
        "signal.md": signal_text(compared, signal),
        "sampling.md": sampling_table(compared) + "\n",
        "metrics.md": metrics_table(compared.runs),
        "recovery.md": recovery_section(compared),
        "formulas.md": formulas_section(compared.runs, signal.expression, heading="###"),
    }
    if figure is None:
        files["figure.md"] = (f"The bundle {code(shown_path)} was exported before signal pages had a figure, so "
                              "there is none to show. Export it again to add it.\n")
    else:
        alt = figure.alt.replace('"', "'")
        files["figure.md"] = f'![{escape(figure.caption)}]({figure_prefix}/{SIGNAL_FIGURE}){{fig-alt="{alt}"}}\n'
        files[f"{FIGURES_FOLDER}/{SIGNAL_FIGURE}"] = figure.svg
    return files


def _stored_or_drawn_figure(results, signal):
    if not results.is_bundle:
        return signal_figure(results, signal.expression)
    stored = [figure for figure in load_bundle_figures(results) if figure.section == SIGNAL_SECTION]
    return stored[0] if stored else None


def signal_text(results, signal):
    """Return the Markdown that describes the signal: its formula, or for a data series its source and why it has no ground truth."""
    if not signal.is_data:
        return (f"The target is {escape(signal.description)}:\n\n{display_math(_latex(results, signal))}\n\n"
                "It is the ground truth that the formulas below are compared with.\n")
    dataset = (results.manifest.get("signal") or {}).get("identity", {}).get("dataset") or _dataset_of(signal.name)
    source = DATA_SOURCES.get(dataset, f"the {escape(dataset)} series")
    start, stop = results.manifest["config"]["signal"]["domain"]
    samples = results.grid().size
    return (
        f"The target is {source}. The {samples} values are placed evenly on the domain "
        f"{escape(f'[{start}, {stop})')}, the i-th at x = {start} + i/{samples}, and standardised to mean 0 and "
        "standard deviation 1. The methods fit these values as a function of x.\n\n"
        "**There is no ground truth.** The series is a measurement, not a formula, so no formula that a method "
        "finds can be checked against a true one, and this page makes no recovery judgement. Only the test "
        "error says how well a method follows the series between the training samples.\n"
    )


def _dataset_of(name):
    entry = signals.SUITE.get(name)
    return entry.dataset if entry is not None and entry.dataset else name


def _latex(results, signal):
    """Return the stored LaTeX of the signal's expression, or the expression's own when the manifest stores none."""
    stored = (results.manifest.get("signal") or {}).get("latex")
    return stored or sympy.latex(signal.expression)


def metrics_table(runs):
    """Return the Markdown of a table with one row per method: status counts, test MSE and R², and the median time.

    Medians and means are over the ok runs; the interval is the Student-t
    interval of the mean, as on the Results page. The reasons of the runs
    that are not ok follow the table.
    """
    rows, reasons = [], []
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        ok = method_runs[method_runs["status"] == "ok"]
        counts = " / ".join(str(int((method_runs["status"] == status).sum())) for status in STATUSES)
        rows.append([
            method_cell(method),
            counts,
            nowrap(median_cell(ok["mse_test"], format_mse)),
            mean_interval(summarize(ok["mse_test"], lower_bound=0.0), format_mse),
            median_cell(ok["r2_test"], format_r2),
            mean_interval(summarize(ok["r2_test"], upper_bound=R2_MAX), format_r2),
            median_cell(ok["seconds"], format_seconds),
        ])
        not_ok = method_runs[method_runs["status"] != "ok"]
        reasons += [f"- {code(method)}: {line}" for line in not_ok_reasons(not_ok, any_ok=not ok.empty)]
    table = fenced_div(METRICS_TABLE_ID, pipe_table(METRICS_HEADER, rows, align="lrrrrrr"),
                       ": Runs of each method by status, and the test metrics and time of its ok runs.")
    parts = [table]
    if reasons:
        parts += ["Runs that are not ok, with their reasons:", "\n".join(reasons)]
    parts.append(
        "Medians and means are over the ok runs of each method, one run per seed. In brackets, the Student-t "
        f"{CONFIDENCE:.0%} confidence interval of the mean, cut at 0 for the MSE and at 1 for R². {MISSING} marks a "
        "value that does not apply, and n/a an interval of a single run."
    )
    references = [method for method in ordered_methods(runs["method"]) if is_reference(method)]
    if references:
        parts.append(f"*({REFERENCE})* after a method's name marks a reference, not a competitor: "
                     f"{reference_fits(references)}.")
    return "\n\n".join(parts) + "\n"


def reference_fits(methods):
    """Return one clause per reference method in ``methods`` that names the model it fits, joined by semicolons."""
    return "; ".join(f"{code(method)} fits {REFERENCE_FITS.get(method, 'a reference model')}" for method in methods)


def median_cell(values, formatter):
    """Return the median of the finite ``values``, formatted, or MISSING when there are none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return formatter(float(np.median(values))) if values.size else MISSING


def status_summary(method_runs):
    """Return the statuses of runs that are all not ok, such as "unavailable" or "1 failed, 1 unavailable"."""
    counts = method_runs.groupby("status", sort=False).size()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{count} {status}" for status, count in counts.items())

