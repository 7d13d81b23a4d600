"""Profiles, configuration files and their validation.

A configuration is a nested dictionary with four sections: ``signal``,
``split``, ``run`` and ``methods``. A profile is a complete configuration;
a TOML file passed with ``--config`` overrides some of its values. Every
value is checked here, once, before anything runs.
"""

import copy
import difflib
import math
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError

METHOD_NAMES = (
    "kan_numeric", "kan_numeric_smoothed", "kan_numeric_minimal", "kan_symbolic", "kan_symbolic_spectral",
    "kan_symbolic_sines", "pysr_direct", "pysr_distilled", "operon_direct", "operon_distilled",
    # Reference rows, not competitors: an accuracy ceiling handed the target's form, and two floors.
    "ceiling_nls", "floor_mean", "floor_linear",
)

# The names in pykan 0.2.8's kan.utils.SYMBOLIC_LIB, which auto_symbolic
# accepts in ``lib``. Kept here so that validation does not import torch;
# a test checks the two lists agree.
KAN_SYMBOLIC_FUNCTIONS = (
    "x", "x^2", "x^3", "x^4", "x^5", "1/x", "1/x^2", "1/x^3", "1/x^4", "1/x^5", "sqrt", "x^0.5", "x^1.5",
    "1/sqrt(x)", "1/x^0.5", "exp", "log", "abs", "sin", "cos", "tan", "tanh", "sgn", "arcsin", "arccos",
    "arctan", "arctanh", "0", "gaussian",
)

# Operon symbols accepted in ``allowed_symbols``. Formulas are parsed by
# sympy from Operon's infix output.
# NOTE: only add, sub, mul, sin, constant and variable (the default) are
# exercised by the tests; the others rely on sympy reading Operon's names.
OPERON_SYMBOLS = ("add", "sub", "mul", "div", "sin", "cos", "exp", "log", "sqrt", "square", "constant", "variable")

