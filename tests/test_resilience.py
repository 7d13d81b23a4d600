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
