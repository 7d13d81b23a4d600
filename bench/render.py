"""Render the report site with Quarto when it is installed, otherwise with smalldocs.

Rendering reads only the files that ``bench.reporting.write_report`` wrote
and fits no model. Neither renderer needs the network here, but the pages
load KaTeX for the math from a CDN when a browser opens them.
"""

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from bench.errors import BenchError

logger = logging.getLogger(__name__)

# Must match project.output-dir in _quarto.yml.
SITE_FOLDER = "_site"


class RenderError(BenchError):
    """The site renderer failed, or finished without writing the site's index page."""


def render_site(project_root):
    """Render the website project in ``project_root`` and return the renderer used: "quarto" or "smalldocs".

    Raises RenderError with the command and its exit code when rendering
    fails, and when ``_site/index.html`` is missing afterwards.
    """
    project_root = Path(project_root).resolve()
    if not (project_root / "_quarto.yml").is_file():
        raise RenderError(f"{project_root / '_quarto.yml'} not found; pass the folder of the Quarto project.")

    quarto = shutil.which("quarto")
    if quarto:
        renderer, command = "quarto", [quarto, "render"]
    else:
        renderer, command = "smalldocs", [_smalldocs_executable(), "render", "."]
    _run(command, project_root)

    index = project_root / SITE_FOLDER / "index.html"
    if not index.is_file():
        raise RenderError(
            f"`{' '.join(command)}` finished but {index} is missing. "
            f"Check that project.output-dir in _quarto.yml is {SITE_FOLDER}."
        )
    logger.info("rendered %s with %s", project_root / SITE_FOLDER, renderer)
    return renderer


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


def _run(command, cwd):
    """Run a renderer, log its output, and raise RenderError when it exits with a non-zero code."""
    text = " ".join(command)
    logger.info("running %s in %s", text, cwd)
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    for line in (completed.stdout + completed.stderr).splitlines():
        if line.startswith("warning:") or "WARN" in line:
            logger.warning("%s", line)
        else:
            logger.debug("%s", line)
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip()
        raise RenderError(f"`{text}` failed with exit code {completed.returncode} in {cwd}:\n{output}")