_DEFAULT = {
    "signal": {
        # A built-in signal (bench.signals.SUITE) or a new name for the formula of x in ``expression``.
        "name": "seed",
        "expression": "",
        "domain": [-0.5, 0.5],
        "sampling_rate_hz": 15000,
    },
    "split": {
        "test_fraction": 0.2,
        "data_seed": 0,
    },
    "run": {
        "repetitions": 5,
        "base_seed": 0,
        # Every method except the minimal KAN, which the signal suite (quick profile) runs, so that this
        # profile's runs are those of the committed bundle published/default. At these budgets one run of
        # it took 37 s, against 152 s for the seed's network (repetition 0, idle 2-core machine);
        # --methods kan_numeric_minimal adds it to a bench.
        "methods": [name for name in METHOD_NAMES if name != "kan_numeric_minimal"],
        # Worker processes, each running whole repetitions. This changes
        # the wall time only: it is not part of any run's cache key. Each
        # run already uses 2 threads (methods.kan.torch_threads and
        # methods.operon.n_threads), so one worker keeps 2 cores busy.
        "workers": 1,
        # Wall-clock limit of one run; a run past it is recorded as failed.
        # Not part of the cache key.
        "time_limit_s": 3600,
        # Gaussian noise on the training labels, as fractions of the signal's
        # standard deviation (bench.noise); every level runs every repetition.
        "noise_levels": [0.0],
    },
    "methods": {
        "kan": {
            "width": [1, 12, 3, 1],
            "k": 3,
            "grids": [40, 60, 90, 120, 150],
            # How a stage's model becomes the next grid's: "nested" keeps the
            # trained function exactly, "pykan" is pykan's lossy refine.
            "refine": "nested",
            # Budgets per grid stage, sized so that five repetitions of all
            # methods fit in about 30 minutes on 2 cores with the fast path.
            "adam_steps": 50,
            "adam_lr": 0.01,
            "lbfgs_steps": 15,
            "lbfgs_max_iter": 20,
            "lbfgs_history": 50,
            "grid_update_steps": 50,
            "grid_updates": 5,
            # Stages after the first start from the refined, trained model.
            # On one default-profile seed, Adam at 0.001 without grid updates
            # in those stages gave test MSE 1.0e-5 in about half the time;
            # 0.01 with 5 updates, as in the first stage, gave 3.1e-5.
            "later_adam_lr": 0.001,
            "later_grid_updates": 0,
            # Initialisations of the first stage. The one with the lowest training MSE goes on, because the
            # first stage largely decides the final test MSE (figures in the README's Accuracy section).
            "starts": 2,
            "retry_lr_factor": 0.1,
            # Evaluate splines with bench.methods.kan_fast (same values as
            # pykan's B_batch, much faster); false uses pykan's own path.
            "fast_splines": True,
            # Measured here at grid 150 on 12,000 samples: 2 threads in one
            # process ran 20 passes/s, two 1-thread processes 15 in all.
            "torch_threads": 2,
        },
        # "kan_minimal" (set below): the same training with the smallest KAN that has a hidden layer,
        # to show what the seed's architecture buys. It takes every key of "kan".
        # kan_numeric_smoothed: the trained KAN numeric model, polished with a penalty on the curvature of its
        # output between the training inputs (bench.methods.kan_smoothing).
        "kan_smoothing": {
            # Weight of mean((L²·f'')²) against the training MSE, L being the span of the training inputs.
            # The seed signal's own curvature gives mean((L²·f'')²) ≈ 2.8e9, so this weight adds 2.8e-6 to
            # the loss and damps its 70 Hz component by a factor of about 1 - 4e-5.
            "curvature_weight": 1e-15,
            # Points of the penalty's even grid per training input. The spurious bends sit in the gaps between
            # training inputs, so the grid must be finer than those gaps. On the default profile's repetition 0,
            # one point per training input left the test MSE at 1.1e-4 after 30 steps, and three lowered it to 8.9e-7.
            "points_per_sample": 3.0,
            # 30 steps gave a median test MSE of 1.4e-7 over the default profile's 5 repetitions. The test MSE
            # was still falling, so the default takes 45. Through bench.methods.kan_poly, with the 2 torch threads
            # of methods.kan, 45 steps take 82 to 93 s per run here. The noise profile takes 45 too.
            "lbfgs_steps": 45,
            "lbfgs_max_iter": 20,
            "lbfgs_history": 50,
        },
        "kan_symbolic": {
            "lib": ["sin", "x", "x^2"],
            "refit_lbfgs_steps": 20,
            # auto_symbolic grid-searches 101 x 101 (a, b) pairs per edge and
            # function on every point of its forward pass, so it snaps on this
            # many training inputs, evenly spread in x; 0 means all of them.
            # 500 inputs on [-0.5, 0.5] resolve frequencies up to 250 cycles
            # per unit, above the signal's highest (70). The refit uses every
            # training input.
            "snap_samples": 500,
        },
        "kan_symbolic_spectral": {
            "lib": ["sin", "x", "x^2"],
            "refit_lbfgs_steps": 20,
            "snap_samples": 500,
            # Each edge's sine scale a is searched in f·(1 ± this), f being
            # the edge activation's dominant angular frequency, and never in
            # less than ± two bins of its spectrum (bench.methods.kan_snap).
            "sine_range_width": 0.25,
            # Weight of complexity against fit when ranking an edge's
            # candidate functions; pykan uses 0.8. On the five default seeds,
            # 0.8 chose x for 254 of 255 edges, so the formula was a line
            # (test R² 0.0044). With 0, the median test R² was 0.735 (published/default).
            "simplicity_weight": 0.0,
        },
        # kan_symbolic_sines: a KAN [1, terms, 1] whose output edges are sines from the start, its phases
        # trained on widening windows and then snapped (bench.methods.kan_sines).
        "kan_symbolic_sines": {
            # Sines in the sum, each starting at one of the largest spectral peaks of the targets in the first
            # window. One more than the seed signal's three, so the method must find that one is not needed.
            "terms": 4,
            # Intervals of each phase spline. Any quadratic phase lies in the space of cubic splines.
            "grid": 5,
            # Training windows, as fractions of the half-span of the training inputs around their centre.
            "windows": [0.2, 0.26, 0.34, 0.44, 0.56, 0.7, 0.84, 1.0],
            "window_lbfgs_steps": 10,
            "lbfgs_max_iter": 20,
            "lbfgs_history": 50,
            # A sine whose values on the training inputs end with a standard deviation below this share of
            # the training targets' is replaced by its mean before the snap: a tiny amplitude, or a phase that
            # hardly moves.
            "prune_share": 0.01,
            # The phase edges' snap, as in kan_symbolic_spectral, with pykan's own simplicity weight, so x is
            # kept where x and x² fit a phase equally well. The library has no sin, as the PySR settings allow
            # no sin inside a sin. In a trial with sin, a sine of tiny a and huge amplitude tied with x² on one
            # default-profile phase, and won.
            "lib": ["x", "x^2"],
            "sine_range_width": 0.25,
            "simplicity_weight": 0.8,
            "snap_samples": 500,
            "refit_lbfgs_steps": 20,
            "torch_threads": 2,
        },
        # The accuracy ceiling, which fits the target's own form (bench.methods.reference).
        # floor_mean and floor_linear have no settings.
        "ceiling_nls": {
            # Sinusoids A·sin(φ + 2π(f·x + r·x²)) in the model; the target has three.
            "terms": 3,
            # The seeding search tries the chirp rates r from -max_chirp_rate to max_chirp_rate,
            # in cycles per unit of x². The target's chirp has r = 20. A rate half a step off bends
            # the phase by at most π/8 at the ends of [-0.5, 0.5), so its spectral peak stays high.
            "max_chirp_rate": 50.0,
            "chirp_rate_step": 0.5,
            # scipy.optimize.least_squares: trust-region reflective, with tolerances far below the
            # relative parameter error of 1e-6 that the recovery judge calls exact.
            "method": "trf",
            "ftol": 1e-12,
            "xtol": 1e-12,
            "gtol": 1e-12,
            # Each term's fit took at most 11 evaluations at 1.5 and 15 kHz here.
            "max_nfev": 200,
        },
        "pysr": {
            "niterations": 100,
            "population_size": 200,
            "binary_operators": ["+", "-", "*"],
            "unary_operators": ["sin"],
            # sin(sin(.)) is forbidden: at most 0 sin inside a sin.
            "nested_constraints": {"sin": {"sin": 0}},
            "maxsize": 40,
            "model_selection": "best",
            "timeout_in_seconds": 3600,
        },
        "operon": {
            "allowed_symbols": "add,sub,mul,sin,constant,variable",
            "population_size": 1000,
            "generations": 1000,
            # pyoperon's default is 1,000,000 evaluations, which took about
            # 5 minutes per run on 12,000 samples here with one thread. This
            # budget took about 25 s per run with two.
            "max_evaluations": 200000,
            "max_length": 50,
            # Operon's results are the same for 1 and 2 threads with the same
            # seed (checked here on one default-profile run).
            "n_threads": 2,
            "max_time_s": 600,
            # The rule that picks the reported formula from the Pareto front
            # of training MSE against tree length: PySR's, applied the same way.
            "model_selection": "best",
        },
    },
}


