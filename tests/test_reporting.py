"""Tests of the report writer, its tables, statistics, figures, downloads and bundles, on a small fake results folder."""

import dataclasses
import io
import json
import logging
import re
import shutil
import statistics
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy

from bench import config as config_module
from bench import runner, signals
from bench.errors import BenchError, DataError, NoResultsError
from bench.reporting import export_bundle, write_report
from bench.reporting.bundle import _lost_run_counts
from bench.reporting.citation import bibtex_entry, read_citation
from bench.reporting.figures import zoom_windows
from bench.reporting.formulas import formulas_section, recovery_tables
from bench.reporting.markdown import format_r2
from bench.reporting.overview import answer_paragraph
from bench.reporting.pairwise import pairwise_table
from bench.reporting.plotting import envelope
from bench.reporting.snapping import kan_width, layer_label, snap_fits_section
from bench.reporting.results import StoredResults, load_results
from bench.reporting.statistics import summarize, t_quantile
from bench.reporting.tables import metrics_tables, missing_runs_note, unrun_methods_note
from bench.reporting.tomlwriter import dumps
from bench.signal import X, target_expression
from bench.store import RunStore
from test_site_support import (
    fake_key,
    fake_seed,
    COMMIT,
    edit_runs_csv,
    FAILED_REASON,
    KAN_MSE_TEST,
    KAN_R2_TEST,
    PROFILE,
    PROJECT_ROOT,
    SYMBOLIC_FORMULA,
    make_results,
)

NBSP = "\u00a0"
# Student's t quantiles t(0.975, df) to three decimals, as statistics tables print them (scipy.stats.t.ppf agrees).
T_TABLE_975 = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 29: 2.045}


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


def read(report, name):
    return (report / name).read_text(encoding="utf-8")


def resave_record(results, key, **changes):
    """Change fields of a stored record and store it again with a valid checksum."""
    store = RunStore(results)
    record = json.loads(store.record_path(key).read_text(encoding="utf-8"))
    record.update(changes)
    arrays = store.load_arrays(key) if store.arrays_path(key).exists() else None
    store.save({name: value for name, value in record.items() if name not in ("checksum", "schema", "arrays_sha256")},
               arrays)


@pytest.fixture(scope="module")
def stored_results(tmp_path_factory):
    """Fake results shared by the tests that only read them."""
    return make_results(tmp_path_factory.mktemp("stored"))


@pytest.fixture(scope="module")
def report(stored_results):
    """The report of ``stored_results``, shared by the tests that only read it."""
    out = stored_results.parent.parent / "report" / "_generated"
    write_report(stored_results, out)
    return out


@pytest.fixture
def results(tmp_path):
    """Fake results of one test's own, for tests that change them."""
    return make_results(tmp_path)


@pytest.fixture
def fresh_report(results, tmp_path):
    """The report of ``results``, for tests that change it."""
    out = tmp_path / "report" / "_generated"
    write_report(results, out)
    return out


# Statistics.


@pytest.mark.parametrize(("degrees", "expected"), sorted(T_TABLE_975.items()))
def test_t_quantile_matches_table(degrees, expected):
    assert t_quantile(0.975, degrees) == pytest.approx(expected, abs=5e-4)


def test_t_quantile_median_is_zero():
    assert t_quantile(0.5, 3) == 0.0


def test_summarize_interval():
    values = [1.0, 2.0, 4.0, 7.0, 11.0]
    summary = summarize(values)
    half_width = T_TABLE_975[4] * statistics.stdev(values) / np.sqrt(len(values))
    assert summary.count == 5
    assert summary.mean == pytest.approx(5.0)
    assert summary.std == pytest.approx(statistics.stdev(values))
    # The table's quantile has three decimals, which moves the bounds by at most 5e-4 · std / √n.
    assert summary.low == pytest.approx(5.0 - half_width, abs=1e-3)
    assert summary.high == pytest.approx(5.0 + half_width, abs=1e-3)


def test_summarize_lower_bound_cuts_interval():
    summary = summarize([1e-6, 1.0], lower_bound=0.0)
    assert summary.low == 0.0
    assert summary.high > 1.0


def test_summarize_upper_bound_cuts_interval():
    summary = summarize([0.99, 0.999], upper_bound=1.0)
    assert summary.high == 1.0
    assert summary.low < 0.99


def test_summarize_single_value_has_no_spread():
    summary = summarize([3.0, float("nan")])
    assert summary.count == 1
    assert summary.mean == 3.0
    assert np.isnan(summary.std)
    assert np.isnan(summary.low)


# Metrics tables.


def test_metrics_one_row_per_method(report):
    metrics = read(report, "metrics.md")
    for method, counts in (("kan_numeric", "2 / 2"), ("kan_symbolic", "1 / 2"), ("pysr_direct", "0 / 2")):
        rows = table_rows(metrics, f"`{method}`")
        assert len(rows) == 2, method
        assert rows[0][1] == counts, method


def test_metrics_rows_in_canonical_order(report):
    metrics = read(report, "metrics.md")
    positions = [metrics.index(f"| `{method}` |") for method in ("kan_numeric", "kan_symbolic", "pysr_direct")]
    assert positions == sorted(positions)


def test_metrics_mean_std_and_interval(report):
    row = table_rows(read(report, "metrics.md"), "`kan_numeric`")[0]
    mean, std = statistics.mean(KAN_MSE_TEST), statistics.stdev(KAN_MSE_TEST)
    half_width = T_TABLE_975[1] * std / np.sqrt(2)
    assert row[2] == f"{mean:.2e}{NBSP}± {std:.2e}"
    assert row[2] == f"2.00e-03{NBSP}± 7.07e-04"
    assert row[3] == f"[0.00e+00, {mean + half_width:.2e}]"
    r2_mean, r2_std = statistics.mean(KAN_R2_TEST), statistics.stdev(KAN_R2_TEST)
    assert row[4] == f"{r2_mean:.6f}{NBSP}± {r2_std:.6f}"
    r2_half = T_TABLE_975[1] * r2_std / np.sqrt(2)
    assert r2_mean + r2_half > 1
    assert row[5] == f"[{r2_mean - r2_half:.6f}, 1.000000]"


def test_metrics_single_ok_run_na(report):
    row = table_rows(read(report, "metrics.md"), "`kan_symbolic`")[0]
    assert row[2] == f"2.50e-01{NBSP}± n/a"
    assert row[3] == "[n/a]"
    assert row[4] == f"0.500000{NBSP}± n/a"


def test_metrics_cost_table(report):
    row = table_rows(read(report, "metrics.md"), "`kan_numeric`")[1]
    assert row[1] == f"1.50e-03{NBSP}± 7.07e-04"
    assert row[3] == f"13{NBSP}± 0.707"
    assert row[5] == "—"


def test_metrics_cost_intervals(report):
    row = table_rows(read(report, "metrics.md"), "`kan_numeric`")[1]
    # Two ok runs, so t has one degree of freedom. The train MSE interval reaches below 0 and is cut there.
    train_high = 1.5e-3 + T_TABLE_975[1] * statistics.stdev([1e-3, 2e-3]) / np.sqrt(2)
    seconds_half = T_TABLE_975[1] * statistics.stdev([12.5, 13.5]) / np.sqrt(2)
    assert row[2] == f"[0.00e+00, {train_high:.2e}]"
    assert row[2] == "[0.00e+00, 7.85e-03]"
    assert row[4] == f"[{13.0 - seconds_half:.3g}, {13.0 + seconds_half:.3g}]"
    assert row[4] == "[6.65, 19.4]"


def test_metrics_unavailable_reason(report):
    metrics = read(report, "metrics.md")
    assert table_rows(metrics, "`pysr_direct`")[1][5] == "2 unavailable"
    assert table_rows(metrics, "`pysr_direct`")[0][2] == "—"
    assert "- `pysr_direct`: unavailable: no Julia executable found: julia is not on PATH." in metrics


def test_metrics_failed_reason_escaped(report):
    metrics = read(report, "metrics.md")
    assert "- `kan_symbolic`: 1 failed: auto\\_symbolic found no function \\| edge (0, 1, 0)" in metrics
    row = table_rows(metrics, "`kan_symbolic`")[1]
    assert len(row) == 6
    assert row[4] == "[n/a]"
    assert row[5] == "1 failed"


def test_metrics_long_reason_cut(results, tmp_path):
    long_reason = "traceback line " * 40
    store_fields(results, fake_key("kan_symbolic", 1), reason=long_reason)
    out = tmp_path / "out"
    write_report(results, out)
    lines = [line for line in read(out, "metrics.md").splitlines() if "traceback" in line]
    assert len(lines) == 1
    assert lines[0].endswith("line …")
    assert len(lines[0]) < 300
    assert long_reason.strip() in read(out, "per_seed.md")


