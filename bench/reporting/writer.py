"""Write the generated Markdown and figures that the report pages include."""

import logging
import os
import tempfile
from pathlib import Path

from bench.reporting.figures import build_figures, figures_section
from bench.reporting.formulas import formulas_section
from bench.reporting.provenance import provenance_section, signal_section
from bench.reporting.results import load_results
from bench.reporting.tables import metrics_table, per_seed_tables
from bench.signal import target_expression

logger = logging.getLogger(__name__)

FIGURES_FOLDER = "figures"
# mkstemp creates files that only the owner can read, but the report is meant to be served and shared.
FILE_MODE = 0o644
# The list of files the last report wrote, one relative path a line. The next report deletes the
# listed files it no longer writes and leaves every other file in the folder alone.
WRITTEN_LIST = ".written-files"


def write_report(results_dir, out_dir):
    """Write the report's Markdown includes and SVG figures for the results stored in ``results_dir``.

    Every file is built in memory first, so a failure while reading the
    results leaves the previous report as it was. Each file is then written
    to a temporary file and moved into place with ``os.replace``, so no file
    is ever left half written. Files that an earlier report wrote and this
    one does not are deleted. The image paths in ``figures.md`` are relative to the parent of
    ``out_dir``, where the page that includes them lives, because an include
    resolves relative paths from the including page.

    Returns the paths written, sorted. Raises NoResultsError when
    ``runs.csv`` or ``manifest.json`` is missing, and DataError when a stored
    file is malformed.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    results = load_results(results_dir)
    contents = build_report(results, figures_prefix=f"{out_dir.name}/{FIGURES_FOLDER}")

    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_written_list(out_dir)
    # List the old and the new files before writing, so that a run interrupted here still
    # lets the next run find every file that a report wrote.
    _write_written_list(out_dir, previous | set(contents))
    written = []
    for relative, data in sorted(contents.items()):
        path = out_dir / relative
        _write_atomic(path, data)
        written.append(path)
    _delete_stale(out_dir, previous - set(contents))
    _write_written_list(out_dir, set(contents))

    logger.info("wrote %d report files for profile %r to %s", len(written), results.profile, out_dir)
    return written


def build_report(results, figures_prefix):
    """Return every report file as bytes, keyed by its path relative to the output folder."""
    target = target_expression()
    figures = build_figures(results, target)
    contents = {
        "metrics.md": metrics_table(results.runs),
        "per_seed.md": per_seed_tables(results.runs),
        "formulas.md": formulas_section(results.runs, target),
        "signal.md": signal_section(results, target),
        "provenance.md": provenance_section(results),
        "figures.md": figures_section(figures, figures_prefix),
    }
    encoded = {name: text.encode("utf-8") for name, text in contents.items()}
    for figure in figures:
        encoded[f"{FIGURES_FOLDER}/{figure.name}"] = figure.svg
    return encoded


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
