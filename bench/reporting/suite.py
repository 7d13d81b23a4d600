"""The suite: one profile's runs on every signal of ``bench.signals``, its overview page and one page per signal.

``python -m bench run --signals all`` stores the seed signal's runs in the
results folder itself and every other signal's in ``signals/<name>/``
(``bench.signals.results_dir``); ``python -m bench publish`` keeps that
layout in the bundle. The report reads ``results/<profile>/`` when a bench
of the suite stored runs there, and the bundle ``published/<profile>/``
otherwise. A signal with no finished bench in the results folder is read
from the bundle, when the bundle has it. Each signal's page is the template ``_signal_template.qmd``
with the signal's name put in, beside includes of its own.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from bench import config as config_module
from bench import signals
from bench.errors import NoResultsError
from bench.reporting.markdown import MISSING, code, counted, escape, fenced_div, format_mse, format_r2, pipe_table
from bench.reporting.overview import BANNER_CLASS, COMMIT_CHARS
from bench.reporting.provenance import commit_of
from bench.reporting.results import (
    BUNDLE_INDEX,
    PUBLISHED_ROOT,
    RESULTS_ROOT,
    SIGNALS_FOLDER,
    StoredResults,
    bench_command,
    is_reference,
    load_results,
    ordered_methods,
    render_command,
    signal_folders,
)
from bench.reporting.robustness import noise_level_note
from bench.reporting.signal_page import FIGURES_FOLDER, median_cell, reference_fits, signal_page_files, status_summary

logger = logging.getLogger(__name__)

SUITE_PROFILE = config_module.SUITE_PROFILE
# The template of the signal pages, and the folder of the pages written from it, beside the generated folder.
TEMPLATE = "_signal_template.qmd"
PAGES_FOLDER = "signals"
# The text of the template that each page replaces with its signal's name.
NAME_PLACEHOLDER = "@SIGNAL@"
# The includes of the Suite page.
INCLUDES = ("suite_banner.md", "suite_source.md", "suite_signals.md", "suite_r2.md", "suite_mse.md")
# The ids of the fenced divs around the Suite page's tables, which the tests find them by.
SIGNALS_TABLE_ID = "suite-signals"
R2_TABLE_ID = "suite-r2"
MSE_TABLE_ID = "suite-mse"
# The settings that set the budgets of a suite, compared with the default profile's on the Suite page.
BUDGET_SETTINGS = (
    ("signal", "sampling_rate_hz"),
    ("run", "repetitions"),
    ("run", "time_limit_s"),
    ("methods", "kan", "width"),
    ("methods", "kan", "grids"),
    ("methods", "kan", "adam_steps"),
    ("methods", "kan", "lbfgs_steps"),
    ("methods", "kan_minimal", "width"),
    ("methods", "pysr", "niterations"),
    ("methods", "pysr", "population_size"),
    ("methods", "operon", "population_size"),
    ("methods", "operon", "generations"),
    ("methods", "operon", "max_evaluations"),
)


@dataclass(frozen=True)
class SuiteSignal:
    """One signal folder of a suite: its results at the lowest noise level, or why there are none.

    ``all_runs`` are every stored run, at every noise level. ``from_bundle``
    marks a signal read from the published bundle although the suite is read
    from a results folder.
    """

    name: str
    folder: Path
    results: StoredResults | None = None
    all_runs: StoredResults | None = None
    missing: str = ""
    from_bundle: bool = False


@dataclass(frozen=True)
class Suite:
    """The suite that the report shows: where it was read from and its signals, or why none was found."""

    profile: str
    directory: Path | None = None
    shown_path: str = ""
    is_bundle: bool = False
    signals: tuple = ()
    missing: str = ""


def suite_command(profile):
    """Return the command that runs the suite of ``profile`` on every built-in signal."""
    return f"{bench_command(profile)} --signals all"


def find_suite(project_root, profile=SUITE_PROFILE):
    """Return the Suite of ``profile`` stored in the project at ``project_root``.

    ``results/<profile>`` serves when it or one of its signal folders has a
    runs.csv, and the bundle ``published/<profile>`` otherwise. When the
    results folder serves, each signal that has no finished bench there is
    read from the bundle if the bundle has it, so that a bench of one signal
    does not hide the published others. A signal folder without a finished
    bench is listed with the reason. Raises DataError when a stored file is
    malformed, as the other pages do.
    """
    if project_root is None:
        return Suite(profile, missing="this report was written outside a Quarto project, so no suite was looked for")
    project_root = Path(project_root)
    local = project_root / RESULTS_ROOT / profile
    published = project_root / PUBLISHED_ROOT / profile
    has_bundle = (published / BUNDLE_INDEX).is_file()
    if any((folder / "runs.csv").is_file() for _, folder in _entries(local)):
        directory, is_bundle = local, False
    elif has_bundle:
        directory, is_bundle = published, True
    else:
        return Suite(profile, missing=(f"neither {code((RESULTS_ROOT / profile / 'runs.csv').as_posix())} nor "
                                       f"{code((PUBLISHED_ROOT / profile / BUNDLE_INDEX).as_posix())} exists"))

    found = [_read_signal(name, folder) for name, folder in _entries(directory)]
    if not is_bundle and has_bundle:
        found = _fill_from_bundle(found, published)
    logger.info("reading the suite of profile %r from %s: %d signal folders", profile, directory, len(found))
    return Suite(profile, directory, _shown_path(directory, project_root), is_bundle, tuple(found))


def _entries(directory):
    """Return (name, folder) for the seed signal and each signal folder of a results folder or bundle."""
    return [(signals.DEFAULT_SIGNAL, Path(directory)), *signal_folders(directory)]


def _fill_from_bundle(found, bundle):
    """Return ``found`` with the bundle's copy of each signal that lacks results in ``found`` or is absent from it."""
    by_name = {entry.name: entry for entry in found}
    for name, folder in _entries(bundle):
        entry = by_name.get(name)
        if entry is not None and entry.results is not None:
            continue
        published = _read_signal(name, folder)
        if published.results is not None:
            by_name[name] = SuiteSignal(name, folder, published.results, published.all_runs, from_bundle=True)
        elif entry is None:
            by_name[name] = published
    return list(by_name.values())


