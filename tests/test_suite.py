"""The signal suite in the report: one page per signal from one template, the Suite page and suite bundles.

A small real suite is run once with the quick profile: two fast reference
methods on the seed signal, a pure tone and the sunspot series. The tests
check the generated pages and includes against the stored records, the
sunspots page without ground truth, the Suite page's tables, a suite whose
manifest predates the signal block, bundles of the suite, and the render.
"""

import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tomllib

import numpy as np
import pytest

from bench import signals
from bench.errors import DataError
from bench.render import build_site
from bench.reporting import export_bundle, write_report
from bench.reporting.markdown import format_mse, format_r2, format_seconds
from bench.reporting.results import load_results
from bench.reporting.signal_page import INCLUDES
from bench.reporting.targets import StoredSignal, recovery_gap
from test_site_support import PROJECT_ROOT, copy_site_sources, make_results, records_of, table_cells

SIGNALS = ("seed", "tone_slow", "sunspots")
METHODS = ("ceiling_nls", "floor_linear")
REPETITIONS = 2


def run_cli(*args, cwd):
    """Run `python -m bench` with ``args`` in ``cwd`` and return the finished process."""
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))


@pytest.fixture(scope="module")
def suite_project(tmp_path_factory):
    """A copy of the site's sources with a real quick-profile suite in results/quick and its report written."""
    root = copy_site_sources(tmp_path_factory.mktemp("suite"))
    completed = run_cli("run", "--profile", "quick", "--signals", ",".join(SIGNALS), "--methods", ",".join(METHODS),
                        cwd=root)
    assert completed.returncode == 0, completed.stderr[-3000:]
    write_report(root / "results" / "quick", root / "report" / "_generated")
    return root


def generated(root, *parts):
    return root.joinpath("report", "_generated", *parts).read_text(encoding="utf-8")


def signal_folder(root, name):
    base = root / "results" / "quick"
    return base if name == "seed" else base / "signals" / name


def make_old_style_suite(root):
    """Write fake results of the quick profile whose manifest predates the signal block, as published/default's does."""
    results = make_results(root, profile="quick")
    path = results / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.pop("signal", None)
    for key in ("name", "expression"):
        manifest["config"]["signal"].pop(key, None)
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return results


# The pages of a real suite.


def test_suite_stored_every_signal(suite_project):
    for name in SIGNALS:
        records = records_of(signal_folder(suite_project, name))
        assert len(records) == len(METHODS) * REPETITIONS, name
        assert {record["status"] for record in records} == {"ok"}, name


def test_signal_pages_from_template(suite_project):
    template = (suite_project / "report" / "_signal_template.qmd").read_text(encoding="utf-8")
    pages = suite_project / "report" / "signals"
    assert sorted(path.name for path in pages.glob("*.qmd")) == sorted(f"{name}.qmd" for name in SIGNALS)
    for name in SIGNALS:
        page = (pages / f"{name}.qmd").read_text(encoding="utf-8")
        assert page == template.replace("@SIGNAL@", name)
        for include in INCLUDES:
            assert f"{{{{< include ../_generated/signals/{name}/{include} >}}}}" in page, (name, include)
            assert (suite_project / "report" / "_generated" / "signals" / name / include).is_file(), (name, include)
        svg = suite_project / "report" / "_generated" / "signals" / name / "figures" / "signal.svg"
        assert svg.read_bytes().startswith(b"<?xml"), name


def test_signal_metrics_match_records(suite_project):
    for name in SIGNALS:
        rows = table_cells(generated(suite_project, "signals", name, "metrics.md"), "signal-metrics")
        assert [row[0].split("`")[1] for row in rows] == list(METHODS), name
        records = records_of(signal_folder(suite_project, name))
        for row in rows:
            method = row[0].split("`")[1]
            runs = [record for record in records if record["method"] == method]
            assert row[1] == f"{len(runs)} / 0 / 0", (name, method)
            assert row[2] == format_mse(np.median([run["metrics"]["mse_test"] for run in runs])), (name, method)
            assert row[4] == format_r2(np.median([run["metrics"]["r2_test"] for run in runs])), (name, method)
            # runs.csv, which the tables read, keeps the seconds to 3 decimals.
            seconds = [round(run["seconds"], 3) for run in runs]
            assert row[6] == format_seconds(np.median(seconds)), (name, method)


