"""Write the generated Markdown, figures and download files that the report pages include."""

import logging
import os
import tempfile
from pathlib import Path

from bench.errors import DataError
from bench.reporting import citation as citation_module
from bench.reporting.downloads import DOWNLOADS_FOLDER, download_files, downloads_section, records_section
from bench.reporting.experiment import settings_section, signal_section
from bench.reporting.figures import FIGURES_FOLDER, build_figures, figures_section, load_bundle_figures
from bench.reporting.figures import SECTIONS as FIGURE_SECTIONS
from bench.reporting.formulas import formulas_section, recovery_section, true_formula_section
from bench.reporting.overview import answer_paragraph, banner, machine_section
from bench.reporting.pairwise import pairwise_table
from bench.reporting.provenance import CONFIG_FILE, commands_section, commit_of, config_section, environment_section
from bench.reporting.results import load_results
from bench.reporting.robustness import NoiseSweep, find_sweep, noise_level_note, noise_page
from bench.reporting.snapping import snap_fits_section
from bench.reporting.speed import speed_section
from bench.reporting.suite import PAGES_FOLDER, SUITE_PROFILE, TEMPLATE, build_suite, find_suite
from bench.reporting.tables import (
    headline_table,
    metrics_tables,
    missing_runs_note,
    per_seed_tables,
    unrun_methods_note,
)
from bench.reporting.targets import stored_signal

logger = logging.getLogger(__name__)

# mkstemp creates files that only the owner can read, but the report is meant to be served and shared.
FILE_MODE = 0o644
# The list of files the last report wrote, one relative path a line. The next report deletes the
# listed files it no longer writes and leaves every other file in the folder alone.
WRITTEN_LIST = ".written-files"
# The file that marks the root of a Quarto project, where CITATION.cff is looked for.
QUARTO_PROJECT_FILE = "_quarto.yml"


def write_report(results_dir, out_dir, citation_file=None, suite_profile=SUITE_PROFILE):
    """Write the report's Markdown includes, SVG figures and download files for the results in ``results_dir``.

    ``results_dir`` is a results folder or a published bundle, whose stored
    figures replace the drawing from arrays. ``citation_file`` is the
    CITATION.cff behind the BibTeX entry. By default it is the one beside
    the ``_quarto.yml`` of the project that ``out_dir`` is in, if any. The
    noise page shows ``results`` when they hold several noise levels, and
    otherwise the noise sweep stored in that project (see
    ``robustness.find_sweep``). Every other page shows only the runs of
    ``results`` at their lowest noise level, normally 0. The Suite page and
    the signal pages show the suite of ``suite_profile`` stored in that
    project (see ``suite.find_suite``). The signal pages are written from
    the template ``_signal_template.qmd`` beside ``out_dir`` into the folder
    ``signals`` beside it, and only when the template exists.

    Every file is built in memory first, so a failure while reading the
    results leaves the previous report as it was. Each file is then written
    to a temporary file and moved into place with ``os.replace``, so no file
    is ever left half written. Files that an earlier report wrote and this
    one does not are deleted. Links and image paths in the Markdown are
    relative to the parent of ``out_dir``, where the report's pages live,
    because an include resolves relative paths from the including page.
    The includes of the Overview page, one folder up, contain no links.

    Returns the paths written, sorted. Raises NoResultsError when
    ``runs.csv`` or ``manifest.json`` is missing, and DataError when a stored
    file is malformed or ``out_dir`` cannot be created or written.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    _check_output_folder(out_dir)
    results = load_results(results_dir)
    project_root = _project_root(out_dir)
    if citation_file is None and project_root is not None:
        path = project_root / citation_module.CITATION_FILE
        citation_file = path if path.is_file() else None
    sweep = find_sweep(results, project_root)
    contents = build_report(results, prefix=out_dir.name, citation_file=citation_file, sweep=sweep)
    template_path = out_dir.parent / TEMPLATE
    template = template_path.read_text(encoding="utf-8") if template_path.is_file() else None
    suite_contents, pages = build_suite(find_suite(project_root, suite_profile), out_dir.name, template)
    contents.update({name: text.encode("utf-8") if isinstance(text, str) else text
                     for name, text in suite_contents.items()})
    pages_dir = out_dir.parent / PAGES_FOLDER
    _check_pages_folder(pages_dir)

    try:
        written = _write_contents(out_dir, contents)
        # Without a template no page is written, but the pages that an earlier report wrote are deleted.
        if template is not None or (pages_dir / WRITTEN_LIST).is_file():
            written += _write_contents(pages_dir, {name: text.encode("utf-8") for name, text in pages.items()})
    except OSError as error:
        where = error.filename or out_dir
        raise DataError(f"cannot write the report to --out {out_dir}: {where}: {error.strerror}. "
                        "Pass a folder that can be created and written.") from None

    source = "published bundle" if results.is_bundle else "results"
    logger.info("wrote %d report files for profile %r from the %s in %s to %s",
                len(written), results.profile, source, results_dir, out_dir)
    return written


def _write_contents(out_dir, contents):
    """Write ``contents`` into ``out_dir``, delete the files of the last report that it lacks, and return the paths.

    NOTE: every file is replaced whole, but a write that fails part way, such
    as on a full disk, leaves the files written so far beside the older ones.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_written_list(out_dir)
    # List the old and the new files before writing, so that a run interrupted here still
    # lets the next run find every file that a report wrote.
    _write_written_list(out_dir, previous | set(contents))
    written = []
    for relative, data in sorted(contents.items()):
        path = out_dir / relative
        if not (path.is_file() and path.read_bytes() == data):
            _write_atomic(path, data)
        written.append(path)
    _delete_stale(out_dir, previous - set(contents))
    _write_written_list(out_dir, set(contents))
    return written


