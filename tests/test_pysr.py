"""Tests of the PySR adapters.

Only the test marked ``julia`` runs PySR. The others never import pysr or
juliacall, because importing either without Julia makes juliapkg download one.
"""

import ast
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy

from bench.errors import ConfigError
from bench.methods.base import RunFailed, Task
from bench.methods.pysr import (
    PySRDirect,
    PySRDistilled,
    build_estimator_kwargs,
    find_julia,
    julia_unavailable_reason,
    parse_equations,
)
from bench.metrics import r2_score
from bench.signal import X

REPO_ROOT = Path(__file__).resolve().parents[1]

JULIA_VARIABLES = ("PYTHON_JULIAPKG_EXE", "PYTHON_JULIACALL_EXE", "PYTHON_JULIACALL_PROJECT")

SETTINGS = {
    "niterations": 100,
    "population_size": 200,
    "binary_operators": ["+", "-", "*"],
    "unary_operators": ["sin"],
    "nested_constraints": {"sin": {"sin": 0}},
    "maxsize": 30,
    "model_selection": "best",
    "timeout_in_seconds": None,
}


def pysr_init_parameters():
    """Return the parameter names of PySRRegressor.__init__, read from pysr/sr.py without importing pysr."""
    source = importlib.metadata.distribution("pysr").locate_file("pysr/sr.py").read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == "PySRRegressor":
            init = next(item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__")
            arguments = init.args
            return {argument.arg for argument in arguments.args + arguments.kwonlyargs}
    raise AssertionError("PySRRegressor not found in pysr/sr.py")


def equations_table():
    """Return an equations table in the shape of PySR 2.7.2's ``equations_``.

    Scores follow pysr.sr.calculate_scores, worked out by hand:
    score_i = -ln(loss_i / loss_{i-1}) / (complexity_i - complexity_{i-1}), and 0 for the first row.
      row 1: -ln(0.02 / 1.0) / 2    = 1.956
      row 2: -ln(0.012 / 0.02) / 2  = 0.2554
      row 3: -ln(0.010 / 0.012) / 3 = 0.06077
      row 4: -ln(0.009 / 0.010) / 2 = 0.05268
    """
    a, b = sympy.symbols("x x_sq")
    rows = [
        (1, 1.0, 0.0, "0.1", sympy.Float(0.1)),
        (3, 0.02, 1.956, "x_sq * 2.0", b * 2.0),
        (5, 0.012, 0.2554, "sin(x * 62.83) * 1.27", sympy.sin(a * 62.83) * 1.27),
        (8, 0.010, 0.06077, "(sin(x * 62.83) * 1.27) + (x_sq * 0.1)", sympy.sin(a * 62.83) * 1.27 + b * 0.1),
        (
            10,
            0.009,
            0.05268,
            "(sin(x * 62.83) * 1.27) + (sin(x_sq * 125.6) * 0.6)",
            sympy.sin(a * 62.83) * 1.27 + sympy.sin(b * 125.6) * 0.6,
        ),
    ]
    table = pd.DataFrame(rows, columns=["complexity", "loss", "score", "equation", "sympy_format"])
    table["lambda_format"] = None
    return table


def one_row_table(equation):
    return pd.DataFrame({"complexity": [3], "loss": [0.5], "score": [0.0], "equation": [equation]})


@pytest.fixture
def no_julia_settings(monkeypatch, tmp_path):
    """Clear every Julia setting, point PATH at an empty directory and return that directory."""
    for variable in JULIA_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(sys, "_xoptions", {})
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def write_fake_julia(directory, output="julia version 1.10.4", status=0):
    """Write an executable script named julia into ``directory`` that prints ``output`` and exits with ``status``.

    The bench runs only ``julia --version`` before it imports PySR, so the script handles only that call.
    """
    fake = directory / "julia"
    fake.write_text(f"#!/bin/sh\necho '{output}'\nexit {status}\n")
    fake.chmod(0o755)
    return fake


# build_estimator_kwargs


def test_kwargs_deterministic_serial_seeded():
    kwargs = build_estimator_kwargs(SETTINGS, 1234)
    assert kwargs["deterministic"] is True
    assert kwargs["parallelism"] == "serial"
    assert kwargs["random_state"] == 1234
    assert kwargs["precision"] == 64


def test_kwargs_operators_and_constraints():
    kwargs = build_estimator_kwargs(SETTINGS, 0)
    assert kwargs["binary_operators"] == ["+", "-", "*"]
    assert kwargs["unary_operators"] == ["sin"]
    # {"sin": {"sin": 0}}: a sin may contain no sin at any depth, so sin(sin(...)) is excluded.
    assert kwargs["nested_constraints"] == {"sin": {"sin": 0}}


def test_kwargs_search_size_and_selection():
    kwargs = build_estimator_kwargs(SETTINGS, 0)
    assert kwargs["niterations"] == 100
    assert kwargs["population_size"] == 200
    assert kwargs["maxsize"] == 30
    assert kwargs["model_selection"] == "best"
    assert kwargs["timeout_in_seconds"] is None
    assert "populations" not in kwargs


def test_kwargs_populations_when_set():
    kwargs = build_estimator_kwargs({**SETTINGS, "populations": 4}, 0)
    assert kwargs["populations"] == 4


def test_kwargs_quiet_and_temp_files(tmp_path):
    kwargs = build_estimator_kwargs(SETTINGS, 0, tempdir=str(tmp_path))
    assert kwargs["progress"] is False
    assert kwargs["verbosity"] == 0
    assert kwargs["temp_equation_file"] is True
    assert kwargs["tempdir"] == str(tmp_path)


def test_kwargs_copy_settings():
    settings = {**SETTINGS, "nested_constraints": {"sin": {"sin": 0}}}
    kwargs = build_estimator_kwargs(settings, 0)
    kwargs["nested_constraints"]["sin"]["sin"] = 5
    assert settings["nested_constraints"] == {"sin": {"sin": 0}}


def test_kwargs_are_pysr_parameters():
    unknown = set(build_estimator_kwargs({**SETTINGS, "populations": 4}, 0)) - pysr_init_parameters()
    assert unknown == set()


def test_kwargs_reject_unknown_selection():
    with pytest.raises(ConfigError, match="'score'.*'best', 'accuracy'"):
        build_estimator_kwargs({**SETTINGS, "model_selection": "score"}, 0)


# parse_equations


def test_parse_best_skips_high_loss():
    # Lowest loss 0.009, so "best" considers losses <= 0.0135: rows 2, 3 and 4. Row 2 has the
    # highest score among them (0.2554). Row 1 has a higher score but too large a loss.
    expression, details = parse_equations(equations_table(), "best")
    expected = 1.27 * sympy.sin(62.83 * X)
    assert sympy.simplify(expression - expected) == 0
    assert details["complexity"] == 5
    assert details["loss"] == 0.012
    assert details["score"] == 0.2554
    assert details["equation"] == "sin(x * 62.83) * 1.27"


def test_parse_accuracy_picks_lowest_loss():
    expression, details = parse_equations(equations_table(), "accuracy")
    expected = 1.27 * sympy.sin(62.83 * X) + 0.6 * sympy.sin(125.6 * X**2)
    assert sympy.simplify(expression - expected) == 0
    assert details["complexity"] == 10


def test_parse_maps_x_sq_to_square():
    table = equations_table()
    expression, _ = parse_equations(table.iloc[[1]], "accuracy")
    assert sympy.simplify(expression - 2.0 * X**2) == 0


def test_parse_without_score_uses_accuracy():
    table = equations_table().drop(columns="score")
    _, details = parse_equations(table, "best")
    assert details["complexity"] == 10
    assert details["score"] is None


def test_parse_ties_pick_first_row():
    table = equations_table()
    table["loss"] = 0.01
    table["score"] = 0.5
    _, details = parse_equations(table, "best")
    assert details["complexity"] == 1


def test_parse_details_json_front():
    table = equations_table()
    table.loc[4, "loss"] = 0.0
    table.loc[4, "score"] = math.inf
    _, details = parse_equations(table, "accuracy")
    text = json.dumps(details, allow_nan=False)
    front = json.loads(text)["front"]
    assert [entry["complexity"] for entry in front] == [1, 3, 5, 8, 10]
    assert front[1] == {"complexity": 3, "loss": 0.02, "score": 1.956, "equation": "x_sq * 2.0"}
    assert front[4]["score"] is None
    assert details["model_selection"] == "accuracy"


def test_parse_empty_table_fails():
    with pytest.raises(RunFailed, match="empty") as raised:
        parse_equations(equations_table().iloc[[]], "best")
    assert raised.value.stage == "formula"


@pytest.mark.parametrize(
    ("equation", "message"),
    [
        ("sin(x * ", "failed to parse"),
        ("square(x) * 2.0", r"does not define: \['square'\]"),
        ("x0 * 2.0", r"other than \['x', 'x_sq'\]: \['x0'\]"),
    ],
)
def test_parse_bad_equation_fails(equation, message):
    with pytest.raises(RunFailed, match=message) as raised:
        parse_equations(one_row_table(equation), "best")
    assert raised.value.stage == "formula"


def test_parse_reject_unknown_selection():
    with pytest.raises(ConfigError, match="model_selection"):
        parse_equations(equations_table(), "score")


# Finding Julia


def test_find_julia_none_without_settings(no_julia_settings):
    assert find_julia() is None
    reason = julia_unavailable_reason()
    assert "Julia >= 1.10.3" in reason
    assert "PYTHON_JULIAPKG_EXE" in reason


def test_find_julia_on_path(no_julia_settings):
    fake = write_fake_julia(no_julia_settings)
    assert find_julia() == str(fake)
    assert julia_unavailable_reason() is None


@pytest.mark.parametrize("output, status, message", [
    ("true (GNU coreutils) 9.1", 0, "is not a Julia executable"),
    ("julia version 1.10.4", 1, "exited with 1"),
    ("julia version 1.9.0", 0, "is Julia 1.9.0, but PySR 2.7.2 needs"),
    ("julia version 2.0.0", 0, "is Julia 2.0.0"),
])
def test_unusable_julia_unavailable(no_julia_settings, output, status, message):
    write_fake_julia(no_julia_settings, output, status)
    assert find_julia() is None
    assert message in julia_unavailable_reason()


def test_julia_version_suffix_accepted(no_julia_settings):
    fake = write_fake_julia(no_julia_settings, "julia version 1.11.2-DEV")
    assert find_julia() == str(fake)


def test_find_julia_juliapkg_variable(no_julia_settings, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fake = write_fake_julia(elsewhere)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(fake))
    assert find_julia() == str(fake)


def test_find_julia_juliapkg_option(no_julia_settings, monkeypatch):
    fake = write_fake_julia(no_julia_settings)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", "/nonexistent/julia")
    monkeypatch.setattr(sys, "_xoptions", {"juliapkg-exe": str(fake)})
    assert find_julia() == str(fake)


def test_find_julia_bad_variable_no_fallback(no_julia_settings, monkeypatch):
    # juliapkg raises for a configured executable that does not exist instead of trying PATH.
    write_fake_julia(no_julia_settings)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", "/nonexistent/julia")
    assert find_julia() is None
    assert "PYTHON_JULIAPKG_EXE='/nonexistent/julia' is not an executable file" in julia_unavailable_reason()


def test_find_julia_not_executable(no_julia_settings, tmp_path, monkeypatch):
    plain = tmp_path / "julia-plain"
    plain.write_text("")
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(plain))
    assert find_julia() is None