def _read_signal(name, folder):
    try:
        results = load_results(folder)
    except NoResultsError as error:
        # A signal whose bench is still running has neither, because the bench writes runs.csv and
        # manifest.json last.
        logger.info("signal %s of the suite has no results: %s", name, error)
        return SuiteSignal(name, folder,
                           missing="not run yet: its folder has no finished bench (no runs.csv or manifest.json)")
    stored = results.manifest["config"]["signal"].get("name", signals.DEFAULT_SIGNAL)
    if stored != name:
        logger.warning("skipped %s: it contains the runs of signal %s, not of %s", folder, stored, name)
        return SuiteSignal(name, folder, missing=f"not shown: its folder contains the runs of signal {code(stored)}; run "
                                                 "this signal's bench into it again")
    return SuiteSignal(name, folder, results.at_lowest_noise(), results)


def _shown_path(folder, project_root):
    try:
        return Path(folder).resolve().relative_to(Path(project_root).resolve()).as_posix()
    except ValueError:
        return Path(folder).as_posix()


def build_suite(suite, prefix, template):
    """Return the suite's includes, keyed by path relative to the generated folder, and its pages, keyed by file name.

    ``prefix`` is the generated folder's name, and ``template`` the text of
    the signal page template, or None when there is none, in which case no
    page is written and the overview does not link to any. The includes of
    the signal named n lie in ``signals/n/`` of the generated folder.
    """
    contents = {
        "suite_banner.md": suite_banner(suite),
        "suite_source.md": source_section(suite),
    }
    pages = {}
    available = [entry for entry in suite.signals if entry.results is not None]
    for entry in available:
        files = signal_page_files(entry.all_runs, entry.results, _signal_shown_path(suite, entry),
                                  noise_level_note(entry.all_runs, entry.results),
                                  f"../{prefix}/{SIGNALS_FOLDER}/{entry.name}/{FIGURES_FOLDER}")
        for relative, data in files.items():
            contents[f"{SIGNALS_FOLDER}/{entry.name}/{relative}"] = data
        if template is not None:
            pages[f"{entry.name}.qmd"] = template.replace(NAME_PLACEHOLDER, entry.name)

    linked = template is not None
    contents["suite_signals.md"] = (signals_table(suite, linked) if suite.signals
                                    else "No suite is stored, so there is nothing to show here.\n")
    if available:
        contents["suite_r2.md"] = method_table(suite, "r2_test", format_r2, R2_TABLE_ID, "Median test R²", linked)
        contents["suite_mse.md"] = method_table(suite, "mse_test", format_mse, MSE_TABLE_ID, "Median test MSE", linked)
    else:
        for name in ("suite_r2.md", "suite_mse.md"):
            contents[name] = "No signal of the suite has finished runs, so there is nothing to show here.\n"
    return contents, pages