def build_report(results, prefix, citation_file=None, sweep=None):
    """Return every report file as bytes, keyed by its path relative to the output folder.

    ``prefix`` is the output folder's name: the report's pages refer to the
    generated files through it. ``sweep`` is the NoiseSweep of the noise
    page; by default it is ``results`` when they hold several noise levels,
    and none otherwise. The pages other than the noise page, Reproduce and
    Downloads show only the runs of ``results`` at their lowest noise level.
    """
    # The results' own target: None for a data series, whose sampled values the figures draw instead.
    target = stored_signal(results).expression
    compared = results.at_lowest_noise()
    if sweep is None:
        sweep = find_sweep(results, project_root=None)
    # A bundle keeps the figures it was exported with, which bundle_files draws from the same runs.
    if results.is_bundle:
        figures = [figure for figure in load_bundle_figures(results) if figure.section in FIGURE_SECTIONS]
    else:
        figures = build_figures(compared, target)
    downloads = download_files(results)
    figures_prefix = f"{prefix}/{FIGURES_FOLDER}"
    downloads_prefix = f"{prefix}/{DOWNLOADS_FOLDER}"
    sweep_target = stored_signal(sweep.results).expression if sweep.results is not None else target
    if sweep.results is not None and sweep_target is None:
        # The noise page evaluates the sweep's expression to measure std(y), which a data series lacks.
        sweep = NoiseSweep(missing=f"the sweep's signal, {stored_signal(sweep.results).name}, is a data series, "
                                   "which this page cannot show yet")
    noise_texts, noise_figures = noise_page(sweep, compared, sweep_target, figures_prefix)

    contents = {
        # Every page.
        "banner.md": banner(results, noise_level_note(results, compared)),
        # Overview.
        "answer.md": answer_paragraph(compared),
        "headline.md": headline_table(compared.runs) + unrun_methods_note(compared) + missing_runs_note(compared),
        "machine.md": machine_section(compared),
        # Method.
        "signal.md": signal_section(compared, target),
        "settings.md": settings_section(compared),
        # Results.
        "metrics.md": metrics_tables(compared.runs),
        "pairwise.md": pairwise_table(compared.runs),
        "per_seed.md": per_seed_tables(compared.runs, records_prefix=f"{downloads_prefix}/records"),
        # Formulas.
        "true_formula.md": true_formula_section(target),
        "formulas.md": formulas_section(compared.runs, target),
        "snap_fits.md": snap_fits_section(compared),
        "recovery.md": recovery_section(compared),
        # Noise robustness.
        **noise_texts,
        # Reproduce.
        "commands.md": commands_section(results, _repository_url(citation_file), f"{downloads_prefix}/{CONFIG_FILE}"),
        "config.md": config_section(results),
        "environment.md": environment_section(results),
        "citation.md": _citation_markdown(results, citation_file),
        "speed.md": speed_section(results.directory),
        # Downloads.
        "downloads.md": downloads_section(downloads, downloads_prefix),
        "records.md": records_section(results.runs, downloads_prefix),
    }
    for section in FIGURE_SECTIONS:
        contents[f"figures_{section}.md"] = figures_section(figures, section, figures_prefix)

    encoded = {name: text.encode("utf-8") for name, text in contents.items()}
    for figure in figures:
        encoded[f"{FIGURES_FOLDER}/{figure.name}"] = figure.svg
    for name, svg in noise_figures.items():
        encoded[f"{FIGURES_FOLDER}/{name}"] = svg
    for name, data in downloads.items():
        encoded[f"{DOWNLOADS_FOLDER}/{name}"] = data
    return encoded


