"""The Noise robustness page: how each method's test error and recovered terms change with label noise.

The page reads the results of a noise sweep: every method at several levels
of Gaussian noise on the training labels (``bench.noise``), scored on the
clean test labels. Its figure is drawn from runs.csv alone, so a published
bundle needs no stored copy of it. Nothing here fits a model.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import NoResultsError
from bench.methods.base import REFERENCE
from bench.reporting import plotting
from bench.reporting.formulas import NUMERIC_METHODS, judge_runs, stored_formulas, true_term_names, verdict_counts
from bench.reporting.markdown import (
    MISSING,
    code,
    counted,
    escape,
    fenced_div,
    format_mse,
    format_r2,
    is_missing,
    nowrap,
    pipe_table,
)
from bench.reporting.overview import COMMIT_CHARS
from bench.reporting.provenance import commit_of
from bench.reporting.results import (
    BUNDLE_INDEX,
    CLEAN_LEVEL,
    NOISE_COLUMN,
    PUBLISHED_ROOT,
    RESULTS_ROOT,
    bench_command,
    find_results,
    is_reference,
    load_results,
    noise_levels,
    ordered_methods,
    publish_command,
    render_command,
    StoredResults,
)
from bench.reporting.statistics import CONFIDENCE, summarize
from bench.reporting.tables import R2_MAX, SETTINGS_LABEL_MEANINGS, mean_interval, method_cell
from bench.signal import evaluate_expression, make_split

logger = logging.getLogger(__name__)

# The profile of bench.config whose results the page shows when the report's own results hold one noise level.
NOISE_PROFILE = "noise"
FIGURE_NAME = "noise_r2.svg"
# The ids of the fenced divs around the page's tables, which the tests find them by.
LEVELS_TABLE_ID = "noise-levels"
METRICS_TABLE_ID = "noise-metrics"
RECOVERY_TABLE_ID = "noise-recovery"
# The includes of the page, in page order.
INCLUDES = ("noise_source.md", "noise_levels.md", "noise_figure.md", "noise_metrics.md", "noise_recovery.md")
METRICS_HEADER = (
    "Method",
    "Noise level",
    "Runs ok / total",
    "Test MSE, median",
    f"Test MSE, mean [{CONFIDENCE:.0%} CI]",
    "Test R², median",
    f"Test R², mean [{CONFIDENCE:.0%} CI]",
)
Y_LABEL = "1 − test R² = test MSE / Var(y_test)\n(log scale; lower is better)"
# The figure's y axis starts here. 1 − R² = 1e-12 is a root mean square error of a millionth of the test
# labels' spread, and the reference ceiling reaches about 1e-29, float64 rounding, without noise. An axis
# down to that would squeeze every other method into its top third.
Y_FLOOR = 1e-12


@dataclass(frozen=True)
class NoiseSweep:
    """The results that the noise page shows, where they were read from, or why there are none.

    ``results`` is None when no sweep is shown, and ``missing`` then
    explains why. ``never_run`` is true when no sweep is stored at all.
    ``shown_path`` is the folder as the page names it: relative to the
    project when it lies inside it.
    """

    results: StoredResults | None = None
    shown_path: str = ""
    missing: str = ""
    never_run: bool = False


def find_sweep(results, project_root):
    """Return the NoiseSweep that the noise page of a report on ``results`` shows.

    ``results`` are the sweep themselves when they belong to the noise
    profile or hold more than one noise level. Otherwise the sweep is the
    noise profile's results in ``project_root``, found the way
    ``find_results`` finds a profile's: ``results/noise`` when it has a
    runs.csv, else the published bundle ``published/noise``. A report
    written outside a project (``project_root`` None) has no sweep. Raises
    DataError when the sweep's stored files are malformed.
    """
    if results.profile == NOISE_PROFILE or len(noise_levels(results.runs)) > 1:
        return NoiseSweep(results, _shown_path(results.directory, project_root))
    if project_root is None:
        return NoiseSweep(missing="this report was written outside a Quarto project, so no sweep was looked for")
    try:
        folder = find_results(project_root, NOISE_PROFILE)
        if folder.resolve() == results.directory.resolve():
            return NoiseSweep(results, _shown_path(folder, project_root))
        sweep = load_results(folder)
    except NoResultsError as error:
        # Such as a bench of the sweep that is still running: it writes manifest.json after runs.csv.
        logger.info("no noise sweep to report: %s", error)
        local = RESULTS_ROOT / NOISE_PROFILE / "runs.csv"
        published = PUBLISHED_ROOT / NOISE_PROFILE / BUNDLE_INDEX
        if (Path(project_root) / local).is_file():
            return NoiseSweep(missing=escape(str(error).rstrip(".")))
        return NoiseSweep(missing=f"neither {code(local.as_posix())} nor {code(published.as_posix())} exists",
                          never_run=True)
    logger.info("reading the noise sweep from %s", folder)
    return NoiseSweep(sweep, _shown_path(folder, project_root))


def _shown_path(folder, project_root):
    folder = Path(folder)
    if project_root is not None:
        try:
            return folder.resolve().relative_to(Path(project_root).resolve()).as_posix()
        except ValueError:
            pass
    return folder.as_posix()


def noise_page(sweep, compared, target, figures_prefix):
    """Return the includes of the noise page as text, keyed by file name, and its figures as SVG bytes, keyed by name.

    ``compared`` are the results that the other pages show, which the runs of
    the sweep without noise are compared with. ``figures_prefix`` is the
    folder of the figures relative to the page.
    """
    if sweep.results is None:
        empty = "No noise sweep is stored, so there is nothing to show here.\n"
        texts = {name: empty for name in INCLUDES}
        texts["noise_source.md"] = not_run_section(sweep)
        return texts, {}

    results = sweep.results
    spread, test_variance = _signal_spreads(results, target)
    figure_markdown, svg = noise_figure(results, test_variance, figures_prefix)
    texts = {
        "noise_source.md": source_section(sweep),
        "noise_levels.md": levels_section(results, compared, spread),
        "noise_figure.md": figure_markdown,
        "noise_metrics.md": metrics_section(results.runs),
        "noise_recovery.md": recovery_section(results),
    }
    return texts, {FIGURE_NAME: svg}


def not_run_section(sweep):
    """Return the Markdown stating why no sweep is shown, and the commands that run and show it."""
    opening = "The noise sweep has not been run here" if sweep.never_run else "No noise sweep is shown here"
    return (
        f"{opening}: {sweep.missing}. "
        f"`{bench_command(NOISE_PROFILE)}` runs it and stores its results in "
        f"{code((RESULTS_ROOT / NOISE_PROFILE).as_posix() + '/')}, and the next render of the site, such as "
        f"`{render_command('default')}`, shows them on this page. "
        f"`{publish_command(NOISE_PROFILE)}` copies them into {code((PUBLISHED_ROOT / NOISE_PROFILE).as_posix() + '/')}, "
        "which a fresh clone renders from.\n"
    )


def source_section(sweep):
    """Return the Markdown that names the sweep's profile, folder, date, commit and run count."""
    results = sweep.results
    kind = "the published bundle" if results.is_bundle else "the results folder"
    date = results.results_date() or "an unrecorded date"
    commit, dirty = commit_of(results)
    levels = noise_levels(results.runs)
    parts = [f"This page shows the runs of profile {code(results.profile)}, read from {kind} "
             f"{code(sweep.shown_path)}, finished by {escape(date)}"]
    if commit:
        parts.append(f", code commit {code(commit[:COMMIT_CHARS])}" + (" with uncommitted changes" if dirty else ""))
    parts.append(f": {counted(len(results.runs), 'run')} at {counted(len(levels), 'noise level')}.")
    if len(levels) == 1:
        parts.append(" Only one noise level is stored, so the sweep shows no change with noise.")
    return "".join(parts) + "\n"


