"""Inputs and outputs of the report: perf figures, runs.csv against the run records, unreadable files and --out."""

import csv
import json
import random
import re
import shutil
from pathlib import Path

import pytest

from bench.cli import main
from bench.errors import DataError, NoResultsError
from bench.reporting import write_report
from bench.reporting.results import load_results
from bench.reporting.speed import speed_section
from test_site_support import KAN_MSE_TEST, edit_runs_csv, fake_key, make_results


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
    assert "trained with a seed of its own, not with the seed of any repetition" in text


def test_speed_run_names_its_seed(tmp_path):
    report = perf_report()
    report["default_kan_run"]["seed"] = 0
    (tmp_path / "perf.json").write_text(json.dumps(report))
    assert "It was trained with seed 0, not with the seed of any repetition" in speed_section(tmp_path)


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


# runs.csv against the run records.


@pytest.fixture
def results(tmp_path):
    """Fake results of one test's own, with ok, failed and unavailable runs."""
    return make_results(tmp_path)


@pytest.mark.parametrize(
    ("method", "repetition", "cells", "field"),
    [
        ("kan_numeric", 0, {"mse_test": "1e-09"}, "mse_test"),
        ("kan_numeric", 0, {"mse_test": repr(KAN_MSE_TEST[0] * (1 + 1e-15))}, "mse_test"),
        ("kan_numeric", 1, {"r2_test": "0.5"}, "r2_test"),
        ("kan_numeric", 1, {"mse_test": "", "r2_test": "", "mse_train": ""}, "mse_test"),
        ("kan_numeric", 0, {"seconds": "1.000"}, "seconds"),
        ("kan_symbolic", 0, {"formula": "sin(62.83185307179586*x)"}, "formula"),
        ("kan_symbolic", 0, {"formula_size": "3"}, "formula_size"),
        ("kan_symbolic", 1, {"status": "ok", "reason": "", "stage": ""}, "status"),
        ("pysr_direct", 0, {"reason": "edited"}, "reason"),
        ("pysr_direct", 1, {"seed": "7"}, "seed"),
        ("pysr_direct", 1, {"repetition": "0"}, "repetition"),
        ("kan_numeric", 1, {"finished_at": ""}, "finished_at"),
    ],
)
def test_edited_runs_csv_rejected(results, tmp_path, method, repetition, cells, field):
    key = fake_key(method, repetition)
    edit_runs_csv(results, key, **cells)
    advice = f"`nox -s bench -- --profile fake --results-dir {results}`"
    pattern = rf"runs\.csv: the {field} of run {key} is .*, but its record .*{re.escape(advice)}"
    with pytest.raises(DataError, match=pattern):
        write_report(results, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cell", ["abc", "nan"])
def test_non_numeric_cell_rejected(results, tmp_path, cell):
    edit_runs_csv(results, fake_key("kan_numeric", 1), r2_test=cell)
    with pytest.raises(DataError, match=rf"column 'r2_test' has the value '{cell}', which is not a number\. Run the "
                                        r"bench again"):
        write_report(results, tmp_path / "out")


@pytest.mark.parametrize("option", ["--results-dir elsewhere", "--results-dir=elsewhere"])
def test_edited_runs_csv_advises_stored_command(results, tmp_path, option):
    # The bench wrote the results into "elsewhere", and they were moved since, so the advice names where they are.
    manifest = json.loads((results / "manifest.json").read_text(encoding="utf-8"))
    manifest["command"] = f"python -m bench run --profile fake --config my.toml {option}"
    (results / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    edit_runs_csv(results, fake_key("kan_numeric", 1), r2_test="0.5")
    moved = option.replace("elsewhere", str(results))
    with pytest.raises(DataError, match=re.escape(f"`nox -s bench -- --profile fake --config my.toml {moved}` again "
                                                  "to rewrite runs.csv from the records")):
        write_report(results, tmp_path / "out")


def test_swapped_keys_rejected(results, tmp_path):
    numeric, symbolic = fake_key("kan_numeric", 0), fake_key("kan_symbolic", 0)
    path = results / "runs.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(numeric, "@").replace(symbolic, numeric).replace("@", symbolic), encoding="utf-8")
    with pytest.raises(DataError, match=r"runs\.csv: the (method|repetition|seed|status|mse_test) of run [0-9a-f]{24}"):
        load_results(results)


def test_repeated_key_rejected(results):
    path = results / "runs.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines + lines[1:2]), encoding="utf-8")
    with pytest.raises(DataError, match=r"runs\.csv lists run [0-9a-f]{24} twice"):
        load_results(results)


def test_runs_csv_as_written_accepted(results):
    runs = load_results(results).runs
    assert len(runs) == 6
    # The bench writes seconds with 3 decimals and the metrics with repr, and both match the records.
    assert runs.loc[runs["method"] == "kan_numeric", "seconds"].tolist() == [12.5, 13.5]


def test_runs_csv_without_finished_at(results):
    path = results / "runs.csv"
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    columns = [column for column in rows[0] if column != "finished_at"]
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    assert "finished_at" not in load_results(results).runs.columns


def test_empty_run_table_unknown_profile(results):
    path = results / "runs.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(NoResultsError, match=r"runs\.csv lists no runs\. Pass the folder a bench wrote") as caught:
        load_results(results)
    assert "--profile fake" not in str(caught.value)

# Unreadable inputs and outputs: one line, exit code 2, nothing written.


@pytest.fixture
def quick_results(tmp_path):
    """Fake results that name the quick profile, which the report command checks against --profile."""
    return make_results(tmp_path, profile="quick")


def report_cli(results, out, capsys):
    """Run `python -m bench report` on ``results`` in this process and return its exit code and stderr."""
    code = main(["report", "--profile", "quick", "--results-dir", str(results), "--out", str(out)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not a valid run table"),
        (random.Random(0).randbytes(2000), "is not a valid run table"),
        (bytes(random.Random(1).randrange(32, 127) for _ in range(3000)), "lacks the columns"),
        (b'method,repetition\n"kan_numeric,0\n', "is not a valid run table"),
    ],
    ids=["empty", "random-bytes", "random-text", "open-quote"],
)
def test_malformed_runs_csv_one_line(results, tmp_path, capsys, content, message):
    (results / "runs.csv").write_bytes(content)
    code, err = report_cli(results, tmp_path / "out", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"{results / 'runs.csv'} {message}" in err
    assert "Run the bench again to rewrite runs.csv" in err
    assert not (tmp_path / "out").exists()


def test_record_folder_one_line(results, tmp_path, capsys):
    record = results / "records" / f"{fake_key('kan_numeric', 0)}.json"
    record.unlink()
    record.mkdir()
    code, err = report_cli(results, tmp_path / "out", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"cannot read {record}: Is a directory" in err
    assert "nox -s bench -- --profile fake" in err
    assert not (tmp_path / "out").exists()


def test_records_file_one_line(results, tmp_path, capsys):
    shutil.rmtree(results / "records")
    (results / "records").write_text("not a folder", encoding="utf-8")
    code, err = report_cli(results, tmp_path / "out", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"{results / 'records'} is not a folder" in err
    assert not (tmp_path / "out").exists()


def test_out_under_file_one_line(quick_results, tmp_path, capsys):
    (tmp_path / "afile").write_text("mine", encoding="utf-8")
    code, err = report_cli(quick_results, tmp_path / "afile" / "sub", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"--out {tmp_path / 'afile' / 'sub'} cannot be created because {tmp_path / 'afile'} is a file" in err
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "mine"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs the Linux /proc file system")
def test_out_in_proc_one_line(quick_results, capsys):
    code, err = report_cli(quick_results, Path("/proc/kan-sr-bench-report"), capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "cannot write the report to --out /proc/kan-sr-bench-report" in err
    assert "Pass a folder that can be created and written" in err
    assert not Path("/proc/kan-sr-bench-report").exists()


def test_other_profile_results_one_line(results, tmp_path, capsys):
    code, err = report_cli(results, tmp_path / "out", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert f"{results} contains results of profile 'fake', not 'quick'" in err
    assert "Run report with --profile fake" in err
    assert not (tmp_path / "out").exists()