_DEFAULT["methods"]["kan_minimal"] = {**copy.deepcopy(_DEFAULT["methods"]["kan"]), "width": [1, 3, 1]}


def _quick():
    profile = copy.deepcopy(_DEFAULT)
    profile["signal"]["sampling_rate_hz"] = 1500
    profile["run"].update(repetitions=2, time_limit_s=600, methods=list(METHOD_NAMES))
    budgets = dict(grids=[5, 10], adam_steps=30, lbfgs_steps=3, lbfgs_max_iter=10, grid_update_steps=10,
                   grid_updates=2)
    # The seed's architecture and the minimal one, as in the default profile, so the suite compares them.
    profile["methods"]["kan"].update(**budgets)
    profile["methods"]["kan_minimal"].update(width=[1, 3, 1], **budgets)
    # 150 inputs evenly spread on [-0.5, 0.5] resolve up to 75 cycles per unit, above the seed's 70.
    profile["methods"]["kan_symbolic"].update(refit_lbfgs_steps=3, snap_samples=150)
    profile["methods"]["kan_smoothing"].update(lbfgs_steps=2, lbfgs_max_iter=5)
    profile["methods"]["kan_symbolic_spectral"].update(refit_lbfgs_steps=3, snap_samples=150)
    # kan_symbolic_sines keeps the default's budgets, which took 2 to 11 s per run of the suite on this profile's
    # 1,200 training inputs. In a trial with 4 LBFGS steps per window and 5 in the refit, the seed signal's
    # repetition 0 ended at a test R² of 0.84.
    profile["methods"]["pysr"].update(niterations=5, population_size=30, timeout_in_seconds=120)
    profile["methods"]["operon"].update(population_size=200, generations=20, max_evaluations=50000, max_time_s=60)
    return profile


def _noise():
    profile = copy.deepcopy(_DEFAULT)
    # Three of the default's five repetitions at each level. Its level-0 runs are the default profile's
    # first three, with the same cache keys.
    profile["run"].update(repetitions=3, noise_levels=[0.0, 0.001, 0.01, 0.1])
    return profile


PROFILES = {"default": _DEFAULT, "quick": _quick(), "noise": _noise()}
# The profile whose signal suite the report shows unless ``render --suite-profile`` names another. Its tiny
# budgets keep a suite of every signal to minutes.
SUITE_PROFILE = "quick"

