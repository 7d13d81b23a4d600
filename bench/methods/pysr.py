"""PySR adapters: symbolic regression on the features x and x**2.

``pysr_direct`` fits the true training targets. ``pysr_distilled`` fits the
KAN's predictions, which the runner puts in ``Task.y_train``.

PySR runs its search in Julia through juliacall. Importing ``pysr`` starts
Julia, and juliapkg downloads Julia when it finds none, so this module imports
``pysr`` only inside ``fit``. ``unavailable_reason`` first checks for a Julia
executable by reading the same settings as juliacall and juliapkg, without
importing either.
"""

import copy
import importlib.metadata
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import sympy
from sympy.core.function import AppliedUndef

from bench import formulas
from bench.errors import ConfigError
from bench.methods import selection
from bench.methods.base import FitResult, Method, RunFailed
from bench.signal import X

logger = logging.getLogger(__name__)

# pysr/juliapkg.json of PySR 2.7.2 accepts Julia "=1.10.0, 1.10.3" (1.10.0, or 1.10.3 up to 2)
# and juliacall/juliapkg.json of juliacall 0.9.36 accepts "^1.10.3". Both must hold.
REQUIRED_JULIA = "Julia >= 1.10.3 and < 2"
MIN_JULIA = (1, 10, 3)
MAX_JULIA = (2, 0, 0)
# `julia --version` prints its version without starting the runtime; this bounds a stuck executable.
JULIA_VERSION_TIMEOUT_S = 30

# The -X option and environment variable that name a Julia executable. Both libraries read
# the -X option first (juliapkg 0.1.28 state.get_config, juliacall 0.9.36 option).
JULIAPKG_EXE = ("juliapkg-exe", "PYTHON_JULIAPKG_EXE")
JULIACALL_EXE = ("juliacall-exe", "PYTHON_JULIACALL_EXE")
JULIACALL_PROJECT = ("juliacall-project", "PYTHON_JULIACALL_PROJECT")

# PySR searches over x and x**2, so chirp terms such as sin(a*x + b*x**2) stay small trees.
FEATURE_NAMES = ("x", "x_sq")
FEATURE_EXPRESSIONS = {"x": X, "x_sq": X**2}

MODEL_SELECTIONS = selection.RULES


def read_julia_option(option):
    """Return the value of a juliapkg or juliacall option and the name of the setting it came from.

    ``option`` is an (-X key, environment variable) pair. An empty value counts as
    unset, as it does for juliapkg.
    """
    x_key, variable = option
    value = sys._xoptions.get(x_key)
    if isinstance(value, str) and value:
        return value, f"-X {x_key}"
    value = os.environ.get(variable)
    if value:
        return value, variable
    return None, variable


def locate_julia():
    """Return ``(path, None)`` for a usable Julia executable that PySR would use, or ``(None, reason)``.

    The executable found is run with ``--version`` (``check_julia_version``).

    The order follows juliacall 0.9.36 and juliapkg 0.1.28. juliacall uses
    PYTHON_JULIACALL_EXE when PYTHON_JULIACALL_PROJECT is also set, and raises
    when only one of them is set. Otherwise juliapkg uses PYTHON_JULIAPKG_EXE
    when set, and raises rather than look further when that is not an
    executable. Otherwise this function looks for ``julia`` on PATH.

    NOTE: juliapkg also looks in its own install directory and in juliaup's
    before PATH, and juliacall reads PYTHON_JULIACALL_BINDIR. This function
    does neither, so such a Julia needs PYTHON_JULIAPKG_EXE.
    """
    path, reason = _find_julia_executable()
    if path is None:
        return None, reason
    return check_julia_version(path)


def _find_julia_executable():
    juliacall_exe, juliacall_exe_source = read_julia_option(JULIACALL_EXE)
    juliacall_project, juliacall_project_source = read_julia_option(JULIACALL_PROJECT)
    if juliacall_exe and juliacall_project:
        return check_configured_julia(juliacall_exe, juliacall_exe_source)
    if juliacall_exe:
        return None, f"{juliacall_exe_source} is set but {juliacall_project_source} is not. juliacall needs both or neither"
    if juliacall_project:
        return None, f"{juliacall_project_source} is set but {juliacall_exe_source} is not. juliacall needs both or neither"

    juliapkg_exe, juliapkg_exe_source = read_julia_option(JULIAPKG_EXE)
    if juliapkg_exe:
        return check_configured_julia(juliapkg_exe, juliapkg_exe_source)

    path = shutil.which("julia")
    if path is None:
        return None, (
            f"no Julia executable found: julia is not on PATH and {JULIAPKG_EXE[1]} is not set. "
            f"PySR 2.7.2 needs {REQUIRED_JULIA}. Install it (for example with juliaup) "
            f"or set {JULIAPKG_EXE[1]} to its path"
        )
    return path, None