def test_find_julia_juliacall_pair(no_julia_settings, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fake = write_fake_julia(elsewhere)
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", str(fake))
    monkeypatch.setenv("PYTHON_JULIACALL_PROJECT", str(tmp_path))
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", "/nonexistent/julia")
    assert find_julia() == str(fake)


def test_find_julia_juliacall_exe_alone(no_julia_settings, monkeypatch):
    fake = write_fake_julia(no_julia_settings)
    monkeypatch.setenv("PYTHON_JULIACALL_EXE", str(fake))
    assert find_julia() is None
    assert "PYTHON_JULIACALL_PROJECT is not" in julia_unavailable_reason()


# The method classes


def test_methods_names_and_flags():
    assert PySRDirect.name == "pysr_direct"
    assert PySRDirect.symbolic is True
    assert PySRDirect.upstream is None
    assert PySRDirect.distilled is False
    assert PySRDistilled.name == "pysr_distilled"
    assert PySRDistilled.symbolic is True
    assert PySRDistilled.upstream == "kan_numeric"
    assert PySRDistilled.distilled is True


def test_method_unavailable_without_julia(no_julia_settings):
    reason = PySRDirect(SETTINGS).unavailable_reason()
    assert "no Julia executable found" in reason


def test_method_library_versions():
    assert PySRDirect(SETTINGS).library_versions() == {"pysr": importlib.metadata.version("pysr")}


def test_module_does_not_import_pysr():
    code = (
        "import json, sys\n"
        "import bench.methods.pysr as adapter\n"
        "method = adapter.PySRDirect({})\n"
        "method.unavailable_reason()\n"
        "method.library_versions()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=REPO_ROOT, check=True
    )
    loaded = json.loads(completed.stdout)
    for name in ("pysr", "juliacall", "juliapkg"):
        assert name not in loaded


# fit, with a stand-in for pysr


class FakeRegressor:
    """Stand-in for PySRRegressor that records its arguments and returns a fixed equations table."""

    instances = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        FakeRegressor.instances.append(self)

    def fit(self, features, targets, variable_names):
        self.features = features
        self.targets = targets
        self.variable_names = variable_names
        self.tempdir_existed = os.path.isdir(self.kwargs["tempdir"])
        self.equations_ = equations_table()
        return self


class FailingRegressor(FakeRegressor):
    def fit(self, features, targets, variable_names):
        raise RuntimeError("Julia exited")


@pytest.fixture
def fake_pysr(monkeypatch):
    """Replace the pysr module with one whose PySRRegressor is FakeRegressor."""
    FakeRegressor.instances = []
    module = types.ModuleType("pysr")
    module.PySRRegressor = FakeRegressor
    monkeypatch.setitem(sys.modules, "pysr", module)
    return module


def small_task():
    x = np.linspace(-0.5, 0.5, 11)
    return Task(x_train=x[::2], y_train=np.sin(x[::2]), x_all=x, seed=7)


def test_fit_passes_features_and_seed(fake_pysr):
    task = small_task()
    PySRDirect(SETTINGS).fit(task)
    regressor = FakeRegressor.instances[0]
    np.testing.assert_array_equal(regressor.features[:, 0], task.x_train)
    np.testing.assert_array_equal(regressor.features[:, 1], task.x_train**2)
    np.testing.assert_array_equal(regressor.targets, task.y_train)
    assert regressor.variable_names == ["x", "x_sq"]
    assert regressor.kwargs["random_state"] == 7


def test_fit_removes_temp_directory(fake_pysr):
    PySRDirect(SETTINGS).fit(small_task())
    regressor = FakeRegressor.instances[0]
    assert regressor.tempdir_existed
    assert not os.path.exists(regressor.kwargs["tempdir"])


def test_fit_predicts_formula_values(fake_pysr):
    task = small_task()
    result = PySRDirect(SETTINGS).fit(task)
    expected = 1.27 * np.sin(62.83 * task.x_all)
    np.testing.assert_allclose(result.predictions, expected, rtol=1e-12)
    assert result.details["complexity"] == 5


def test_fit_error_becomes_run_failed(fake_pysr):
    fake_pysr.PySRRegressor = FailingRegressor
    with pytest.raises(RunFailed, match="RuntimeError: Julia exited") as raised:
        PySRDirect(SETTINGS).fit(small_task())
    assert raised.value.stage == "fit"


# PySR itself


@pytest.mark.julia
@pytest.mark.skipif(find_julia() is None, reason="no Julia executable; PySR needs Julia >= 1.10.3")
# juliacall warns when torch was imported first, which other test modules may have done.
@pytest.mark.filterwarnings("ignore:torch was imported before juliacall:UserWarning")
def test_pysr_fits_small_sine():
    x = np.linspace(-0.5, 0.5, 201)
    y = 1.5 * np.sin(2 * np.pi * 2 * x)
    task = Task(x_train=x[::2], y_train=y[::2], x_all=x, seed=3)
    settings = {**SETTINGS, "niterations": 10, "population_size": 50, "populations": 4, "maxsize": 12}
    result = PySRDirect(settings).fit(task)
    assert r2_score(y, result.predictions) > 0.9
    assert result.expression.free_symbols <= {X}
