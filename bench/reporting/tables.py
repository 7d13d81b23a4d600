"""The tables of the report: metrics per method with confidence intervals, the headline table and one row per run."""

from bench.reporting.markdown import (
    MISSING,
    UNDEFINED_STD,
    code,
    counted,
    escape,
    fenced_div,
    format_count,
    format_mse,
    format_r2,
    format_seconds,
    is_missing,
    nowrap,
    pipe_table,
)
from bench.methods.base import CHOSEN_HERE, PACKAGE_DEFAULTS, REFERENCE
from bench.reporting.results import STATUSES, is_reference, ordered_methods, settings_label
from bench.reporting.statistics import CONFIDENCE, summarize

CONFIDENCE_LABEL = f"{CONFIDENCE:.0%} CI"
TEST_HEADER = (
    "Method",
    "Runs ok / total",
    "Test MSE, mean ± std",
    f"Test MSE, {CONFIDENCE_LABEL}",
    "Test R², mean ± std",
    f"Test R², {CONFIDENCE_LABEL}",
)
COST_HEADER = (
    "Method",
    "Train MSE, mean ± std",
    f"Train MSE, {CONFIDENCE_LABEL}",
    "Seconds per run, mean ± std",
    f"Seconds per run, {CONFIDENCE_LABEL}",
    "Runs not ok",
)
HEADLINE_HEADER = (
    "Method", "Settings", "Runs ok / total", f"Test MSE, mean [{CONFIDENCE_LABEL}]", f"Test R², mean [{CONFIDENCE_LABEL}]",
)
OK_RUNS_HEADER = ("Method", "Repetition", "Seed", "Test MSE", "Test R²", "Train MSE", "Seconds", "Record")
NOT_OK_RUNS_HEADER = ("Method", "Repetition", "Seed", "Status", "Stage", "Reason", "Record")
AVAILABILITY_HEADER = ("Method", *(f"Runs {status}" for status in STATUSES))
# The meaning of each label in the Settings column, as a clause that follows "means that". A
# method's adapter declares its label.
SETTINGS_LABEL_MEANINGS = {
    CHOSEN_HERE: "this benchmark chose the budgets and options, so that a bench fits a time budget on a small "
                 "machine, instead of the package's defaults",
    PACKAGE_DEFAULTS: "the method runs with its package's defaults",
    REFERENCE: "the row is a reference and not a competitor, such as an accuracy ceiling that is handed the "
               "target's form or a floor that learns nothing about the signal",
}
# The ids of the fenced divs around the tables, which the pages and the browser test find them by.
TEST_TABLE_ID = "results-metrics"
COST_TABLE_ID = "results-cost"
HEADLINE_TABLE_ID = "headline-metrics"
# R² is at most 1, reached by a perfect fit; the interval of its mean is cut there.
R2_MAX = 1.0
# Reasons longer than this are cut in the summaries. The per-seed tables show them whole.
SUMMARY_REASON_CHARS = 240


def metrics_tables(runs):
    """Return the Markdown of the two metrics tables, one row per method, and how their numbers are computed.

    The first table has the mean, standard deviation and confidence interval
    of the test metrics over the ok runs. The second has the same for the
    training error and the time per run, and the count of runs that are not
    ok. Their reasons follow as a list, where long words cannot squeeze the
    numbers. Reference rows carry the label of their settings after the name.
    """
    test_rows, cost_rows, not_ok_lines = [], [], []
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        ok = method_runs[method_runs["status"] == "ok"]
        not_ok = method_runs[method_runs["status"] != "ok"]
        mse = summarize(ok["mse_test"], lower_bound=0.0)
        r2 = summarize(ok["r2_test"], upper_bound=R2_MAX)
        name = method_cell(method)
        test_rows.append([
            name,
            f"{len(ok)} / {len(method_runs)}",
            _mean_std(mse, _format_mse_nowrap),
            _interval(mse, format_mse),
            _mean_std(r2, format_r2),
            _interval(r2, format_r2),
        ])
        train_mse = summarize(ok["mse_train"], lower_bound=0.0)
        seconds = summarize(ok["seconds"], lower_bound=0.0)
        cost_rows.append([
            name,
            _mean_std(train_mse, _format_mse_nowrap),
            _interval(train_mse, format_mse),
            _mean_std(seconds, format_seconds),
            _interval(seconds, format_seconds),
            _status_counts(not_ok),
        ])
        not_ok_lines += [f"- {code(method)}: {line}" for line in not_ok_reasons(not_ok, any_ok=not ok.empty)]

    parts = [
        fenced_div(TEST_TABLE_ID, pipe_table(TEST_HEADER, test_rows, align="lrrrrr"),
                   ": Test metrics of each method over its ok runs."),
        fenced_div(COST_TABLE_ID, pipe_table(COST_HEADER, cost_rows, align="lrrrrl"),
                   ": Training error and time per run of each method over its ok runs, and its runs that are not ok. "
                   "The time of a method that builds on the KAN numeric run of its repetition leaves that run out."),
    ]
    if not_ok_lines:
        parts += ["Runs that are not ok, with their reasons:", "\n".join(not_ok_lines)]
    if any(is_reference(method) for method in runs["method"].unique()):
        parts.append(f"*({REFERENCE})* after a method's name means that {SETTINGS_LABEL_MEANINGS[REFERENCE]}.")
    parts.append(_statistics_note())
    return "\n\n".join(parts) + "\n"