def test_metrics_tables_have_ids(report):
    metrics = read(report, "metrics.md")
    assert "::: {#results-metrics}" in metrics
    assert "::: {#results-cost}" in metrics
    assert "Student-t" in metrics


def test_headline_one_row_per_method(report):
    headline = read(report, "headline.md")
    assert headline.startswith("::: {#headline-metrics}")
    for method in ("kan_numeric", "kan_symbolic", "pysr_direct"):
        assert len(table_rows(headline, f"`{method}`")) == 1, method
    assert table_rows(headline, "`kan_numeric`")[0][1] == "settings chosen here"
    assert table_rows(headline, "`kan_numeric`")[0][3].startswith("2.00e-03 [0.00e+00, ")


def test_availability_counts_by_status(report):
    machine = read(report, "machine.md")
    assert table_rows(machine, "`kan_symbolic`")[0][1:] == ["1", "1", "0"]
    assert table_rows(machine, "`pysr_direct`")[0][1:] == ["0", "0", "2"]
    assert "Fake CPU with 4 cores" in machine


# Pairwise comparisons.


def test_pairwise_fake_results(report):
    pairwise = read(report, "pairwise.md")
    assert pairwise.startswith("::: {#results-pairwise}")
    rows = table_rows(pairwise, "`kan_numeric`")
    # kan_symbolic failed on repetition 1, so only repetition 0 pairs up: too few pairs for an interval.
    assert rows == [["`kan_numeric`", "`kan_symbolic`", "1", f"{KAN_MSE_TEST[0] / 0.25:.2e}", "—",
                     "undecided: 1 paired repetition, at least 3 needed"]]
    assert rows[0][3] == "6.00e-03"
    assert "Left out because it has no ok run: `pysr_direct`." in pairwise


def test_pairwise_note_states_settings(report):
    pairwise = read(report, "pairwise.md")
    assert "geometric mean over the pairs of test MSE(A) / test MSE(B)" in pairwise
    assert "95% percentile interval of that geometric mean over 10,000 bootstrap resamples" in pairwise
    assert "with an equivalence margin of 10%" in pairwise
    assert "Fewer than 3 pairs get no interval" in pairwise
    assert "below 1 / 1.1 = 0.909" in pairwise


def test_pairwise_verdicts_from_runs():
    # kan_numeric is 10 times better than operon_direct on every repetition, and operon_distilled equals
    # operon_direct. Repetition 3 of operon_direct failed, so its pairs have 3 repetitions instead of 4.
    errors = [0.5, 0.02, 3.0, 0.7]
    rows = []
    for repetition, error in enumerate(errors):
        rows += [
            ("kan_numeric", repetition, "ok", error / 10),
            ("operon_direct", repetition, "failed" if repetition == 3 else "ok", error),
            ("operon_distilled", repetition, "ok", error),
        ]
    runs = pd.DataFrame(rows, columns=["method", "repetition", "status", "mse_test"]).astype({"repetition": float})

    markdown = pairwise_table(runs)

    assert table_rows(markdown, "`kan_numeric`") == [
        ["`kan_numeric`", "`operon_direct`", "3", "0.100", "[0.100, 0.100]", "better"],
        ["`kan_numeric`", "`operon_distilled`", "4", "0.100", "[0.100, 0.100]", "better"],
    ]
    assert table_rows(markdown, "`operon_direct`") == [
        ["`operon_direct`", "`operon_distilled`", "3", "1.00", "[1.00, 1.00]", "equivalent"],
    ]
    assert "Left out" not in markdown


def test_pairwise_one_method_no_table():
    runs = pd.DataFrame({"method": ["kan_numeric", "pysr_direct"], "repetition": [0.0, 0.0],
                         "status": ["ok", "unavailable"], "mse_test": [1e-3, np.nan]})
    markdown = pairwise_table(runs)
    assert "results-pairwise" not in markdown
    assert "Fewer than two methods have an ok run" in markdown
    assert "Left out because it has no ok run: `pysr_direct`." in markdown


def reference_runs():
    """Return a run table with two competitors and three reference rows, each with three ok runs."""
    errors = {"kan_numeric": 1e-4, "operon_direct": 1e-2, "ceiling_nls": 1e-29, "floor_mean": 1.0, "floor_linear": 0.9}
    rows = [(method, float(repetition), "ok", error * (1 + repetition / 10), 1 - error, error, 1.0, "")
            for method, error in errors.items() for repetition in range(3)]
    columns = ["method", "repetition", "status", "mse_test", "r2_test", "mse_train", "seconds", "reason"]
    return pd.DataFrame(rows, columns=columns)


def test_pairwise_leaves_out_references():
    markdown = pairwise_table(reference_runs())
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert len(rows) == 1
    assert rows[0].startswith("| `kan_numeric` | `operon_direct` | 3 |")
    for method in ("ceiling_nls", "floor_mean", "floor_linear"):
        assert f"| `{method}` |" not in markdown
    assert ("The reference rows `ceiling_nls`, `floor_mean`, `floor_linear` are left out: they are accuracy "
            "ceilings and floors, not competitors") in markdown


def test_pairwise_one_reference_singular():
    runs = reference_runs()
    markdown = pairwise_table(runs[~runs["method"].isin(["ceiling_nls", "floor_linear"])])
    assert "The reference row `floor_mean` is left out: it is an accuracy ceiling or floor" in markdown


def test_pairwise_only_references_no_table():
    runs = reference_runs()
    markdown = pairwise_table(runs[runs["method"] != "operon_direct"])
    assert "results-pairwise" not in markdown
    assert "Fewer than two methods other than the reference rows have an ok run" in markdown


def test_metrics_label_reference_rows():
    metrics = metrics_tables(reference_runs())
    for method in ("ceiling_nls", "floor_mean", "floor_linear"):
        assert len(table_rows(metrics, f"`{method}` (reference)")) == 2, method
    assert len(table_rows(metrics, "`kan_numeric`")) == 2
    assert "*(reference)* after a method's name means that the row is a reference and not a competitor" in metrics


def test_metrics_no_reference_note(report):
    assert "(reference)" not in read(report, "metrics.md")


def test_format_r2_large_magnitude():
    assert format_r2(0.9991) == "0.999100"
    assert format_r2(-9999.5) == "-9999.500000"
    assert format_r2(-1e4) == "-1.00e+04"
    assert format_r2(-1.2345e178) == "-1.23e+178"
    assert format_r2(float("-inf")) == "-inf"
    assert format_r2(float("nan")) == "—"


def test_metrics_huge_negative_r2_short(results, tmp_path):
    key = fake_key("kan_symbolic", 0)
    resave_record(results, key, metrics={"mse_test": 0.25, "r2_test": -1e178, "mse_train": 0.24})
    edit_runs_csv(results, key, r2_test=repr(-1e178))
    out = tmp_path / "out"
    write_report(results, out)
    row = table_rows(read(out, "metrics.md"), "`kan_symbolic`")[0]
    assert row[4] == f"-1.00e+178{NBSP}± n/a"
    assert max(len(line) for line in read(out, "per_seed.md").splitlines()) < 400


# Per-seed tables.


def test_per_seed_one_row_per_run(report):
    per_seed = read(report, "per_seed.md")
    for method in ("kan_numeric", "kan_symbolic", "pysr_direct"):
        assert len(table_rows(per_seed, f"`{method}`")) == 2, method


def test_per_seed_failed_run_reason(report):
    failed = [row for row in table_rows(read(report, "per_seed.md"), "`kan_symbolic`") if row[3] == "failed"]
    assert len(failed) == 1
    assert failed[0][1:5] == ["1", str(fake_seed("kan_symbolic", 1)), "failed", "symbolic"]
    assert failed[0][5] == "auto\\_symbolic found no function \\| edge (0, 1, 0)"


def test_per_seed_ok_run_metrics(report):
    first = table_rows(read(report, "per_seed.md"), "`kan_numeric`")[0]
    assert first[1:5] == ["0", str(fake_seed("kan_numeric", 0)), f"{KAN_MSE_TEST[0]:.2e}", f"{KAN_R2_TEST[0]:.6f}"]
    assert first[7] == f"[JSON](_generated/downloads/records/{fake_key('kan_numeric', 0)}.json)"


# Formulas.


def test_formulas_contain_latex(report):
    formulas = read(report, "formulas.md")
    true_latex = sympy.latex(target_expression())
    assert formulas.count(f"$$\n{true_latex}\n$$") == 2
    assert f"$$\n{sympy.latex(SYMBOLIC_FORMULA)}\n$$" in formulas
    assert formulas.count('::: {.formula style="overflow-x: auto"}\n$$') == 3
    assert "size 9 nodes, test R² 0.500000" in formulas
    assert "True formula, size 38 nodes" in formulas
    assert "unavailable: no Julia executable found" in formulas


