"""The suite of signals: named sympy expressions of x, a user expression, and one real series.

A signal is what a bench samples and splits. The configuration's
``signal.name`` picks one of ``SUITE``, or names a user signal whose
``signal.expression`` is given. This module turns that into a ``Signal``:
its samples and split, and the part of the run cache key that identifies
its data. An expression signal is identified by the expression's text, its
domain and its sampling rate, so the same expression gives the same keys
under any name. A data series is identified by a hash of its samples.
"""

import ast
import hashlib
import re
from dataclasses import dataclass

import numpy as np
import sympy

from bench import datasets, signal
from bench.errors import ConfigError
from bench.signal import X

DEFAULT_SIGNAL = "seed"
# Signal names become folder and page names.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
# The maximum length of a user expression, in characters.
MAX_EXPRESSION_CHARS = 1000
MAX_EXPONENT = 100
# The largest magnitude a signal may reach. Errors are squared and summed over up to 10 million samples, and
# (1e100)² · 1e7 stays far below float64's maximum of about 1.8e308.
MAX_MAGNITUDE = 1e100
# The minimum of a signal's largest magnitude. Below it, squared values fall under float64's smallest normal
# number (about 2.2e-308), so the variance in R² loses its digits or becomes 0.
MIN_MAGNITUDE = 1e-100
# The smallest spread of a signal's values, relative to its largest magnitude. float64 rounds each value to
# about 1e-16 of its magnitude, so a smaller spread, as of sin(x)**2 + cos(x)**2, is rounding error.
MIN_RELATIVE_SPREAD = 1e-12


def _tone(amplitude, frequency, phase=0):
    return amplitude * sympy.sin(2 * sympy.pi * frequency * X + phase)


_PI = sympy.pi
_SEED_TERMS = (
    lambda: _tone(4 / _PI, 10),
    lambda: _tone(4 / (3 * _PI), 30),
    lambda: 2 / _PI * sympy.sin(2 * _PI * (50 * X + 20 * X**2)),
)


@dataclass(frozen=True)
class SuiteEntry:
    """One signal of the suite: a description, and its expression or the series it is read from."""

    description: str
    expression: object = None
    dataset: str = ""


SUITE = {
    "seed": SuiteEntry("the seed experiment's target: two tones and a chirp", signal.target_expression()),
    "seed_tone_10": SuiteEntry("the seed's 10 Hz tone alone", _SEED_TERMS[0]()),
    "seed_tone_30": SuiteEntry("the seed's 30 Hz tone alone", _SEED_TERMS[1]()),
    "seed_chirp": SuiteEntry("the seed's chirp alone (50 Hz rising at 40 Hz per unit of x)", _SEED_TERMS[2]()),
    "tone_slow": SuiteEntry("a pure 3 Hz tone", _tone(1, 3)),
    "tone_fast": SuiteEntry("a pure 120 Hz tone with a phase offset", _tone(sympy.Rational(1, 2), 120, sympy.Rational(3, 10))),
    "chirp": SuiteEntry("a chirp from 10 Hz to 70 Hz over the domain", sympy.sin(2 * _PI * (40 * X + 30 * X**2))),
    "damped_sine": SuiteEntry("an 8 Hz sinusoid decaying by e^-3 over the domain",
                              sympy.exp(-3 * (X + sympy.Rational(1, 2))) * sympy.sin(2 * _PI * 8 * X)),
    "polynomial": SuiteEntry("a cubic polynomial",
                             sympy.Rational(1, 2) - X + 2 * X**2 - 4 * X**3),
    "sunspots": SuiteEntry("yearly sunspot numbers 1700-2008 (statsmodels), standardised, on the domain",
                           dataset="sunspots"),
}


@dataclass(frozen=True)
class Signal:
    """A configured signal: its name, description, expression (None for a data series) and sampled split.

    ``sampling_rate_hz`` is the rate actually used: a data series sets its own.
    ``identity`` is the part of every run's cache key that identifies the data.
    """

    name: str
    description: str
    expression: object
    sampling_rate_hz: float
    split: signal.Split
    identity: dict


def results_dir(base, name):
    """Return the results folder of signal ``name`` under the bench's folder ``base``.

    The seed signal keeps ``base`` itself, so the suite reuses the runs of a
    plain bench and the report's main pages keep their folder.
    """
    return base if name == DEFAULT_SIGNAL else base / "signals" / name