def test_signal_page_shows_own_formula(suite_project):
    tone = generated(suite_project, "signals", "tone_slow", "signal.md")
    assert "a pure 3 Hz tone" in tone
    assert "\\sin{\\left(6 \\pi x \\right)}" in tone
    banner = generated(suite_project, "signals", "tone_slow", "banner.md")
    assert "Signal `tone_slow` of the suite, read from the results folder `results/quick/signals/tone_slow`" in banner


def test_tone_page_judges_its_own_terms(suite_project):
    rows = table_cells(generated(suite_project, "signals", "tone_slow", "recovery.md"), "formulas-recovery")
    header = generated(suite_project, "signals", "tone_slow", "recovery.md").split("::: {#formulas-recovery}")[1]
    assert "| 3 Hz tone |" in header.splitlines()[1]
    assert "10 Hz tone" not in header
    judged = {row[0]: row for row in rows}
    assert judged["`ceiling_nls`"][2] == "2 exact, 0 almost, 0 missed of 2"
    assert judged["`floor_linear`"][2] == "0 exact, 0 almost, 2 missed of 2"


def test_sunspots_page_without_ground_truth(suite_project):
    signal = generated(suite_project, "signals", "sunspots", "signal.md")
    assert "There is no ground truth" in signal
    assert "statsmodels.datasets.sunspots" in signal
    recovery = generated(suite_project, "signals", "sunspots", "recovery.md")
    assert "no ground truth" in recovery
    assert "formulas-recovery" not in recovery
    assert "True formula" not in generated(suite_project, "signals", "sunspots", "formulas.md")
    sampling = generated(suite_project, "signals", "sunspots", "sampling.md")
    assert "| Samples | 309 |" in sampling
    assert "| Values per unit of x | 309: the series' values" in sampling
    assert " Hz" not in sampling


def test_suite_tables_link_every_signal(suite_project):
    for table_id, name, column, formatter in (("suite-r2", "suite_r2.md", "r2_test", format_r2),
                                               ("suite-mse", "suite_mse.md", "mse_test", format_mse)):
        rows = table_cells(generated(suite_project, name), table_id)
        # Markdown escapes the underscore of a name in the link text.
        assert [row[0] for row in rows] == ["[seed](signals/seed.qmd)", "[tone\\_slow](signals/tone_slow.qmd)",
                                            "[sunspots](signals/sunspots.qmd)"]
        for signal, row in zip(SIGNALS, rows):
            records = records_of(signal_folder(suite_project, signal))
            for method, cell in zip(METHODS, row[1:]):
                values = [record["metrics"][column] for record in records if record["method"] == method]
                assert cell == formatter(np.median(values)), (signal, method)
    source = generated(suite_project, "suite_source.md")
    assert "read from the results folder `results/quick`" in source
    assert "budgets are tiny" in source


def test_suite_render(suite_project):
    build_site(suite_project, "quick")
    site = suite_project / "_site" / "report"
    suite = (site / "suite.html").read_text(encoding="utf-8")
    for name in SIGNALS:
        assert f'href="signals/{name}.html"' in suite, name
    sunspots = (site / "signals" / "sunspots.html").read_text(encoding="utf-8")
    assert "There is no ground truth" in sunspots
    assert 'src="../_generated/signals/sunspots/figures/signal.svg"' in sunspots
    assert (site / "_generated" / "signals" / "sunspots" / "figures" / "signal.svg").is_file()


# Runs `python -m bench ARGS...` with every module in the comma-separated first argument made unimportable.
BLOCKING_RUNNER = """
import importlib.abc
import sys

BLOCKED = set(sys.argv[1].split(","))


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: no core or render dependency installs it")
        return None


sys.meta_path.insert(0, Blocker())
from bench.cli import main

sys.exit(main(sys.argv[2:]))
"""


