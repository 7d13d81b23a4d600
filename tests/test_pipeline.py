"""The main job end to end: a quick-profile bench, a rerun that reuses everything, and a render."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import METHOD_NAMES
from bench.reporting.formulas import NUMERIC_METHODS

ROOT = Path(__file__).resolve().parents[1]
SITE_SOURCES = ["_quarto.yml", "index.qmd", "report"]
# The quick profile runs every method twice. Without Julia, the PySR runs are unavailable, and a rerun
# reuses only the other methods' runs.
PYSR_METHODS = ("pysr_direct", "pysr_distilled")
# The quick profile with a smaller KAN, because snapping the 51 edges of its [1, 12, 3, 1] network made this
# bench take over a minute on 2 cores, and two short windows for the sine-output KAN, whose default budget
# added 16 s. The signal suite runs the quick profile unchanged.
SMALL_KAN_TOML = """
[methods.kan]
width = [1, 4, 1]

[methods.kan_symbolic_sines]
windows = [0.5, 1.0]
window_lbfgs_steps = 2
refit_lbfgs_steps = 1
"""


def run_cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the site sources in which the quick profile has been benched once."""
    folder = tmp_path_factory.mktemp("project")
    for name in SITE_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("_generated"))
        else:
            shutil.copy2(source, folder / name)
    (folder / "small_kan.toml").write_text(SMALL_KAN_TOML)
    first = run_cli("run", "--profile", "quick", "--config", "small_kan.toml", cwd=folder)
    assert first.returncode == 0, first.stderr[-3000:]
    return folder, first


def read_runs(folder):
    with open(folder / "results" / "quick" / "runs.csv", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_quick_bench_records_every_run(project):
    folder, _ = project
    rows = read_runs(folder)
    assert {row["method"] for row in rows} == set(METHOD_NAMES)
    assert len(rows) == len(METHOD_NAMES) * 2
    assert {row["repetition"] for row in rows} == {"0", "1"}


@pytest.mark.slow
def test_quick_bench_marks_pysr(project):
    folder, _ = project
    pysr_rows = [row for row in read_runs(folder) if row["method"].startswith("pysr")]
    if shutil.which("julia") is None and not os.environ.get("PYTHON_JULIAPKG_EXE"):
        assert {row["status"] for row in pysr_rows} == {"unavailable"}
        assert all("Julia" in row["reason"] for row in pysr_rows)
    else:
        assert {row["status"] for row in pysr_rows} <= {"ok", "failed"}


@pytest.mark.slow
def test_quick_bench_symbolic_rows_have_formulas(project):
    folder, _ = project
    for row in read_runs(folder):
        if row["status"] == "ok" and row["method"] not in NUMERIC_METHODS:
            assert row["formula"]
            assert row["formula_latex"]
            assert int(row["formula_size"]) > 0
        if row["status"] == "ok":
            assert float(row["mse_test"]) >= 0


@pytest.mark.slow
def test_rerun_computes_nothing(project):
    folder, _ = project
    again = run_cli("run", "--profile", "quick", "--config", "small_kan.toml", cwd=folder)
    assert again.returncode == 0
    reusable = len(METHOD_NAMES) - len(PYSR_METHODS)
    assert f"0 computed, {reusable * 2} reused, 0 failed" in again.stdout


@pytest.mark.slow
def test_render_builds_site_with_table(project):
    folder, _ = project
    rendered = run_cli("render", "--profile", "quick", cwd=folder)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert (folder / "_site" / "index.html").is_file()
    results = (folder / "_site" / "report" / "results.html").read_text()
    for method in METHOD_NAMES:
        assert method in results
    assert "<table" in results
    assert "unavailable" in results
