"""Tests of the report writer and the site renderer, on a small fake results folder."""

import csv
import json
import re
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
import sympy

from bench.errors import DataError, NoResultsError
from bench.render import RenderError, render_site
from bench.reporting import write_report
from bench.signal import X, evaluate_expression, sample_grid, target_expression

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROFILE = "fake"
RATE_HZ = 200
DOMAIN = (-0.5, 0.5)
COLUMNS = (
    "method", "repetition", "seed", "status", "reason", "stage", "mse_test", "r2_test",
    "mse_train", "seconds", "formula", "formula_latex", "formula_size", "key",
)  # fmt: skip
UNAVAILABLE_REASON = "no Julia executable found on PATH; install Julia to run PySR"
FAILED_REASON = "auto_symbolic found no function | edge (0, 1, 0)"
SYMBOLIC_FORMULA = 4 / sympy.pi * sympy.sin(20 * sympy.pi * X) + sympy.Float("0.01") * X
NBSP = "\u00a0"
KAN_MSE_TEST = (1.5e-3, 2.5e-3)
KAN_R2_TEST = (0.9991, 0.9987)


def run_row(method, repetition, status, **values):
    row = dict.fromkeys(COLUMNS, "")
    row.update(method=method, repetition=repetition, seed=1_900_000_000 + repetition, status=status)
    row.update(values)
    return row