def suite_names():
    """Return the names of the built-in signals, in the order the report lists them."""
    return list(SUITE)


def check_name(name, expression):
    """Raise ConfigError unless ``name`` and ``expression`` name a built-in signal or define a user one."""
    if name in SUITE:
        if expression:
            raise ConfigError(
                f"invalid signal.expression = \"{expression}\": signal.name = \"{name}\" is a built-in signal. "
                "Give the expression a new name, such as signal.name = \"custom\"."
            )
        return
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"invalid signal.name = \"{name}\": expected a built-in signal ({', '.join(SUITE)}) or a new name of "
            "lowercase letters, digits and _ that starts with a letter (at most 40 characters)."
        )
    if not expression:
        raise ConfigError(
            f"invalid signal.name = \"{name}\": it is not a built-in signal ({', '.join(SUITE)}), so it needs "
            "signal.expression, a formula of x such as \"sin(2*pi*5*x)\"."
        )


_FUNCTIONS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt,
    "abs": sympy.Abs, "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "asin": sympy.asin,
    "acos": sympy.acos, "atan": sympy.atan,
}
_CONSTANTS = {"x": X, "pi": sympy.pi, "e": sympy.E}
_BINARY = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.Pow: lambda a, b: a**b,
}
EXPRESSION_RULE = (f"a formula of x with numbers, pi, e, + - * / ** and the functions {', '.join(_FUNCTIONS)}, "
                   "such as \"sin(2*pi*5*x) + 0.5*x**2\"")


class _ExpressionError(ValueError):
    """A part of a user expression that is not allowed."""


