"""The signal suite: built-in signals, user formulas, the sunspot series, and the bench's signal options."""

import copy
import csv
import json

import numpy as np
import pytest
import sympy

from bench import cli, datasets, runner, signals
from bench import config as config_module
from bench.errors import ConfigError
from bench.signal import X, target_expression


def _config(name="seed", expression="", rate=300):
    return config_module.load_config("quick", {"signal": {"name": name, "expression": expression,
                                                          "sampling_rate_hz": rate}})


@pytest.mark.parametrize("name", [name for name in signals.SUITE if name != "sunspots"])
def test_builtin_signal_finite_at_default_rate(name):
    configured = signals.load_signal(_config(name, rate=15000))
    assert np.isfinite(configured.split.y).all()
    assert configured.split.x.size == 15000


def test_seed_terms_sum_to_seed():
    terms = sum(signals.SUITE[name].expression for name in ("seed_tone_10", "seed_tone_30", "seed_chirp"))
    assert sympy.simplify(terms - target_expression()) == 0


def test_seed_identity_has_old_fields():
    configured = signals.load_signal(_config())
    assert configured.identity == {"expression": str(target_expression()), "domain": [-0.5, 0.5],
                                   "sampling_rate_hz": 300}


def test_same_formula_same_keys_any_name():
    first = runner.plan_runs(_config("first", "sin(2*pi*3*x)"))[1]
    second = runner.plan_runs(_config("second", "sin(2*pi*3*x)"))[1]
    assert [run.key for run in first] == [run.key for run in second]


def test_other_signal_other_keys():
    seed = {run.key for run in runner.plan_runs(_config())[1]}
    tone = {run.key for run in runner.plan_runs(_config("tone_slow"))[1]}
    assert not seed & tone


@pytest.mark.parametrize("text, expected", [
    ("sin(2*pi*5*x)", sympy.sin(10 * sympy.pi * X)),
    ("0.5*x**2 - x", sympy.Float(0.5) * X**2 - X),
    ("exp(-x)*cos(x)", sympy.exp(-X) * sympy.cos(X)),
    ("abs(x) + e", sympy.Abs(X) + sympy.E),
])
def test_parse_accepts_formulas(text, expected):
    assert sympy.simplify(signals.parse_expression(text) - expected) == 0


@pytest.mark.parametrize("text, message", [
    ("sin(x", "not a formula"),
    ("sin(y*x)", "unknown name 'y'"),
    ("3", "does not depend on x"),
    ("x^2", "write x\\*\\*2"),
    ("x + 9**9**9", "exponent 387420489 is outside"),
    ("foo(x)", "unknown function 'foo'"),
    ("sin(x, 2)", "takes one argument"),
    ("x.real", "is not allowed"),
    ("[x]", "is not allowed"),
    ("x" * 1001, "1001 characters"),
])
def test_parse_rejects_with_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        signals.parse_expression(text)


def test_parse_evaluates_no_code(tmp_path):
    marker = tmp_path / "ran"
    text = f"__import__('pathlib').Path('{marker}').touch() + x"
    with pytest.raises(ConfigError, match="is not allowed"):
        signals.parse_expression(text)
    assert not marker.exists()


def test_formula_not_finite_names_position():
    with pytest.raises(ConfigError, match=r"not finite at 151 of 300 samples of the domain \[-0.5, 0.5\), .*x = -0.5"):
        signals.load_signal(_config("custom", "log(x)"))


@pytest.mark.parametrize("text", ["1e400*x", "x/0", "x*(1/0)", "log(0)*x", "x + 0*log(0)"])
def test_infinite_constant_rejected(text):
    escaped = text.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")
    with pytest.raises(ConfigError, match=rf'signal.expression = "{escaped}": it contains an infinite or undefined'):
        signals.parse_expression(text)


def test_formula_too_small_rejected():
    with pytest.raises(ConfigError, match=r"largest magnitude is 1e-200, below 1e-100.*Scale the formula up"):
        signals.load_signal(_config("custom", "1e-200*sin(2*pi*x)/sin(2*pi*0.25)"))


def test_formula_too_large_rejected():
    with pytest.raises(ConfigError, match=r"reaches 1.5e\+300 at x = 0.49.*beyond ±1e\+100.*Scale the formula down"):
        signals.load_signal(_config("custom", "1e300*(x + 1)"))


def test_formula_constant_on_samples_rejected():
    # tanh(5e5) and above round to exactly 1 in float64.
    with pytest.raises(ConfigError, match=r"it is 1 at every one of the 300 samples.*R² is undefined"):
        signals.load_signal(_config("custom", "tanh(1e6*(x + 1))"))