def canonical_name(requirement):
    """Return the normalised distribution name at the start of a requirement string."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group(0)).lower()


def dependency_closure(requirements):
    """Return the names of the distributions in ``requirements`` and of everything they require, installed or not."""
    seen = set()
    pending = [canonical_name(requirement) for requirement in requirements]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            required = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        pending.extend(canonical_name(entry) for entry in required if "extra ==" not in entry)
    return seen


def modules_outside_render_install():
    """Return the top-level modules that only the methods and distributed extras install."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    rendered = dependency_closure(project["dependencies"] + extras["render"])
    others = dependency_closure(extras["methods"] + extras["distributed"]) - rendered
    return sorted(module for module, distributions in importlib.metadata.packages_distributions().items()
                  if any(canonical_name(name) in others for name in distributions))


def test_render_needs_only_render_extra(suite_project):
    blocked = modules_outside_render_install()
    assert "torch" in blocked
    assert "kan" in blocked
    command = [sys.executable, "-c", BLOCKING_RUNNER, ",".join(blocked), "render", "--profile", "quick"]
    rendered = subprocess.run(command, cwd=suite_project, capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)))
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert (suite_project / "_site" / "report" / "signals" / "sunspots.html").is_file()


# Bundles of a suite.


def test_publish_exports_signal_bundles(suite_project, tmp_path, caplog):
    completed = run_cli("publish", "--profile", "quick", cwd=suite_project)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "other signals of the suite" in completed.stdout
    published = suite_project / "published" / "quick"
    for name in SIGNALS:
        folder = published if name == "seed" else published / "signals" / name
        with caplog.at_level(logging.WARNING):
            bundle = load_results(folder)
        assert bundle.is_bundle, name
        assert sorted(bundle.runs["key"]) == sorted(record["key"] for record in records_of(signal_folder(suite_project, name)))
    assert [record.message for record in caplog.records if record.levelno >= logging.WARNING] == []

    clone = copy_site_sources(tmp_path / "clone")
    shutil.copytree(published, clone / "published" / "quick")
    write_report(clone / "published" / "quick", clone / "report" / "_generated")
    for name in SIGNALS:
        drawn = suite_project / "report" / "_generated" / "signals" / name / "figures" / "signal.svg"
        stored = clone / "report" / "_generated" / "signals" / name / "figures" / "signal.svg"
        assert stored.read_bytes() == drawn.read_bytes(), name
        assert generated(clone, "signals", name, "metrics.md") == generated(suite_project, "signals", name, "metrics.md")
    assert "read from the published bundle `published/quick`" in generated(clone, "suite_source.md")


@pytest.fixture(scope="module")
def suite_bundle(suite_project, tmp_path_factory):
    """The bundle of the real suite, exported once; tests copy it before changing it."""
    bundle = tmp_path_factory.mktemp("suite_bundle") / "quick"
    export_bundle(suite_project / "results" / "quick", bundle)
    return bundle


def test_publish_keeps_other_signal_bundles(suite_project, suite_bundle, tmp_path, caplog):
    bundle = tmp_path / "bundle"
    shutil.copytree(suite_bundle, bundle)
    earlier = {path.relative_to(bundle): path.read_bytes()
               for path in (bundle / "signals" / "tone_slow").rglob("*") if path.is_file()}
    fewer = tmp_path / "fewer"
    shutil.copytree(suite_project / "results" / "quick", fewer)
    shutil.rmtree(fewer / "signals" / "tone_slow")
    with caplog.at_level(logging.INFO):
        exported = export_bundle(fewer, bundle)
    assert exported.kept_signals == ("tone_slow",)
    assert exported.signals == ("sunspots",)
    kept_files = {path.relative_to(bundle): path.read_bytes()
                  for path in (bundle / "signals" / "tone_slow").rglob("*") if path.is_file()}
    assert kept_files == earlier
    assert load_results(bundle / "signals" / "tone_slow").is_bundle
    assert any("kept the earlier bundles of signals tone_slow" in record.message for record in caplog.records)


