"""KAN adapters on tiny data: formula agreement, isolation of global state, failure isolation."""

import random

import numpy as np
import pytest
import torch

from bench import formulas, registry, runner
from bench import config as config_module
from bench.methods import kan, kan_training
from bench.methods.base import RunFailed, Task, Upstream
from bench.seeds import isolated_global_rng
from bench.signal import X, make_split, target_expression


@pytest.fixture
def tiny_split():
    return make_split(target_expression(), [-0.5, 0.5], 300, 0.2, 0)


@pytest.fixture
def trained(tiny_config, tiny_split):
    task = Task(tiny_split.x_train, tiny_split.y_train, tiny_split.x, seed=5)
    return task, kan.KANNumeric(tiny_config["methods"]["kan"]).fit(task)


SYMBOLIC_METHODS = ["kan_symbolic", "kan_symbolic_spectral"]


def symbolic_copy(tiny_config, name, numeric, x_train, y_train):
    adapter = registry.create(tiny_config, name)
    return kan.symbolic_copy(numeric, x_train, y_train, adapter.settings, adapter.snap)


@pytest.mark.parametrize("name", SYMBOLIC_METHODS)
def test_formula_matches_copied_model(tiny_config, tiny_split, trained, name):
    task, result = trained
    with kan_training.float64_deterministic():
        numeric = kan.rebuild_model(tiny_config["methods"]["kan"], result.arrays, seed=5)
        x_train = torch.from_numpy(task.x_train).reshape(-1, 1)
        y_train = torch.from_numpy(task.y_train).reshape(-1, 1)
        model, expression, _, _ = symbolic_copy(tiny_config, name, numeric, x_train, y_train)
        with torch.no_grad():
            forward = model(torch.from_numpy(tiny_split.x_test).reshape(-1, 1)).numpy()[:, 0]
    from_formula = formulas.evaluate(expression, tiny_split.x_test)
    assert np.allclose(from_formula, forward, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", SYMBOLIC_METHODS)
def test_symbolic_copy_leaves_numeric_model(tiny_config, trained, name):
    task, result = trained
    with kan_training.float64_deterministic():
        numeric = kan.rebuild_model(tiny_config["methods"]["kan"], result.arrays, seed=5)
        before = {name: value.clone() for name, value in numeric.state_dict().items()}
        x_train = torch.from_numpy(task.x_train).reshape(-1, 1)
        y_train = torch.from_numpy(task.y_train).reshape(-1, 1)
        symbolic_copy(tiny_config, name, numeric, x_train, y_train)
        after = numeric.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_rebuilt_model_predicts_like_trained(tiny_config, tiny_split, trained):
    _, result = trained
    with kan_training.float64_deterministic():
        model = kan.rebuild_model(tiny_config["methods"]["kan"], result.arrays, seed=5)
        with torch.no_grad():
            again = model(torch.from_numpy(tiny_split.x).reshape(-1, 1)).numpy()[:, 0]
    assert np.array_equal(again, result.predictions)


def test_fit_restores_global_state(tiny_config, tiny_split):
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    task = Task(tiny_split.x_train, tiny_split.y_train, tiny_split.x, seed=5)
    kan.KANNumeric(tiny_config["methods"]["kan"]).fit(task)
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
    assert torch.get_default_dtype() == torch.float32
    assert not torch.are_deterministic_algorithms_enabled()


def test_fit_is_deterministic(tiny_config, tiny_split, trained):
    task, result = trained
    again = kan.KANNumeric(tiny_config["methods"]["kan"]).fit(task)
    assert np.array_equal(again.predictions, result.predictions)


def test_fit_writes_no_checkpoints(tiny_config, tiny_split, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = config_module.load_config("quick", {
        "signal": {"sampling_rate_hz": 300},
        "methods": {"kan": {"width": [1, 2, 1], "grids": [3, 4], "adam_steps": 2, "lbfgs_steps": 1,
                            "lbfgs_max_iter": 2, "grid_update_steps": 1, "grid_updates": 1}},
    })
    task = Task(tiny_split.x_train, tiny_split.y_train, tiny_split.x, seed=5)
    kan.KANNumeric(config["methods"]["kan"]).fit(task)
    assert list(tmp_path.iterdir()) == []


def test_divergence_rolls_back_then_fails(tiny_config, tiny_split):
    settings = dict(tiny_config["methods"]["kan"], adam_lr=1e300, retry_lr_factor=0.5)
    task = Task(tiny_split.x_train, tiny_split.y_train, tiny_split.x, seed=5)
    with pytest.raises(RunFailed) as caught:
        kan.KANNumeric(settings).fit(task)
    assert caught.value.stage == "grid 3"
    assert "diverged again" in caught.value.message


def test_symbolic_failure_isolated(tmp_path, tiny_overrides, monkeypatch):
    from kan import MultKAN

    def fail(self, *args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(MultKAN, "auto_symbolic", fail)
    tiny_overrides["run"]["methods"] = ["kan_numeric", "kan_symbolic", "operon_distilled"]
    config = config_module.load_config("quick", tiny_overrides)
    summary = runner.run_benchmark(config, "quick", tmp_path / "r")
    lines = (tmp_path / "r" / "runs.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = {row["method"]: row for row in (dict(zip(header, line.split(","))) for line in lines[1:])}
    assert summary.failed == 1
    assert rows["kan_numeric"]["status"] == "ok"
    assert rows["kan_symbolic"]["status"] == "failed"
    assert rows["kan_symbolic"]["stage"] == "auto_symbolic"
    assert "ZeroDivisionError" in rows["kan_symbolic"]["reason"]
    assert rows["operon_distilled"]["status"] == "ok"


@pytest.mark.parametrize("name", SYMBOLIC_METHODS)
def test_symbolic_run_reports_agreement(tiny_config, trained, name):
    task, result = trained
    symbolic = registry.create(tiny_config, name).fit(task, Upstream({}, result.arrays))
    edges = symbolic.details["edges"]
    assert symbolic.details["formula_vs_model_max_abs_diff"] < 1e-9
    assert symbolic.expression.free_symbols <= {X}
    assert edges
    assert symbolic.details["edges_at_range_edge"] == sum(edge["a_at_edge"] or edge["b_at_edge"] for edge in edges)


def test_snap_points_spread_evenly():
    x = torch.linspace(1.0, 0.0, 101, dtype=torch.float64).reshape(-1, 1)
    picked = kan.snap_points(x, 11)[:, 0]
    assert torch.allclose(picked, torch.linspace(0.0, 1.0, 11, dtype=torch.float64), rtol=0, atol=1e-15)
    assert kan.snap_points(x, 0) is x


def test_start_seed_keeps_run_seed_first():
    assert kan_training.start_seed(41, 0) == 41
    assert kan_training.start_seed(41, 1) == kan_training.start_seed(41, 1)
    assert len({kan_training.start_seed(41, start) for start in range(4)}) == 4


def _first_stage(tiny_config, tiny_split, starts):
    settings = dict(tiny_config["methods"]["kan"], starts=starts)
    x, y = kan._column(tiny_split.x_train), kan._column(tiny_split.y_train)
    with kan_training.float64_deterministic(), isolated_global_rng(5):
        return kan_training.first_stage(settings, x, y, seed=5), x, y


def test_first_stage_keeps_lowest_training_mse(tiny_config, tiny_split):
    (model, record, starts), x, y = _first_stage(tiny_config, tiny_split, 3)
    losses = [summary["train_mse"] for summary in starts]
    assert [summary["start"] for summary in starts] == [0, 1, 2]
    assert len(set(losses)) == 3
    assert record["start"] == int(np.argmin(losses))
    assert record["train_mse"] == min(losses)
    with torch.no_grad():
        assert float(kan_training.mse_loss(model, x, y)) == pytest.approx(min(losses), rel=1e-12)


def test_first_stage_skips_diverged_start(tiny_config, tiny_split, monkeypatch):
    real = kan_training.train_stage
    calls = []

    def diverge_first(model, x, y, settings, grid):
        calls.append(grid)
        if len(calls) == 1:
            raise kan_training.Diverged("loss became nan")
        return real(model, x, y, settings, grid)

    monkeypatch.setattr(kan_training, "train_stage", diverge_first)
    (_, record, starts), _, _ = _first_stage(tiny_config, tiny_split, 2)
    assert starts[0]["train_mse"] is None
    assert starts[0]["reason"] == "loss became nan"
    assert record["start"] == 1