@pytest.mark.parametrize("expression", ["sin(x)**2 + cos(x)**2", "1 + 1e-15*x"])
def test_near_constant_formula_rejected(expression):
    with pytest.raises(ConfigError, match=r"differ by at most .*, less than 1e-12 of its largest magnitude 1.*"
                                          r"rounding errors would decide R²"):
        signals.load_signal(_config("custom", expression))


def test_formula_small_relative_spread_accepted():
    assert signals.load_signal(_config("custom", "1 + 1e-9*x")).split.y.std() > 0


@pytest.mark.parametrize("name, expression, message", [
    ("seed", "x", "built-in signal"),
    ("custom", "", "needs signal.expression"),
    ("Bad Name", "x", "lowercase letters"),
])
def test_config_rejects_name_expression_mix(name, expression, message):
    with pytest.raises(ConfigError, match=message):
        _config(name, expression)


def test_sunspots_standardised_on_domain():
    configured = signals.load_signal(_config("sunspots"))
    assert configured.split.x.size == 309
    assert configured.sampling_rate_hz == 309
    assert configured.expression is None
    assert abs(configured.split.y.mean()) < 1e-12
    assert abs(configured.split.y.std() - 1) < 1e-12


def test_sunspots_identity_follows_values(monkeypatch):
    before = signals.load_signal(_config("sunspots")).identity
    original = datasets.load
    monkeypatch.setattr(datasets, "load", lambda name: original(name) * 2)
    assert signals.load_signal(_config("sunspots")).identity != before


def test_sunspots_lookup_rejects_other_positions():
    function = datasets.sample_function("sunspots", np.arange(4.0), -0.5, 4)
    implementation = function._imp_
    assert implementation(np.array([-0.5, 0.25])).tolist() == [0.0, 3.0]
    with pytest.raises(datasets.DataError, match="only at its 4 sample positions"):
        implementation(np.array([0.1]))


def test_results_dir_seed_keeps_base(tmp_path):
    assert signals.results_dir(tmp_path, "seed") == tmp_path
    assert signals.results_dir(tmp_path, "chirp") == tmp_path / "signals" / "chirp"


@pytest.mark.parametrize("text, names", [
    ("all", list(signals.SUITE)),
    ("chirp, seed,chirp", ["chirp", "seed"]),
])
def test_parse_signals_names(text, names):
    assert cli.parse_signals(text) == names


@pytest.mark.parametrize("text, message", [("", "empty"), ("chrip", "Did you mean 'chirp'")])
def test_parse_signals_rejects(text, message):
    with pytest.raises(cli.UsageError, match=message):
        cli.parse_signals(text)


def _bench(tmp_path, *options):
    return cli.main(["run", "--profile", "quick", "--results-dir", str(tmp_path), "--methods", "floor_linear",
                     *options])


def test_signals_and_expression_exclusive(tmp_path, capsys):
    assert _bench(tmp_path, "--signals", "seed", "--expression", "x") == cli.EXIT_USAGE
    assert "cannot be combined" in capsys.readouterr().err
    assert not tmp_path.joinpath("runs.csv").exists()


def test_signals_option_writes_each_folder(tmp_path):
    assert _bench(tmp_path, "--signals", "seed,sunspots") == 0
    assert (tmp_path / "runs.csv").is_file()
    manifest = json.loads((tmp_path / "signals" / "sunspots" / "manifest.json").read_text())
    assert manifest["signal"]["name"] == "sunspots"
    assert manifest["signal"]["samples"] == 309


def test_expression_option_runs_custom(tmp_path):
    assert _bench(tmp_path, "--expression", "sin(2*pi*3*x)") == 0
    folder = tmp_path / "signals" / "custom"
    rows = list(csv.DictReader((folder / "runs.csv").read_text().splitlines()))
    assert {row["status"] for row in rows} == {"ok"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["signal"]["expression"] == "sin(2*pi*3*x)"


def test_expression_option_takes_config_name(tmp_path):
    settings = tmp_path / "name.toml"
    settings.write_text('[signal]\nname = "three_hz"\nexpression = "x"\n')
    assert _bench(tmp_path / "out", "--config", str(settings), "--expression", "sin(2*pi*3*x)") == 0
    assert (tmp_path / "out" / "signals" / "three_hz" / "runs.csv").is_file()


def test_bad_expression_writes_nothing(tmp_path, capsys):
    assert _bench(tmp_path, "--expression", "sin(x") == cli.EXIT_USAGE
    assert "invalid signal.expression" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_merge_overrides_leaves_input(tiny_overrides):
    overrides = copy.deepcopy(tiny_overrides)
    merged = config_module.merge_overrides(overrides, {"signal": {"name": "chirp"}})
    assert merged["signal"] == {"sampling_rate_hz": 300, "name": "chirp"}
    assert overrides["signal"] == {"sampling_rate_hz": 300}
