"""Label noise: the draw, what it leaves clean, and how noise levels enter plans and cache keys."""

import copy
import csv
import json

import numpy as np
import pytest

from bench import config as config_module
from bench import noise, runner
from bench.signal import make_split, target_expression


@pytest.fixture
def split():
    return make_split(target_expression(), [-0.5, 0.5], 1500, 0.2, data_seed=0)


def test_noise_seed_deterministic():
    assert noise.noise_seed(0, 0.01, 1) == noise.noise_seed(0, 0.01, 1)


@pytest.mark.parametrize("other", [(1, 0.01, 1), (0, 0.1, 1), (0, 0.01, 2)])
def test_noise_seed_differs_per_input(other):
    assert noise.noise_seed(*other) != noise.noise_seed(0, 0.01, 1)


def test_level_zero_returns_split_itself(split):
    assert noise.noisy_split(split, 0.0, 5) is split


def test_noise_only_on_training_labels(split):
    noisy = noise.noisy_split(split, 0.1, 5)
    assert np.array_equal(noisy.y_test, split.y_test)
    assert not np.array_equal(noisy.y_train, split.y_train)
    assert np.array_equal(noisy.x, split.x)


def test_noise_leaves_input_split_clean(split):
    before = split.y.copy()
    noise.noisy_split(split, 0.1, 5)
    assert np.array_equal(split.y, before)


def test_noise_scale_follows_level(split):
    level = 0.1
    residual = noise.noisy_split(split, level, 5).y_train - split.y_train
    expected = level * np.std(split.y)
    # 1,200 draws give the sample deviation within about 2 % of the true one.
    assert abs(np.std(residual) / expected - 1) < 0.08
    assert abs(np.mean(residual)) < 4 * expected / np.sqrt(residual.size)


def test_cache_identity_absent_at_zero():
    assert noise.cache_identity(0.0) is None


def test_cache_identity_names_level():
    assert noise.cache_identity(0.01)["level"] == 0.01


def _plan(overrides):
    return runner.plan_runs(config_module.load_config("quick", copy.deepcopy(overrides)))[1]


def test_level_zero_keys_unchanged_by_other_levels(tiny_overrides):
    alone = {run.key for run in _plan(tiny_overrides)}
    tiny_overrides["run"]["noise_levels"] = [0.0, 0.1]
    swept = _plan(tiny_overrides)
    assert {run.key for run in swept if run.noise == 0.0} == alone


def test_noisy_runs_get_own_keys_same_seeds(tiny_overrides):
    tiny_overrides["run"]["noise_levels"] = [0.0, 0.1]
    planned = _plan(tiny_overrides)
    clean = {(run.method, run.repetition): run for run in planned if run.noise == 0.0}
    noisy = {(run.method, run.repetition): run for run in planned if run.noise == 0.1}
    assert clean.keys() == noisy.keys()
    for position, run in noisy.items():
        assert run.key != clean[position].key
        assert run.seed == clean[position].seed


def test_distilled_upstream_at_same_level(tiny_overrides):
    tiny_overrides["run"]["noise_levels"] = [0.0, 0.1]
    planned = _plan(tiny_overrides)
    by_key = {run.key: run for run in planned}
    for run in planned:
        if run.upstream_key is not None:
            assert by_key[run.upstream_key].noise == run.noise


@pytest.mark.parametrize("levels", [[], [0.1, 0.1], [-0.1], [11], ["0.1"], [float("nan")]])
def test_invalid_noise_levels_rejected(tiny_overrides, levels):
    tiny_overrides["run"]["noise_levels"] = levels
    with pytest.raises(config_module.ConfigError, match="run.noise_levels"):
        config_module.load_config("quick", tiny_overrides)


def _rows(results_dir):
    return list(csv.DictReader((results_dir / "runs.csv").read_text().splitlines()))


def test_noisy_bench_records_level(tmp_path, tiny_overrides):
    tiny_overrides["run"].update(noise_levels=[0.0, 0.5], methods=["floor_linear", "ceiling_nls"])
    config = config_module.load_config("quick", tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path)
    rows = _rows(tmp_path)
    assert sorted({row["noise"] for row in rows}) == ["0.0", "0.5"]
    for row in rows:
        record = json.loads((tmp_path / "records" / f"{row['key']}.json").read_text())
        assert record["noise"] == float(row["noise"])


def test_noise_lowers_training_fit_not_test_target(tmp_path, tiny_overrides):
    tiny_overrides["run"].update(noise_levels=[0.0, 0.5], methods=["ceiling_nls"])
    config = config_module.load_config("quick", tiny_overrides)
    runner.run_benchmark(config, "quick", tmp_path)
    rows = {float(row["noise"]): row for row in _rows(tmp_path)}
    # The ceiling fits the target's own form: exact on clean labels, and near the noise variance on noisy ones.
    assert float(rows[0.0]["mse_train"]) < 1e-20
    assert float(rows[0.5]["mse_train"]) > 0.1 * 0.25 * np.var(make_split(target_expression(), [-0.5, 0.5], 300,
                                                                            0.2, 0).y)
    assert float(rows[0.5]["mse_test"]) < float(rows[0.5]["mse_train"])
