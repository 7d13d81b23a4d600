"""The command line through a real subprocess: exit codes, messages, nothing written on bad input."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.reporting import export_bundle
from test_site_support import copy_site_sources, make_results

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--profile", "quik"], "unknown profile 'quik'. Did you mean 'quick'"),
        (["run", "--methods", "kan_numerc"], "unknown method 'kan_numerc' in --methods. Did you mean 'kan_numeric'"),
        (["run", "--methods", ","], "--methods is empty"),
        (["run", "--methods", "floor_mean,,floor_linear"], "--methods 'floor_mean,,floor_linear' has an empty name"),
        (["run", "--methods", "floor_mean,floor_mean"], "--methods lists floor_mean more than once"),
        (["run", "--config", "absent.toml"], "configuration file not found: absent.toml"),
        (["run", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["launch"], "invalid choice: 'launch'"),
        (["launch"], "Run 'python -m bench --help'"),
        (["render", "--profile", "quick"], "no _quarto.yml in"),
        (["run", "--results-dir", "/proc/version"], "is a file"),
        (["report", "--profile", "quick"], "nox -s bench -- --profile quick"),
        (["run", "--signals", "all,seed"], "--signals all runs every built-in signal and takes no other names"),
        (["run", "--expression", ""], "--expression is empty; give a formula of x"),
        (["run", "--expression", "-x"], "write a formula that starts with '-' as --expression='-x'"),
        (["perf", "--grids", "5", "--samples", "100000000000", "--repeats", "1", "--no-run", "--out", "p.json"],
         "invalid --samples 100000000000: give from 10 to 10,000,000 samples"),
        (["perf", "--samples", "5", "--no-run", "--out", "p.json"], "invalid --samples 5: give from 10"),
        (["perf", "--grids", "5,100000000000", "--samples", "100", "--no-run", "--out", "p.json"],
         "invalid --grids '5,100000000000': 100000000000 is above the maximum of 10,000"),
        (["perf", "--repeats", "0", "--no-run", "--out", "p.json"], "invalid --repeats 0: give 1 or more"),
        (["perf", "--grids", "10000", "--samples", "10000000", "--no-run", "--out", "p.json"],
         "--samples 10000000 at grid 10000 needs about"),
        (["run", "--profile", "quick", "--results-dir", ""], "argument --results-dir: the path is empty"),
        (["run", "--profile", "quick", "--results-dir="], "argument --results-dir: the path is empty"),
        (["run", "--profile", "quick", "--config", ""], "argument --config: the path is empty"),
        (["report", "--profile", "quick", "--results-dir", ""], "argument --results-dir: the path is empty"),
        (["report", "--profile", "quick", "--out", ""], "argument --out: the path is empty"),
        (["render", "--profile", "quick", "--results-dir", ""], "argument --results-dir: the path is empty"),
        (["publish", "--profile", "quick", "--results-dir", ""], "argument --results-dir: the path is empty"),
        (["perf", "--out", ""], "argument --out: the path is empty"),
    ],
)
def test_bad_input_exits_2(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_bad_config_value_writes_nothing(tmp_path):
    (tmp_path / "bad.toml").write_text("[run]\nrepetitions = 0\n")
    result = run_cli("run", "--profile", "quick", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid run.repetitions = 0" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_config_with_bom_read(tmp_path):
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf[run]\nrepetitions = 0\n")
    result = run_cli("run", "--profile", "quick", "--config", "bom.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid run.repetitions = 0" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bom.toml"]


def test_expression_with_builtin_name_rejected(tmp_path):
    (tmp_path / "named.toml").write_text('[signal]\nname = "chirp"\n')
    result = run_cli("run", "--profile", "quick", "--config", "named.toml", "--expression", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert 'signal.name = "chirp" in --config names a built-in signal' in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["named.toml"]


def test_publish_rejects_other_profile(tmp_path):
    results = make_results(tmp_path)
    result = run_cli("publish", "--profile", "quick", "--results-dir", str(results), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{results} contains results of profile 'fake', not 'quick'" in result.stderr
    assert not (tmp_path / "published").exists()


@pytest.fixture(scope="module")
def published_project(tmp_path_factory):
    """A folder with fake quick-profile results in results/quick and their bundle in published/quick."""
    root = tmp_path_factory.mktemp("published")
    results = make_results(root, profile="quick")
    export_bundle(results, root / "published" / "quick")
    return root


def bench_kan_numeric_only(published_project, root):
    """Copy ``published_project`` to ``root`` with results of kan_numeric alone, as a fresh clone's bench writes them."""
    shutil.copytree(published_project / "published", root / "published")
    make_results(root, methods=("kan_numeric",), profile="quick")