PROFILE_DESCRIPTIONS = {
    "default": "the seed experiment's protocol: 15 kHz, KAN grids 40 to 150, 5 repetitions",
    "quick": "the same pipeline with tiny budgets (1.5 kHz sampling, KAN grids 5 and 10, 2 repetitions), for tests, "
             "CI and the signal suite",
    "noise": "the default's settings at label noise 0, 0.001, 0.01 and 0.1 times std(y), 3 repetitions each, "
             "and 30 instead of 45 LBFGS steps for kan_numeric_smoothed",
}


@dataclass(frozen=True)
class Field:
    """One configuration value: its type(s), an optional check and the sentence shown when it fails."""

    types: tuple
    check: object = None
    rule: str = ""


# Bounds that keep a configuration within what one machine can run: the
# sample count bounds memory, the others bound loops that run before any log.
MIN_SAMPLES = 20
MAX_SAMPLES = 10_000_000
MAX_REPETITIONS = 1000
# A year. The timer that enforces the limit overflowed at 1e10 s with a traceback.
MAX_TIME_LIMIT_S = 365 * 24 * 3600
# Far above any chirp that 15 kHz sampling of [-0.5, 0.5] resolves (|r| ≤ 7500), and small
# enough that the phase 2π·r·x² stays exact to about 1e-9 in float64.
MAX_CHIRP_RATE = 1e6
MAX_SPLINE_ORDER = 5
# KAN sizes. pykan fits spline coefficients by least squares over in·out·points·(grid + k) float64 values,
# with grid + 1 points when it builds a layer and the training samples at each grid update. By that estimate,
# the default's 12 × 3 layer needs 0.3 GB at grid 1000 and 29 GB at grid 10,000. A 100 × 100 layer needs
# 1.2 GB per update at the quick profile's 1,200 samples and grid 10, and a 1000 × 1000 layer needs 125 GB.
# NOTE: each limit bounds one size alone, so a network near all of them at 15 kHz can still run out of memory.
# More than three times the default's 3 layers. Memory grows only linearly with depth.
MAX_KAN_LAYERS = 10
MAX_KAN_NODES = 100
MAX_KAN_GRID = 1000
MAX_STARTS = 100
# pykan's LBFGS keeps this many pairs of parameter-sized vectors and allocates its lists at this length up front.
MAX_LBFGS_HISTORY = 10_000
# Curvature penalty points per training input of kan_numeric_smoothed; each point costs one model evaluation per loss evaluation.
MAX_POINTS_PER_SAMPLE = 100
MAX_SINUSOIDS = 20
MAX_CHIRP_RATES = 10_001
MAX_FUNCTION_EVALUATIONS = 100_000
# Noise ten times the signal's own spread leaves nothing to recover.
MAX_NOISE_LEVEL = 10
# The smallest positive noise level. The Noise figure's symlog x axis gives one decade to the span from 0 to
# the smallest positive level. Levels at every power of ten from 1e-9 to 10 get tick labels that do not overlap,
# but the subnormal level 1e-320 made matplotlib overflow and draw a blank figure. Noise of 1e-9·std(y) is
# still about 1e7 times float64's rounding error of the labels.
MIN_NOISE_LEVEL = 1e-9
# scipy.optimize.least_squares warns about tolerances below float64's machine epsilon, and its "lm"
# method rejects them.
MIN_TOLERANCE = sys.float_info.epsilon
TOLERANCE_RULE = f"a number from {MIN_TOLERANCE:.3g} (float64's machine epsilon) up to but not including 1"

TYPE_NAMES = {int: "an integer", float: "a number", list: "a list", str: "a string", dict: "a table", bool: "a boolean"}


def is_int(value):
    """Return whether ``value`` is an int as TOML and JSON give it, not a bool."""
    return type(value) is int


def is_number(value):
    """Return whether ``value`` is a finite int or float, not a bool."""
    return type(value) in (int, float) and math.isfinite(value)


def _positive_int(value):
    return value > 0


def _non_negative_int(value):
    return value >= 0


def _is_increasing_grid_list(value):
    return (len(value) > 0 and all(is_int(g) and 0 < g <= MAX_KAN_GRID for g in value)
            and list(value) == sorted(set(value)))


def _is_width(value):
    return (2 <= len(value) <= MAX_KAN_LAYERS + 1 and all(is_int(w) and 0 < w <= MAX_KAN_NODES for w in value)
            and value[0] == 1 and value[-1] == 1)


def _is_string_list(value):
    return all(isinstance(item, str) and item.strip() for item in value)


def _is_nested_constraints(value):
    return all(
        isinstance(inner, dict) and all(isinstance(name, str) and is_int(limit) and limit >= -1 for name, limit in inner.items())
        for inner in value.values()
    )