def _signal_shown_path(suite, entry):
    """Return the folder of ``entry``'s runs as the pages show it, relative to the project."""
    base = (PUBLISHED_ROOT / suite.profile).as_posix() if entry.from_bundle else suite.shown_path
    return base if entry.name == signals.DEFAULT_SIGNAL else f"{base}/{SIGNALS_FOLDER}/{entry.name}"


def suite_banner(suite):
    """Return the banner of the Suite page: the suite's profile, date, commit and run count, or that none is stored."""
    available = [entry.all_runs for entry in suite.signals if entry.all_runs is not None]
    if not available:
        text = f"No suite of profile {code(suite.profile)} is stored."
    else:
        dates = [date for date in (results.results_date() for results in available) if date]
        commits = {commit_of(results) for results in available}
        runs = sum(len(results.runs) for results in available)
        text = (f"Suite of profile {code(suite.profile)}, from runs finished by {escape(max(dates) if dates else 'an unrecorded date')}"
                f"{_commit_text(commits)}, {counted(len(available), 'signal')}, {counted(runs, 'run')}.")
    return f"::: {{.{BANNER_CLASS}}}\n{text}\n:::\n"


def _commit_text(commits):
    if len(commits) != 1:
        return f", {len(commits)} code commits" if commits else ""
    ((commit, dirty),) = commits
    if not commit:
        return ""
    return f", code commit {code(commit[:COMMIT_CHARS])}" + (" with uncommitted changes" if dirty else "")


def source_section(suite):
    """Return the Markdown of where the suite was read from and its budgets, or of how to run it when none is stored."""
    if not suite.signals:
        return (
            f"The suite has not been run here: {suite.missing}. `{suite_command(suite.profile)}` runs every built-in "
            f"signal and stores the runs in {code((RESULTS_ROOT / suite.profile).as_posix() + '/')} and its "
            f"{code(SIGNALS_FOLDER + '/')} folder, and the next render of the site, such as `{render_command('default')}`, "
            f"shows them on this page. `python -m bench publish --profile {suite.profile}` copies them into "
            f"{code((PUBLISHED_ROOT / suite.profile).as_posix() + '/')}, which a fresh clone renders from.\n"
        )
    kind = "the published bundle" if suite.is_bundle else "the results folder"
    parts = [f"This page shows the suite of profile {code(suite.profile)}, read from {kind} {code(suite.shown_path)}: "
             f"the seed signal's runs are there, and each other signal's in {code(SIGNALS_FOLDER + '/<name>/')}."]
    borrowed = [entry.name for entry in suite.signals if entry.from_bundle]
    if borrowed:
        bundle = code((PUBLISHED_ROOT / suite.profile).as_posix())
        parts[0] += (f" That folder has no finished bench of {counted(len(borrowed), 'signal')} "
                     f"({', '.join(code(name) for name in borrowed)}), so {'it is' if len(borrowed) == 1 else 'they are'} read "
                     f"from the published bundle "
                     f"{bundle}.")
    config = next((entry.results.manifest.get("config", {}) for entry in suite.signals if entry.results), None)
    if config is not None:
        parts.append(budgets_section(suite.profile, config))
    return "\n\n".join(parts) + "\n"


