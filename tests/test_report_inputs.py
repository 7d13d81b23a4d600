"""Inputs the report reads besides the runs: perf figures and the shape of runs.csv values."""

import json

import pytest

from bench.errors import DataError
from bench.reporting.speed import speed_section


def perf_report():
    row = {"grid": 150, "samples": 12000, "stock_seconds": 3.2, "fast_seconds": 0.05, "speedup": 64.0,
           "lower_bound_seconds": 0.0005, "max_abs_output_difference": 0.0}
    return {"grids": [row], "torch_threads": 2, "machine": {"cpu": "Test CPU", "cores": 2}, "torch": "2.13.0",
            "code": "0.1.0+abc", "default_kan_run": {"seconds": 215.9, "mse_test": 1.2e-5}}


def test_speed_table_rows(tmp_path):
    (tmp_path / "perf.json").write_text(json.dumps(perf_report()))
    text = speed_section(tmp_path)
    assert "| 150 | 12,000 | 3.200 | 0.0500 | 64.0× |" in text
    assert "Test CPU" in text
    assert "took 216 s" in text


def test_speed_missing_says_command(tmp_path):
    assert "`nox -s perf` writes them" in speed_section(tmp_path)


def test_speed_invalid_file_rejected(tmp_path):
    (tmp_path / "perf.json").write_text(json.dumps({"grids": [{"grid": 40}]}))
    with pytest.raises(DataError, match="not a perf report"):
        speed_section(tmp_path)


@pytest.mark.parametrize(
    ("column", "value"),
    [("key", "../../../etc/passwd"), ("key", "ABC"), ("method", "../x"), ("method", "a b")],
)
def test_runs_csv_rejects_path_like_values(tmp_path, column, value):
    from bench.reporting.results import read_runs
    from bench.runner import RUNS_CSV_COLUMNS

    row = {name: "" for name in RUNS_CSV_COLUMNS}
    row.update(method="operon_direct", repetition="0", seed="1", status="unavailable", key="0" * 24)
    row[column] = value
    path = tmp_path / "runs.csv"
    path.write_text(",".join(RUNS_CSV_COLUMNS) + "\n" + ",".join(row[name] for name in RUNS_CSV_COLUMNS) + "\n")
    with pytest.raises(DataError, match=f"invalid {column}"):
        read_runs(path)


def test_report_refuses_foreign_folder(tmp_path):
    from bench.reporting import write_report

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "metrics.md").write_text("keep me")
    with pytest.raises(DataError, match="is not empty and contains no report"):
        write_report(tmp_path / "results", foreign)
    assert (foreign / "metrics.md").read_text() == "keep me"