def test_formulas_skip_numeric_method(report):
    assert "kan_numeric" not in read(report, "formulas.md")


# Recovered terms.

RECOVERY_HEADER = ["Method", "Runs judged", "10 Hz tone", "30 Hz tone", "chirp 30–70 Hz", "Runs with a term above Nyquist"]


def store_formula(results, method, repetition, formula):
    """Store ``formula`` as the formula of an ok run, in its record and in runs.csv."""
    expression = sympy.sympify(formula, locals={"x": X})
    key = fake_key(method, repetition)
    make_ok(results, key)
    store_fields(results, key, formula=formula, formula_latex=sympy.latex(expression), formula_size=10)


def make_ok(results, key):
    """Make run ``key`` an ok run with metrics, in its record and in runs.csv, as the bench would store one."""
    metrics = {"mse_test": 0.3, "r2_test": 0.4, "mse_train": 0.25}
    resave_record(results, key, status="ok", reason="", stage="", metrics=metrics)
    edit_runs_csv(results, key, status="ok", reason="", stage="", **{name: repr(value) for name, value in metrics.items()})


def store_fields(results, key, **fields):
    """Change fields of the run ``key`` in its record and in runs.csv alike, as a bench that wrote them would."""
    resave_record(results, key, **fields)
    edit_runs_csv(results, key, **fields)


def test_recovery_table_counts(report):
    recovery = read(report, "recovery.md")
    assert recovery.startswith("::: {#formulas-recovery}")
    assert table_rows(recovery, "Method")[0] == RECOVERY_HEADER
    # SYMBOLIC_FORMULA is the 10 Hz tone plus 0.01·x, and the other kan_symbolic run failed.
    assert table_rows(recovery, "`kan_symbolic`")[0] == [
        "`kan_symbolic`", "1 of 2", "1 exact, 0 almost, 0 missed of 1", "0 exact, 0 almost, 1 missed of 1",
        "0 exact, 0 almost, 1 missed of 1", "0 of 1",
    ]
    assert table_rows(recovery, "`pysr_direct`")[0] == ["`pysr_direct`", "0 of 2", "—", "—", "—", "—"]
    assert not table_rows(recovery, "`kan_numeric`")



# Snapped KAN edges: one fake run's summaries over two layers, as bench.methods.kan_snap stores them.
SNAPPED_EDGES = [
    {"edge": [0, 0, 0], "function": "sin", "r2": 0.995, "a_at_edge": True, "b_at_edge": False},
    {"edge": [0, 0, 1], "function": "x^2", "r2": 0.5, "a_at_edge": True, "b_at_edge": True},
    {"edge": [0, 0, 2], "function": "sin", "r2": 0.7, "a_at_edge": False, "b_at_edge": True},
    {"edge": [1, 0, 0], "function": "x", "r2": None, "a_at_edge": False, "b_at_edge": False},
]


def snapped_report(results, tmp_path, edges):
    """Return the snapped-edges section for ``results`` after storing ``edges`` in kan_symbolic's first record.

    The section is built as write_report builds it, without drawing the report's figures.
    """
    resave_record(results, fake_key("kan_symbolic", 0), details={"edges": edges})
    return snap_fits_section(load_results(results).at_lowest_noise())


def test_snapped_edges_table_per_layer(results, tmp_path):
    section = snapped_report(results, tmp_path, SNAPPED_EDGES)
    assert "::: {#formulas-snapped-edges}" in section
    assert "`kan_symbolic` over 1 run)" in section
    assert config_module.load_config("quick")["methods"]["kan"]["width"] == [1, 12, 3, 1]
    first, second = table_rows(section, "`kan_symbolic`")
    # Only the sine's scale a limits a fit: x²'s bounds and the sine's phase bound do not.
    assert first[1:] == ["1: 1 node → 12 nodes", "3", "sin 2, x\\^2 1", "0.700000 (0.500000 to 0.995000)",
                         "1 of 3", "1"]
    assert second[1:] == ["2: 12 nodes → 3 nodes", "1", "x 1", "not stored", "—", "0"]


def test_snapped_edges_count_missing_r2(results, tmp_path):
    edges = [dict(SNAPPED_EDGES[0], r2=float("nan")), SNAPPED_EDGES[1], dict(SNAPPED_EDGES[2], r2=None)]
    first, = table_rows(snapped_report(results, tmp_path, edges), "`kan_symbolic`")
    assert first[4:6] == ["0.500000 (0.500000 to 0.500000)", "0 of 3 (2 without a fit R²)"]


def test_snapped_edges_name_runs_without_edges(results, tmp_path):
    make_ok(results, fake_key("kan_symbolic", 1))
    section = snapped_report(results, tmp_path, SNAPPED_EDGES)
    assert "`kan_symbolic` over 1 run, leaving out 1 ok run that stored no edges" in section


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ([], "details.edges is not a list of edge summaries"),
        ({"edges": "sin"}, "details.edges is not a list of edge summaries"),
        ({"edges": ["sin"]}, "snapped edge 0 is not an object"),
        ({"edges": [dict(SNAPPED_EDGES[0], edge=[0, 0])]}, "snapped edge 0 has no position"),
        ({"edges": [dict(SNAPPED_EDGES[0], edge=[-1, 0, 0])]}, "snapped edge 0 has no position"),
        ({"edges": [dict(SNAPPED_EDGES[0], edge=[True, 0, 0])]}, "snapped edge 0 has no position"),
        ({"edges": [dict(SNAPPED_EDGES[0], edge=[3, 0, 0])]}, "is in layer 3, but the KAN has 3 layers"),
        ({"edges": [dict(SNAPPED_EDGES[0], function=None)]}, "snapped edge 0 has no function name"),
        ({"edges": [dict(SNAPPED_EDGES[0], r2="high")]}, "has a fit R² that is not a number"),
        ({"edges": [SNAPPED_EDGES[0], {"edge": [0, 0, 1], "function": "sin"}]},
         "snapped edge 1 lacks its true/false flags"),
    ],
)
def test_snapped_edges_malformed_rejected(results, tmp_path, details, message):
    key = fake_key("kan_symbolic", 0)
    resave_record(results, key, details=details)
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        snap_fits_section(load_results(results).at_lowest_noise())
    assert f"{key}.json: " in str(caught.value)
    assert "to store the run again" in str(caught.value)


def test_snapped_edges_missing_say_so(report):
    section = read(report, "snap_fits.md")
    assert section == "No ok KAN symbolic run of these results stored its snapped edges.\n"


def test_snapped_edges_without_symbolic_runs(stored_results):
    results = load_results(stored_results)
    numeric_only = dataclasses.replace(results, runs=results.runs[results.runs["method"] != "kan_symbolic"])
    assert snap_fits_section(numeric_only) == "These results have no ok run of a KAN symbolic method.\n"


def test_snapped_edges_kan_width_sources():
    assert kan_width({"settings": {"kan": {"width": [1, 12, 3, 1]}}}) == [1, 12, 3, 1]
    # kan_symbolic_sines builds KAN [1, terms, 1] and stores no KAN numeric settings.
    assert kan_width({"settings": {"terms": 4}}) == [1, 4, 1]
    assert kan_width({"settings": {"terms": True}}) is None
    assert kan_width({"settings": "text"}) is None


def test_snapped_edges_layer_labels():
    assert layer_label(2, None) == "3"
    assert layer_label(2, [1, 4, 1]) == "3"
    assert layer_label(0, [1, 4, 1]) == "1: 1 node → 4 nodes"


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("mse_test", "-1.0", "not a finite MSE of 0 or more"),
        ("mse_test", "inf", "not a finite MSE of 0 or more"),
        ("mse_test", "", "not a finite MSE of 0 or more"),
        ("mse_train", "-0.5", "not a finite MSE of 0 or more"),
        ("r2_test", "5.0", "not a finite R² of at most 1"),
        ("r2_test", "", "not a finite R² of at most 1"),
    ],
)
def test_impossible_ok_metric_rejected(results, column, value, expected):
    # The record and runs.csv are changed alike, with a valid checksum, so only the values themselves are wrong.
    key = fake_key("kan_numeric", 0)
    record = json.loads(RunStore(results).record_path(key).read_text(encoding="utf-8"))
    metrics = dict(record["metrics"], **{column: float(value) if value else None})
    resave_record(results, key, metrics=metrics)
    edit_runs_csv(results, key, **{column: value})
    with pytest.raises(DataError, match=f"the ok run {key} has {column} = .*, {expected}"):
        load_results(results)