def test_publish_subset_exits_2(published_project, tmp_path):
    bench_kan_numeric_only(published_project, tmp_path)
    earlier = {path: path.read_bytes() for path in (tmp_path / "published").rglob("*") if path.is_file()}
    result = run_cli("publish", "--profile", "quick", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bench: error: this publish would drop earlier published runs. published/quick has 2 runs of kan_symbolic "
        "and 2 runs of pysr_direct that results/quick lacks. Run `nox -s bench -- --profile quick --methods "
        "kan_symbolic,pysr_direct` to store them there first. Or pass --drop-runs to publish without these runs."]
    now = {path: path.read_bytes() for path in (tmp_path / "published").rglob("*") if path.is_file()}
    assert now == earlier
    assert sorted(path.name for path in (tmp_path / "published").iterdir()) == ["quick"]


def test_publish_drop_runs_reports_methods(published_project, tmp_path):
    bench_kan_numeric_only(published_project, tmp_path)
    result = run_cli("publish", "--profile", "quick", "--drop-runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("publish: dropped 2 runs of kan_symbolic and 2 runs of pysr_direct from published/quick, which "
            "results/quick lacks") in result.stdout.splitlines()
    runs = (tmp_path / "published" / "quick" / "runs.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert {line.split(",")[0] for line in runs} == {"kan_numeric"}


def test_render_rejects_other_profile(tmp_path):
    root = copy_site_sources(tmp_path / "site")
    results = make_results(root)
    result = run_cli("render", "--profile", "quick", "--results-dir", str(results), cwd=root)
    assert result.returncode == 2
    assert f"{results} contains results of profile 'fake', not 'quick'. Run render with --profile fake" in result.stderr
    assert not (root / "_site").exists()
    assert not (root / "report" / "_generated").exists()


def test_profiles_listed(tmp_path):
    result = run_cli("profiles", cwd=tmp_path)
    assert result.returncode == 0
    assert "quick:" in result.stdout
    assert "default:" in result.stdout


def test_perf_writes_figures(tmp_path):
    import json

    result = run_cli("perf", "--grids", "5,10", "--samples", "200", "--repeats", "1", "--no-run",
                     "--out", "perf.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "perf.json").read_text())
    assert [row["grid"] for row in report["grids"]] == [5, 10]
    assert all(row["max_abs_output_difference"] < 1e-12 for row in report["grids"])
    assert "speedup" in result.stdout


def test_perf_rejects_bad_grids(tmp_path):
    result = run_cli("perf", "--grids", "40,-1", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid --grids '40,-1'" in result.stderr


def test_perf_rejects_unwritable_out_first(tmp_path):
    result = run_cli("perf", "--out", "/proc/perf.json", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid --out /proc/perf.json" in result.stderr
    assert "grid" not in result.stdout


@pytest.mark.parametrize("command", ["report", "render", "publish"])
def test_results_dir_file_rejected(tmp_path, command):
    root = copy_site_sources(tmp_path / "site")
    (root / "runs").write_text("not a folder")
    result = run_cli(command, "--profile", "quick", "--results-dir", "runs", cwd=root)
    assert result.returncode == 2
    assert "--results-dir runs is a file; pass the folder that `python -m bench run` wrote" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (root / "_site").exists()
    assert not (root / "report" / "_generated").exists()
    assert not (root / "published").exists()


@pytest.mark.parametrize("folder", ["records", "arrays", "locks", "corrupt"])
def test_store_folder_as_file_rejected_first(tmp_path, folder):
    quick_run = ("run", "--profile", "quick", "--methods", "floor_mean", "--results-dir", "r")
    assert run_cli(*quick_run, cwd=tmp_path).returncode == 0
    results = tmp_path / "r"
    if (results / folder).exists():
        shutil.rmtree(results / folder)
    (results / folder).write_text("x\n")
    before = {path: path.read_bytes() for path in results.rglob("*") if path.is_file()}

    result = run_cli(*quick_run, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{Path('r') / folder} is a file, but the bench writes into a folder of that name" in result.stderr
    assert "Remove or rename the file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {path: path.read_bytes() for path in results.rglob("*") if path.is_file()} == before


def test_signals_folder_as_file_rejected_first(tmp_path):
    seed_run = ("run", "--profile", "quick", "--methods", "floor_mean", "--results-dir", "r")
    assert run_cli(*seed_run, cwd=tmp_path).returncode == 0
    (tmp_path / "r" / "signals").write_text("x\n")
    before = {path: path.read_bytes() for path in (tmp_path / "r").rglob("*") if path.is_file()}

    result = run_cli(*seed_run, "--signals", "seed,chirp", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{Path('r') / 'signals'} is a file, but the bench writes the runs of signal 'chirp'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {path: path.read_bytes() for path in (tmp_path / "r").rglob("*") if path.is_file()} == before


def test_swapped_records_report_advises_rerun(tmp_path):
    quick_run = ("run", "--profile", "quick", "--methods", "floor_mean", "--results-dir", "r")
    report = ("report", "--profile", "quick", "--results-dir", "r", "--out", "out")
    assert run_cli(*quick_run, cwd=tmp_path).returncode == 0
    first, second = sorted((tmp_path / "r" / "records").iterdir())
    first_bytes = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(first_bytes)

    result = run_cli(*report, cwd=tmp_path)
    assert result.returncode == 2
    assert f"{Path('r') / 'records' / first.name} is not the record of run {first.stem}" in result.stderr
    assert "Run `nox -s bench -- --profile quick --results-dir r --methods floor_mean`, which moves" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()

    # The advice holds: the bench run again replaces both records, and the report is written.
    assert run_cli(*quick_run, cwd=tmp_path).returncode == 0
    assert run_cli(*report, cwd=tmp_path).returncode == 0


FLOOR_RUN = ("run", "--profile", "quick", "--methods", "floor_mean", "--results-dir", "r")


@pytest.mark.parametrize(
    "first",
    [("--expression", "sin(2*pi*5*x)"), ("--signals", "chirp")],
    ids=["expression", "signals"],
)
def test_seed_bench_after_other_signal(tmp_path, first):
    assert run_cli(*FLOOR_RUN, *first, cwd=tmp_path).returncode == 0

    result = run_cli(*FLOOR_RUN, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bench: signal seed: 2 computed" in result.stdout
    assert (tmp_path / "r" / ".kan-sr-bench").is_file()


def test_signals_before_seed_in_one_bench(tmp_path):
    result = run_cli(*FLOOR_RUN, "--signals", "chirp,seed", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "bench: signal chirp: 2 computed" in result.stdout
    assert "bench: signal seed: 2 computed" in result.stdout


@pytest.mark.parametrize(
    "signal",
    [("--expression", "sin(2*pi*5*x)"), ("--signals", "chirp"), ("--signals", "chirp,seed")],
    ids=["expression", "signals", "signals-then-seed"],
)
def test_foreign_results_dir_rejected_first(tmp_path, signal):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "thesis.tex").write_text("keep me\n")

    result = run_cli(*FLOOR_RUN, *signal, cwd=tmp_path)
    assert result.returncode == 2
    assert "r exists and was not created by this benchmark (no .kan-sr-bench file)" in result.stderr
    # Logged runs would add lines: one line means that nothing was computed.
    assert len(result.stderr.strip().splitlines()) == 1
    assert [path.name for path in (tmp_path / "r").iterdir()] == ["thesis.tex"]


def test_foreign_signal_folder_rejected_first(tmp_path):
    assert run_cli(*FLOOR_RUN, cwd=tmp_path).returncode == 0
    foreign = tmp_path / "r" / "signals" / "polynomial"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("keep me\n")

    result = run_cli(*FLOOR_RUN, "--signals", "chirp,polynomial", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{Path('r') / 'signals' / 'polynomial'} exists and was not created by this benchmark" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "signals" / "chirp").exists()
    assert [path.name for path in foreign.iterdir()] == ["notes.txt"]


def test_unmarked_folder_of_signal_benches_accepted(tmp_path):
    # Benches of other signals than the seed used to create the --results-dir folder without the marker file.
    assert run_cli(*FLOOR_RUN, "--expression", "sin(2*pi*5*x)", cwd=tmp_path).returncode == 0
    (tmp_path / "r" / ".kan-sr-bench").unlink()

    result = run_cli(*FLOOR_RUN, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / ".kan-sr-bench").is_file()


@pytest.mark.parametrize("foreign", ["notes.txt", "signals/notes.txt", "signals/chapter/notes.txt"])
def test_unmarked_folder_with_foreign_content_rejected(tmp_path, foreign):
    assert run_cli(*FLOOR_RUN, "--signals", "chirp", cwd=tmp_path).returncode == 0
    (tmp_path / "r" / ".kan-sr-bench").unlink()
    (tmp_path / "r" / foreign).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "r" / foreign).write_text("keep me\n")

    result = run_cli(*FLOOR_RUN, cwd=tmp_path)
    assert result.returncode == 2
    assert "r exists and was not created by this benchmark" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "records").exists()


def test_empty_results_dir_marked_by_signal_bench(tmp_path):
    (tmp_path / "r").mkdir()
    assert run_cli(*FLOOR_RUN, "--signals", "chirp", cwd=tmp_path).returncode == 0
    assert (tmp_path / "r" / ".kan-sr-bench").is_file()

    result = run_cli(*FLOOR_RUN, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