def check_julia_version(path):
    """Return ``(path, None)`` when ``path --version`` reports a Julia in the supported range, else ``(None, reason)``."""
    try:
        completed = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=JULIA_VERSION_TIMEOUT_S)
        output = completed.stdout.strip()
    except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError) as error:
        return None, f"{path} --version failed ({type(error).__name__}: {error}). Point PySR at a {REQUIRED_JULIA} executable"
    match = re.fullmatch(r"julia version (\d+)\.(\d+)\.(\d+)\S*", output)
    if completed.returncode != 0 or match is None:
        first_line = output.splitlines()[0][:80] if output else "nothing"
        return None, (f"{path} is not a Julia executable: `{path} --version` printed {first_line!r} and exited with "
                      f"{completed.returncode}. Point PySR at a {REQUIRED_JULIA} executable")
    version = tuple(int(part) for part in match.groups())
    if not MIN_JULIA <= version < MAX_JULIA:
        return None, (f"{path} is Julia {'.'.join(map(str, version))}, but PySR 2.7.2 needs {REQUIRED_JULIA}. "
                      "Install a Julia in that range")
    return path, None


def check_configured_julia(value, source):
    """Return ``(path, None)`` when ``value`` names an executable file, else ``(None, reason)``.

    ``value`` may be a path or a bare name to look up on PATH, as the libraries accept both.
    """
    path = shutil.which(value)
    if path is None:
        return None, (
            f"{source}={value!r} is not an executable file. Point it at a {REQUIRED_JULIA} executable or unset it"
        )
    return path, None


def find_julia():
    """Return the path of the Julia executable that PySR would use, or None when there is none."""
    path, _ = locate_julia()
    return path


def julia_unavailable_reason():
    """Return why PySR cannot find Julia on this machine, or None when it can."""
    _, reason = locate_julia()
    return reason


def check_model_selection(model_selection):
    """Raise ConfigError unless ``model_selection`` is one of MODEL_SELECTIONS."""
    if model_selection not in MODEL_SELECTIONS:
        raise ConfigError(f"invalid PySR model_selection {model_selection!r}. Expected one of {list(MODEL_SELECTIONS)}")


def build_estimator_kwargs(settings, seed, tempdir=None):
    """Build the PySRRegressor keyword arguments for ``settings`` and the run's ``seed``.

    The search is deterministic, serial, seeded and in float64, and prints
    nothing. PySR writes its hall-of-fame files to a new directory under
    ``tempdir``, or under the system's temporary directory when it is None.
    ``populations`` is passed only when ``settings`` contains it, so PySR's
    default applies otherwise.
    """
    check_model_selection(settings["model_selection"])
    kwargs = {
        "model_selection": settings["model_selection"],
        "binary_operators": copy.deepcopy(settings["binary_operators"]),
        "unary_operators": copy.deepcopy(settings["unary_operators"]),
        "nested_constraints": copy.deepcopy(settings["nested_constraints"]),
        "niterations": settings["niterations"],
        "population_size": settings["population_size"],
        "maxsize": settings["maxsize"],
        "timeout_in_seconds": settings.get("timeout_in_seconds"),
        # PySR is reproducible only with all three: deterministic=True, serial
        # execution and a fixed random_state.
        "deterministic": True,
        "parallelism": "serial",
        "random_state": seed,
        "precision": 64,
        "progress": False,
        "verbosity": 0,
        # By default PySR 2.7.2 writes to ./outputs/<run_id>. With temp_equation_file it
        # writes to mkdtemp(dir=tempdir) and skips its checkpoint pickle. It never reads
        # delete_tempfiles, so fit deletes tempdir itself.
        "temp_equation_file": True,
        "tempdir": tempdir,
    }
    if "populations" in settings:
        kwargs["populations"] = settings["populations"]
    return kwargs


def feature_matrix(x):
    """Return the PySR input columns [x, x**2] for the 1-D array ``x``."""
    x = np.asarray(x, dtype=np.float64)
    return np.column_stack([x, x**2])


def select_equation(equations, model_selection):
    """Return the index label of the row that ``model_selection`` picks from PySR's equations table.

    The rule is PySR 2.7.2's (pysr.sr.idx_model_selection), shared with the
    other engines in ``bench.methods.selection``. A table without a score
    column falls back to "accuracy", as in PySR.
    """
    check_model_selection(model_selection)
    if "score" not in equations.columns:
        model_selection = "accuracy"
    front = [
        {"loss": float(row["loss"]), "score": float(row["score"]) if "score" in row.index else None}
        for _, row in equations.iterrows()
    ]
    return equations.index[selection.select(front, model_selection)]