def _project_root(out_dir):
    """Return the nearest folder above ``out_dir`` that has a _quarto.yml, or None."""
    for folder in out_dir.resolve().parents:
        if (folder / QUARTO_PROJECT_FILE).is_file():
            return folder
    return None


def _repository_url(citation_file):
    if citation_file is None:
        return None
    citation = citation_module.read_citation(citation_file)
    return citation.get("repository-code") or citation.get("url")


def _citation_markdown(results, citation_file):
    if citation_file is None:
        return (f"No {citation_module.CITATION_FILE} was found beside this site's _quarto.yml, "
                "so there is no citation to show.\n")
    commit, _ = commit_of(results)
    try:
        citation = citation_module.read_citation(citation_file)
    except FileNotFoundError:
        raise DataError(f"{citation_file} not found; pass an existing CITATION.cff.") from None
    return citation_module.citation_section(citation, results.profile, commit, results.results_date())


def _write_atomic(path, data):
    """Write ``data`` to a temporary file beside ``path``, then move it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _check_output_folder(out_dir):
    """Raise DataError unless ``out_dir`` is absent, empty, or contains a report this function wrote.

    An absent ``out_dir`` must lie under a folder, so that it can be created.
    """
    if not out_dir.exists():
        # exists() is also false when a file is in the path, such as a/file/sub.
        ancestor = out_dir.absolute().parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise DataError(f"--out {out_dir} cannot be created because {ancestor} is a file; "
                            "pass a folder path for the report.")
        return
    if not out_dir.is_dir():
        raise DataError(f"--out {out_dir} is a file; pass a folder for the report.")
    if any(out_dir.iterdir()) and not (out_dir / WRITTEN_LIST).is_file():
        raise DataError(f"--out {out_dir} is not empty and contains no report written by this benchmark "
                        f"(no {WRITTEN_LIST} file); pass an empty folder so that no file of yours is replaced.")


def _check_pages_folder(pages_dir):
    """Raise DataError when ``pages_dir`` contains files that no report wrote, so that none of them is replaced."""
    if pages_dir.is_file() or (pages_dir.is_dir() and any(pages_dir.iterdir())
                               and not (pages_dir / WRITTEN_LIST).is_file()):
        raise DataError(f"{pages_dir} is not a folder of signal pages that the report wrote (no {WRITTEN_LIST} file). "
                        "The report writes one page per suite signal there, so move that folder away.")


def _read_written_list(out_dir):
    listing = out_dir / WRITTEN_LIST
    if not listing.is_file():
        return set()
    return {line for line in listing.read_text(encoding="utf-8").splitlines() if line}


def _write_written_list(out_dir, names):
    _write_atomic(out_dir / WRITTEN_LIST, "".join(f"{name}\n" for name in sorted(names)).encode("utf-8"))


def _delete_stale(out_dir, stale):
    """Delete the files of an earlier report that this one no longer writes, and folders left empty."""
    root = out_dir.resolve()
    for relative in sorted(stale):
        path = (out_dir / relative).resolve()
        # Anyone can edit the list, so a path that leads outside the output folder is skipped.
        if root not in path.parents:
            logger.warning("skipped %r in %s because it points outside %s", relative, WRITTEN_LIST, out_dir)
            continue
        if path.is_file():
            path.unlink()
            logger.info("deleted stale report file %s", path)
        parent = path.parent
        while parent != root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