def headline_table(runs):
    """Return the Markdown of the headline table: per method, its settings label, the ok runs and the test metrics."""
    rows, labels = [], []
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        ok = method_runs[method_runs["status"] == "ok"]
        labels.append(settings_label(method))
        rows.append([
            code(method),
            escape(labels[-1] or MISSING),
            f"{len(ok)} / {len(method_runs)}",
            mean_interval(summarize(ok["mse_test"], lower_bound=0.0), format_mse),
            mean_interval(summarize(ok["r2_test"], upper_bound=R2_MAX), format_r2),
        ])
    table = fenced_div(HEADLINE_TABLE_ID, pipe_table(HEADLINE_HEADER, rows, align="llrrr"),
                       ": Test error of each method over its ok runs, with the confidence interval of the mean.")
    note = (
        f"The mean is over the ok runs of each method, one run per seed; in brackets, the Student-t "
        f"{CONFIDENCE:.0%} confidence interval of that mean. MSE is lower-is-better, R² higher-is-better."
    )
    meanings = [f"*{label}* means that {meaning}" for label, meaning in SETTINGS_LABEL_MEANINGS.items() if label in labels]
    if meanings:
        note += " In the Settings column, " + "; ".join(meanings) + "."
    return f"{table}\n\n{note}\n"


def unrun_methods_note(results):
    """Return a sentence naming the configured methods that have no stored run, or an empty string.

    Such a method's settings changed after its last run, or a bench ran
    with --methods that left it out, so runs.csv lists none of its runs.
    """
    configured = results.manifest["config"]["run"]["methods"]
    missing = [method for method in ordered_methods(configured) if method not in set(results.runs["method"])]
    if not missing:
        return ""
    names = ", ".join(code(method) for method in missing)
    single = len(missing) == 1
    pronoun, possessive, verb = ("it", "its", "it is") if single else ("them", "their", "they are")
    return (
        f"\nThe configuration also lists {names}, but no run of {pronoun} with {possessive} current settings "
        f"is stored, so {verb} left out of every table. "
        f"`{results.rerun_command(missing)}` computes the missing runs.\n"
    )


def missing_runs_note(results):
    """Return a sentence naming the methods with fewer stored runs than the configured repetitions, or an empty string.

    ``results`` contains the runs of one noise level. A bench that was stopped,
    or a run table with rows removed, leaves such gaps, and every mean and
    interval of these methods is then over fewer runs.
    """
    repetitions = results.manifest["config"]["run"]["repetitions"]
    counts = results.runs.groupby("method")["repetition"].nunique()
    methods = [method for method in ordered_methods(list(counts.index)) if counts[method] < repetitions]
    short = [f"{code(method)} ({counts[method]} of {repetitions})" for method in methods]
    if not short:
        return ""
    return (
        f"\nThe configuration asks for {counted(repetitions, 'repetition')} of each method, but runs.csv lists fewer "
        f"for {', '.join(short)}, so their statistics cover only the runs listed. "
        f"`{results.rerun_command(methods)}` computes the missing runs.\n"
    )