def make_results(root, methods=("kan_numeric", "kan_symbolic", "pysr_direct")):
    """Write a fake results/<profile>/ folder and return it: ok, failed and unavailable runs, two repetitions each."""
    results = root / "results" / PROFILE
    (results / "arrays").mkdir(parents=True)
    x = sample_grid(*DOMAIN, RATE_HZ)
    y = evaluate_expression(target_expression(), x)

    rows = []
    if "kan_numeric" in methods:
        for repetition in (0, 1):
            key = f"kan_numeric-{repetition}"
            np.savez(results / "arrays" / f"{key}.npz", predictions=y + 0.01 * (repetition + 1) * np.cos(x))
            rows.append(
                run_row(
                    "kan_numeric", repetition, "ok", key=key, mse_test=KAN_MSE_TEST[repetition],
                    r2_test=KAN_R2_TEST[repetition], mse_train=1e-3 * (repetition + 1), seconds=12.5 + repetition,
                )
            )  # fmt: skip
    if "kan_symbolic" in methods:
        np.savez(results / "arrays" / "kan_symbolic-0.npz", predictions=evaluate_expression(SYMBOLIC_FORMULA, x))
        rows.append(
            run_row(
                "kan_symbolic", 0, "ok", key="kan_symbolic-0", mse_test=0.25, r2_test=0.5, mse_train=0.24,
                seconds=3.0, formula=str(SYMBOLIC_FORMULA), formula_latex=sympy.latex(SYMBOLIC_FORMULA),
                formula_size=9,
            )
        )  # fmt: skip
        rows.append(run_row("kan_symbolic", 1, "failed", stage="symbolic", reason=FAILED_REASON, seconds=2.0))
    if "pysr_direct" in methods:
        for repetition in (0, 1):
            rows.append(
                run_row("pysr_direct", repetition, "unavailable", stage="availability", reason=UNAVAILABLE_REASON)
            )

    with open(results / "runs.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    manifest = {
        "profile": PROFILE,
        "config": {
            "signal": {"domain": list(DOMAIN), "sampling_rate_hz": RATE_HZ},
            "split": {"test_fraction": 0.2, "data_seed": 0},
            "run": {"repetitions": 2, "base_seed": 0, "methods": list(methods)},
            "methods": {"kan": {"width": [1, 4, 1]}, "kan_symbolic": {"lib": ["sin"]}, "pysr": {}, "operon": {}},
        },
        "written_at": "2025-01-02T03:04:05+00:00",
        "git_commit": "0123456789abcdef",
        "versions": {"python": "3.11.9", "numpy": "2.4.6", "sympy": "1.14.0"},
        "machine": {"cpu": "Fake CPU", "cores": 4, "system": "Linux-6.1-x86_64"},
    }
    (results / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return results


def table_rows(markdown, first_cell):
    """Return the cells of the pipe-table rows whose first cell is ``first_cell``, with inline spans removed."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            text = re.sub(r"</?span[^>]*>", "", line)
            cells = [cell.strip() for cell in text.strip().strip("|").split(" | ")]
            if cells[0] == first_cell:
                rows.append(cells)
    return rows


def snapshot(folder):
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def results(tmp_path):
    return make_results(tmp_path)


@pytest.fixture
def report(results, tmp_path):
    out = tmp_path / "report" / "_generated"
    write_report(results, out)
    return out


def test_metrics_one_row_per_method(report):
    metrics = (report / "metrics.md").read_text(encoding="utf-8")
    for method, counts in (("kan_numeric", "2 / 2"), ("kan_symbolic", "1 / 2"), ("pysr_direct", "0 / 2")):
        rows = table_rows(metrics, f"`{method}`")
        assert len(rows) == 1, method
        assert rows[0][1] == counts, method


def test_metrics_rows_in_canonical_order(report):
    metrics = (report / "metrics.md").read_text(encoding="utf-8")
    positions = [metrics.index(f"| `{method}` |") for method in ("kan_numeric", "kan_symbolic", "pysr_direct")]
    assert positions == sorted(positions)


def test_metrics_mean_and_std(report):
    row = table_rows((report / "metrics.md").read_text(encoding="utf-8"), "`kan_numeric`")[0]
    expected_mse = f"{statistics.mean(KAN_MSE_TEST):.2e}{NBSP}± {statistics.stdev(KAN_MSE_TEST):.2e}"
    expected_r2 = f"{statistics.mean(KAN_R2_TEST):.6f}{NBSP}± {statistics.stdev(KAN_R2_TEST):.6f}"
    assert row[2] == expected_mse
    assert row[2] == f"2.00e-03{NBSP}± 7.07e-04"
    assert row[3] == expected_r2


def test_metrics_single_ok_run_std_na(report):
    row = table_rows((report / "metrics.md").read_text(encoding="utf-8"), "`kan_symbolic`")[0]
    assert row[2] == f"2.50e-01{NBSP}± n/a"
    assert row[3] == f"0.500000{NBSP}± n/a"


def test_metrics_unavailable_reason(report):
    metrics = (report / "metrics.md").read_text(encoding="utf-8")
    row = table_rows(metrics, "`pysr_direct`")[0]
    assert row[6] == "2 unavailable"
    assert row[2] == "—"
    assert "- `pysr_direct`: unavailable: no Julia executable found on PATH; install Julia to run PySR" in metrics


def test_metrics_failed_reason_escaped(report):
    metrics = (report / "metrics.md").read_text(encoding="utf-8")
    assert "- `kan_symbolic`: 1 failed: auto\\_symbolic found no function \\| edge (0, 1, 0)" in metrics
    row = table_rows(metrics, "`kan_symbolic`")[0]
    assert len(row) == 7
    assert row[6] == "1 failed"
    assert table_rows(metrics, "`kan_numeric`")[0][6] == "—"


def test_metrics_long_reason_cut(results, tmp_path):
    runs = results / "runs.csv"
    long_reason = "traceback line " * 40
    runs.write_text(runs.read_text(encoding="utf-8").replace(FAILED_REASON, long_reason), encoding="utf-8")
    out = tmp_path / "out"
    write_report(results, out)
    lines = [line for line in (out / "metrics.md").read_text(encoding="utf-8").splitlines() if "traceback" in line]
    assert len(lines) == 1
    assert lines[0].endswith("line …")
    assert len(lines[0]) < 300
    assert long_reason.strip() in (out / "per_seed.md").read_text(encoding="utf-8")


def test_metrics_ddof_footnote(report):
    assert "ddof = 1" in (report / "metrics.md").read_text(encoding="utf-8")


def test_per_seed_one_row_per_run(report):
    per_seed = (report / "per_seed.md").read_text(encoding="utf-8")
    assert len(table_rows(per_seed, "`kan_numeric`")) == 2
    assert len(table_rows(per_seed, "`kan_symbolic`")) == 2
    assert len(table_rows(per_seed, "`pysr_direct`")) == 2


def test_per_seed_failed_run_reason(report):
    per_seed = (report / "per_seed.md").read_text(encoding="utf-8")
    failed = [row for row in table_rows(per_seed, "`kan_symbolic`") if row[3] == "failed"]
    assert len(failed) == 1
    assert failed[0][1:5] == ["1", "1900000001", "failed", "symbolic"]
    assert failed[0][5] == "auto\\_symbolic found no function \\| edge (0, 1, 0)"


def test_per_seed_ok_run_metrics(report):
    per_seed = (report / "per_seed.md").read_text(encoding="utf-8")
    first = table_rows(per_seed, "`kan_numeric`")[0]
    assert first[1:5] == ["0", "1900000000", f"{KAN_MSE_TEST[0]:.2e}", f"{KAN_R2_TEST[0]:.6f}"]


def test_formulas_contain_latex(report):
    formulas = (report / "formulas.md").read_text(encoding="utf-8")
    true_latex = sympy.latex(target_expression())
    assert f"$$\n{true_latex}\n$$" in formulas
    assert f"$$\n{sympy.latex(SYMBOLIC_FORMULA)}\n$$" in formulas
    assert formulas.count('::: {style="overflow-x: auto"}\n$$') == 2
    assert "size 9 nodes" in formulas
    assert "unavailable: no Julia executable found" in formulas


def test_formulas_skip_numeric_method(report):
    assert "kan_numeric" not in (report / "formulas.md").read_text(encoding="utf-8")


def test_figures_exist_and_are_svg(report):
    names = sorted(path.name for path in (report / "figures").iterdir())
    assert names == ["fit_kan_numeric.svg", "fit_kan_symbolic.svg", "target.svg"]
    for name in names:
        text = (report / "figures" / name).read_text(encoding="utf-8")
        assert text.startswith("<?xml")
        assert "<svg" in text


def test_figures_markdown_lists_each_figure(report):
    figures = (report / "figures.md").read_text(encoding="utf-8")
    for name in ("target.svg", "fit_kan_numeric.svg", "fit_kan_symbolic.svg"):
        assert re.search(rf"^!\[.+\]\(_generated/figures/{re.escape(name)}\)\{{fig-alt=\".+\"\}}$", figures, re.M), name


def test_provenance_has_commands(report):
    provenance = (report / "provenance.md").read_text(encoding="utf-8")
    assert f"nox -s bench -- --profile {PROFILE}" in provenance
    assert f"nox -s render -- --profile {PROFILE}" in provenance
    assert "0123456789abcdef" in provenance
    assert "Fake CPU" in provenance
    assert "Linux-6.1-x86\\_64" in provenance


def test_rewrite_is_byte_identical(results, report):
    first = snapshot(report)
    write_report(results, report)
    assert snapshot(report) == first


def test_stale_file_removed(tmp_path, report):
    assert (report / "figures" / "fit_kan_symbolic.svg").exists()
    fewer = make_results(tmp_path / "second", methods=("kan_numeric", "pysr_direct"))
    write_report(fewer, report)
    assert not (report / "figures" / "fit_kan_symbolic.svg").exists()
    assert (report / "figures" / "fit_kan_numeric.svg").exists()


def test_unlisted_file_kept(results, report):
    own = report / "notes.txt"
    own.write_text("kept", encoding="utf-8")
    write_report(results, report)
    assert own.read_text(encoding="utf-8") == "kept"


def test_failed_build_keeps_previous_report(results, report):
    before = snapshot(report)
    np.savez(results / "arrays" / "kan_symbolic-0.npz", predictions=np.zeros(3))
    with pytest.raises(DataError, match="contains 3 predictions"):
        write_report(results, report)
    assert snapshot(report) == before


def test_missing_runs_csv_raises(results, tmp_path):
    (results / "runs.csv").unlink()
    with pytest.raises(NoResultsError, match=r"runs\.csv.*nox -s bench -- --profile fake"):
        write_report(results, tmp_path / "out")


def test_missing_manifest_raises(results, tmp_path):
    (results / "manifest.json").unlink()
    with pytest.raises(NoResultsError, match=r"manifest\.json.*nox -s bench -- --profile fake"):
        write_report(results, tmp_path / "out")


def test_unknown_status_raises(results, tmp_path):
    runs = results / "runs.csv"
    runs.write_text(runs.read_text(encoding="utf-8").replace(",unavailable,", ",skipped,"), encoding="utf-8")
    with pytest.raises(DataError, match=r"unknown status values \['skipped'\]"):
        write_report(results, tmp_path / "out")


def test_render_without_project_raises(tmp_path):
    with pytest.raises(RenderError, match="_quarto.yml not found"):
        render_site(tmp_path)


@pytest.mark.slow
def test_render_failure_names_command(tmp_path):
    (tmp_path / "_quarto.yml").write_text("project:\n  type: website\nformat:\n  html:\n    theme: no-such-theme\n")
    (tmp_path / "index.qmd").write_text("# Index\n")
    with pytest.raises(RenderError, match=r"render.* failed with exit code [1-9]"):
        render_site(tmp_path)


@pytest.mark.slow
def test_render_site_pages(results, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(PROJECT_ROOT / "_quarto.yml", site)
    shutil.copy(PROJECT_ROOT / "index.qmd", site)
    shutil.copytree(PROJECT_ROOT / "report", site / "report", ignore=shutil.ignore_patterns("_generated"))
    write_report(results, site / "report" / "_generated")

    renderer = render_site(site)

    assert renderer in ("quarto", "smalldocs")
    index = (site / "_site" / "index.html").read_text(encoding="utf-8")
    assert "report/results.html" in index
    assert sympy.latex(target_expression()) in index
    page = (site / "_site" / "report" / "results.html").read_text(encoding="utf-8")
    assert re.search(r"<td[^>]*><code>kan_numeric</code></td>\s*<td[^>]*>2 / 2</td>", page)
    assert re.search(r"<td[^>]*><code>pysr_direct</code></td>\s*<td[^>]*>0 / 2</td>", page)
    assert r"\sin{\left(20 \pi x \right)}" in page
    assert "auto_symbolic found no function | edge (0, 1, 0)" in page
    assert 'src="_generated/figures/fit_kan_numeric.svg"' in page
    assert (site / "_site" / "report" / "_generated" / "figures" / "target.svg").is_file()
