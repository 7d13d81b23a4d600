"""The metrics table (one row per method) and the per-seed tables (one row per run)."""

from bench.reporting.markdown import (
    MISSING,
    UNDEFINED_STD,
    code,
    escape,
    format_count,
    format_mse,
    format_r2,
    format_seconds,
    mean_std,
    nowrap,
    pipe_table,
)
from bench.reporting.results import ordered_methods

METRICS_HEADER = (
    "Method",
    "Runs ok / total",
    "Test MSE (mean ± std)",
    "Test R² (mean ± std)",
    "Train MSE (mean)",
    "Seconds per run (mean)",
    "Runs not ok",
)
OK_RUNS_HEADER = ("Method", "Repetition", "Seed", "Test MSE", "Test R²", "Train MSE", "Seconds")
NOT_OK_RUNS_HEADER = ("Method", "Repetition", "Seed", "Status", "Stage", "Reason")
# Reasons longer than this are cut under the metrics table. The per-seed tables show them whole.
SUMMARY_REASON_CHARS = 240


def metrics_table(runs):
    """Return the Markdown of the metrics table, its caption, the runs that are not ok and how it is computed.

    Means and standard deviations are over the ok runs of each method. The
    last column counts the runs that are not ok by status. Their reasons
    follow the table as a list, where long words cannot squeeze the numbers.
    """
    rows = []
    not_ok_lines = []
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        ok = method_runs[method_runs["status"] == "ok"]
        not_ok = method_runs[method_runs["status"] != "ok"]
        rows.append(
            [
                code(method),
                f"{len(ok)} / {len(method_runs)}",
                mean_std(ok["mse_test"].dropna(), _format_mse_nowrap),
                mean_std(ok["r2_test"].dropna(), format_r2),
                _mean(ok["mse_train"], _format_mse_nowrap),
                _mean(ok["seconds"], format_seconds),
                _status_counts(not_ok),
            ]
        )
        not_ok_lines += [f"- {code(method)}: {line}" for line in _not_ok_reasons(not_ok, any_ok=not ok.empty)]

    parts = [
        pipe_table(METRICS_HEADER, rows, align="lrrrrrl"),
        ": Test and train metrics of each method over its repetitions.",
    ]
    if not_ok_lines:
        parts += ["Runs that are not ok, with their reasons:", "\n".join(not_ok_lines)]
    parts.append(
        "Means and standard deviations are over the ok runs of each method. The standard deviation is the "
        f"sample standard deviation (ddof = 1), shown as {UNDEFINED_STD} when a method has a single ok run. "
        "MSE is the mean squared error (lower is better) and R² the coefficient of determination (higher is "
        f"better, at most 1), both on the held-out test samples unless marked train. {MISSING} marks a value "
        "that does not apply."
    )
    return "\n\n".join(parts) + "\n"


def per_seed_tables(runs):
    """Return the Markdown of two tables that together contain one row per stored run.

    Ok runs get their metrics. Runs that are not ok have no metrics, so they
    get a table of their own with the status, stage and reason, which leaves
    the reasons room to read.
    """
    ok = runs[runs["status"] == "ok"]
    not_ok = runs[runs["status"] != "ok"]
    parts = []
    if not ok.empty:
        rows = [
            [
                code(run.method),
                format_count(run.repetition),
                format_count(run.seed),
                _format_mse_nowrap(run.mse_test),
                format_r2(run.r2_test),
                _format_mse_nowrap(run.mse_train),
                format_seconds(run.seconds),
            ]
            for run in ok.itertuples(index=False)
        ]
        parts += [pipe_table(OK_RUNS_HEADER, rows, align="lrrrrrr"), ": Every ok run, with its seed and metrics."]
    if not not_ok.empty:
        rows = [
            [
                code(run.method),
                format_count(run.repetition),
                format_count(run.seed),
                run.status,
                escape(run.stage) if run.stage else MISSING,
                escape(run.reason) if run.reason else MISSING,
            ]
            for run in not_ok.itertuples(index=False)
        ]
        parts += [
            pipe_table(NOT_OK_RUNS_HEADER, rows, align="lrrlll"),
            ": Every failed or unavailable run, with the stage where it stopped and the reason.",
        ]
    return "\n\n".join(parts) + "\n"


def _shorten(text):
    one_line = " ".join(text.split())
    if len(one_line) <= SUMMARY_REASON_CHARS:
        return one_line
    # Cut at the last space that fits, so no word is cut in half.
    return one_line[:SUMMARY_REASON_CHARS].rsplit(" ", 1)[0] + " …"


def _format_mse_nowrap(value):
    # Browsers break "2.00e-03" after the hyphen in a narrow column.
    return nowrap(format_mse(value))


def _mean(values, formatter):
    values = values.dropna()
    return formatter(float(values.mean())) if len(values) else MISSING


def _status_counts(not_ok):
    """Count the runs that are not ok by status, such as "2 unavailable"."""
    if not_ok.empty:
        return MISSING
    counts = not_ok.groupby("status", sort=False).size()
    return ", ".join(f"{count} {status}" for status, count in counts.items())


def _not_ok_reasons(not_ok, any_ok):
    """Return one "status: reason" line per distinct status and reason.

    A line starts with its count when some runs are ok or reasons differ.
    Reasons longer than SUMMARY_REASON_CHARS characters are cut.
    """
    groups = not_ok.groupby(["status", "reason"], sort=False).size()
    show_count = any_ok or len(groups) > 1
    lines = []
    for (status, reason), count in groups.items():
        label = f"{count} {status}" if show_count else status
        lines.append(f"{label}: {escape(_shorten(reason))}" if reason else label)
    return lines