def test_publish_rejects_damaged_kept_bundle(suite_project, suite_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(suite_bundle, bundle)
    (bundle / "signals" / "tone_slow" / "runs.csv").write_text("edited", encoding="utf-8")
    fewer = tmp_path / "fewer"
    shutil.copytree(suite_project / "results" / "quick", fewer)
    shutil.rmtree(fewer / "signals" / "tone_slow")
    with pytest.raises(DataError, match=r"the earlier bundle of signal tone_slow, which this publish would keep, is "
                                        r"damaged: .* Restore .*signals/tone_slow with git, or move it away"):
        export_bundle(fewer, bundle)
    assert (bundle / "signals" / "tone_slow" / "runs.csv").read_text(encoding="utf-8") == "edited"


def drop_method_rows(results, method):
    """Remove the rows of ``method`` from ``results``/runs.csv, as a bench that stored no run of it writes the file."""
    path = results / "runs.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(line for line in lines if not line.startswith(f"{method},")), encoding="utf-8")


def test_publish_catches_signal_losing_method(suite_project, suite_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(suite_bundle, bundle)
    earlier = {path.relative_to(bundle): path.read_bytes() for path in bundle.rglob("*") if path.is_file()}
    fewer = tmp_path / "fewer"
    shutil.copytree(suite_project / "results" / "quick", fewer)
    drop_method_rows(fewer / "signals" / "tone_slow", "floor_linear")
    expected = (f"{bundle / 'signals' / 'tone_slow'} has {REPETITIONS} runs of floor_linear that "
                f"{fewer / 'signals' / 'tone_slow'} lacks. Run `nox -s bench -- --profile quick --signals tone_slow "
                f"--results-dir {fewer} --methods floor_linear` to store them there first. Or pass --drop-runs")
    with pytest.raises(DataError, match=re.escape(expected)):
        export_bundle(fewer, bundle)
    now = {path.relative_to(bundle): path.read_bytes() for path in bundle.rglob("*") if path.is_file()}
    assert now == earlier

    exported = export_bundle(fewer, bundle, drop_runs=True)
    assert [(entry.bundle, entry.counts) for entry in exported.dropped_runs] == [
        (bundle / "signals" / "tone_slow", (("floor_linear", REPETITIONS),))]
    assert set(load_results(bundle / "signals" / "tone_slow").runs["method"]) == {"ceiling_nls"}


def test_local_signal_keeps_published_others(suite_project, suite_bundle, tmp_path):
    root = copy_site_sources(tmp_path)
    shutil.copytree(suite_bundle, root / "published" / "quick")
    local = root / "results" / "quick" / "signals" / "tone_slow"
    shutil.copytree(signal_folder(suite_project, "tone_slow"), local)
    write_report(local, root / "report" / "_generated")

    rows = table_cells(generated(root, "suite_signals.md"), "suite-signals")
    names = [row[0].replace("\\", "") for row in rows]
    assert names == [f"[{name}](signals/{name}.qmd)" for name in ("seed", "tone_slow", "sunspots")]
    source = generated(root, "suite_source.md")
    assert "read from the results folder `results/quick`" in source
    assert "no finished bench of 2 signals (`seed`, `sunspots`), so they are read from the published bundle" in source
    assert "published bundle `published/quick/signals/sunspots`" in generated(root, "signals", "sunspots", "banner.md")
    assert "results folder `results/quick/signals/tone_slow`" in generated(root, "signals", "tone_slow", "banner.md")


def test_publish_rejects_unfinished_signal(tmp_path):
    results = make_results(tmp_path, profile="quick")
    (results / "signals" / "chirp" / "records").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"signals/chirp has no runs\.csv .*--results-dir {results} --signals chirp`"):
        export_bundle(results, tmp_path / "published" / "quick")
    assert not (tmp_path / "published" / "quick").exists()


# Suites that are old, unfinished or absent.


def test_old_manifest_renders_as_seed(tmp_path):
    root = copy_site_sources(tmp_path)
    results = make_old_style_suite(root)
    write_report(results, root / "report" / "_generated")
    assert (root / "report" / "signals" / "seed.qmd").is_file()
    signal = generated(root, "signals", "seed", "signal.md")
    assert "the seed experiment's target: two tones and a chirp" in signal
    assert "\\sin{\\left(20 \\pi x \\right)}" in signal
    recovery = generated(root, "signals", "seed", "recovery.md")
    assert "| 10 Hz tone | 30 Hz tone | chirp 30–70 Hz |" in recovery
    assert "| Sampling rate | 200 Hz:" in generated(root, "signals", "seed", "sampling.md")


def test_unavailable_method_shown_as_status(tmp_path):
    root = copy_site_sources(tmp_path)
    write_report(make_old_style_suite(root), root / "report" / "_generated")
    rows = table_cells(generated(root, "suite_r2.md"), "suite-r2")
    assert rows == [["[seed](signals/seed.qmd)", format_r2(np.median([0.9991, 0.9987])), "0.500000 (1 of 2 ok)",
                     "*unavailable*"]]


def test_unfinished_signal_listed(tmp_path):
    root = copy_site_sources(tmp_path)
    results = make_old_style_suite(root)
    (results / "signals" / "chirp" / "records").mkdir(parents=True)
    write_report(results, root / "report" / "_generated")
    rows = table_cells(generated(root, "suite_signals.md"), "suite-signals")
    assert rows[1][0] == "chirp"
    assert rows[1][1].startswith("not run yet: its folder has no finished bench")
    assert not (root / "report" / "signals" / "chirp.qmd").exists()


def test_signal_folder_of_other_signal_not_shown(tmp_path):
    root = copy_site_sources(tmp_path)
    results = make_old_style_suite(root)
    shutil.copytree(results, tmp_path / "seed_copy", ignore=shutil.ignore_patterns("signals"))
    shutil.copytree(tmp_path / "seed_copy", results / "signals" / "chirp")
    write_report(results, root / "report" / "_generated")
    rows = table_cells(generated(root, "suite_signals.md"), "suite-signals")
    assert rows[1][0] == "chirp"
    assert rows[1][1] == "not shown: its folder contains the runs of signal `seed`; run this signal's bench into it again"
    assert not (root / "report" / "signals" / "chirp.qmd").exists()


def test_suite_not_run_page(tmp_path):
    root = copy_site_sources(tmp_path)
    write_report(make_results(root), root / "report" / "_generated")
    source = generated(root, "suite_source.md")
    assert "The suite has not been run here" in source
    assert "`nox -s bench -- --profile quick --signals all`" in source
    assert "No suite of profile `quick` is stored." in generated(root, "suite_banner.md")
    assert list((root / "report" / "signals").glob("*.qmd")) == []


def test_removed_signal_page_deleted(tmp_path):
    root = copy_site_sources(tmp_path)
    results = make_old_style_suite(root)
    write_report(results, root / "report" / "_generated")
    assert (root / "report" / "signals" / "seed.qmd").is_file()

    shutil.rmtree(results)
    write_report(make_results(root), root / "report" / "_generated")
    assert not (root / "report" / "signals" / "seed.qmd").exists()
    assert not (root / "report" / "_generated" / "signals").exists()


def test_foreign_pages_folder_kept(tmp_path):
    root = copy_site_sources(tmp_path)
    (root / "report" / "signals").mkdir()
    (root / "report" / "signals" / "notes.qmd").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError, match=r"report/signals is not a folder of signal pages"):
        write_report(make_old_style_suite(root), root / "report" / "_generated")
    assert (root / "report" / "signals" / "notes.qmd").read_text(encoding="utf-8") == "mine"


