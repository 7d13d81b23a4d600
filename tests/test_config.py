import math
import re

import pytest

from bench.config import PROFILES, SCHEMA, load_config, read_toml
from bench.errors import ConfigError


def test_default_profile_is_seed_protocol():
    config = load_config("default")
    assert config["methods"]["kan"]["width"] == [1, 12, 3, 1]
    assert config["methods"]["kan"]["grids"] == [40, 60, 90, 120, 150]
    assert config["signal"]["sampling_rate_hz"] == 15000
    assert config["split"]["test_fraction"] == 0.2
    assert config["run"]["repetitions"] == 5


def test_profiles_validate():
    for name in PROFILES:
        assert load_config(name)["run"]["methods"]


def test_override_changes_one_value():
    config = load_config("default", {"methods": {"operon": {"generations": 7}}})
    assert config["methods"]["operon"]["generations"] == 7
    assert config["methods"]["operon"]["population_size"] == PROFILES["default"]["methods"]["operon"]["population_size"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"run": {"repetitons": 3}}, "unknown key 'repetitons' in run. Did you mean 'repetitions'"),
        ({"sigal": {}}, "Did you mean 'signal'"),
        ({"run": {"base_seed": -1}}, r"invalid run.base_seed = -1"),
        ({"run": {"repetitions": "5"}}, r'invalid run.repetitions = "5": expected an integer'),
        ({"run": {"repetitions": True}}, r"invalid run.repetitions = true: expected an integer"),
        ({"run": {"repetitions": 2.0}}, r"invalid run.repetitions = 2.0: expected an integer"),
        ({"run": {"repetitions": 10**8}}, "from 1 to 1000"),
        ({"run": {"time_limit_s": 1e10}}, r"invalid run.time_limit_s = 10000000000.0: .*at most 3.1536e\+07"),
        ({"methods": {"ceiling_nls": {"max_chirp_rate": 1e308}}}, "invalid methods.ceiling_nls.max_chirp_rate"),
        ({"methods": {"kan": {"later_adam_lr": 0}}}, "invalid methods.kan.later_adam_lr = 0"),
        ({"methods": {"kan": {"starts": 0}}}, "invalid methods.kan.starts = 0: expected an integer from 1 to 100"),
        ({"methods": {"kan": {"refine": "exact"}}}, "invalid methods.kan.refine = \"exact\": expected 'nested' or 'pykan'"),
        ({"methods": {"kan": {"grids": [True]}}}, r"invalid methods.kan.grids = \[true\]"),
        ({"methods": {"kan": {"adam_lr": float("inf")}}}, "invalid methods.kan.adam_lr = inf"),
        ({"methods": {"kan": {"k": 1000}}}, "spline order from 1 to 5"),
        ({"signal": {"sampling_rate_hz": float("inf")}}, "invalid signal.sampling_rate_hz = inf"),
        ({"signal": {"sampling_rate_hz": 1e-9}}, "gives 1e-09 samples"),
        ({"signal": {"sampling_rate_hz": 1e12}}, "gives 1e\\+12 samples"),
        ({"signal": {"domain": [-1e308, 1e308]}}, "samples; choose a domain"),
        ({"split": {"test_fraction": 1e-9}}, "leaves 0 of 15000 samples for testing"),
        ({"methods": {"pysr": {"binary_operators": [1, 2]}}}, "binary operator names"),
        ({"methods": {"pysr": {"nested_constraints": {"sin": {"sin": "no"}}}}}, "nesting limits"),
        ({"methods": {"kan": {"grids": []}}}, r"invalid methods.kan.grids = \[\]"),
        ({"methods": {"kan": {"grids": [60, 40]}}}, "strictly increasing"),
        ({"split": {"test_fraction": 1.0}}, "strictly between 0 and 1"),
        ({"split": {"test_fraction": 0}}, "strictly between 0 and 1"),
        ({"methods": {"kan_symbolic": {"lib": ["sin", "sinc"]}}}, "sinc"),
        ({"methods": {"operon": {"allowed_symbols": "add,mul,sin"}}}, "including constant and variable"),
        ({"run": {"methods": ["kan_numeric", "kan_numerc"]}}, "kan_numerc"),
        ({"signal": {"domain": [0.5, -0.5]}}, "start < stop"),
        ({"methods": {"kan": {"grids": [100000000]}}}, r"invalid methods.kan.grids = \[100000000\]: .*from 1 to 1000"),
        ({"methods": {"kan": {"width": [1, 1000000000, 1]}}}, r"invalid methods.kan.width = .*at most 100 nodes"),
        ({"methods": {"kan": {"width": [1] * 12}}}, r"invalid methods.kan.width = .*at most 10 layers"),
        ({"methods": {"kan_minimal": {"grids": [5, 1001]}}}, r"invalid methods.kan_minimal.grids = \[5, 1001\]"),
        ({"methods": {"kan_minimal": {"width": [1, 101, 1]}}}, r"invalid methods.kan_minimal.width = \[1, 101, 1\]"),
        ({"methods": {"operon": {"n_threads": 2**63 - 1}}}, "invalid methods.operon.n_threads = 9223372036854775807"),
        ({"methods": {"operon": {"n_threads": 65}}}, "from 1 to 64"),
        ({"methods": {"kan": {"lbfgs_history": 10**29}}}, r"invalid methods.kan.lbfgs_history = .*from 1 to 10,000"),
        ({"methods": {"kan_smoothing": {"lbfgs_history": 10001}}}, r"invalid methods.kan_smoothing.lbfgs_history = 10001"),
        ({"methods": {"kan_smoothing": {"points_per_sample": 101}}}, r"invalid methods.kan_smoothing.points_per_sample"),
        ({"methods": {"kan_smoothing": {"curvature_weight": -1e-15}}}, r"invalid methods.kan_smoothing.curvature_weight"),
        ({"run": {"noise_levels": [0, 1e-320, 10]}}, r"invalid run.noise_levels = \[0, 1e-320, 10\]: .*each 0 or from 1e-09"),
        ({"run": {"noise_levels": [9.9e-10]}}, r"invalid run.noise_levels = \[9.9e-10\]"),
        ({"methods": {"kan_symbolic_sines": {"windows": [0.5, 0.9]}}}, r"windows = \[0.5, 0.9\]: .*ending at 1"),
        ({"methods": {"kan_symbolic_sines": {"windows": [0.5, 0.2, 1.0]}}}, "strictly increasing list of fractions"),
        ({"methods": {"kan_symbolic_sines": {"windows": [0, 1]}}}, r"windows = \[0, 1\]: .*above 0"),
        ({"methods": {"kan_symbolic_sines": {"terms": 0}}}, r"invalid methods.kan_symbolic_sines.terms = 0"),
        ({"methods": {"kan_symbolic_sines": {"prune_share": 1}}}, r"prune_share = 1: expected a number from 0 up to"),
        ({"methods": {"kan_symbolic_sines": {"lib": ["x", "sinc"]}}}, "sinc"),
    ],
)
def test_invalid_value_names_value(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("default", overrides)


def test_type_error_states_type_once():
    with pytest.raises(ConfigError) as caught:
        load_config("default", {"run": {"repetitions": "5"}})
    assert str(caught.value) == 'invalid run.repetitions = "5": expected an integer from 1 to 1000.'


def _fields(schema, path=()):
    for key, spec in schema.items():
        if isinstance(spec, dict):
            yield from _fields(spec, path + (key,))
        else:
            yield path + (key,), spec


FIELDS = list(_fields(SCHEMA))


@pytest.mark.parametrize(("path", "field"), FIELDS, ids=[".".join(path) for path, _ in FIELDS])
def test_type_error_does_not_repeat_type(path, field):
    overrides = {"a": 1} if dict not in field.types else "text"
    for key in reversed(path):
        overrides = {key: overrides}
    with pytest.raises(ConfigError, match=re.escape(f"invalid {'.'.join(path)} = ")) as caught:
        load_config("default", overrides)
    # As in "expected an integer: a non-negative integer".
    assert not re.search(r"expected (?:an? \w+ or )?an? (\w+): .*\b\1\b", str(caught.value))


def test_unknown_profile_suggests():
    with pytest.raises(ConfigError, match="unknown profile 'quik'. Did you mean 'quick'"):
        load_config("quik")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        read_toml(tmp_path / "absent.toml")


def test_invalid_toml_names_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[run\nrepetitions = 2\n")
    with pytest.raises(ConfigError, match="invalid TOML in .*bad.toml"):
        read_toml(path)


def test_leading_bom_stripped(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[run]\nrepetitions = 2\n")
    assert read_toml(path) == {"run": {"repetitions": 2}}


def test_bom_after_start_rejected(tmp_path):
    path = tmp_path / "two.toml"
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbf[run]\nrepetitions = 2\n")
    with pytest.raises(ConfigError, match="invalid TOML in .*two.toml"):
        read_toml(path)


def test_symbolic_names_match_pykan():
    from kan.utils import SYMBOLIC_LIB

    from bench.config import KAN_SYMBOLIC_FUNCTIONS

    assert set(KAN_SYMBOLIC_FUNCTIONS) == set(SYMBOLIC_LIB)


def test_operon_symbols_normalised():
    spaced = load_config("default", {"methods": {"operon": {"allowed_symbols": "add, sub ,mul,sin,constant,variable"}}})
    plain = load_config("default", {"methods": {"operon": {"allowed_symbols": "add,sub,mul,sin,constant,variable"}}})
    assert spaced["methods"]["operon"]["allowed_symbols"] == plain["methods"]["operon"]["allowed_symbols"]


def test_config_directory_rejected(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        read_toml(tmp_path)


def test_binary_config_rejected(tmp_path):
    path = tmp_path / "blob.toml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read_toml(path)


def test_table_setting_is_replaced_whole():
    config = load_config("default", {"methods": {"pysr": {"nested_constraints": {}}}})
    assert config["methods"]["pysr"]["nested_constraints"] == {}


def test_smallest_noise_level_accepted():
    levels = load_config("default", {"run": {"noise_levels": [0, 1e-9, 10]}})["run"]["noise_levels"]
    assert levels == [0, 1e-9, 10]


def test_negative_zero_noise_level_normalised():
    levels = load_config("default", {"run": {"noise_levels": [-0.0, 0.01]}})["run"]["noise_levels"]
    assert levels == [0.0, 0.01]
    assert math.copysign(1, levels[0]) == 1


def test_kan_size_limits_are_inclusive():
    largest = {"width": [1] + [100] * 9 + [1], "grids": [10, 1000]}
    config = load_config("default", {"methods": {"kan": largest, "kan_minimal": largest, "operon": {"n_threads": 64}}})
    assert config["methods"]["kan_minimal"]["width"] == largest["width"]
    assert config["methods"]["kan_minimal"]["grids"] == largest["grids"]
    assert config["methods"]["operon"]["n_threads"] == 64