def _is_window_list(value):
    return (len(value) > 0 and all(is_number(v) and 0 < v <= 1 for v in value) and value[-1] == 1
            and list(value) == sorted(set(value)))


def _is_domain(value):
    return len(value) == 2 and all(is_number(v) for v in value) and value[0] < value[1]


def _is_symbolic_library(value):
    return len(value) > 0 and all(name in KAN_SYMBOLIC_FUNCTIONS for name in value)


def _operon_symbol_names(value):
    return [name.strip() for name in value.split(",")]


def _is_operon_symbols(value):
    names = _operon_symbol_names(value)
    return all(name in OPERON_SYMBOLS for name in names) and {"constant", "variable"} <= set(names)


def _is_tolerance(value):
    return MIN_TOLERANCE <= value < 1


def _is_noise_levels(value):
    return (len(value) > 0
            and all(is_number(level) and (level == 0 or MIN_NOISE_LEVEL <= level <= MAX_NOISE_LEVEL) for level in value)
            and len(set(value)) == len(value))


def _is_method_list(value):
    return len(value) > 0 and all(name in METHOD_NAMES for name in value) and len(set(value)) == len(value)


INT = (int,)
NUMBER = (int, float)

SCHEMA = {
    "signal": {
        "name": Field((str,), None, "a built-in signal name or a new name for signal.expression"),
        "expression": Field((str,), None, "a formula of x, such as \"sin(2*pi*5*x)\", or \"\" for a built-in signal"),
        "domain": Field((list,), _is_domain, "two finite numbers [start, stop] with start < stop"),
        "sampling_rate_hz": Field(NUMBER, lambda v: v > 0, "a positive, finite number of samples per unit of x"),
    },
    "split": {
        "test_fraction": Field(NUMBER, lambda v: 0 < v < 1, "a fraction strictly between 0 and 1"),
        "data_seed": Field(INT, _non_negative_int, "a non-negative integer"),
    },
    "run": {
        "repetitions": Field(INT, lambda v: 0 < v <= MAX_REPETITIONS, f"an integer from 1 to {MAX_REPETITIONS}"),
        "base_seed": Field(INT, _non_negative_int, "a non-negative integer"),
        "methods": Field((list,), _is_method_list, f"a non-empty list of distinct names from: {', '.join(METHOD_NAMES)}"),
        "workers": Field(INT, lambda v: 0 < v <= 64, "an integer from 1 to 64"),
        "time_limit_s": Field(NUMBER, lambda v: 0 < v <= MAX_TIME_LIMIT_S,
                              f"a positive number of seconds, at most {MAX_TIME_LIMIT_S:g} (a year)"),
        "noise_levels": Field((list,), _is_noise_levels,
                              f"a non-empty list of distinct numbers, each 0 or from {MIN_NOISE_LEVEL:g} to "
                              f"{MAX_NOISE_LEVEL}, fractions of std(y)"),
    },
    "methods": {
        "kan": {
            "width": Field((list,), _is_width,
                           f"a list of positive integers starting and ending with 1, at most {MAX_KAN_LAYERS} layers "
                           f"({MAX_KAN_LAYERS + 1} entries) and at most {MAX_KAN_NODES} nodes per layer"),
            "k": Field(INT, lambda v: 0 < v <= MAX_SPLINE_ORDER, f"a spline order from 1 to {MAX_SPLINE_ORDER}"),
            "grids": Field((list,), _is_increasing_grid_list,
                           f"a non-empty, strictly increasing list of grid sizes from 1 to {MAX_KAN_GRID}"),
            "refine": Field((str,), lambda v: v in ("nested", "pykan"), "'nested' or 'pykan'"),
            "adam_steps": Field(INT, _non_negative_int, "a non-negative integer"),
            "adam_lr": Field(NUMBER, lambda v: v > 0, "a positive learning rate"),
            "lbfgs_steps": Field(INT, _non_negative_int, "a non-negative integer"),
            "lbfgs_max_iter": Field(INT, _positive_int, "a positive integer"),
            "lbfgs_history": Field(INT, lambda v: 0 < v <= MAX_LBFGS_HISTORY, f"an integer from 1 to {MAX_LBFGS_HISTORY:,}"),
            "grid_update_steps": Field(INT, _non_negative_int, "a non-negative number of Adam steps"),
            "grid_updates": Field(INT, _non_negative_int, "a non-negative integer"),
            "later_adam_lr": Field(NUMBER, lambda v: v > 0, "a positive learning rate"),
            "later_grid_updates": Field(INT, _non_negative_int, "a non-negative integer"),
            "starts": Field(INT, lambda v: 0 < v <= MAX_STARTS, f"an integer from 1 to {MAX_STARTS}"),
            "retry_lr_factor": Field(NUMBER, lambda v: 0 < v < 1, "a factor strictly between 0 and 1"),
            "fast_splines": Field((bool,), None, "true or false"),
            "torch_threads": Field(INT, lambda v: 0 < v <= 64, "an integer from 1 to 64"),
        },
        "kan_minimal": {},
        "kan_smoothing": {
            "curvature_weight": Field(NUMBER, lambda v: 0 <= v <= 1, "a number from 0 to 1"),
            "points_per_sample": Field(NUMBER, lambda v: 0 < v <= MAX_POINTS_PER_SAMPLE,
                                       f"a number above 0 and at most {MAX_POINTS_PER_SAMPLE}"),
            "lbfgs_steps": Field(INT, _non_negative_int, "a non-negative integer"),
            "lbfgs_max_iter": Field(INT, _positive_int, "a positive integer"),
            "lbfgs_history": Field(INT, lambda v: 0 < v <= MAX_LBFGS_HISTORY, f"an integer from 1 to {MAX_LBFGS_HISTORY:,}"),
        },
        "kan_symbolic": {
            "lib": Field((list,), _is_symbolic_library, f"a non-empty list of names from {list(KAN_SYMBOLIC_FUNCTIONS)}"),
            "refit_lbfgs_steps": Field(INT, _non_negative_int, "a non-negative integer"),
            "snap_samples": Field(INT, lambda v: v == 0 or v >= 10, "0 (all training inputs) or at least 10"),
        },
        "kan_symbolic_spectral": {
            "lib": Field((list,), _is_symbolic_library, f"a non-empty list of names from {list(KAN_SYMBOLIC_FUNCTIONS)}"),
            "refit_lbfgs_steps": Field(INT, _non_negative_int, "a non-negative integer"),
            "snap_samples": Field(INT, lambda v: v == 0 or v >= 10, "0 (all training inputs) or at least 10"),
            "sine_range_width": Field(NUMBER, lambda v: 0 < v <= 10, "a number above 0 and at most 10"),
            "simplicity_weight": Field(NUMBER, lambda v: 0 <= v <= 1, "a number from 0 to 1"),
        },
        "kan_symbolic_sines": {
            "terms": Field(INT, lambda v: 0 < v <= MAX_SINUSOIDS, f"an integer from 1 to {MAX_SINUSOIDS}"),
            "grid": Field(INT, lambda v: 0 < v <= MAX_KAN_GRID, f"an integer from 1 to {MAX_KAN_GRID}"),
            "windows": Field((list,), _is_window_list,
                             "a non-empty, strictly increasing list of fractions above 0 and at most 1, ending at 1"),
            "window_lbfgs_steps": Field(INT, _non_negative_int, "a non-negative integer"),
            "lbfgs_max_iter": Field(INT, _positive_int, "a positive integer"),
            "lbfgs_history": Field(INT, lambda v: 0 < v <= MAX_LBFGS_HISTORY, f"an integer from 1 to {MAX_LBFGS_HISTORY:,}"),
            "prune_share": Field(NUMBER, lambda v: 0 <= v < 1, "a number from 0 up to, but not including, 1"),
            "lib": Field((list,), _is_symbolic_library, f"a non-empty list of names from {list(KAN_SYMBOLIC_FUNCTIONS)}"),
            "sine_range_width": Field(NUMBER, lambda v: 0 < v <= 10, "a number above 0 and at most 10"),
            "simplicity_weight": Field(NUMBER, lambda v: 0 <= v <= 1, "a number from 0 to 1"),
            "snap_samples": Field(INT, lambda v: v == 0 or v >= 10, "0 (all training inputs) or at least 10"),
            "refit_lbfgs_steps": Field(INT, _non_negative_int, "a non-negative integer"),
            "torch_threads": Field(INT, lambda v: 0 < v <= 64, "an integer from 1 to 64"),
        },
        "ceiling_nls": {
            "terms": Field(INT, lambda v: 0 < v <= MAX_SINUSOIDS, f"an integer from 1 to {MAX_SINUSOIDS}"),
            "max_chirp_rate": Field(NUMBER, lambda v: 0 <= v <= MAX_CHIRP_RATE,
                                    f"a number of cycles per unit of x² from 0 to {MAX_CHIRP_RATE:g}"),
            "chirp_rate_step": Field(NUMBER, lambda v: v > 0, "a positive number of cycles per unit of x²"),
            "method": Field((str,), lambda v: v in ("trf", "dogbox", "lm"), "'trf', 'dogbox' or 'lm'"),
            "ftol": Field(NUMBER, _is_tolerance, TOLERANCE_RULE),
            "xtol": Field(NUMBER, _is_tolerance, TOLERANCE_RULE),
            "gtol": Field(NUMBER, _is_tolerance, TOLERANCE_RULE),
            "max_nfev": Field(INT, lambda v: 0 < v <= MAX_FUNCTION_EVALUATIONS,
                              f"an integer from 1 to {MAX_FUNCTION_EVALUATIONS:,}"),
        },
        "pysr": {
            "niterations": Field(INT, _positive_int, "a positive integer"),
            "population_size": Field(INT, _positive_int, "a positive integer"),
            "binary_operators": Field((list,), lambda v: len(v) > 0 and _is_string_list(v), "a non-empty list of PySR binary operator names"),
            "unary_operators": Field((list,), _is_string_list, "a list of PySR unary operator names"),
            "nested_constraints": Field((dict,), _is_nested_constraints,
                                        "a table of tables of integer nesting limits (-1 or more), as PySR's nested_constraints"),
            "maxsize": Field(INT, lambda v: v >= 7, "an integer of at least 7"),
            "model_selection": Field((str,), lambda v: v in ("best", "accuracy"), "'best' or 'accuracy'"),
            "timeout_in_seconds": Field(NUMBER, lambda v: v > 0, "a positive number of seconds"),
        },
        "operon": {
            "allowed_symbols": Field((str,), _is_operon_symbols, f"comma-separated names from {list(OPERON_SYMBOLS)}, including constant and variable"),
            "population_size": Field(INT, _positive_int, "a positive integer"),
            "generations": Field(INT, _positive_int, "a positive integer"),
            "max_evaluations": Field(INT, _positive_int, "a positive integer"),
            "max_length": Field(INT, lambda v: v >= 3, "an integer of at least 3"),
            "n_threads": Field(INT, lambda v: 0 < v <= 64, "an integer from 1 to 64"),
            "max_time_s": Field(INT, _positive_int, "a positive whole number of seconds"),
            "model_selection": Field((str,), lambda v: v in ("best", "accuracy"), "'best' or 'accuracy'"),
        },
    },
}


