"""Build the report site: choose the stored results, write the report, render it with Quarto or smalldocs.

Rendering reads only stored results and fits no model. Neither renderer
needs the network, and the pages load the KaTeX copy vendored in
report/vendor/katex (``bench.site_assets``), so they need none either.
"""

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.errors import BenchError
from bench.site_assets import localise_katex
from bench.reporting import write_report
from bench.reporting.results import find_results
from bench.reporting.suite import PAGES_FOLDER, SUITE_PROFILE

logger = logging.getLogger(__name__)

# Must match project.output-dir in _quarto.yml.
SITE_FOLDER = "_site"
# The folder of the files that the pages include, relative to the project.
GENERATED_FOLDER = Path("report") / "_generated"


class RenderError(BenchError):
    """The site renderer failed, or finished without writing the site's index page."""


def build_site(project_root, profile, results_dir=None, suite_profile=SUITE_PROFILE):
    """Write the report of ``profile`` into ``report/_generated/`` and render the site into ``_site/``.

    The results come from ``find_results``, and the Suite page and signal
    pages show the suite of ``suite_profile``. Returns the results folder
    used and the renderer, "quarto" or "smalldocs".
    """
    project_root = Path(project_root).resolve()
    _check_project(project_root)
    source = find_results(project_root, profile, results_dir)
    logger.info("writing the report of profile %r from %s", profile, source)
    # A failed render puts the previous site back, so the files it was rendered from go back too.
    folders = [project_root / GENERATED_FOLDER, project_root / GENERATED_FOLDER.parent / PAGES_FOLDER]
    with tempfile.TemporaryDirectory(prefix="bench-report-") as backup:
        saved = _save_folders(folders, Path(backup))
        write_report(source, project_root / GENERATED_FOLDER, suite_profile=suite_profile)
        try:
            renderer = render_site(project_root)
        except BaseException:
            _restore_folders(saved)
            raise
    return source, renderer


def _save_folders(folders, backup):
    """Copy each existing folder of ``folders`` into ``backup``; return (folder, copy or None) pairs."""
    saved = []
    for number, folder in enumerate(folders):
        copy = None
        if folder.is_dir():
            copy = backup / str(number)
            shutil.copytree(folder, copy, symlinks=True)
        saved.append((folder, copy))
    return saved


def _restore_folders(saved):
    """Put each saved folder back as it was, removing what a report wrote where there was none."""
    for folder, copy in saved:
        try:
            if folder.exists():
                shutil.rmtree(folder)
            if copy is not None:
                shutil.copytree(copy, folder, symlinks=True)
        except OSError as error:
            logger.warning("could not restore %s after the failed render: %s", folder, error)


def render_site(project_root):
    """Render the website project in ``project_root`` and return the renderer used: "quarto" or "smalldocs".

    The previous site is moved aside first, so no page or file of an earlier
    render outlives the results it came from, and it is put back when
    rendering fails. Raises RenderError with the command and its exit code
    when rendering fails, and when ``_site/index.html`` is missing afterwards.
    """
    project_root = Path(project_root).resolve()
    _check_project(project_root)

    quarto = shutil.which("quarto")
    if quarto:
        renderer, command = "quarto", [quarto, "render"]
    else:
        renderer, command = "smalldocs", [_smalldocs_executable(), "render", "."]
    site = project_root / SITE_FOLDER
    previous = _move_site_aside(site)
    try:
        _run(command, project_root)
        index = site / "index.html"
        if not index.is_file():
            raise RenderError(
                f"`{' '.join(command)}` finished but {index} is missing. "
                f"Check that project.output-dir in _quarto.yml is {SITE_FOLDER}."
            )
        localise_katex(project_root, site)
    except FileNotFoundError as error:
        _restore_site(site, previous)
        raise RenderError(str(error)) from None
    except BaseException:
        _restore_site(site, previous)
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
    logger.info("rendered %s with %s", site, renderer)
    return renderer


def _check_project(project_root):
    if not (project_root / "_quarto.yml").is_file():
        raise RenderError(f"{project_root / '_quarto.yml'} not found; pass the folder of the Quarto project.")


def _move_site_aside(site):
    """Rename the rendered site to a hidden sibling and return its path, or None when there is none.

    The folder is checked first: it must look like a rendered site, a folder
    with an index.html, or be empty.
    """
    if not site.exists():
        return None
    if not site.is_dir() or (any(site.iterdir()) and not (site / "index.html").is_file()):
        raise RenderError(f"{site} is not a rendered site (no index.html); move it away so that rendering can replace it.")
    aside = site.with_name(f".{site.name}.previous")
    try:
        if aside.exists():
            shutil.rmtree(aside)
        os.replace(site, aside)
    except OSError as error:
        raise RenderError(f"cannot move the previous site {site} aside: {error.strerror}. "
                          "Check the folder's permissions, then render again.") from None
    return aside


def _restore_site(site, previous):
    """Put the previous site back after a failed render, dropping what the renderer left."""
    try:
        if site.exists():
            shutil.rmtree(site)
        if previous is not None:
            os.replace(previous, site)
    except OSError as error:
        logger.warning("could not restore the previous site from %s: %s", previous, error)


def _smalldocs_executable():
    """Find the smalldocs command of the running interpreter's environment, else on PATH.

    smalldocs documents its command line, not a Python API, and has no
    ``__main__`` module, so the console script is the entry point.
    """
    beside = Path(sys.executable).parent / "smalldocs"
    if beside.is_file():
        return str(beside)
    found = shutil.which("smalldocs")
    if found:
        return found
    raise RenderError(
        "neither quarto nor smalldocs was found. "
        "Install smalldocs with `pip install -e '.[render]'`, or install Quarto."
    )


# Renderer warnings that every render of this site gives and that need no action: smalldocs ignores
# _quarto.yml's KaTeX setting, and the rendered pages load the vendored KaTeX either way.
EXPECTED_WARNINGS = ("format.html.html-math-method is ignored",)


def _run(command, cwd):
    """Run a renderer, log its output, and raise RenderError when it exits with a non-zero code."""
    text = " ".join(command)
    logger.info("running %s in %s", text, cwd)
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    for line in (completed.stdout + completed.stderr).splitlines():
        if any(known in line for known in EXPECTED_WARNINGS):
            logger.info("%s (expected: the pages are pointed at the vendored KaTeX after rendering)", line)
        elif line.startswith("warning:") or "WARN" in line:
            logger.warning("%s", line)
        else:
            logger.debug("%s", line)
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip()
        raise RenderError(f"`{text}` failed with exit code {completed.returncode} in {cwd}:\n{output}")