def parse_equation(text):
    """Parse one PySR equation string into a sympy expression of ``X``.

    Raises RunFailed at stage "formula" when the text does not parse or uses
    functions or variables that a formula of x cannot contain.
    """
    try:
        expression = formulas.parse(text, FEATURE_EXPRESSIONS)
    except (sympy.SympifyError, TypeError) as error:
        raise RunFailed("formula", f"failed to parse PySR equation {text!r}: {error}") from error
    if not isinstance(expression, sympy.Expr):
        raise RunFailed("formula", f"PySR equation {text!r} parsed to {type(expression).__name__}, not an expression")

    # NOTE: PySR operator names that sympy spells differently (square, cube, neg, inv and
    # others in pysr.export_sympy.sympy_mappings) are not mapped, so they end up here.
    unknown = sorted({type(call).__name__ for call in expression.atoms(AppliedUndef)})
    if unknown:
        raise RunFailed("formula", f"PySR equation {text!r} uses functions that sympy does not define: {unknown}")
    extra = sorted(str(symbol) for symbol in expression.free_symbols - {X})
    if extra:
        raise RunFailed(
            "formula", f"PySR equation {text!r} has variables other than {list(FEATURE_NAMES)}: {extra}"
        )
    return expression


def json_number(value):
    """Return ``value`` as a Python float, or None when it is NaN or infinite, which JSON cannot store."""
    number = float(value)
    return number if math.isfinite(number) else None


def describe_row(row):
    """Return one row of PySR's equations table as a JSON-safe dict."""
    return {
        "complexity": int(row["complexity"]),
        "loss": json_number(row["loss"]),
        "score": json_number(row["score"]) if "score" in row.index else None,
        "equation": str(row["equation"]),
    }


def parse_equations(equations, model_selection):
    """Choose an equation from PySR's equations table and return it as a sympy expression of ``X``.

    ``equations`` has the shape of ``PySRRegressor.equations_`` in PySR 2.7.2:
    one row per complexity on the Pareto front, with the columns complexity,
    loss, equation, score (with the default log loss scale), sympy_format and
    lambda_format. Only the first four are read. Returns the expression and
    details: the chosen row and the whole front, with non-finite losses and
    scores stored as None. Raises RunFailed at stage "formula" when the table
    is empty or the chosen equation is not a formula of x.
    """
    if len(equations) == 0:
        raise RunFailed("formula", "PySR returned an empty equations table")

    label = select_equation(equations, model_selection)
    chosen = equations.loc[label]
    expression = parse_equation(chosen["equation"])

    details = {"model_selection": model_selection, **describe_row(chosen)}
    details["front"] = [describe_row(row) for _, row in equations.iterrows()]
    return expression, details


class PySRDirect(Method):
    """PySR fitted on the training targets, with the features x and x**2."""

    name = "pysr_direct"
    settings_label = "settings chosen here"
    symbolic = True

    def unavailable_reason(self):
        try:
            importlib.metadata.version("pysr")
        except importlib.metadata.PackageNotFoundError:
            return "pysr is not installed. Install the 'methods' extra: pip install -e '.[methods]'"
        return julia_unavailable_reason()

    def library_versions(self):
        try:
            return {"pysr": importlib.metadata.version("pysr")}
        except importlib.metadata.PackageNotFoundError:
            return {"pysr": "not installed"}

    def fit(self, task, upstream=None):
        features = feature_matrix(task.x_train)
        targets = np.asarray(task.y_train, dtype=np.float64)
        if self.settings.get("timeout_in_seconds") is not None:
            logger.warning(
                "%s: timeout_in_seconds=%s stops the search on wall-clock time, so the result "
                "depends on machine speed even with deterministic=True",
                self.name,
                self.settings["timeout_in_seconds"],
            )

        logger.info("%s: fitting PySR on %d samples with seed %d", self.name, targets.size, task.seed)
        with tempfile.TemporaryDirectory(prefix="bench-pysr-") as tempdir:
            kwargs = build_estimator_kwargs(self.settings, task.seed, tempdir=tempdir)
            try:
                from pysr import PySRRegressor

                model = PySRRegressor(**kwargs)
                model.fit(features, targets, variable_names=list(FEATURE_NAMES))
                equations = model.equations_
            except Exception as error:
                raise RunFailed("fit", f"{type(error).__name__}: {error}") from error

        expression, details = parse_equations(equations, self.settings["model_selection"])
        logger.info("%s: selected equation %s", self.name, details["equation"])
        try:
            predictions = formulas.evaluate(expression, task.x_all)
        except (ValueError, TypeError) as error:
            raise RunFailed("formula", f"failed to evaluate formula {expression}: {error}") from error
        return FitResult(predictions=predictions, expression=expression, details=details)


class PySRDistilled(PySRDirect):
    """PySR fitted on the KAN's predictions at the training points instead of the true targets."""

    name = "pysr_distilled"
    upstream = "kan_numeric"
    distilled = True