SCHEMA["methods"]["kan_minimal"] = SCHEMA["methods"]["kan"]


def _unknown_key_error(path, key, allowed):
    where = ".".join(path) or "the top level"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown key '{key}' in {where}.{hint} Allowed keys: {', '.join(sorted(allowed))}.")


def _check_field(path, value, field):
    name = ".".join(path)
    # bool is a subclass of int in Python, but true is not a count.
    type_ok = type(value) in field.types or (float in field.types and type(value) is int)
    if type_ok and type(value) is float and not math.isfinite(value):
        type_ok = False
    if not type_ok:
        raise ConfigError(f"invalid {name} = {_show(value)}: expected {_expected_type(field)}.")
    if field.check is not None and not field.check(value):
        raise ConfigError(f"invalid {name} = {_show(value)}: expected {field.rule}.")


def _expected_type(field):
    """Return what a value of ``field`` must be, naming its type once.

    Rules such as "an integer from 1 to 1000" or "a positive number of
    seconds" already name the type and are returned alone. Other rules,
    such as "'best' or 'accuracy'", follow the type's name.
    """
    type_names = [TYPE_NAMES[t] for t in field.types]
    if any(re.search(rf"\b{type_name.split()[-1]}\b", field.rule) for type_name in type_names):
        return field.rule
    return f"{' or '.join(type_names)}: {field.rule}"


