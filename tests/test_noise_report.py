"""The noise-robustness page and the other pages on results with several label-noise levels.

A small real sweep is run once with the quick profile: three fast methods
at noise levels 0 and 0.1, two repetitions each. The tests check the
page's includes against the stored records, the figure, the page without a
sweep, the level-0 filter of the other pages, and bundles of a sweep.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy

from bench.errors import DataError
from bench.recovery import VERDICTS, judge, true_terms
from bench.render import build_site
from bench.reporting import export_bundle, write_report
from bench.reporting.figures import build_figures
from bench.reporting.markdown import format_mse, format_r2
from bench.reporting.results import StoredResults, load_results
from bench.reporting.robustness import noise_figure
from bench.signal import X, evaluate_expression, make_split, sample_grid, target_expression
from test_site_support import (
    PROJECT_ROOT,
    copy_site_sources,
    edit_runs_csv,
    make_results,
    records_of,
    table_cells,
)

LEVELS = (0.0, 0.1)
METHODS = ("floor_linear", "ceiling_nls", "operon_direct")
REPETITIONS = 2
SWEEP_CONFIG = f"""
[run]
noise_levels = [{", ".join(repr(level) for level in LEVELS)}]
methods = [{", ".join(f'"{method}"' for method in METHODS)}]
"""
# The same methods at level 0 only, without operon_direct: their runs have the sweep's level-0 cache keys.
CLEAN_CONFIG = """
[run]
noise_levels = [0.0]
methods = ["floor_linear", "ceiling_nls"]
"""


def run_bench(config_text, results_dir, work):
    """Run `python -m bench run --profile quick` with ``config_text`` as --config, storing into ``results_dir``."""
    config = work / f"{results_dir.name}.toml"
    config.write_text(config_text, encoding="utf-8")
    command = [sys.executable, "-m", "bench", "run", "--profile", "quick", "--config", str(config),
               "--results-dir", str(results_dir)]
    completed = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return results_dir


@pytest.fixture(scope="module")
def bench_runs(tmp_path_factory):
    """A real quick-profile sweep at LEVELS and a clean bench of two of its methods, in their own folders."""
    work = tmp_path_factory.mktemp("benches")
    sweep = run_bench(SWEEP_CONFIG, work / "sweep", work)
    clean = run_bench(CLEAN_CONFIG, work / "clean", work)
    return sweep, clean


@pytest.fixture(scope="module")
def sweep_report(bench_runs, tmp_path_factory):
    """The report written from the sweep itself, outside any project."""
    out = tmp_path_factory.mktemp("sweep-report") / "_generated"
    write_report(bench_runs[0], out)
    return out


def read(folder, name):
    return (folder / name).read_text(encoding="utf-8")


def method_name(cell):
    """Return the method name of a table cell such as "`ceiling_nls` (reference)"."""
    return cell.split("`")[1]


# The sweep's own page.


def test_sweep_stored_every_run(bench_runs):
    records = records_of(bench_runs[0])
    assert len(records) == len(LEVELS) * len(METHODS) * REPETITIONS
    assert sorted({record["noise"] for record in records}) == list(LEVELS)
    assert {record["status"] for record in records} == {"ok"}


def test_noise_metrics_match_records(bench_runs, sweep_report):
    rows = table_cells(read(sweep_report, "noise_metrics.md"), "noise-metrics")
    assert len(rows) == len(LEVELS) * len(METHODS)
    records = records_of(bench_runs[0])
    for row in rows:
        method, level = method_name(row[0]), float(row[1])
        cell = [record for record in records if record["method"] == method and record["noise"] == level]
        mse = [record["metrics"]["mse_test"] for record in cell]
        r2 = [record["metrics"]["r2_test"] for record in cell]
        assert row[2] == f"{len(cell)} / {len(cell)}", row
        assert row[3] == format_mse(float(np.median(mse))), row
        assert row[4].startswith(format_mse(float(np.mean(mse))) + " ["), row
        assert row[5] == format_r2(float(np.median(r2))), row
        assert row[6].startswith(format_r2(float(np.mean(r2))) + " ["), row


def test_noise_metrics_label_references(sweep_report):
    rows = table_cells(read(sweep_report, "noise_metrics.md"), "noise-metrics")
    labels = {method_name(row[0]): row[0] for row in rows}
    assert labels["ceiling_nls"] == "`ceiling_nls` (reference)"
    assert labels["floor_linear"] == "`floor_linear` (reference)"
    assert labels["operon_direct"] == "`operon_direct`"


def test_noise_recovery_matches_judge(bench_runs, sweep_report):
    rows = table_cells(read(sweep_report, "noise_recovery.md"), "noise-recovery")
    assert len(rows) == len(LEVELS) * len(METHODS)
    manifest = json.loads(read(bench_runs[0], "manifest.json"))
    signal = manifest["config"]["signal"]
    domain = tuple(signal["domain"])
    names = [term.describe(domain) for term in true_terms()]
    records = records_of(bench_runs[0])
    for row in rows:
        method, level = method_name(row[0]), float(row[1])
        cell = [record for record in records if record["method"] == method and record["noise"] == level]
        recoveries = [judge(sympy.sympify(record["formula"], locals={"x": X}), domain=domain,
                            sampling_rate_hz=signal["sampling_rate_hz"]) for record in cell]
        assert row[2] == f"{len(recoveries)} of {len(cell)}", row
        for name, found in zip(names, row[3:]):
            verdicts = [recovery.verdict_of(name) for recovery in recoveries]
            counts = ", ".join(f"{verdicts.count(verdict)} {verdict}" for verdict in VERDICTS)
            assert found == f"{counts} of {len(recoveries)}", (row, name)


def test_noise_ceiling_exact_without_noise(sweep_report):
    # The ceiling is handed the target's form, so on clean labels it recovers every term exactly.
    rows = table_cells(read(sweep_report, "noise_recovery.md"), "noise-recovery")
    clean = [row for row in rows if method_name(row[0]) == "ceiling_nls" and row[1] == "0"]
    assert len(clean) == 1
    assert all(cell.startswith(f"{REPETITIONS} exact") for cell in clean[0][3:])


def test_noise_levels_sigma(bench_runs, sweep_report):
    rows = table_cells(read(sweep_report, "noise_levels.md"), "noise-levels")
    manifest = json.loads(read(bench_runs[0], "manifest.json"))
    signal = manifest["config"]["signal"]
    spread = np.std(evaluate_expression(target_expression(), sample_grid(*signal["domain"], signal["sampling_rate_hz"])))
    assert [float(row[0]) for row in rows] == list(LEVELS)
    for row, level in zip(rows, LEVELS):
        assert row[1] == f"{level * spread:.4g}"
        assert row[3] == f"{len(METHODS) * REPETITIONS} / {len(METHODS) * REPETITIONS}"


def test_noise_figure_valid_svg(bench_runs, sweep_report):
    path = sweep_report / "figures" / "noise_r2.svg"
    root = ElementTree.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    markdown = read(sweep_report, "noise_figure.md")
    assert "(_generated/figures/noise_r2.svg)" in markdown
    for method in METHODS:
        assert method in markdown.split('fig-alt="', 1)[1]
    # The ceiling fits the clean labels to float64 rounding, below the axis's floor.
    assert f"{REPETITIONS} runs below 1e-12" in markdown


def test_noise_figure_leaves_out_methods_without_runs(tmp_path):
    runs = pd.DataFrame({
        "method": ["floor_mean", "floor_mean", "pysr_direct", "pysr_direct"],
        "status": ["ok", "ok", "unavailable", "unavailable"],
        "mse_test": [0.5, 0.6, np.nan, np.nan],
        "noise": [0.0, 0.1, 0.0, 0.1],
    })
    results = StoredResults(profile="quick", directory=tmp_path, runs=runs, manifest={}, is_bundle=False)
    markdown, svg = noise_figure(results, 1.0, "figures")
    assert "pysr_direct has no run to draw, so the legend leaves it out" in markdown.replace("\\_", "_")
    assert "pysr_direct" not in markdown.split('fig-alt="', 1)[1]
    assert b"pysr_direct" not in svg
    assert b"floor_mean" in svg


def test_noise_figure_values_are_one_minus_r2(bench_runs):
    # The figure draws test MSE / Var(y_test); for runs far from R² = 1 that equals the stored 1 − R².
    manifest = json.loads(read(bench_runs[0], "manifest.json"))
    signal, split = manifest["config"]["signal"], manifest["config"]["split"]
    drawn = make_split(target_expression(), signal["domain"], signal["sampling_rate_hz"], split["test_fraction"],
                       split["data_seed"])
    for record in records_of(bench_runs[0]):
        if record["method"] == "floor_linear":
            metrics = record["metrics"]
            assert metrics["mse_test"] / np.var(drawn.y_test) == pytest.approx(1 - metrics["r2_test"], rel=1e-9)


def test_noise_source_names_folder(bench_runs, sweep_report):
    source = read(sweep_report, "noise_source.md")
    assert f"`{bench_runs[0].as_posix()}`" in source
    assert f"{len(LEVELS) * len(METHODS) * REPETITIONS} runs at 2 noise levels" in source


# The other pages of a report on a sweep.


def test_main_tables_use_level_zero(sweep_report):
    metrics = read(sweep_report, "metrics.md")
    rows = table_cells(metrics, "results-metrics")
    assert sorted(method_name(row[0]) for row in rows) == sorted(METHODS)
    assert {row[1] for row in rows} == {f"{REPETITIONS} / {REPETITIONS}"}


def test_main_tables_match_clean_records(bench_runs, sweep_report):
    rows = table_cells(read(sweep_report, "metrics.md"), "results-metrics")
    records = records_of(bench_runs[0])
    for row in rows:
        clean = [record["metrics"]["mse_test"] for record in records
                 if record["method"] == method_name(row[0]) and record["noise"] == 0.0]
        assert row[2].startswith(format_mse(float(np.mean(clean)))), row


def test_banner_names_dropped_levels(sweep_report):
    banner = read(sweep_report, "banner.md")
    clean_runs = len(METHODS) * REPETITIONS
    assert f"use only the {clean_runs} runs at noise level 0; the other {clean_runs}, at level 0.1" in banner


def test_per_seed_and_formulas_level_zero(bench_runs, sweep_report):
    clean_keys = {record["key"] for record in records_of(bench_runs[0]) if record["noise"] == 0.0}
    noisy_keys = {record["key"] for record in records_of(bench_runs[0]) if record["noise"] > 0}
    per_seed = read(sweep_report, "per_seed.md")
    assert all(key in per_seed for key in clean_keys)
    assert not any(key in per_seed for key in noisy_keys)
    recovery = table_cells(read(sweep_report, "recovery.md"), "formulas-recovery")
    assert {row[1] for row in recovery} == {f"{REPETITIONS} of {REPETITIONS}"}


def test_records_table_has_noise_column(sweep_report):
    records = read(sweep_report, "records.md")
    assert records.splitlines()[0] == "| Method | Noise level | Repetition | Status | Record |"
    assert records.count("| 0.1 |") == len(METHODS) * REPETITIONS


# Where the page's sweep comes from.


def test_page_says_not_run(tmp_path):
    project = copy_site_sources(tmp_path / "project")
    results = make_results(project)
    out = project / "report" / "_generated"
    write_report(results, out)
    source = read(out, "noise_source.md")
    assert "The noise sweep has not been run here" in source
    assert "`results/noise/runs.csv` nor `published/noise/bundle.json` exists" in source
    assert "`nox -s bench -- --profile noise`" in source
    assert not (out / "figures" / "noise_r2.svg").exists()
    for name in ("noise_levels.md", "noise_figure.md", "noise_metrics.md", "noise_recovery.md"):
        assert read(out, name) == "No noise sweep is stored, so there is nothing to show here.\n"


def test_page_sweep_without_manifest(bench_runs, tmp_path):
    # A bench of the sweep that is still running has written runs.csv but not yet manifest.json.
    project = copy_site_sources(tmp_path / "project")
    (project / "results" / "noise").mkdir(parents=True)
    shutil.copy2(bench_runs[0] / "runs.csv", project / "results" / "noise" / "runs.csv")
    out = project / "report" / "_generated"
    write_report(make_results(project), out)
    source = read(out, "noise_source.md")
    assert source.startswith("No noise sweep is shown here: ")
    assert "manifest.json not found" in source
    assert "`nox -s bench -- --profile noise`" in source


def test_banner_without_noise_has_no_note(tmp_path):
    out = tmp_path / "out"
    write_report(make_results(tmp_path), out)
    assert "Noise robustness" not in read(out, "banner.md")


@pytest.fixture
def project_with_sweep(bench_runs, tmp_path):
    """A copy of the site's sources with the sweep in results/noise and the clean bench as the site's results."""
    project = copy_site_sources(tmp_path / "project")
    shutil.copytree(bench_runs[0], project / "results" / "noise")
    shutil.copytree(bench_runs[1], project / "results" / "clean")
    return project


def test_project_sweep_found(project_with_sweep):
    out = project_with_sweep / "report" / "_generated"
    write_report(project_with_sweep / "results" / "clean", out)
    assert "read from the results folder `results/noise`" in read(out, "noise_source.md")
    assert len(table_cells(read(out, "noise_metrics.md"), "noise-metrics")) == len(LEVELS) * len(METHODS)
    assert (out / "figures" / "noise_r2.svg").is_file()


def test_clean_runs_share_keys(project_with_sweep):
    out = project_with_sweep / "report" / "_generated"
    write_report(project_with_sweep / "results" / "clean", out)
    levels = read(out, "noise_levels.md")
    # floor_linear and ceiling_nls at level 0 are the same runs in both folders; operon_direct is only in the sweep.
    shared, clean = 2 * REPETITIONS, len(METHODS) * REPETITIONS
    assert f"{shared} of the {clean} runs at level 0 have the cache key of a run of profile `quick`" in levels
    assert "Their stored test MSE is the same in both places." in levels


def test_project_bundle_used(project_with_sweep):
    export_bundle(project_with_sweep / "results" / "noise", project_with_sweep / "published" / "noise")
    shutil.rmtree(project_with_sweep / "results" / "noise")
    out = project_with_sweep / "report" / "_generated"
    write_report(project_with_sweep / "results" / "clean", out)
    assert "read from the published bundle `published/noise`" in read(out, "noise_source.md")


@pytest.mark.slow
def test_rendered_noise_page(project_with_sweep):
    build_site(project_with_sweep, "quick", results_dir=project_with_sweep / "results" / "clean")
    html = (project_with_sweep / "_site" / "report" / "noise.html").read_text(encoding="utf-8")
    assert 'id="noise-metrics"' in html
    assert 'id="noise-recovery"' in html
    assert 'src="_generated/figures/noise_r2.svg"' in html
    assert (project_with_sweep / "_site" / "report" / "_generated" / "figures" / "noise_r2.svg").is_file()


# The noise column of runs.csv and bundles.


def test_old_runs_csv_loads_as_clean(tmp_path):
    results = make_results(tmp_path)
    assert "noise" not in (results / "runs.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    runs = load_results(results).runs
    assert runs["noise"].tolist() == [0.0] * len(runs)


def test_edited_noise_rejected(bench_runs, tmp_path):
    results = shutil.copytree(bench_runs[0], tmp_path / "sweep")
    key = next(record["key"] for record in records_of(results) if record["noise"] == 0.1)
    edit_runs_csv(results, key, noise="0.01")
    with pytest.raises(DataError, match=rf"the noise of run {key} is 0\.01, but its record .* has 0\.1"):
        load_results(results)


def test_noise_column_against_record_without_noise(tmp_path):
    # A record written before noise levels existed was trained on clean labels, so its runs.csv level must be 0.
    results = make_results(tmp_path)
    with (results / "runs.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row["noise"] = "0.1" if row["method"] == "kan_numeric" and row["repetition"] == "1" else "0.0"
    with (results / "runs.csv").open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(DataError, match=r"the noise of run [0-9a-f]{24} is 0\.1, but its record .* has 0\.0"):
        load_results(results)


@pytest.mark.parametrize(("value", "shown"), [("-0.1", "-0.1"), ("", "an empty cell"), ("inf", "inf")])
def test_invalid_noise_level_rejected(bench_runs, tmp_path, value, shown):
    results = shutil.copytree(bench_runs[0], tmp_path / "sweep")
    key = records_of(results)[0]["key"]
    edit_runs_csv(results, key, noise=value)
    with pytest.raises(DataError, match=rf"the noise of run {key} is {shown}, not a noise level of 0 or more"):
        load_results(results)


def test_sweep_bundle_round_trip(bench_runs, sweep_report, tmp_path):
    bundle = export_bundle(bench_runs[0], tmp_path / "published" / "noise").directory
    assert (bundle / "runs.csv").read_bytes() == (bench_runs[0] / "runs.csv").read_bytes()
    for record in records_of(bench_runs[0]):
        stored = json.loads((bundle / "records" / f"{record['key']}.json").read_text(encoding="utf-8"))
        assert stored == record

    loaded = load_results(bundle)
    assert loaded.is_bundle
    assert sorted(set(loaded.runs["noise"])) == list(LEVELS)

    out = tmp_path / "_generated"
    write_report(bundle, out)
    for name in ("noise_levels.md", "noise_metrics.md", "noise_recovery.md", "metrics.md"):
        assert read(out, name) == read(sweep_report, name), name
    assert (out / "figures" / "noise_r2.svg").read_bytes() == (sweep_report / "figures" / "noise_r2.svg").read_bytes()


def test_sweep_bundle_figures_level_zero(bench_runs, tmp_path):
    bundle = export_bundle(bench_runs[0], tmp_path / "bundle").directory
    stored = (bundle / "figures" / "test_mse_per_seed.svg").read_bytes()
    results = load_results(bench_runs[0])
    drawn = {figure.name: figure.svg for figure in build_figures(results.at_lowest_noise(), target_expression())}
    every_level = {figure.name: figure.svg for figure in build_figures(results, target_expression())}
    assert stored == drawn["test_mse_per_seed.svg"]
    assert stored != every_level["test_mse_per_seed.svg"]