def budgets_section(profile, config):
    """Return the Markdown table of the settings that set the suite's budgets beside the default profile's."""
    default = config_module.PROFILES["default"]
    rows = [[code(".".join(path)), code(_setting(config, path)), code(_setting(default, path))] for path in BUDGET_SETTINGS]
    table = pipe_table(("Setting", f"Suite ({escape(profile)})", "Default profile"), rows, align="lll")
    parts = [table, ": The budgets of the suite, from the manifest of its first signal, and those of the default profile."]
    if profile == SUITE_PROFILE:
        parts.append(
            f"The {code(profile)} profile's budgets are tiny: far fewer samples, KAN grids of "
            f"{_setting(config, ('methods', 'kan', 'grids'))} intervals with far fewer training "
            "steps, and short searches for the symbolic regression engines. They keep a suite of every signal to "
            "minutes on a small machine, so the numbers below are indicative only. A method that fails or fits "
            "poorly here may do better with the default profile's budgets."
        )
    parts.append("A data series, such as the sunspots, sets its own sampling rate: one value per 1/rate on the domain.")
    return "\n\n".join(parts)


def _setting(config, path):
    value = config
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return str(value)


def _signal_cell(entry, linked):
    name = escape(entry.name)
    if linked and entry.results is not None:
        return f"[{name}]({PAGES_FOLDER}/{entry.name}.qmd)"
    return name


def signals_table(suite, linked):
    """Return the Markdown table of the suite's signals: description, samples, runs, and the built-in signals it lacks."""
    rows = []
    for entry in suite.signals:
        if entry.results is None:
            rows.append([_signal_cell(entry, linked), entry.missing, MISSING, MISSING])
            continue
        results = entry.results
        description = (results.manifest.get("signal") or {}).get("description") or signals.SUITE[signals.DEFAULT_SIGNAL].description
        ok = int((results.runs["status"] == "ok").sum())
        rows.append([_signal_cell(entry, linked), escape(description), str(results.grid().size),
                     f"{ok} / {len(results.runs)}"])
    table = fenced_div(SIGNALS_TABLE_ID, pipe_table(("Signal", "Description", "Samples", "Runs ok / total"), rows,
                                                    align="llrr"),
                       ": The signals of the suite; each name links to the signal's page.")
    parts = [table]
    absent = [name for name in signals.suite_names() if name not in {entry.name for entry in suite.signals}]
    if absent:
        names = ",".join(absent)
        parts.append(f"The built-in signals {', '.join(code(name) for name in absent)} are not in this suite. "
                     f"`{bench_command(suite.profile)} --signals {names}` runs them.")
    return "\n\n".join(parts) + "\n"


def _breakable_name(method):
    """Return ``method`` as inline code that the browser may break after each underscore, so that eleven columns fit."""
    return "<code>" + "\\_<wbr>".join(escape(part) for part in method.split("_")) + "</code>"


def method_table(suite, column, formatter, table_id, label, linked):
    """Return the Markdown table of signal × method of the median of ``column`` over each method's ok runs.

    A method with runs but none ok shows their statuses, such as
    "unavailable", in place of a number. A method with no stored run on a
    signal shows MISSING.
    """
    available = [entry for entry in suite.signals if entry.results is not None]
    methods = ordered_methods([method for entry in available for method in entry.results.runs["method"]])
    rows = []
    for entry in available:
        runs = entry.results.runs
        cells = [_signal_cell(entry, linked)]
        for method in methods:
            method_runs = runs[runs["method"] == method]
            ok = method_runs[method_runs["status"] == "ok"]
            if method_runs.empty:
                cells.append(MISSING)
            elif ok.empty:
                cells.append(f"*{escape(status_summary(method_runs))}*")
            elif len(ok) < len(method_runs):
                cells.append(f"{median_cell(ok[column], formatter)} ({len(ok)} of {len(method_runs)} ok)")
            else:
                cells.append(median_cell(ok[column], formatter))
        rows.append(cells)
    header = ("Signal", *(_breakable_name(method) for method in methods))
    table = fenced_div(table_id, pipe_table(header, rows, align="l" + "r" * len(methods)),
                       f": {label} of each method on each signal, over its ok runs.")
    references = [method for method in methods if is_reference(method)]
    if not references:
        return table + "\n"
    return f"{table}\n\nThe reference columns are not competitors: {reference_fits(references)}.\n"