def per_seed_tables(runs, records_prefix):
    """Return the Markdown of two tables that together contain one row per stored run.

    Ok runs get their metrics. Runs that are not ok have no metrics, so they
    get a table of their own with the status, stage and reason, which leaves
    the reasons room to read. Each row links to the run's JSON record under
    ``records_prefix``, a folder relative to the including page.
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
                _record_link(records_prefix, run.key),
            ]
            for run in ok.itertuples(index=False)
        ]
        parts += [pipe_table(OK_RUNS_HEADER, rows, align="lrrrrrrl"), ": Every ok run, with its seed and metrics."]
    if not not_ok.empty:
        rows = [
            [
                code(run.method),
                format_count(run.repetition),
                format_count(run.seed),
                run.status,
                escape(run.stage) if run.stage else MISSING,
                escape(run.reason) if run.reason else MISSING,
                _record_link(records_prefix, run.key),
            ]
            for run in not_ok.itertuples(index=False)
        ]
        parts += [
            pipe_table(NOT_OK_RUNS_HEADER, rows, align="lrrllll"),
            ": Every failed or unavailable run, with the stage where it stopped and the reason.",
        ]
    return "\n\n".join(parts) + "\n"


def availability_table(runs):
    """Return the Markdown of a table that counts each method's runs by status, then the reasons of those not ok.

    Methods whose runs stopped for the same reasons share one line.
    """
    rows, reasons = [], {}
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        rows.append([code(method), *(str(int((method_runs["status"] == status).sum())) for status in STATUSES)])
        not_ok = method_runs[method_runs["status"] != "ok"]
        lines = tuple(not_ok_reasons(not_ok, any_ok=len(not_ok) < len(method_runs)))
        if lines:
            reasons.setdefault(lines, []).append(method)
    parts = [pipe_table(AVAILABILITY_HEADER, rows, align="lrrr"), ": Runs of each method by status."]
    if reasons:
        items = [f"- {', '.join(code(method) for method in methods)}: {'; '.join(lines)}" for lines, methods in reasons.items()]
        parts += ["Why runs did not finish ok:", "\n".join(items)]
    else:
        parts.append("Every run finished ok.")
    return "\n\n".join(parts) + "\n"


def not_ok_reasons(not_ok, any_ok):
    """Return one "status: reason" line per distinct status and reason of the runs in ``not_ok``.

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


def _statistics_note():
    return (
        "Means, standard deviations and intervals are over the ok runs of each method, one run per seed. The "
        f"standard deviation is the sample standard deviation (ddof = 1). The {CONFIDENCE:.0%} confidence interval "
        "of the mean is the Student-t interval, mean ± t · std / √n with n − 1 degrees of freedom, cut at 0 for "
        "an error or a time, which cannot be negative, and at 1 for R², which cannot exceed 1. A method with a "
        f"single ok run has no standard deviation or interval ({UNDEFINED_STD}). MSE is the mean squared error "
        "(lower is better) and R² the coefficient of determination (higher is better, at most 1), both on the "
        f"held-out test samples unless marked train. {MISSING} marks a value that does not apply."
    )


def _mean_std(summary, formatter):
    if summary.count == 0:
        return MISSING
    # A no-break space keeps ± on the line of the mean when a narrow column wraps the pair.
    mean = formatter(summary.mean) + "\u00a0±"
    if summary.count == 1:
        return f"{mean} {UNDEFINED_STD}"
    return f"{mean} {formatter(summary.std)}"


def _interval(summary, formatter):
    if summary.count == 0:
        return MISSING
    if is_missing(summary.low):
        return f"[{UNDEFINED_STD}]"
    return nowrap(f"[{formatter(summary.low)}, {formatter(summary.high)}]")


def mean_interval(summary, formatter):
    """Return a Summary's mean followed by its confidence interval in brackets, as one table cell."""
    if summary.count == 0:
        return MISSING
    return f"{nowrap(formatter(summary.mean))} {_interval(summary, formatter)}"


def method_cell(method):
    """Return the method's name as code, followed by "(reference)" for a reference row."""
    return f"{code(method)} ({REFERENCE})" if is_reference(method) else code(method)


def _record_link(prefix, key):
    return f"[JSON]({prefix}/{key}.json)"


def _shorten(text):
    one_line = " ".join(text.split())
    if len(one_line) <= SUMMARY_REASON_CHARS:
        return one_line
    # Cut at the last space that fits, so no word is cut in half.
    return one_line[:SUMMARY_REASON_CHARS].rsplit(" ", 1)[0] + " …"


def _format_mse_nowrap(value):
    # Browsers break "2.00e-03" after the hyphen in a narrow column.
    return nowrap(format_mse(value))


def _status_counts(not_ok):
    """Count the runs that are not ok by status, such as "2 unavailable"."""
    if not_ok.empty:
        return MISSING
    counts = not_ok.groupby("status", sort=False).size()
    return ", ".join(f"{count} {status}" for status, count in counts.items())