def test_unknown_suite_profile_exits_2(tmp_path):
    completed = run_cli("report", "--suite-profile", "quik", cwd=tmp_path)
    assert completed.returncode == 2
    assert "unknown profile 'quik'" in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_suite_without_finished_signal(tmp_path):
    root = copy_site_sources(tmp_path)
    (root / "results" / "quick" / "signals" / "chirp" / "records").mkdir(parents=True)
    (root / "results" / "quick" / "signals" / "chirp" / "runs.csv").write_text("method\n", encoding="utf-8")
    write_report(make_results(root), root / "report" / "_generated")
    rows = table_cells(generated(root, "suite_signals.md"), "suite-signals")
    assert [row[0] for row in rows] == ["seed", "chirp"]
    assert "No signal of the suite has finished runs" in generated(root, "suite_r2.md")


@pytest.mark.parametrize(("name", "reason"), [
    ("seed", ""),
    ("chirp", ""),
    ("damped_sine", "not a sum of sinusoids"),
    ("polynomial", "not a sum of sinusoids"),
    ("sunspots", "no ground truth"),
])
def test_recovery_gap_of_suite_signals(name, reason):
    entry = signals.SUITE[name]
    gap = recovery_gap(StoredSignal(name, entry.description, entry.expression))
    if reason:
        assert reason in gap
    else:
        assert gap == ""