def test_failed_run_without_metrics_accepted(stored_results):
    runs = load_results(stored_results).runs
    failed = runs[runs["status"] == "failed"]
    assert not failed.empty
    assert failed["mse_test"].isna().all()


def test_record_invalid_json_gives_advice(results, tmp_path):
    key = fake_key("kan_symbolic", 0)
    (results / "records" / f"{key}.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="is not valid JSON") as caught:
        write_report(results, tmp_path / "report" / "_generated")
    assert "to store the record again" in str(caught.value)


def test_recovery_explains_tolerances(report):
    recovery = read(report, "recovery.md")
    assert "within a relative 1e-06 of the true ones and the phase within 2π·1e-06 rad" in recovery
    assert "almost when they are within 1e-02" in recovery
    assert "above the Nyquist limit of 100 Hz" in recovery


def test_recovery_detail_collapsed(report):
    recovery = read(report, "recovery.md")
    detail = recovery.split('::: {.callout-note collapse="true" title="Fitted and true terms of every judged run"}\n', 1)[1]
    assert table_rows(detail, "chirp 30–70 Hz")[0] == ["chirp 30–70 Hz", "0.6366197724", "50", "20", "0"]
    rows = table_rows(detail, "`kan_symbolic`")
    assert [row[1:4] for row in rows] == [["0", "10 Hz tone", "exact"], ["0", "30 Hz tone", "missed"],
                                          ["0", "chirp 30–70 Hz", "missed"]]
    assert rows[0][4:] == ["1.273239545", "10", "0", "0", "0.00e+00", "0.00e+00"]
    assert rows[1][4:] == ["—"] * 6


def test_recovery_from_stored_records(results, tmp_path):
    three_digits = "1.27*sin(62.8*x) + 0.4244131815783876*sin(188.49555921538757*x) + 0.637*sin(314*x + 126*x**2)"
    # The fake bench samples at 200 Hz, so a 210 Hz tone is an alias of the 10 Hz one.
    aliased = "4*sin(2*pi*210*x)/pi + 2*sin(2*pi*(50*x + 20*x**2))/pi + 0.5*x**2"
    store_formula(results, "kan_symbolic", 0, three_digits)
    store_formula(results, "kan_symbolic", 1, aliased)
    out = tmp_path / "out"
    write_report(results, out)

    recovery = read(out, "recovery.md")
    assert table_rows(recovery, "`kan_symbolic`")[0] == [
        "`kan_symbolic`", "2 of 2", "0 exact, 1 almost, 1 missed of 2", "1 exact, 0 almost, 1 missed of 2",
        "1 exact, 1 almost, 0 missed of 2", "1 of 2",
    ]
    rows = table_rows(recovery, "`kan_symbolic`")[1:]
    assert [row[3] for row in rows] == ["almost", "exact", "almost", "missed", "missed", "exact"]
    assert rows[0][4:7] == ["1.27", "9.994930426", "0"]
    # The 210 Hz tone is left for the 30 Hz tone, whose largest relative error (6) is below the 10 Hz tone's (20).
    assert rows[3][4] == "—"
    assert rows[4][4:7] == ["1.273239545", "210", "0"]
    assert rows[4][8] == "6.00e+00"
    assert "- `kan_symbolic` repetition 1: amplitude 1.273239545, frequency 210 Hz, r 0 Hz/s, up to 210 Hz" in recovery


def recovery_detail_rows(formula):
    """Return the fitted-term rows of the recovery detail of one ok kan_symbolic run whose formula is ``formula``."""
    runs = pd.DataFrame({"method": ["kan_symbolic"], "repetition": [0.0], "status": ["ok"], "key": ["k"]})
    markdown = recovery_tables(runs, {"k": formula}, (-0.5, 0.5), 200)
    detail = markdown.split('title="Fitted and true terms of every judged run"}\n', 1)[1]
    return markdown, table_rows(detail, "`kan_symbolic`")


def test_phase_near_two_pi_shown_zero():
    # A phase fitted as -1e-13 rad wraps to 2π - 1e-13, which 10 significant digits would print as 6.283185307.
    _, rows = recovery_detail_rows("1.2732395447351628*sin(-1e-13 + 62.83185307179586*x)")
    assert rows[0][2] == "10 Hz tone"
    assert rows[0][7] == "0"
    assert not any("6.283185307" in cell for row in rows for cell in row)


def test_phase_shown_otherwise():
    _, rows = recovery_detail_rows("1.2732395447351628*sin(1e-6 + 62.83185307179586*x)")
    assert rows[0][7] == "1e-06"


def test_chirp_coefficient_labelled():
    markdown, _ = recovery_detail_rows("1.27*sin(62.8*x)")
    assert "| r, coefficient of x² (Hz/s; sweep 2r) |" in markdown
    assert "| Fitted r, coefficient of x² (Hz/s; sweep 2r) |" in markdown
    assert "the instantaneous frequency f + 2·r·x sweeps at 2·r Hz/s" in markdown
    assert "Chirp rate (Hz/s)" not in markdown


def test_formulas_size_one_singular():
    runs = pd.DataFrame({"method": ["pysr_direct"], "repetition": [0.0], "seed": [7.0], "status": ["ok"],
                         "reason": [""], "formula_latex": ["x"], "formula_size": [1.0], "r2_test": [0.5]})
    section = formulas_section(runs, target_expression())
    assert "Repetition 0, seed 7: size 1 node, test R² 0.500000." in section
    assert "size 1 nodes" not in section


def answer_of(runs, repetitions):
    """Return the answer paragraph of ``runs`` under a manifest with ``repetitions`` repetitions."""
    manifest = {"config": {"run": {"repetitions": repetitions}}}
    return answer_paragraph(StoredResults(profile="fake", directory=Path("."), runs=runs, manifest=manifest))


def test_answer_singular_counts():
    runs = pd.DataFrame({
        "method": ["kan_numeric", "kan_symbolic", "floor_mean", "operon_direct"],
        "status": ["ok", "ok", "ok", "failed"],
        "reason": ["", "", "", "crashed"],
        "mse_test": [1e-3, 0.25, 1.0, np.nan],
        "r2_test": [0.999, 0.5, 0.0, np.nan],
        "formula_size": [np.nan, 1.0, np.nan, np.nan],
    })
    answer = answer_of(runs, 1)
    assert "with 1 seed per method," in answer
    assert "over 1 ok run." in answer
    assert "with formulas of 1 node." in answer
    assert "The only ok symbolic run did not reach test R² 0.999999" in answer
    assert "The reference row `floor_mean` is left out of this comparison: it is not a competitor" in answer
    assert "The only run of `operon_direct` failed." in answer
    for wrong in ("1 seeds", "1 ok runs", "1 nodes", "the 1 ", "rows `floor_mean` are"):
        assert wrong not in answer


def reference_only_runs(competitor_status=None):
    methods, status = ["floor_mean", "ceiling_nls"], ["ok", "ok"]
    if competitor_status:
        methods.append("operon_direct")
        status.append(competitor_status)
    ok = [value == "ok" for value in status]
    return pd.DataFrame({
        "method": methods,
        "status": status,
        "reason": ["" if good else "crashed" for good in ok],
        "mse_test": [1.0, 1e-20, np.nan][:len(methods)],
        "r2_test": [0.0, 1.0, np.nan][:len(methods)],
        "formula_size": [np.nan, 20.0, np.nan][:len(methods)],
    })


def test_answer_only_reference_rows_ran():
    answer = answer_of(reference_only_runs(), 1)
    assert "only the reference rows ran, so there is no result to compare." in answer
    assert "no method other than" not in answer


def test_answer_competitors_failed():
    answer = answer_of(reference_only_runs("failed"), 1)
    assert "no method other than the reference rows finished an ok run" in answer


def test_answer_plural_counts():
    runs = pd.DataFrame({
        "method": ["kan_numeric"] * 2 + ["kan_symbolic"] * 2 + ["floor_mean", "floor_linear"],
        "status": ["ok", "ok", "ok", "failed", "ok", "ok"],
        "reason": ["", "", "", "crashed", "", ""],
        "mse_test": [1e-3, 2e-3, 0.25, np.nan, 1.0, 0.9],
        "r2_test": [0.999, 0.998, 0.5, np.nan, 0.0, 0.1],
        "formula_size": [np.nan, np.nan, 9.0, np.nan, np.nan, np.nan],
    })
    answer = answer_of(runs, 2)
    assert "with 2 seeds per method," in answer
    assert "over 2 ok runs." in answer
    assert "The reference rows `floor_mean`, `floor_linear` are left out of this comparison" in answer
    assert "1 of the 2 runs of `kan_symbolic` failed." in answer


def test_recovery_bad_formula_raises(results, tmp_path):
    store_fields(results, fake_key("kan_symbolic", 0), formula="sin(2*x")
    with pytest.raises(DataError, match=rf"the formula of run {fake_key('kan_symbolic', 0)} cannot be parsed"):
        write_report(results, tmp_path / "out")


# Figures.


def test_figures_exist_and_are_svg(report):
    names = sorted(path.name for path in (report / "figures").iterdir())
    assert names == [
        "fit_kan_numeric.svg", "fit_kan_symbolic.svg", "residuals.svg", "target.svg", "test_mse_per_seed.svg",
        "zoom.svg",
    ]  # fmt: skip
    for name in names:
        text = read(report / "figures", name)
        assert text.startswith("<?xml")
        assert "<svg" in text


def test_figures_markdown_has_alt_text(report):
    expected = {
        "target": ["target.svg"], "fits": ["fit_kan_numeric.svg", "fit_kan_symbolic.svg"], "zoom": ["zoom.svg"],
        "residuals": ["residuals.svg"], "seeds": ["test_mse_per_seed.svg"],
    }  # fmt: skip
    for section, names in expected.items():
        markdown = read(report, f"figures_{section}.md")
        for name in names:
            pattern = rf"^!\[.+\]\(_generated/figures/{re.escape(name)}\)\{{fig-alt=\"[^\"]+\"\}}$"
            assert re.search(pattern, markdown, re.M), (section, name)


def test_envelope_keeps_extremes():
    x = np.linspace(0.0, 1.0, 10_001)
    y = np.sin(2 * np.pi * 70 * x) + 0.001 * x
    reduced_x, reduced_y = envelope(x, y, bins=100)
    assert reduced_x.size <= 200
    assert np.all(np.diff(reduced_x) > 0)
    assert reduced_y.max() == y.max()
    assert reduced_y.min() == y.min()


def test_envelope_short_curve_unchanged():
    x = np.arange(10.0)
    reduced_x, reduced_y = envelope(x, x**2, bins=100)
    assert reduced_x is x or np.array_equal(reduced_x, x)
    assert np.array_equal(reduced_y, x**2)


def test_zoom_windows_find_largest_difference():
    x = np.linspace(-0.5, 0.5, 1001, endpoint=False)
    same = np.zeros_like(x)
    different = np.where((x >= 0.05) & (x <= 0.15), 1.0, 0.0)
    windows, titles = zoom_windows(x, {"a": ("a", same), "b": ("b", different)}, (-0.5, 0.5))
    assert windows[0] == pytest.approx((-0.5, -0.4))
    assert windows[-1] == pytest.approx((0.4, 0.5))
    assert windows[1] == pytest.approx((0.05, 0.15))
    assert "differ most" in titles[1]


def test_zoom_window_at_zero_prints_zero():
    x = np.linspace(-0.5, 0.5, 1001, endpoint=False)
    different = np.where((x >= 0.0) & (x <= 0.1), 1.0, 0.0)
    windows, titles = zoom_windows(x, {"a": ("a", np.zeros_like(x)), "b": ("b", different)}, (-0.5, 0.5))
    assert windows[1] == pytest.approx((0.0, 0.1))
    assert titles[1].startswith("x in [0, 0.1]")


def test_zoom_windows_one_curve_no_extra():
    x = np.linspace(-0.5, 0.5, 101, endpoint=False)
    windows, _ = zoom_windows(x, {"a": ("a", x)}, (-0.5, 0.5))
    assert len(windows) == 2


# Overview and banner.


def test_answer_names_best_method(report):
    answer = read(report, "answer.md")
    assert answer.count("\n") == 1
    mse_high = statistics.mean(KAN_MSE_TEST) + T_TABLE_975[1] * statistics.stdev(KAN_MSE_TEST) / np.sqrt(2)
    r2_low = statistics.mean(KAN_R2_TEST) - T_TABLE_975[1] * statistics.stdev(KAN_R2_TEST) / np.sqrt(2)
    assert (f"`kan_numeric` had the lowest mean test error, with mean test MSE 2.00e-03 (95% CI [0.00e+00, "
            f"{mse_high:.2e}]) and test R² 0.998900 (95% CI [{r2_low:.6f}, 1.000000]) over 2 ok runs") in answer
    assert ("Among the symbolic methods, `kan_symbolic` had the lowest mean test error: mean test MSE 2.50e-01 "
            "(a single ok run, so no interval), test R² 0.500000 (a single ok run, so no interval)") in answer
    assert "R² ≤ 0" not in answer
    assert "The only ok symbolic run did not reach test R² 0.999999" in answer
    assert "`pysr_direct` did not run on the machine of the bench: no Julia executable found" in answer


def test_answer_flags_overlap_and_no_fit():
    import pandas as pd

    from bench.reporting.overview import _overlap_sentences

    runs = pd.DataFrame({
        "method": ["operon_direct"] * 3 + ["operon_distilled"] * 3 + ["kan_numeric"] * 3,
        "status": ["ok"] * 9,
        "mse_test": [0.90, 0.95, 1.00, 0.88, 0.93, 0.99, 0.001, 0.0011, 0.0012],
    })
    means = {"operon_direct": (0.95, 0.1, 3), "operon_distilled": (0.933, 0.1, 3), "kan_numeric": (0.0011, 0.99, 3)}
    sentences = _overlap_sentences(runs, "operon_distilled", means)
    assert sentences == ["Its 95% interval of the mean test MSE overlaps that of `operon_direct`, so the means alone do "
                         "not rank them; the comparison of methods in pairs on the Results page resamples the runs of "
                         "each seed together."]
    assert _overlap_sentences(runs, "kan_numeric", means) == []


def test_banner_names_profile_date_commit(report):
    banner = read(report, "banner.md")
    assert banner.startswith("::: {.results-banner}")
    assert f"`{PROFILE}`" in banner
    assert "2025-01-03" in banner
    assert f"`{COMMIT[:12]}`" in banner


# Method page.


def test_signal_section_counts(report):
    signal = read(report, "signal.md")
    assert table_rows(signal, "Samples")[0][1] == "200"
    assert table_rows(signal, "Training samples")[0][1] == "160"
    assert table_rows(signal, "Test samples")[0][1] == "40"
    assert table_rows(signal, "Sampling rate")[0][1].startswith("200 Hz")


def test_settings_from_manifest(report):
    settings = read(report, "settings.md")
    quick = config_module.load_config("quick")
    assert table_rows(settings, "`width`")[0][1] == f"`{json.dumps(quick['methods']['kan']['width'])}`"
    assert table_rows(settings, "`kan.width`")[0][1] == f"`{json.dumps(quick['methods']['kan']['width'])}`"
    assert table_rows(settings, "`nested_constraints`")[0][1] == '`{"sin": {"sin": 0}}`'
    assert "### `kan_numeric`" in settings
    assert "other settings" not in settings


def test_settings_record_mismatch_listed(results, tmp_path):
    # A record's settings are part of its key, so only an edited manifest can disagree with them.
    path = results / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["config"]["methods"]["kan"]["width"] = [1, 9, 1]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "out"
    write_report(results, out)
    assert "other settings than the configuration above: `kan_numeric` repetition 0" in read(out, "settings.md")


# Reproduce page.


def test_environment_has_provenance(report):
    environment = read(report, "environment.md")
    assert f"`{COMMIT}`" in environment
    assert "Fake CPU" in environment
    assert "Linux-6.1-x86\\_64" in environment
    assert table_rows(environment, "Python")[0][1] == "3.11.9"
    assert table_rows(environment, "Runs finished by")[0][1] == "2025-01-03"
    assert table_rows(environment, "`numpy`")[0][1] == "`2.4.6`"


def test_commands_check_out_commit(report):
    commands = read(report, "commands.md")
    assert f"git checkout {COMMIT}\n" in commands
    assert f"nox -s bench -- --profile {PROFILE} --config config.toml" in commands
    assert f"nox -s render -- --profile {PROFILE}" in commands
    assert f"`python -m bench run --profile {PROFILE}`" in commands


def test_commands_warn_dirty_commit(results, tmp_path):
    manifest = json.loads((results / "manifest.json").read_text(encoding="utf-8"))
    manifest["git_commit"] = COMMIT + "-dirty"
    (results / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "out"
    write_report(results, out)
    assert f"git checkout {COMMIT}\n" in read(out, "commands.md")
    assert "uncommitted changes" in read(out, "commands.md")
    assert "with uncommitted changes" in read(out, "banner.md")


def test_config_toml_round_trips(report, stored_results):
    stored = json.loads((stored_results / "manifest.json").read_text(encoding="utf-8"))["config"]
    text = read(report / "downloads", "config.toml")
    assert tomllib.loads(text) == stored
    assert config_module.load_config("quick", tomllib.loads(text)) == stored
    assert f"```toml\n{text}```" in read(report, "config.md")


def test_config_toml_lists_stored_methods(results, tmp_path):
    # A bench with --methods stored only some of the configured methods.
    manifest = json.loads((results / "manifest.json").read_text(encoding="utf-8"))
    manifest["config"]["run"]["methods"] = ["kan_numeric", "operon_direct"]
    (results / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "report" / "_generated"
    write_report(results, out)
    text = read(out / "downloads", "config.toml")
    assert tomllib.loads(text)["run"]["methods"] == ["kan_numeric", "kan_symbolic", "pysr_direct"]
    assert "# run.methods lists the methods with stored runs; the bench's configuration listed kan_numeric, " \
           "operon_direct.\n" in text
    rest = tomllib.loads(text)
    rest["run"]["methods"] = manifest["config"]["run"]["methods"]
    assert rest == manifest["config"]


def test_toml_writer_quotes_and_rejects():
    assert tomllib.loads(dumps({"a b": {"c": [1.5, "x\"y"], "d": True}})) == {"a b": {"c": [1.5, 'x"y'], "d": True}}
    with pytest.raises(TypeError, match="a.b = None"):
        dumps({"a": {"b": None}})


def test_project_citation_is_valid():
    citation = read_citation(PROJECT_ROOT / "CITATION.cff")
    entry = bibtex_entry(citation, "default", COMMIT, "2025-01-03")
    assert entry.startswith("@software{kan_sr_bench_2025,\n")
    assert "  author = {{The kan-sr-bench contributors}}," in entry
    assert "  year = {2025}," in entry
    assert f"  note = {{Results of profile default, code commit {COMMIT}, runs finished by 2025-01-03}}" in entry
    assert entry.count("{") == entry.count("}")


def test_bibtex_person_and_escapes():
    citation = {"title": "A & B: 100% of_it", "authors": [{"family-names": "Doe", "given-names": "Jane"}],
                "version": "1.0", "repository-code": "https://example.org/repo"}
    entry = bibtex_entry(citation, "quick", None, None)
    assert "  author = {Doe, Jane}," in entry
    assert r"  title = {A \& B: 100\% of\_it}," in entry
    assert "  url = {https://example.org/repo}," in entry
    assert "year" not in entry


def test_citation_section_written(tmp_path, results):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "_quarto.yml").write_text("project:\n  type: website\n", encoding="utf-8")
    (tmp_path / "site" / "CITATION.cff").write_bytes((PROJECT_ROOT / "CITATION.cff").read_bytes())
    out = tmp_path / "site" / "report" / "_generated"
    write_report(results, out)
    assert "```bibtex\n@software{kan_sr_bench_2025," in read(out, "citation.md")


# Downloads.


def test_downloads_copy_stored_files(report, stored_results):
    downloads = report / "downloads"
    assert (downloads / "runs.csv").read_bytes() == (stored_results / "runs.csv").read_bytes()
    assert (downloads / "manifest.json").read_bytes() == (stored_results / "manifest.json").read_bytes()
    for key in (fake_key("kan_numeric", 0), fake_key("kan_symbolic", 1), fake_key("pysr_direct", 0)):
        stored = (stored_results / "records" / f"{key}.json").read_bytes()
        assert (downloads / "records" / f"{key}.json").read_bytes() == stored
    assert "[`runs.parquet`](_generated/downloads/runs.parquet)" in read(report, "downloads.md")


def test_downloads_parquet_matches_csv(report, stored_results):
    table = pd.read_parquet(report / "downloads" / "runs.parquet")
    runs = load_results(stored_results).runs
    assert list(table.columns) == list(runs.columns)
    assert table["seed"].dtype == "int64"
    assert table["repetition"].tolist() == runs["repetition"].astype(int).tolist()
    assert table["mse_test"].tolist() == pytest.approx(runs["mse_test"].tolist(), nan_ok=True)
    assert table["reason"].tolist() == runs["reason"].tolist()


def test_downloads_archive_contents(report):
    with zipfile.ZipFile(io.BytesIO((report / "downloads" / "results.zip").read_bytes())) as archive:
        names = archive.namelist()
        assert archive.read("runs.csv") == (report / "downloads" / "runs.csv").read_bytes()
    assert names == sorted(names)
    assert {"runs.csv", "manifest.json", "config.toml", f"records/{fake_key('kan_numeric', 0)}.json"} <= set(names)
    assert "runs.parquet" not in names


def test_records_table_links_every_run(report):
    records = read(report, "records.md")
    assert records.count("](_generated/downloads/records/") == 6


def test_changed_record_raises(results, tmp_path):
    path = results / "records" / f"{fake_key('kan_numeric', 0)}.json"
    path.write_text(path.read_text(encoding="utf-8").replace("Fake CPU", "Other CPU"), encoding="utf-8")
    with pytest.raises(DataError, match="does not match its checksum"):
        write_report(results, tmp_path / "out")


def test_missing_record_raises(results, tmp_path):
    (results / "records" / f"{fake_key('pysr_direct', 1)}.json").unlink()
    with pytest.raises(DataError, match=rf"{fake_key('pysr_direct', 1)}\.json is missing.*nox -s bench -- --profile fake"):
        write_report(results, tmp_path / "out")


# Writing the report.


def test_rewrite_is_byte_identical(results, fresh_report):
    first = snapshot(fresh_report)
    write_report(results, fresh_report)
    assert snapshot(fresh_report) == first


def test_stale_file_removed(tmp_path, fresh_report):
    assert (fresh_report / "figures" / "fit_kan_symbolic.svg").exists()
    fewer = make_results(tmp_path / "second", methods=("kan_numeric", "pysr_direct"))
    write_report(fewer, fresh_report)
    assert not (fresh_report / "figures" / "fit_kan_symbolic.svg").exists()
    assert not (fresh_report / "downloads" / "records" / f"{fake_key('kan_symbolic', 0)}.json").exists()
    assert (fresh_report / "figures" / "fit_kan_numeric.svg").exists()


def test_unlisted_file_kept(results, fresh_report):
    own = fresh_report / "notes.txt"
    own.write_text("kept", encoding="utf-8")
    write_report(results, fresh_report)
    assert own.read_text(encoding="utf-8") == "kept"


def test_failed_build_keeps_previous_report(results, fresh_report):
    before = snapshot(fresh_report)
    # The kan_symbolic run's arrays match the checksum in its record, but hold too few predictions.
    store = RunStore(results)
    record = json.loads(store.record_path(fake_key("kan_symbolic", 0)).read_text(encoding="utf-8"))
    store.save({name: value for name, value in record.items() if name not in ("checksum", "schema", "arrays_sha256")},
               {"predictions": np.zeros(3)})
    with pytest.raises(DataError, match="contains 3 predictions"):
        write_report(results, fresh_report)
    assert snapshot(fresh_report) == before


def test_changed_arrays_raise(results, tmp_path):
    np.savez(results / "arrays" / f"{fake_key('kan_numeric', 0)}.npz", predictions=np.zeros(200))
    with pytest.raises(DataError, match=rf"{fake_key('kan_numeric', 0)}\.npz does not match the checksum in its record"):
        write_report(results, tmp_path / "out")


def test_missing_runs_csv_raises(results, tmp_path):
    (results / "runs.csv").unlink()
    with pytest.raises(NoResultsError, match=r"runs\.csv not found: .*fake contains no stored bench results"):
        write_report(results, tmp_path / "out")


def test_missing_results_of_profile_name_command(tmp_path):
    (tmp_path / "quick").mkdir()
    with pytest.raises(NoResultsError, match=r"runs\.csv.*nox -s bench -- --profile quick"):
        write_report(tmp_path / "quick", tmp_path / "out")


def test_missing_manifest_raises(results, tmp_path):
    (results / "manifest.json").unlink()
    with pytest.raises(NoResultsError, match=r"manifest\.json not found: .*contains no stored bench results"):
        write_report(results, tmp_path / "out")


def test_manifest_not_object_raises(results, tmp_path):
    (results / "manifest.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataError, match=r"manifest\.json is not a JSON object\. Run the bench again"):
        write_report(results, tmp_path / "out")


def test_missing_record_advises_stored_command(results, tmp_path):
    manifest = json.loads((results / "manifest.json").read_text(encoding="utf-8"))
    manifest["command"] = "python -m bench run --profile fake --results-dir elsewhere --config tiny.toml"
    (results / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (results / "records" / f"{fake_key('pysr_direct', 1)}.json").unlink()
    # The results were moved from "elsewhere", so the advice names the folder they are in now.
    expected = f"Run `nox -s bench -- --profile fake --results-dir {results} --config tiny.toml --methods pysr_direct` to store it again"
    with pytest.raises(DataError, match=re.escape(expected)):
        write_report(results, tmp_path / "out")


def test_unknown_status_raises(results, tmp_path):
    runs = results / "runs.csv"
    runs.write_text(runs.read_text(encoding="utf-8").replace(",unavailable,", ",skipped,"), encoding="utf-8")
    with pytest.raises(DataError, match=r"unknown status values \['skipped'\]"):
        write_report(results, tmp_path / "out")


# Published bundles.


@pytest.fixture(scope="module")
def bundle(stored_results):
    """The published bundle of ``stored_results``, shared by the tests that only read it."""
    return export_bundle(stored_results, stored_results.parent.parent / "published" / PROFILE)


@pytest.fixture
def bundle_copy(bundle, tmp_path):
    """A copy of ``bundle`` for tests that change it."""
    return Path(shutil.copytree(bundle.directory, tmp_path / "published" / PROFILE))


def test_bundle_holds_no_arrays(bundle):
    files = set(bundle.files)
    assert {"bundle.json", "runs.csv", "manifest.json", "figures/figures.json", "figures/zoom.svg"} <= files
    assert f"records/{fake_key('kan_symbolic', 1)}.json" in files
    assert not any(name.startswith("arrays/") for name in files)
    assert bundle.size == sum((bundle.directory / name).stat().st_size for name in files)


def test_bundle_export_is_reproducible(bundle, stored_results, tmp_path):
    again = export_bundle(stored_results, tmp_path / "again")
    assert snapshot(again.directory) == snapshot(bundle.directory)
    export_bundle(stored_results, tmp_path / "again")
    assert snapshot(again.directory) == snapshot(bundle.directory)


def test_report_from_bundle_matches_results(bundle, report, tmp_path):
    from_bundle = tmp_path / "report" / "_generated"
    write_report(bundle.directory, from_bundle)
    assert snapshot(from_bundle) == snapshot(report)


def test_bundle_changed_file_raises(bundle_copy, tmp_path):
    runs = bundle_copy / "runs.csv"
    runs.write_text(runs.read_text(encoding="utf-8").replace("0.0015", "0.0016"), encoding="utf-8")
    with pytest.raises(DataError, match=r"runs\.csv changed or went missing.*python -m bench publish --profile fake"):
        write_report(bundle_copy, tmp_path / "out")


def test_bundle_index_path_outside_rejected(bundle_copy, tmp_path):
    index_path = bundle_copy / "bundle.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index["files"]["../../outside.txt"] = "0" * 64
    index_path.write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(DataError, match=r"bundle\.json lists paths outside the bundle"):
        write_report(bundle_copy, tmp_path / "out")


def edit_bundle_index(bundle_dir, **changes):
    index_path = bundle_dir / "bundle.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index.update(changes)
    index_path.write_text(json.dumps(index), encoding="utf-8")


def test_bundle_index_without_table_checksums_rejected(bundle_copy, tmp_path):
    edit_bundle_index(bundle_copy, files={})
    with pytest.raises(DataError, match=r"bundle\.json lists no checksum for runs\.csv, manifest\.json"):
        write_report(bundle_copy, tmp_path / "out")


def test_bundle_index_profile_mismatch_rejected(bundle_copy, tmp_path):
    edit_bundle_index(bundle_copy, profile="quick")
    with pytest.raises(DataError, match=r"bundle\.json names profile 'quick', but its manifest\.json names 'fake'"):
        write_report(bundle_copy, tmp_path / "out")


def test_bundle_without_index_named(bundle_copy, tmp_path):
    (bundle_copy / "bundle.json").unlink()
    with pytest.raises(DataError, match=r"looks like a published bundle, but its bundle\.json is missing"):
        write_report(bundle_copy, tmp_path / "out")


def test_bundle_missing_figure_raises(bundle_copy, tmp_path):
    (bundle_copy / "figures" / "zoom.svg").unlink()
    with pytest.raises(DataError, match=r"figures/zoom\.svg changed or went missing"):
        write_report(bundle_copy, tmp_path / "out")


def test_bundle_not_exported_from_bundle(bundle, tmp_path):
    with pytest.raises(DataError, match="already a published bundle"):
        export_bundle(bundle.directory, tmp_path / "again")


def test_bundle_keeps_foreign_folder(stored_results, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("kept", encoding="utf-8")
    with pytest.raises(BenchError, match="is not a published bundle"):
        export_bundle(stored_results, foreign)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "kept"


def test_bundle_subset_publish_raises(bundle_copy, tmp_path):
    earlier = snapshot(bundle_copy)
    subset = make_results(tmp_path / "subset", methods=("kan_numeric",))
    expected = (f"{bundle_copy} has 2 runs of kan_symbolic and 2 runs of pysr_direct that {subset} lacks. Run "
                f"`nox -s bench -- --profile fake --results-dir {subset} --methods kan_symbolic,pysr_direct` to store "
                "them there first. Or pass --drop-runs to publish without these runs.")
    with pytest.raises(DataError, match=re.escape(expected)):
        export_bundle(subset, bundle_copy)
    assert snapshot(bundle_copy) == earlier
    assert sorted(path.name for path in bundle_copy.parent.iterdir()) == [PROFILE]


def test_bundle_drop_runs_publishes(bundle_copy, tmp_path, caplog):
    subset = make_results(tmp_path / "subset", methods=("kan_numeric",))
    with caplog.at_level(logging.INFO, logger="bench.reporting.bundle"):
        exported = export_bundle(subset, bundle_copy, drop_runs=True)
    assert len(exported.dropped_runs) == 1
    dropped = exported.dropped_runs[0]
    assert dropped.bundle == bundle_copy
    assert dropped.results == subset
    assert dropped.counts == (("kan_symbolic", 2), ("pysr_direct", 2))
    assert dropped.describe_runs() == "2 runs of kan_symbolic and 2 runs of pysr_direct"
    assert set(load_results(bundle_copy).runs["method"]) == {"kan_numeric"}
    assert f"dropped 2 runs of kan_symbolic and 2 runs of pysr_direct from {bundle_copy}" in caplog.text


def test_bundle_same_methods_republish(bundle_copy, stored_results):
    earlier = snapshot(bundle_copy)
    exported = export_bundle(stored_results, bundle_copy)
    assert exported.dropped_runs == ()
    assert snapshot(bundle_copy) == earlier


def test_bundle_unreadable_earlier_runs_warns(bundle_copy, tmp_path, caplog):
    (bundle_copy / "runs.csv").write_text("edited", encoding="utf-8")
    subset = make_results(tmp_path / "subset", methods=("kan_numeric",))
    with caplog.at_level(logging.WARNING, logger="bench.reporting.bundle"):
        exported = export_bundle(subset, bundle_copy)
    assert exported.dropped_runs == ()
    assert set(load_results(bundle_copy).runs["method"]) == {"kan_numeric"}
    assert f"cannot compare the earlier bundle {bundle_copy} with the new results" in caplog.text


def test_lost_runs_matched_by_noise_and_repetition():
    def runs(*ids):
        return pd.DataFrame(ids, columns=["method", "noise", "repetition"])

    earlier = runs(("kan_numeric", 0.0, 0.0), ("kan_numeric", 0.1, 0.0), ("kan_numeric", 0.0, 1.0),
                   ("floor_mean", 0.0, 0.0), ("kan_symbolic", 0.0, 0.0))
    new = runs(("kan_numeric", 0.0, 0.0), ("floor_mean", 0.0, 0.0), ("kan_symbolic", 0.0, 0.0), ("pysr_direct", 0.0, 0.0))
    assert _lost_run_counts(earlier, new) == (("kan_numeric", 2),)
    assert _lost_run_counts(new, new) == ()


def test_configured_method_without_runs_is_named(tmp_path):
    results_dir = make_results(tmp_path)
    manifest = json.loads((results_dir / "manifest.json").read_text())
    manifest["config"]["run"]["methods"].append("operon_direct")
    (results_dir / "manifest.json").write_text(json.dumps(manifest))
    note = unrun_methods_note(load_results(results_dir))
    assert "also lists `operon_direct`, but no run of it" in note
    assert f"nox -s bench -- --profile fake --results-dir {results_dir} --methods operon_direct` computes" in note


def stored_with_command(directory, command, signal_name="seed"):
    """Return StoredResults of no runs in ``directory`` whose manifest contains ``command`` and names ``signal_name``."""
    manifest = {"command": command, "config": {"signal": {"name": signal_name}}}
    return StoredResults(profile="quick", directory=directory, runs=pd.DataFrame(), manifest=manifest, is_bundle=False)


@pytest.mark.parametrize(
    ("command", "signal_name", "expected"),
    [
        ("python -m bench run --profile quick --signals seed,chirp --results-dir /data/q", "chirp",
         "--profile quick --signals chirp --results-dir /data/q"),
        ("python -m bench run --profile quick --signals=all --results-dir=/old", "chirp",
         "--profile quick --signals=chirp --results-dir=/data/q"),
        ("python -m bench run --profile quick --expression 'sin(2*pi*5*x)' --results-dir /data/q", "custom",
         "--profile quick --expression 'sin(2*pi*5*x)' --results-dir /data/q"),
        ("python -m bench run --profile quick --signals seed,chirp", "seed",
         "--profile quick --signals seed --results-dir /data/q"),
    ],
    ids=["suite-signal", "equals-form", "expression", "seed-moved"],
)
def test_rerun_advice_targets_bench_folder(command, signal_name, expected):
    folder = Path("/data/q") if signal_name == "seed" else Path("/data/q/signals") / signal_name
    results = stored_with_command(folder, command, signal_name)
    assert results.rerun_command() == f"nox -s bench -- {expected}"


def test_rerun_advice_for_unfinished_signal():
    results = stored_with_command(Path("/data/q"), "python -m bench run --profile quick --config my.toml")
    assert results.rerun_command(signal="chirp") == ("nox -s bench -- --profile quick --config my.toml "
                                                     "--results-dir /data/q --signals chirp")


def test_rerun_advice_replaces_methods_subset(tmp_path):
    results_dir = make_results(tmp_path)
    manifest = json.loads((results_dir / "manifest.json").read_text())
    manifest["command"] = "python -m bench run --profile fake --methods floor_mean --config tiny.toml"
    manifest["config"]["run"]["methods"].append("operon_direct")
    (results_dir / "manifest.json").write_text(json.dumps(manifest))
    results = load_results(results_dir)
    note = unrun_methods_note(results)
    folder = f"--results-dir {results_dir}"
    assert f"`nox -s bench -- --profile fake --config tiny.toml {folder} --methods operon_direct` computes" in note
    assert results.rerun_command() == f"nox -s bench -- --profile fake --config tiny.toml {folder}"


def test_method_with_missing_rows_is_named(results, tmp_path):
    runs_csv = results / "runs.csv"
    lines = runs_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    dropped = fake_key("pysr_direct", 1)
    runs_csv.write_text("".join(line for line in lines if dropped not in line), encoding="utf-8")
    note = missing_runs_note(load_results(results))
    assert "asks for 2 repetitions of each method, but runs.csv lists fewer for `pysr_direct` (1 of 2)" in note
    assert f"`nox -s bench -- --profile fake --results-dir {results} --methods pysr_direct` computes" in note
    assert "`kan_numeric`" not in note
    out = tmp_path / "report" / "_generated"
    write_report(results, out)
    assert note.strip() in read(out, "headline.md")


def test_record_with_edited_settings_rejected(results, tmp_path):
    key = fake_key("kan_numeric", 1)
    resave_record(results, key, settings={"width": [1, 9, 1]})
    with pytest.raises(DataError, match=rf"records/{key}\.json does not follow from the configuration in "):
        write_report(results, tmp_path / "out")


@pytest.mark.parametrize(("section", "name", "value"), [("split", "test_fraction", 0.5), ("split", "data_seed", 7)])
def test_manifest_with_edited_split_rejected(results, tmp_path, section, name, value):
    path = results / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["config"][section][name] = value
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match=r"manifest\.json was edited or comes from another bench\. Run `nox -s bench"):
        write_report(results, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("profile", ["../../bogus", "Default", "quick; rm -rf ~"])
def test_manifest_with_bad_profile_rejected(results, tmp_path, profile):
    path = results / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["profile"] = profile
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match=r"which is not a profile name"):
        write_report(results, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def edit_manifest(results, edit):
    """Apply ``edit`` to the parsed manifest.json of ``results`` and write it back."""
    path = results / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda manifest: manifest["config"].pop("split"), "has an invalid config.split: "),
        (lambda manifest: manifest["config"].pop("run"), "has an invalid config.run: "),
        (lambda manifest: manifest.update(machine="a string"), "has an invalid machine: 'a string'"),
        (lambda manifest: manifest["config"]["run"].update(noise_levels="x"), "has an invalid config.run.noise_levels"),
        (lambda manifest: manifest.update(git_commit="<script>"), "has an invalid git_commit: '<script>'"),
        (lambda manifest: manifest.update(command="rm -rf / ; python -m bench run"), "has an invalid command"),
        (lambda manifest: manifest.update(command="python -m bench run\nrm -rf /"), "has an invalid command"),
    ],
    ids=["no-split", "no-run", "machine", "noise-levels", "commit", "command", "command-newline"],
)
def test_manifest_with_invalid_field_rejected(results, tmp_path, edit, message):
    edit_manifest(results, edit)
    with pytest.raises(DataError, match=re.escape(message)):
        write_report(results, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda manifest: manifest["config"]["run"].update(base_seed=7), "but base_seed 7 gives"),
        (lambda manifest: manifest["config"]["run"].update(noise_levels=[0.5]), "its noise level 0 is not among"),
        (lambda manifest: manifest["versions"].update(python="3.0.0"), "it used python 3.11.9, but the manifest records 3.0.0"),
    ],
    ids=["base-seed", "noise-levels", "versions"],
)
def test_manifest_run_settings_checked(results, tmp_path, edit, message):
    edit_manifest(results, edit)
    with pytest.raises(DataError, match=re.escape(message)):
        write_report(results, tmp_path / "out")