def _show(value):
    """Return ``value`` as it would be written in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return repr(value)


def _check_signal(config):
    """Check the signal's name and the syntax of its expression; sampling it is left to the bench."""
    from bench import signals

    section = config["signal"]
    signals.check_name(section["name"], section["expression"])
    if section["name"] not in signals.SUITE:
        signals.parse_expression(section["expression"])


def _check_sample_count(config):
    start, stop = config["signal"]["domain"]
    rate = config["signal"]["sampling_rate_hz"]
    count = (stop - start) * rate
    if not MIN_SAMPLES <= count <= MAX_SAMPLES:
        raise ConfigError(
            f"invalid signal: domain [{start}, {stop}] at sampling_rate_hz = {rate} gives {count:.3g} samples; "
            f"choose a domain and rate that give {MIN_SAMPLES} to {MAX_SAMPLES:,} samples."
        )
    fraction = config["split"]["test_fraction"]
    test_count = round(fraction * round(count))
    if test_count < 2 or round(count) - test_count < 2:
        raise ConfigError(
            f"invalid split.test_fraction = {fraction}: it leaves {test_count} of {round(count)} samples for testing; "
            "choose a fraction that leaves at least 2 samples in each part."
        )


def _check_chirp_rates(config):
    settings = config["methods"]["ceiling_nls"]
    # The grid contains the rates -max … max at the step, 0 included: 2·floor(max / step) + 1 of them.
    ratio = settings["max_chirp_rate"] / settings["chirp_rate_step"]
    if ratio >= (MAX_CHIRP_RATES + 1) / 2:
        raise ConfigError(
            f"invalid methods.ceiling_nls: max_chirp_rate = {settings['max_chirp_rate']} at chirp_rate_step = "
            f"{settings['chirp_rate_step']} gives about {2 * ratio + 1:.3g} chirp rates to search; choose values "
            f"that give at most {MAX_CHIRP_RATES:,}."
        )