def parse_expression(text):
    """Return the sympy expression of x written in ``text``; raise ConfigError when it is not one.

    The text is parsed as a Python expression and only numbers, x, pi, e,
    arithmetic and the functions in ``_FUNCTIONS`` are turned into sympy,
    so nothing in it is evaluated as code.
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ConfigError(f"invalid signal.expression: it has {len(text)} characters; the limit is "
                          f"{MAX_EXPRESSION_CHARS}.")
    try:
        expression = _to_sympy(ast.parse(text.strip(), mode="eval").body)
    except SyntaxError as error:
        raise ConfigError(f"invalid signal.expression = \"{text}\": not a formula ({error.msg}); "
                          f"expected {EXPRESSION_RULE}.") from None
    except (_ExpressionError, RecursionError) as error:
        raise ConfigError(f"invalid signal.expression = \"{text}\": {error}; expected {EXPRESSION_RULE}.") from None
    if expression.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise ConfigError(f"invalid signal.expression = \"{text}\": it contains an infinite or undefined value, such "
                          f"as a division by zero or a number beyond float64's range; expected {EXPRESSION_RULE}.")
    if X not in expression.free_symbols:
        raise ConfigError(f"invalid signal.expression = \"{text}\": it does not depend on x; "
                          f"expected {EXPRESSION_RULE}.")
    return expression


def _to_sympy(node):
    """Return the sympy expression of one parsed node, raising _ExpressionError for anything not allowed."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sympy.Integer(node.value) if type(node.value) is int else sympy.Float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in _CONSTANTS:
            raise _ExpressionError(f"unknown name '{node.id}' (the only variable is x)")
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _to_sympy(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _to_sympy(node.left), _to_sympy(node.right)
        # sympy computes powers of numbers exactly, and 9**9**9 has 370 million digits.
        if isinstance(node.op, ast.Pow) and right.is_number and abs(right) > MAX_EXPONENT:
            raise _ExpressionError(f"the exponent {right} is outside [-{MAX_EXPONENT}, {MAX_EXPONENT}]")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise _ExpressionError("^ is not a power here; write x**2")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id not in _FUNCTIONS:
            raise _ExpressionError(f"unknown function '{node.func.id}'")
        if len(node.args) != 1:
            raise _ExpressionError(f"{node.func.id} takes one argument, got {len(node.args)}")
        return _FUNCTIONS[node.func.id](_to_sympy(node.args[0]))
    raise _ExpressionError(f"'{ast.unparse(node)}' is not allowed")


def suite_entry(section):
    """Return the ``SuiteEntry`` of a configuration's ``signal`` section; a user formula gets one made for it."""
    name, text = section.get("name", DEFAULT_SIGNAL), section.get("expression", "")
    check_name(name, text)
    return SUITE.get(name) or SuiteEntry("a user expression", parse_expression(text))


def target_expression(section):
    """Return the sympy expression of a configuration's ``signal`` section, or None for a data series.

    Sections written before signals were configurable have no name, and
    they are the seed signal's.
    """
    return suite_entry(section).expression


def load_signal(config):
    """Return the configured ``Signal``: sampled on its domain and split, or read from its data series."""
    name = config["signal"]["name"]
    entry = suite_entry(config["signal"])
    if entry.dataset:
        return _data_signal(name, entry, config)
    return _expression_signal(name, entry, config)


def _expression_signal(name, entry, config):
    section, split_settings = config["signal"], config["split"]
    _check_values_on_grid(name, section.get("expression") or entry.expression, entry.expression, section["domain"],
                          section["sampling_rate_hz"])
    split = signal.make_split(entry.expression, section["domain"], section["sampling_rate_hz"],
                              split_settings["test_fraction"], split_settings["data_seed"])
    # The same fields, in the same form, as the cache keys of runs stored before signals were configurable.
    identity = {"expression": str(entry.expression), "domain": section["domain"],
                "sampling_rate_hz": section["sampling_rate_hz"]}
    return Signal(name, entry.description, entry.expression, section["sampling_rate_hz"], split, identity)


def _check_values_on_grid(name, text, expression, domain, rate):
    """Raise ConfigError unless ``expression`` is finite, within MAX_MAGNITUDE and not constant on the samples.

    ``text`` is the formula as the user wrote it, or the expression itself for a built-in signal.
    """
    x = signal.sample_grid(domain[0], domain[1], rate)
    values = signal.evaluate_expression(expression, x)
    where = f"of the domain [{domain[0]}, {domain[1]})"
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ConfigError(
            f"invalid signal \"{name}\" = {text}: it is not finite at {bad.size} of {x.size} samples {where}, the "
            f"first at x = {x[bad[0]]:.6g}. Choose a formula that is finite on the domain, or another domain."
        )
    largest = int(np.argmax(np.abs(values)))
    if abs(values[largest]) > MAX_MAGNITUDE:
        raise ConfigError(
            f"invalid signal \"{name}\" = {text}: it reaches {values[largest]:.3g} at x = {x[largest]:.6g}, beyond "
            f"±{MAX_MAGNITUDE:g}, where squared errors overflow. Scale the formula down."
        )
    if 0 < abs(values[largest]) < MIN_MAGNITUDE:
        raise ConfigError(
            f"invalid signal \"{name}\" = {text}: its largest magnitude is {abs(values[largest]):.3g}, below "
            f"{MIN_MAGNITUDE:g}, where squared errors underflow. Scale the formula up."
        )
    if np.all(values == values[0]):
        raise ConfigError(
            f"invalid signal \"{name}\" = {text}: it is {values[0]:.6g} at every one of the {x.size} samples {where}, "
            "so R² is undefined. Choose a formula that varies on the samples, or another sampling rate."
        )
    spread = float(np.ptp(values))
    if spread < MIN_RELATIVE_SPREAD * abs(values[largest]):
        raise ConfigError(
            f"invalid signal \"{name}\" = {text}: its values on the {x.size} samples {where} differ by at most "
            f"{spread:.3g}, less than {MIN_RELATIVE_SPREAD:g} of its largest magnitude {abs(values[largest]):.3g}, "
            "so rounding errors would decide R². Choose a formula that varies on the samples."
        )


def _data_signal(name, entry, config):
    start, stop = config["signal"]["domain"]
    values = datasets.load(entry.dataset)
    rate = values.size / (stop - start)
    lookup = datasets.sample_function(entry.dataset, values, start, rate)
    split = signal.make_split(lookup(X), [start, stop], rate, config["split"]["test_fraction"],
                              config["split"]["data_seed"])
    digest = hashlib.sha256(np.ascontiguousarray(values, dtype=np.float64).tobytes()).hexdigest()[:16]
    identity = {"dataset": entry.dataset, "values_sha256": digest, "domain": [start, stop]}
    return Signal(name, entry.description, None, rate, split, identity)
