"""Cache behaviour of the runner: hit, miss, invalidation, failures never reused, corrupt records."""

import copy
import csv
import json

import numpy as np
import pytest
import sympy

from bench import config as config_module
from bench import provenance, registry, runner
from bench.errors import BenchError
from bench.methods.base import FitResult
from bench.methods.operon import OperonDirect
from bench.store import RunStore


def operon_only(tiny_overrides, **operon):
    overrides = copy.deepcopy(tiny_overrides)
    overrides["run"]["methods"] = ["operon_direct"]
    overrides["methods"]["operon"].update(operon)
    return config_module.load_config("quick", overrides)


def read_statuses(results_dir):
    lines = (results_dir / "runs.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def test_second_run_reuses(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    first = runner.run_benchmark(config, "quick", tmp_path / "r")
    second = runner.run_benchmark(config, "quick", tmp_path / "r")
    assert first.counts["computed"] == 1
    assert second.counts["reused"] == 1
    assert second.counts["computed"] == 0


def test_changed_setting_computes_afresh(tmp_path, tiny_overrides):
    runner.run_benchmark(operon_only(tiny_overrides), "quick", tmp_path / "r")
    changed = runner.run_benchmark(operon_only(tiny_overrides, generations=6), "quick", tmp_path / "r")
    assert changed.counts["computed"] == 1
    assert changed.counts["reused"] == 0


def test_key_ignores_dict_order(tiny_overrides):
    config = operon_only(tiny_overrides)
    reordered = copy.deepcopy(config)
    reordered["methods"]["operon"] = dict(reversed(list(config["methods"]["operon"].items())))
    _, planned = runner.plan_runs(config)
    _, planned_again = runner.plan_runs(reordered)
    assert [run.key for run in planned] == [run.key for run in planned_again]


def test_key_ignores_results_location(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "a")
    runner.run_benchmark(config, "quick", tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a" / "records").iterdir()) == sorted(
        p.name for p in (tmp_path / "b" / "records").iterdir())


def test_key_changes_with_seed_and_version(tiny_overrides):
    config = operon_only(tiny_overrides)
    base = runner.run_key(config, "operon_direct", {"a": 1}, 1, {"pyoperon": "1"}, None)
    assert runner.run_key(config, "operon_direct", {"a": 1}, 2, {"pyoperon": "1"}, None) != base
    assert runner.run_key(config, "operon_direct", {"a": 1}, 1, {"pyoperon": "2"}, None) != base
    assert runner.run_key(config, "operon_direct", {"a": 2}, 1, {"pyoperon": "1"}, None) != base


def test_every_method_module_is_in_some_cache_key():
    claimed = set(provenance.SHARED_COMPUTE_MODULES)
    for name in config_module.METHOD_NAMES:
        claimed.update(registry.sources(name))
    on_disk = {f"methods/{path.name}" for path in (provenance.PACKAGE_ROOT / "methods").glob("*.py")}
    assert on_disk <= claimed


def test_editing_one_method_changes_only_its_keys(tmp_path, tiny_overrides, monkeypatch):
    copied = tmp_path / "bench"
    sources = {name for method in config_module.METHOD_NAMES for name in registry.sources(method)}
    for name in set(provenance.SHARED_COMPUTE_MODULES) | sources:
        (copied / name).parent.mkdir(parents=True, exist_ok=True)
        (copied / name).write_bytes((provenance.PACKAGE_ROOT / name).read_bytes())
    monkeypatch.setattr(provenance, "PACKAGE_ROOT", copied)
    config = config_module.load_config("quick", tiny_overrides)

    def keys():
        provenance.code_version.cache_clear()
        return {(run.method, run.repetition): run.key for run in runner.plan_runs(config)[1]}

    before = keys()
    with (copied / "methods" / "operon.py").open("a") as source:
        source.write("# edited\n")
    after = keys()
    provenance.code_version.cache_clear()
    changed = {method for (method, _), key in after.items() if before[(method, _)] != key}
    assert changed == {"operon_direct", "operon_distilled"}


def test_manifest_keeps_each_method_code_version(tmp_path, tiny_overrides):
    tiny_overrides["run"]["methods"] = ["operon_direct", "floor_mean"]
    config = config_module.load_config("quick", tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    records = [json.loads(path.read_text()) for path in (tmp_path / "r" / "records").iterdir()]
    assert manifest["versions"]["bench"] == provenance.code_version()
    for record in records:
        assert manifest["method_code"][record["method"]] == record["versions"]["bench"]
    assert manifest["method_code"]["operon_direct"] != manifest["method_code"]["floor_mean"]


def test_locks_path_that_is_a_file_names_it(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.prepare_results_dir(tmp_path / "r")
    (tmp_path / "r" / "locks").write_text("")
    with pytest.raises(BenchError, match=r"cannot create the lock file .*locks/.*\.lock"):
        runner.run_benchmark(config, "quick", tmp_path / "r")
    assert not (tmp_path / "r" / "records").exists() or not any((tmp_path / "r" / "records").iterdir())


def test_failure_recorded_and_not_reused(tmp_path, tiny_overrides, monkeypatch):
    config = operon_only(tiny_overrides)

    def explode(self, task, upstream=None):
        raise RuntimeError("injected crash")

    monkeypatch.setattr(OperonDirect, "fit", explode)
    failed = runner.run_benchmark(config, "quick", tmp_path / "r")
    rows = read_statuses(tmp_path / "r")
    assert failed.failed == 1
    assert rows[0]["status"] == "failed"
    assert "RuntimeError: injected crash" in rows[0]["reason"]

    monkeypatch.undo()
    retried = runner.run_benchmark(config, "quick", tmp_path / "r")
    assert retried.counts["computed"] == 1
    assert read_statuses(tmp_path / "r")[0]["status"] == "ok"


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_overflowing_metric_fails_run(tmp_path, tiny_overrides, monkeypatch):
    config = operon_only(tiny_overrides)

    def huge(self, task, upstream=None):
        # Finite predictions whose squared errors overflow float64 to inf.
        return FitResult(predictions=np.full(task.x_all.shape, 1e200), expression=sympy.Float(1e200))

    monkeypatch.setattr(OperonDirect, "fit", huge)
    summary = runner.run_benchmark(config, "quick", tmp_path / "r")
    with open(tmp_path / "r" / "runs.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert summary.failed == 1
    assert rows[0]["status"] == "failed"
    assert rows[0]["stage"] == "score"
    assert "mse_test is inf" in rows[0]["reason"]
    assert rows[0]["mse_test"] == ""


def test_corrupt_record_recomputed(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    record_path = next((tmp_path / "r" / "records").iterdir())
    record_path.write_text(record_path.read_text()[:40])

    again = runner.run_benchmark(config, "quick", tmp_path / "r")
    assert again.counts["computed"] == 1
    moved = sorted(path.name for path in (tmp_path / "r" / "corrupt").iterdir())
    assert [name.split(".")[0] for name in moved] == [record_path.stem, record_path.stem]
    assert record_path.exists()


def test_second_corruption_keeps_first(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    record_path = next((tmp_path / "r" / "records").iterdir())
    for _ in range(2):
        record_path.write_text("{")
        runner.run_benchmark(config, "quick", tmp_path / "r")
    assert len([p for p in (tmp_path / "r" / "corrupt").iterdir() if p.suffix == ".json"]) == 2


def test_corrupt_arrays_recomputed(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    arrays_path = next((tmp_path / "r" / "arrays").iterdir())
    arrays_path.write_bytes(b"garbage")

    again = runner.run_benchmark(config, "quick", tmp_path / "r")
    assert again.counts["computed"] == 1
    assert again.counts["reused"] == 0
    with np.load(arrays_path, allow_pickle=False) as data:
        assert data["predictions"].size == 300


def test_corrupt_upstream_arrays_recomputed(tmp_path, tiny_overrides):
    tiny_overrides["run"]["methods"] = ["kan_numeric", "operon_distilled"]
    config = config_module.load_config("quick", tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    store = RunStore(tmp_path / "r")
    _, planned = runner.plan_runs(config)
    kan_key = next(run.key for run in planned if run.method == "kan_numeric")
    distilled_key = next(run.key for run in planned if run.method == "operon_distilled")
    store.arrays_path(kan_key).write_bytes(b"garbage")
    store.record_path(distilled_key).unlink()

    again = runner.run_benchmark(config, "quick", tmp_path / "r")
    assert again.counts["computed"] == 2
    assert again.failed == 0


def test_method_outside_config_runs(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    summary = runner.run_benchmark(config, "quick", tmp_path / "r", methods=["operon_distilled"])
    methods = {row["method"] for row in read_statuses(tmp_path / "r")}
    assert summary.failed == 0
    assert methods == {"operon_direct", "operon_distilled"}


def test_invalid_split_writes_nothing(tmp_path, tiny_overrides, monkeypatch):
    from bench import signal
    from bench.errors import DataError

    def broken(*args, **kwargs):
        raise DataError("y has 1 non-finite values")

    monkeypatch.setattr(signal, "make_split", broken)
    with pytest.raises(DataError):
        runner.run_benchmark(operon_only(tiny_overrides), "quick", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_results_dir_file_rejected(tmp_path, tiny_overrides):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(BenchError, match="is a file"):
        runner.run_benchmark(operon_only(tiny_overrides), "quick", target)


def test_stored_files_world_readable(tmp_path, tiny_overrides):
    runner.run_benchmark(operon_only(tiny_overrides), "quick", tmp_path / "r")
    for path in [tmp_path / "r" / "runs.csv", next((tmp_path / "r" / "records").iterdir())]:
        assert path.stat().st_mode & 0o777 == 0o644


def test_edited_record_fails_checksum(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    record_path = next((tmp_path / "r" / "records").iterdir())
    record = json.loads(record_path.read_text())
    record["metrics"]["r2_test"] = 0.999
    record_path.write_text(json.dumps(record))
    assert RunStore(tmp_path / "r").load(record["key"]) is None


def test_foreign_results_folder_rejected(tmp_path, tiny_overrides):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(Exception, match="not created by this benchmark"):
        runner.run_benchmark(operon_only(tiny_overrides), "quick", foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]


def test_workers_do_not_change_results(tmp_path, tiny_overrides):
    tiny_overrides["run"].update(repetitions=2, methods=["kan_numeric", "operon_distilled"])
    columns = ["method", "repetition", "seed", "status", "mse_test", "r2_test", "mse_train", "formula", "key"]
    tables = []
    for workers in (1, 2):
        tiny_overrides["run"]["workers"] = workers
        config = config_module.load_config("quick", tiny_overrides)
        runner.run_benchmark(config, "quick", tmp_path / f"w{workers}")
        tables.append([[row[name] for name in columns] for row in read_statuses(tmp_path / f"w{workers}")])
    assert len(tables[0]) == 4
    assert tables[0] == tables[1]


def test_rerun_leaves_files_unchanged(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    monkeypatch.delenv("PYTHON_JULIAPKG_EXE", raising=False)
    tiny_overrides["run"]["methods"] = ["operon_direct", "pysr_direct"]
    config = config_module.load_config("quick", tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r", command="first")
    before = {path: path.read_bytes() for path in (tmp_path / "r").rglob("*") if path.is_file()}

    again = runner.run_benchmark(config, "quick", tmp_path / "r", command="second")
    after = {path: path.read_bytes() for path in (tmp_path / "r").rglob("*") if path.is_file()}
    assert again.counts["unavailable"] == 1
    assert again.counts["reused"] == 1
    assert after == before


def test_time_limit_fails_run(tmp_path, tiny_overrides, monkeypatch):
    import time

    def slow(self, task, upstream=None):
        time.sleep(5)

    monkeypatch.setattr(OperonDirect, "fit", slow)
    tiny_overrides["run"]["time_limit_s"] = 0.2
    summary = runner.run_benchmark(operon_only(tiny_overrides), "quick", tmp_path / "r")
    row = read_statuses(tmp_path / "r")[0]
    assert summary.failed == 1
    assert row["status"] == "failed"
    assert row["stage"] == "time limit"
    assert "run.time_limit_s = 0.2 s" in row["reason"]


def test_time_limit_outside_main_thread(tmp_path, tiny_overrides, monkeypatch):
    # A Dask worker runs each task in a thread of its own, where SIGALRM cannot reach.
    import threading
    import time

    def busy(self, task, upstream=None):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pass

    monkeypatch.setattr(OperonDirect, "fit", busy)
    tiny_overrides["run"]["time_limit_s"] = 0.2
    config = operon_only(tiny_overrides)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(
        summary=runner.run_benchmark(config, "quick", tmp_path / "r")))
    started = time.monotonic()
    worker.start()
    worker.join(timeout=60)
    assert time.monotonic() - started < 5
    assert outcome["summary"].failed == 1
    row = read_statuses(tmp_path / "r")[0]
    assert row["stage"] == "time limit"
    assert "run.time_limit_s = 0.2 s" in row["reason"]


def test_locked_run_waits_for_holder(tmp_path, tiny_overrides):
    import threading

    config = operon_only(tiny_overrides)
    runner.prepare_results_dir(tmp_path / "r")
    store = RunStore(tmp_path / "r")
    _, planned = runner.plan_runs(config)
    finished = threading.Event()

    def bench_in_thread():
        runner.run_benchmark(config, "quick", tmp_path / "r")
        finished.set()

    with store.lock(planned[-1].key):
        worker = threading.Thread(target=bench_in_thread)
        worker.start()
        assert not finished.wait(1.0)
    worker.join(timeout=60)
    assert finished.is_set()


def test_results_independent_of_method_order(tmp_path, tiny_overrides):
    tiny_overrides["run"]["methods"] = ["kan_numeric", "operon_direct"]
    config = config_module.load_config("quick", tiny_overrides)
    columns = ["method", "seed", "mse_test", "r2_test", "mse_train", "formula", "key"]
    tables = []
    for order in (["operon_direct", "kan_numeric"], ["kan_numeric", "operon_direct"]):
        folder = tmp_path / "-".join(order)
        for method in order:
            runner.run_benchmark(config, "quick", folder, methods=[method])
        tables.append([[row[name] for name in columns] for row in read_statuses(folder)])
    assert len(tables[0]) == 2
    assert tables[0] == tables[1]