def _validate(config, schema, path=()):
    if not isinstance(config, dict):
        raise ConfigError(f"invalid section {'.'.join(path)}: expected a table of keys, got {config!r}.")
    for key, value in config.items():
        if key not in schema:
            raise _unknown_key_error(path, key, list(schema))
        spec = schema[key]
        if isinstance(spec, dict):
            _validate(value, spec, path + (key,))
        else:
            _check_field(path + (key,), value, spec)
    for key, spec in schema.items():
        if key not in config:
            raise ConfigError(f"missing key {'.'.join(path + (key,))} in the configuration.")


def _merge(base, override, schema=None):
    """Return ``base`` updated by ``override``, section by section.

    A setting whose value is a table, such as PySR's nested_constraints, is
    replaced whole, so that an override can remove entries.
    """
    schema = SCHEMA if schema is None else schema
    merged = copy.deepcopy(base)
    for key, value in override.items():
        section = schema.get(key) if isinstance(schema, dict) else None
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and isinstance(section, dict):
            merged[key] = _merge(merged[key], value, section)
        else:
            merged[key] = value
    return merged


def merge_overrides(overrides, extra):
    """Return the override table ``overrides`` (or None) with the values of ``extra`` put over it."""
    return _merge(overrides or {}, extra, SCHEMA)


def read_toml(path):
    """Return the table in the TOML file at ``path``; errors name the file and the problem."""
    path = Path(path)
    try:
        # TOML files are UTF-8, which allows a leading byte order mark, but tomllib reads one as a syntax
        # error, so "utf-8-sig" removes it. A byte order mark anywhere else still fails as invalid TOML.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}. Pass an existing TOML file to --config.") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {path} is a directory. Pass a TOML file to --config.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"configuration file {path} is not UTF-8 text. Pass a TOML file to --config.") from None
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror}. Check its permissions.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"invalid TOML in {path}: {error}. Fix the syntax and run again.") from None


def load_config(profile="default", overrides=None):
    """Return the validated configuration of ``profile`` with ``overrides`` (a dict) applied."""
    if profile not in PROFILES:
        close = difflib.get_close_matches(profile, list(PROFILES), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"unknown profile '{profile}'.{hint} Available profiles: {', '.join(PROFILES)}.")
    config = _merge(PROFILES[profile], overrides or {})
    _validate(config, SCHEMA)
    _check_sample_count(config)
    _check_chirp_rates(config)
    _check_signal(config)
    # Equivalent spellings of the same setting must give the same cache key.
    operon = config["methods"]["operon"]
    operon["allowed_symbols"] = ",".join(_operon_symbol_names(operon["allowed_symbols"]))
    sines = config["methods"]["kan_symbolic_sines"]
    sines["windows"] = [float(fraction) for fraction in sines["windows"]]
    # -0.0 equals 0.0 but prints as "-0" in run tables, and its runs would get keys of their own.
    config["run"]["noise_levels"] = [0.0 if level == 0 and math.copysign(1, level) < 0 else level
                                     for level in config["run"]["noise_levels"]]
    return config


def method_settings(config, method):
    """Return the settings section that configures ``method``."""
    engine = {
        "kan_numeric": "kan",
        "kan_numeric_minimal": "kan_minimal",
        "kan_numeric_smoothed": "kan_smoothing",
        "kan_symbolic": "kan_symbolic",
        "kan_symbolic_spectral": "kan_symbolic_spectral",
        "kan_symbolic_sines": "kan_symbolic_sines",
        "pysr_direct": "pysr",
        "pysr_distilled": "pysr",
        "operon_direct": "operon",
        "operon_distilled": "operon",
        "ceiling_nls": "ceiling_nls",
        "floor_mean": None,
        "floor_linear": None,
    }[method]
    # The floors have no settings.
    return {} if engine is None else config["methods"][engine]
