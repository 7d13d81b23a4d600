"""Runs on Dask: the same results as local runs, checks of --scheduler and --workers, worker-side safeguards."""

import csv
import json
import socket
import sys
import time
from types import SimpleNamespace

import pytest

from bench import cli, cluster, runner
from bench import config as config_module
from bench.errors import BenchError
from bench.progress import Progress

# Fields that differ between two computations of the same run: its timing and the checksum that covers it.
VOLATILE_RECORD_FIELDS = ("seconds", "finished_at", "checksum")
VOLATILE_CSV_COLUMNS = ("seconds", "finished_at")

TINY_TOML = """
[run]
repetitions = 1
methods = ["floor_mean"]
[signal]
sampling_rate_hz = 300
"""


@pytest.fixture(scope="module")
def scheduler_address():
    """The address of a Dask cluster of two one-thread worker processes on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as local_cluster:
        yield local_cluster.scheduler_address


class RecordingProgress(Progress):
    def __init__(self):
        self.planned_total = None
        self.outcomes = []

    def planned(self, total):
        self.planned_total = total

    def finished(self, run, status, outcome):
        self.outcomes.append(outcome)


def stable_records(results_dir):
    records = {}
    for path in sorted((results_dir / "records").glob("*.json")):
        record = json.loads(path.read_text())
        records[path.name] = {key: value for key, value in record.items() if key not in VOLATILE_RECORD_FIELDS}
    return records


def stable_rows(results_dir):
    with open(results_dir / "runs.csv", newline="") as stream:
        return [{key: value for key, value in row.items() if key not in VOLATILE_CSV_COLUMNS}
                for row in csv.DictReader(stream)]


def file_bytes(folder):
    return {path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def run_cli(capsys, tmp_path, *options):
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    code = cli.main(["run", "--profile", "quick", "--config", str(tmp_path / "tiny.toml"),
                     "--results-dir", str(tmp_path / "results"), *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_dask_matches_local_run(tmp_path, tiny_overrides, scheduler_address):
    tiny_overrides["run"].update(
        repetitions=2, methods=["kan_numeric", "kan_symbolic", "operon_direct", "operon_distilled", "floor_mean"])
    config = config_module.load_config("quick", tiny_overrides)
    spec = cluster.cluster_spec(scheduler=scheduler_address)
    runner.run_benchmark(config, "quick", tmp_path / "local")

    # The first Dask bench stores KAN numeric only, so the second hands its
    # dependents the stored upstream runs rather than upstream tasks.
    first = runner.run_benchmark(config, "quick", tmp_path / "dask", methods=["kan_numeric"], cluster=spec)
    progress = RecordingProgress()
    second = runner.run_benchmark(config, "quick", tmp_path / "dask", cluster=spec, progress=progress)
    assert first.counts["computed"] == 2
    assert second.counts["reused"] == 2
    assert second.counts["computed"] == 8
    assert second.failed == 0
    assert progress.planned_total == 10
    assert sorted(progress.outcomes) == ["computed"] * 8 + ["reused"] * 2

    assert len(stable_records(tmp_path / "local")) == 10
    assert stable_records(tmp_path / "dask") == stable_records(tmp_path / "local")
    assert stable_rows(tmp_path / "dask") == stable_rows(tmp_path / "local")
    local_arrays = file_bytes(tmp_path / "local" / "arrays")
    assert file_bytes(tmp_path / "dask" / "arrays") == local_arrays

    # The cache is shared: a local bench reuses every run that Dask stored and changes no file.
    before = file_bytes(tmp_path / "dask")
    rerun = runner.run_benchmark(config, "quick", tmp_path / "dask")
    assert rerun.counts["reused"] == 10
    assert file_bytes(tmp_path / "dask") == before


@pytest.mark.slow
def test_cli_workers_starts_local_cluster(tmp_path, capsys):
    code, out, err = run_cli(capsys, tmp_path, "--workers", "1")
    assert code == 0, err
    assert "1 computed" in out
    rows = stable_rows(tmp_path / "results")
    assert [(row["method"], row["status"]) for row in rows] == [("floor_mean", "ok")]


@pytest.mark.parametrize("address", ["", "localhost", "http://host:8786", "tcp://host", "tcp://host:0",
                                     "tcp://host:70000", "tcp://host:port", "tcp://a b:8786"])
def test_invalid_scheduler_address_rejected(tmp_path, capsys, address):
    code, _, err = run_cli(capsys, tmp_path, "--scheduler", address)
    assert code == cli.EXIT_USAGE
    assert err.count("\n") == 1
    assert "invalid --scheduler" in err
    assert "tcp://HOST:PORT" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("address, expected", [
    ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
    ("node-1.cluster:8786", "tcp://node-1.cluster:8786"),
    ("tcp://[::1]:8786", "tcp://[::1]:8786"),
])
def test_scheduler_address_normalised(address, expected):
    assert cluster.parse_scheduler_address(address) == expected


@pytest.mark.parametrize("workers", ["0", "-2", "65", "two"])
def test_invalid_workers_rejected(tmp_path, capsys, workers):
    code, _, err = run_cli(capsys, tmp_path, "--workers", workers)
    assert code == cli.EXIT_USAGE
    assert err.count("\n") == 1
    assert "--workers" in err
    assert not (tmp_path / "results").exists()


def test_scheduler_and_workers_exclusive(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path, "--scheduler", "tcp://127.0.0.1:8786", "--workers", "2")
    assert code == cli.EXIT_USAGE
    assert "cannot be used together" in err


def test_unreachable_scheduler_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code, _, err = run_cli(capsys, tmp_path, "--scheduler", address)
    assert code == cli.EXIT_USAGE
    assert time.monotonic() - started < 20
    assert err.count("\n") == 1
    assert f"cannot connect to the Dask scheduler at {address}" in err
    assert not (tmp_path / "results").exists()


def test_missing_dask_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    for option in (["--workers", "2"], ["--scheduler", "tcp://127.0.0.1:8786"]):
        code, _, err = run_cli(capsys, tmp_path, *option)
        assert code == cli.EXIT_USAGE
        assert err.count("\n") == 1
        assert f"{option[0]} needs dask.distributed" in err
        assert "pip install -e '.[distributed]'" in err


def test_worker_with_other_versions_fails_run(tiny_config):
    _, planned = runner.plan_runs(tiny_config, ["floor_mean"])
    run = next(run for run in planned if run.method == "floor_mean")
    run = runner.PlannedRun(run.method, run.repetition, run.seed, run.key, run.upstream_key, run.settings,
                            {**run.versions, "numpy": "0.0.1"})
    record, arrays = cluster.compute_run(tiny_config, run, None, {})
    assert arrays is None
    assert record["status"] == "failed"
    assert record["stage"] == "environment"
    assert "numpy" in record["reason"]
    assert "0.0.1 on the client" in record["reason"]


def test_worker_computes_same_record(tiny_config):
    _, planned = runner.plan_runs(tiny_config, ["floor_mean"])
    run = next(run for run in planned if run.method == "floor_mean")
    record, arrays = cluster.compute_run(tiny_config, run, None, {})
    assert record["status"] == "ok"
    assert record["key"] == run.key
    assert arrays["predictions"].shape == (300,)


class FailedFuture:
    """A stand-in for a Dask future whose task raised."""

    status = "error"
    key = "bench-task"

    def __init__(self, error):
        self._error = error

    def exception(self):
        return self._error


def test_failed_task_recorded_with_reason(tiny_config):
    tiny_config["run"]["methods"] = ["kan_numeric", "operon_distilled"]
    _, planned = runner.plan_runs(tiny_config)
    runs = {run.key: run for run in planned}
    numeric = next(run for run in planned if run.method == "kan_numeric")
    distilled = next(run for run in planned if run.method == "operon_distilled")
    failed = FailedFuture(RuntimeError("worker died"))
    submitted = {numeric.key: failed, distilled.key: failed}

    record, arrays = cluster._task_result(failed, numeric, runs, submitted)
    assert arrays is None
    assert (record["status"], record["stage"]) == ("failed", "dask")
    assert record["reason"] == "its Dask task failed: RuntimeError: worker died"

    record, _ = cluster._task_result(failed, distilled, runs, submitted)
    assert (record["status"], record["stage"]) == ("failed", "upstream")
    assert record["reason"].startswith("the kan_numeric run of this repetition is not usable")


def test_scheduler_without_workers_named(monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(cluster, "WORKERS_TIMEOUT_S", 1)
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0") as empty:
        spec = cluster.cluster_spec(scheduler=empty.scheduler_address)
        with pytest.raises(BenchError, match=r"has no worker after 1 s; start workers with 'dask worker tcp://"):
            with cluster.connect(spec):
                pass


def test_cluster_spec_none_without_options():
    assert cluster.cluster_spec() is None


def test_cluster_spec_rejects_both_in_code():
    with pytest.raises(BenchError, match="cannot be used together"):
        cluster.cluster_spec(scheduler="tcp://127.0.0.1:8786", workers=1)


def test_nthreads_warning(caplog):
    info = {"workers": {"tcp://127.0.0.1:1": {"nthreads": 4}, "tcp://127.0.0.1:2": {"nthreads": 1}}}
    client = SimpleNamespace(wait_for_workers=lambda count, timeout: None, scheduler_info=lambda n_workers: info)
    with caplog.at_level("WARNING", logger="bench.cluster"):
        cluster._wait_for_workers(client, "tcp://127.0.0.1:8786")
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "tcp://127.0.0.1:1 has 4 threads" in warnings[0]


@pytest.mark.slow
def test_dask_bench_waits_for_claimed_run(tmp_path, tiny_overrides, scheduler_address, caplog):
    import shutil
    import threading

    from bench.store import RunStore

    tiny_overrides["run"]["methods"] = ["floor_mean"]
    config = config_module.load_config("quick", tiny_overrides)
    key = next(run.key for run in runner.plan_runs(config)[1] if run.method == "floor_mean")
    runner.run_benchmark(config, "quick", tmp_path / "other")
    shared = tmp_path / "shared"
    runner.prepare_results_dir(shared)

    # This test plays another bench that is computing the run: it takes the run's claim, and
    # stores the run's record before it releases the claim.
    claim = RunStore(shared).claim(key)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(summary=runner.run_benchmark(
        config, "quick", shared, methods=["floor_mean"], cluster=cluster.cluster_spec(scheduler=scheduler_address))))
    caplog.set_level("INFO", logger="bench.store")
    worker.start()
    deadline = time.monotonic() + 60
    while "waiting for it" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    for folder in ("records", "arrays"):
        shutil.copytree(tmp_path / "other" / folder, shared / folder, dirs_exist_ok=True)
    claim.release()
    worker.join(timeout=120)

    assert "waiting for it" in caplog.text
    assert outcome["summary"].counts["reused"] == 1
    assert outcome["summary"].counts["computed"] == 0