@pytest.mark.parametrize("edit", [{"name": "chirp"}, {"name": "custom", "expression": "sin(2*pi*7*x)"}])
def test_manifest_with_other_signal_rejected(tmp_path, edit):
    results = make_results(tmp_path)
    config = json.loads((results / "manifest.json").read_text(encoding="utf-8"))["config"]
    seed = dict(config, signal={**config["signal"], "name": "seed", "expression": ""})
    summary = runner.signal_summary(signals.load_signal(seed))

    def swap_signal(manifest):
        manifest["signal"] = summary
        manifest["config"]["signal"].update(edit)

    edit_manifest(results, swap_signal)
    with pytest.raises(DataError, match=r"states signal '(chirp|custom)' .*, but its runs used 4\*sin"):
        write_report(results, tmp_path / "out")


def test_two_keys_for_one_run_rejected(results, tmp_path):
    # A second record of kan_numeric's repetition 0, with other settings and the key they give.
    key = fake_key("kan_numeric", 0)
    record = json.loads(RunStore(results).record_path(key).read_text(encoding="utf-8"))
    config = json.loads((results / "manifest.json").read_text(encoding="utf-8"))["config"]
    settings = dict(record["settings"], width=[1, 9, 1])
    other = runner.run_key(config, "kan_numeric", settings, record["seed"], record["versions"], None)
    store = RunStore(results)
    copied = {name: value for name, value in record.items() if name not in ("checksum", "schema", "arrays_sha256")}
    store.save(dict(copied, key=other, settings=settings), store.load_arrays(key))
    runs_csv = results / "runs.csv"
    lines = runs_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    row = next(line for line in lines if key in line)
    runs_csv.write_text("".join(lines + [row.replace(key, other)]), encoding="utf-8")
    with pytest.raises(DataError, match=rf"lists method kan_numeric at noise level 0, repetition 0, twice: runs {key} "
                                        rf"and {other}"):
        write_report(results, tmp_path / "out")


def test_manifest_with_edited_rate_rejected(tmp_path):
    results = make_results(tmp_path)
    path = results / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    config = dict(manifest["config"], signal={**manifest["config"]["signal"], "name": "seed", "expression": ""})
    manifest["signal"] = runner.signal_summary(signals.load_signal(config))
    manifest["config"]["signal"]["sampling_rate_hz"] = 3000
    path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(DataError, match=r"states signal sampling_rate_hz 3000, but its runs used 200"):
        write_report(results, tmp_path / "out")


def test_run_beyond_manifest_repetitions_rejected(results, tmp_path):
    manifest = json.loads((results / "manifest.json").read_text())
    manifest["config"]["run"]["repetitions"] = 1
    (results / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"manifest\.json asks for 1 repetition, but run \w+ is repetition 1\. Run"):
        write_report(results, tmp_path / "out")


def test_no_missing_rows_note_for_full_table(stored_results):
    assert missing_runs_note(load_results(stored_results)) == ""


def test_no_note_when_every_configured_method_ran(stored_results):
    assert unrun_methods_note(load_results(stored_results)) == ""
