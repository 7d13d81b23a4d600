"""A bench killed mid-way loses only the runs in progress, and reruns in fresh processes agree."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.store import RunStore

ROOT = Path(__file__).resolve().parents[1]

TINY_TOML = """
[run]
repetitions = 3
methods = ["kan_numeric", "kan_symbolic", "operon_direct", "operon_distilled"]
[signal]
sampling_rate_hz = 300
[methods.kan]
width = [1, 2, 1]
grids = [3, 5]
adam_steps = 20
lbfgs_steps = 2
lbfgs_max_iter = 5
grid_update_steps = 4
grid_updates = 2
[methods.kan_symbolic]
lib = ["sin", "x"]
refit_lbfgs_steps = 2
snap_samples = 100
[methods.operon]
population_size = 50
generations = 10
max_evaluations = 5000
"""


def start_bench(folder, results):
    (folder / "tiny.toml").write_text(TINY_TOML)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "bench", "run", "--profile", "quick", "--config", "tiny.toml",
               "--results-dir", str(results)]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_rows(results):
    with open(results / "runs.csv", newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_killed_bench_keeps_finished_runs(tmp_path):
    results = tmp_path / "results"
    survivors = []
    # Kill points spread over the bench. Each run of the tiny config takes a
    # fraction of a second after the imports, so the later points land mid-way.
    for delay in (2.0, 4.0, 6.0):
        process = start_bench(tmp_path, results)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        store = RunStore(results)
        records = sorted((results / "records").glob("*.json")) if (results / "records").exists() else []
        for path in records:
            assert store.load(path.stem) is not None, f"record {path.name} is unusable after a kill"
        corrupt = list((results / "corrupt").iterdir()) if (results / "corrupt").exists() else []
        assert corrupt == []
        survivors.append({path.stem for path in records})

    # Every record that existed after a kill is still there after the next one.
    for earlier, later in zip(survivors, survivors[1:]):
        assert earlier <= later

    finished = start_bench(tmp_path, results)
    stdout, stderr = finished.communicate(timeout=300)
    assert finished.returncode == 0, stderr[-2000:]
    rows = read_rows(results)
    assert len(rows) == 3 * 4
    assert {row["status"] for row in rows} == {"ok"}
    assert f"{len(survivors[-1])} reused" in stdout


@pytest.mark.slow
def test_fresh_processes_agree(tmp_path):
    tables = []
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        process = start_bench(folder, folder / "results")
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-2000:]
        rows = read_rows(folder / "results")
        tables.append([{key: row[key] for key in ("method", "seed", "mse_test", "r2_test", "mse_train", "formula", "key")}
                       for row in rows])
        arrays = {path.name: path.read_bytes() for path in (folder / "results" / "arrays").glob("*.npz")}
        tables[-1].append(arrays)
    assert tables[0] == tables[1]


# Two workers, each with one long Operon run at a time, so both are busy when the bench is stopped.
POOL_TOML = """
[run]
repetitions = 4
workers = 2
methods = ["operon_direct"]
[methods.operon]
population_size = 1000
generations = 100000
max_evaluations = 100000000
max_time_s = 60
n_threads = 1
"""


def start_pool_bench(folder):
    """Start a bench of POOL_TOML that writes its stderr to folder/stderr.txt; return the process."""
    (folder / "pool.toml").write_text(POOL_TOML)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "bench", "run", "--profile", "quick", "--config", "pool.toml",
               "--results-dir", str(folder / "results")]
    with open(folder / "stderr.txt", "w") as stderr:
        # A process started in the background of a shell may inherit SIGINT as ignored, and Python then
        # never raises KeyboardInterrupt, so the bench gets the default disposition back.
        return subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_runs(process, folder, count, timeout=120):
    """Wait until ``count`` runs have started; return the bench's child process ids."""
    deadline = time.monotonic() + timeout
    while (folder / "stderr.txt").read_text().count("computing run") < count:
        assert process.poll() is None, (folder / "stderr.txt").read_text()[-2000:]
        assert time.monotonic() < deadline, (folder / "stderr.txt").read_text()[-2000:]
        time.sleep(0.2)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def alive(pid):
    """Return whether ``pid`` is a process that has not exited (a zombie counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [pid for pid in pids if alive(pid)]


@pytest.fixture
def pool_bench(tmp_path):
    """Yield a bench of POOL_TOML with both workers busy. The test's end kills it and its workers if they still run."""
    process = start_pool_bench(tmp_path)
    children = []
    try:
        children.extend(wait_for_runs(process, tmp_path, count=2))
        yield process, children
    finally:
        for pid in [process.pid, *children]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_pool_workers(tmp_path, pool_bench, signal_number):
    process, children = pool_bench
    assert children
    process.send_signal(signal_number)
    assert process.wait(timeout=15) == 130
    text = (tmp_path / "stderr.txt").read_text()
    assert "bench: interrupted. Runs that finished are stored" in text
    assert "Traceback" not in text
    assert wait_gone(children, timeout=10) == []


@pytest.mark.slow
def test_killed_bench_stops_pool_workers(pool_bench):
    process, children = pool_bench
    assert children
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=15)
    assert wait_gone(children, timeout=10) == []