def levels_section(results, compared, spread):
    """Return the Markdown of the noise levels with their σ and run counts, and how the clean runs relate to ``compared``."""
    runs = results.runs
    samples = results.grid().size
    rows = []
    for level in noise_levels(runs):
        level_runs = runs[runs[NOISE_COLUMN] == level]
        ok = int((level_runs["status"] == "ok").sum())
        repetitions = sorted(int(value) for value in level_runs["repetition"].unique())
        rows.append([f"{level:g}", f"{level * spread:.4g}", _repetitions_text(repetitions), f"{ok} / {len(level_runs)}"])
    table = fenced_div(
        LEVELS_TABLE_ID,
        pipe_table(("Noise level s", "Noise σ = s · std(y)", "Repetitions", "Runs ok / total"), rows, align="rrrr"),
        ": The noise levels of the sweep, the standard deviation of the noise added to each training label, and the runs.",
    )
    methods = ", ".join(code(method) for method in ordered_methods(runs["method"]))
    config = results.manifest.get("config", {})
    data_seed = config.get("split", {}).get("data_seed")
    seed_text = f" of the split ({escape(data_seed)})" if data_seed is not None else ""
    parts = [
        f"std(y), the standard deviation of the clean signal over all its {samples:,} samples, is {spread:.6g}.",
        table,
        f"Methods: {methods}. Each (level, repetition) pair draws its noise from a seed derived from the data "
        f"seed{seed_text}, the level and the repetition.",
        _clean_runs_sentence(results, compared),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _repetitions_text(repetitions):
    if repetitions == list(range(repetitions[0], repetitions[-1] + 1)) and len(repetitions) > 2:
        return f"{repetitions[0]}–{repetitions[-1]}"
    return ", ".join(str(repetition) for repetition in repetitions)


def _clean_runs_sentence(results, compared):
    """Say whether the sweep's runs at level 0 are the runs that the other pages show, by their cache keys."""
    runs = results.runs
    clean = runs[runs[NOISE_COLUMN] == CLEAN_LEVEL]
    if clean.empty:
        return "No run at level 0 is stored, so the sweep has no runs on clean labels to start from."
    if results.directory.resolve() == compared.directory.resolve():
        return "The runs at level 0 are the runs that the other pages of this site show."

    profile = code(compared.profile)
    compared_mse = dict(zip(compared.runs["key"], compared.runs["mse_test"]))
    shared = clean[clean["key"].isin(list(compared_mse))]
    if shared.empty:
        return (f"None of the {len(clean)} runs at level 0 has the cache key of a run of profile {profile}, which the "
                "other pages show, so they differ from those runs in settings, seed or code versions.")
    if len(shared) == len(clean):
        sentence = (f"All {len(clean)} runs at level 0 have the cache key of a run of profile {profile}, which the other "
                    "pages show: the same signal, split, settings, seed and code versions.")
    else:
        sentence = (f"{len(shared)} of the {len(clean)} runs at level 0 have the cache key of a run of profile "
                    f"{profile}, which the other pages show: the same signal, split, settings, seed and code versions. "
                    "The others differ from every run shown there.")
    same = sum(1 for run in shared.itertuples(index=False) if _same_number(run.mse_test, compared_mse[run.key]))
    if same == len(shared):
        return sentence + " Their stored test MSE is the same in both places."
    return sentence + (f" {same} of these {len(shared)} runs stored the same test MSE in both places; the others "
                       "were computed again and came out differently.")


def _same_number(first, second):
    return first == second or (is_missing(first) and is_missing(second))


def _signal_spreads(results, target):
    """Return std(y) of the clean signal over all samples, and the variance of its test labels, which R² divides by."""
    config = results.manifest["config"]
    signal, split = config["signal"], config["split"]
    y = evaluate_expression(target, results.grid())
    drawn = make_split(target, signal["domain"], signal["sampling_rate_hz"], split["test_fraction"], split["data_seed"])
    return float(np.std(y)), float(np.var(drawn.y_test))


def noise_figure(results, test_variance, prefix):
    """Return the Markdown image line of the figure of 1 − test R² against the noise level, and its SVG bytes.

    1 − R² is computed as test MSE / Var(y_test), which equals it, because a
    stored R² of 1 − 1e-29 is 1.0 in float64.
    """
    runs = results.runs
    levels = noise_levels(runs)
    curves, undrawn, not_ok, not_positive = [], [], 0, 0
    for method in ordered_methods(runs["method"]):
        method_runs = runs[runs["method"] == method]
        ok = method_runs[(method_runs["status"] == "ok") & np.isfinite(method_runs["mse_test"])]
        not_ok += len(method_runs) - len(ok)
        values = ok["mse_test"] / test_variance
        drawn = ok[values > 0]
        not_positive += len(ok) - len(drawn)
        points = [(float(level), float(mse) / test_variance) for level, mse in zip(drawn[NOISE_COLUMN], drawn["mse_test"])]
        medians = [(level, float(np.median(drawn.loc[drawn[NOISE_COLUMN] == level, "mse_test"])) / test_variance)
                   for level in levels if (drawn[NOISE_COLUMN] == level).any()]
        label = f"{method} ({REFERENCE})" if is_reference(method) else method
        if points:
            curves.append((method, label, points, medians))
        else:
            undrawn.append(method)

    axis = ("The x axis is symlog: linear from 0 to the smallest positive level, which takes the width of one "
            "decade, and logarithmic above, so level 0 has a tick of its own at the left."
            if any(level > 0 for level in levels) else "")
    caption = (
        "Test error against the level of label noise, as 1 − test R² = test MSE / Var(y_test) on a log scale "
        "(lower is better). Lines join each method's median over its ok runs at each level; hollow markers are the "
        "single runs, shifted sideways by method so that they do not hide each other. " + axis
    )
    if not_ok:
        caption += f" {counted(not_ok, 'run')} that did not finish ok or stored no test error {_are(not_ok)} not drawn."
    if undrawn:
        caption += (f" {', '.join(undrawn)} {'has' if len(undrawn) == 1 else 'have'} no run to draw, so the legend "
                    f"leaves {'it' if len(undrawn) == 1 else 'them'} out.")
    if not_positive:
        caption += f" {counted(not_positive, 'run')} with a test MSE of exactly 0 cannot be drawn on a log axis."
    below = sum(1 for _, _, points, _ in curves for _, value in points if value < Y_FLOOR)
    if below:
        caption += (f" {counted(below, 'run')} below {Y_FLOOR:.0e}, a root mean square error under a millionth of "
                    f"the test labels' spread, {_are(below)} drawn as downward triangles at the bottom of the axis.")
    names = ", ".join(label for _, label, _, _ in curves)
    alt = (f"Line plot with markers of 1 − test R² on a log scale against the label noise level "
           f"({', '.join(f'{level:g}' for level in levels)}), one line per method: {names}.")
    svg = plotting.noise_svg(levels, curves, Y_LABEL, floor=Y_FLOOR)
    markdown = f'![{escape(caption.strip())}]({prefix}/{FIGURE_NAME}){{fig-alt="{alt}"}}\n'
    return markdown, svg


def _are(count):
    return "is" if count == 1 else "are"


def metrics_section(runs):
    """Return the Markdown of the test metrics of each method at each noise level, and how they are computed."""
    rows = []
    max_ok_runs = 0
    for method in ordered_methods(runs["method"]):
        for level in noise_levels(runs):
            cell_runs = runs[(runs["method"] == method) & (runs[NOISE_COLUMN] == level)]
            if cell_runs.empty:
                continue
            ok = cell_runs[cell_runs["status"] == "ok"]
            max_ok_runs = max(max_ok_runs, len(ok))
            rows.append([
                method_cell(method),
                f"{level:g}",
                f"{len(ok)} / {len(cell_runs)}",
                nowrap(_median(ok["mse_test"], format_mse)),
                mean_interval(summarize(ok["mse_test"], lower_bound=0.0), format_mse),
                _median(ok["r2_test"], format_r2),
                mean_interval(summarize(ok["r2_test"], upper_bound=R2_MAX), format_r2),
            ])
    table = fenced_div(METRICS_TABLE_ID, pipe_table(METRICS_HEADER, rows, align="lrrrrrr"),
                       ": Test metrics of each method at each noise level, over its ok runs, against the clean test labels.")
    note = (
        "Medians and means are over the ok runs of a method at one level, one run per seed. In brackets, the "
        f"Student-t {CONFIDENCE:.0%} confidence interval of the mean, as on the Results page, cut at 0 for the MSE "
        f"and at 1 for R². {MISSING} marks a value that does not apply, and n/a an interval of a single run."
    )
    # With n runs, the interval from the smallest to the largest covers the median with probability 1 − 2^(1 − n).
    if 0 < max_ok_runs and 1 - 2.0 ** (1 - max_ok_runs) < CONFIDENCE:
        coverage = 1 - 2.0 ** (1 - max_ok_runs)
        note += (
            f" No interval of the median is given: from {counted(max_ok_runs, 'run')}, even the range from the "
            f"smallest to the largest value covers the median with a probability of only {coverage:.1%}."
        )
    parts = [table, note]
    if any(is_reference(method) for method in runs["method"].unique()):
        parts.append(f"*({REFERENCE})* after a method's name means that {SETTINGS_LABEL_MEANINGS[REFERENCE]}.")
    return "\n\n".join(parts) + "\n"


def _median(values, formatter):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return formatter(float(np.median(values))) if values.size else MISSING


def recovery_section(results):
    """Return the Markdown of how many runs of each symbolic method recovered each true term, at each noise level.

    The runs are judged as on the Formulas page (``bench.recovery.judge``).
    """
    signal = results.manifest["config"]["signal"]
    domain = tuple(signal["domain"])
    runs = results.runs
    symbolic = runs[~runs["method"].isin(NUMERIC_METHODS)]
    methods = ordered_methods(symbolic["method"])
    if not methods:
        return "No symbolic method ran in the sweep, so there are no formulas to judge.\n"
    judged = judge_runs(symbolic, stored_formulas(results, symbolic), domain, signal["sampling_rate_hz"])
    names = true_term_names(domain)

    rows = []
    for method in methods:
        for level in noise_levels(symbolic):
            cell_runs = symbolic[(symbolic["method"] == method) & (symbolic[NOISE_COLUMN] == level)]
            if cell_runs.empty:
                continue
            recoveries = [judged[key] for key in cell_runs["key"] if key in judged]
            rows.append([method_cell(method), f"{level:g}", f"{len(recoveries)} of {len(cell_runs)}",
                         *(verdict_counts(recoveries, name) for name in names)])
    header = ("Method", "Noise level", "Runs judged", *names)
    table = fenced_div(RECOVERY_TABLE_ID, pipe_table(header, rows, align="lrr" + "r" * len(names)),
                       ": How many judged runs of each method recovered each true term of the target, at each noise level.")
    return table + "\n"


def noise_level_note(results, compared):
    """Return one sentence saying which runs the pages other than the noise page leave out, or "" when they leave out none."""
    left_out = results.runs[~results.runs["key"].isin(list(compared.runs["key"]))]
    if left_out.empty:
        return ""
    (level,) = noise_levels(compared.runs)
    others = noise_levels(left_out)
    listed = _join([f"{level:g}" for level in others])
    level_word = "level" if len(others) == 1 else "levels"
    sentence = (f"Outside the Noise robustness page, the tables, figures and statistics use only the "
                f"{counted(len(compared.runs), 'run')} at noise level {level:g}; the other {len(left_out)}, at "
                f"{level_word} {listed}, are on that page.")
    if level != CLEAN_LEVEL:
        sentence = "No run without label noise is stored. " + sentence
    return sentence


def _join(items):
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
