"""Cache behaviour of the runner: hit, miss, invalidation, failures never reused, corrupt records."""

import copy
import json

import pytest

from bench import config as config_module
from bench import runner
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


def test_corrupt_record_recomputed(tmp_path, tiny_overrides):
    config = operon_only(tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path / "r")
    record_path = next((tmp_path / "r" / "records").iterdir())
    record_path.write_text(record_path.read_text()[:40])

    again = runner.run_benchmark(config, "quick", tmp_path / "r")
    assert again.counts["computed"] == 1
    assert (tmp_path / "r" / "corrupt" / record_path.name).exists()


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
