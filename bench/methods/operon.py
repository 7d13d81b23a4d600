"""Operon adapters (pyoperon's scikit-learn estimator), fitted on the features [x, x²]."""

import importlib.metadata
import logging

import numpy as np

from bench import formulas
from bench.methods import selection
from bench.methods.base import FitResult, Method, RunFailed
from bench.signal import X

logger = logging.getLogger(__name__)

FEATURE_NAMES = ["x", "x_sq"]

# Decimal places of the coefficients in Operon's formula text. Its
# coefficients are single precision (about 7 significant digits), so 17
# decimals keep them whole for every magnitude above 1e-10.
FORMAT_PRECISION = 17


def features(x):
    """Return the design matrix [x, x²] of shape (n, 2)."""
    x = np.asarray(x, dtype=np.float64)
    return np.column_stack([x, x**2])


def standardisation(y):
    """Return the centre and scale that map targets ``y`` to mean 0 and standard deviation 1.

    Operon computes in single precision. Fitted to sin(2x) + x² times a
    factor (a population of 200 for 20 generations), it reached R² above
    0.9999 for factors from 1e10 to 1e16, but below 0 for 1e-10 and for
    1e17 and above. Standardised targets have the same scale whatever the
    signal's amplitude. Constant targets get the scale 1.
    """
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean(y)), float(np.std(y)) or 1.0


def build_estimator(settings, seed):
    """Return a fresh pyoperon SymbolicRegressor configured from ``settings`` and ``seed``.

    The generation and evaluation budgets bound the search. ``max_time_s``
    is a safety cap: a run that hits it depends on the machine's speed, so
    the run's details record whether it stopped early.
    """
    from pyoperon.sklearn import SymbolicRegressor

    return SymbolicRegressor(
        allowed_symbols=settings["allowed_symbols"],
        population_size=settings["population_size"],
        generations=settings["generations"],
        max_evaluations=settings["max_evaluations"],
        max_length=settings["max_length"],
        n_threads=settings["n_threads"],
        max_time=settings["max_time_s"],
        random_state=int(seed),
        # R² and tree length, so that the search returns a Pareto front of
        # accuracy against size from which the reported formula is picked
        # by the same rule as PySR's (bench.methods.selection).
        objectives=["r2", "length"],
    )


def front_of(estimator):
    """Return Operon's Pareto front as candidates sorted by length, with PySR-style scores.

    A candidate's complexity is its tree length (nodes, as PySR counts) and
    its loss the training MSE that pyoperon reports. Of candidates with the
    same length, the lowest loss is kept, as PySR keeps one per complexity.
    """
    by_length = {}
    for entry in estimator.pareto_front_:
        loss = float(entry["mean_squared_error"])
        incumbent = by_length.get(entry["length"])
        if incumbent is None or loss < incumbent["loss"]:
            by_length[entry["length"]] = {"complexity": int(entry["length"]), "loss": loss, "tree": entry["tree"]}
    front = [by_length[length] for length in sorted(by_length)]
    for candidate, score in zip(front, selection.scores(front)):
        candidate["score"] = score
    return front


def model_formula(estimator, model):
    """Return the sympy expression of ``model`` (an Operon tree) in terms of ``X``."""
    text = estimator.get_model_string(model, precision=FORMAT_PRECISION, names=FEATURE_NAMES)
    return formulas.parse(text, {"x": X, "x_sq": X**2})


class OperonDirect(Method):
    """Operon genetic programming fitted to the true training targets."""

    name = "operon_direct"
    settings_label = "settings chosen here"
    symbolic = True

    def library_versions(self):
        try:
            return {"pyoperon": importlib.metadata.version("pyoperon")}
        except importlib.metadata.PackageNotFoundError:
            return {"pyoperon": "not installed"}

    def unavailable_reason(self):
        if self.library_versions()["pyoperon"] == "not installed":
            return "pyoperon not installed; install the project with the 'methods' extra"
        return None

    def fit(self, task, upstream=None):
        estimator = build_estimator(self.settings, task.seed)
        centre, scale = standardisation(task.y_train)
        try:
            estimator.fit(features(task.x_train), (np.asarray(task.y_train, dtype=np.float64) - centre) / scale)
        except Exception as error:
            raise RunFailed("fit", f"{type(error).__name__}: {error}") from error

        # Every loss on the front is in standardised units, and the rule's
        # choice depends only on ratios of losses, so it picks the same
        # candidate as it would in the targets' units. Formulas and losses
        # are stored in the targets' units.
        rule = self.settings["model_selection"]
        try:
            front = front_of(estimator)
            chosen = front[selection.select(front, rule)]
            expression = centre + scale * model_formula(estimator, chosen["tree"])
            stored_front = [
                {"formula": formulas.to_string(centre + scale * model_formula(estimator, candidate["tree"])),
                 "complexity": candidate["complexity"], "loss": candidate["loss"] * scale**2,
                 "score": candidate["score"]}
                for candidate in front
            ]
        except Exception as error:
            raise RunFailed("formula", f"{type(error).__name__}: {error}") from error

        # Operon's own predictions are single precision and some versions
        # return an (n, 1) column. The reported metrics come from the
        # formula evaluated in float64, and the gap between the two is kept.
        # Cast before mapping back, since float32 times a Python float stays float32 in NumPy 2.
        engine_values = np.ravel(estimator.evaluate_model(chosen["tree"], features(task.x_all))).astype(np.float64)
        engine_predictions = centre + scale * engine_values
        predictions = formulas.evaluate(expression, task.x_all)
        generations = int(estimator.stats_["generations"])
        # pyoperon 0.6.2 reports an evaluation count of 0 whenever it has two
        # objectives (it reads the call count of the MultiEvaluator that combines them),
        # so no count is stored.
        details = {
            "generations": generations,
            "stopped_early": generations < self.settings["generations"],
            "target_centre": centre,
            "target_scale": scale,
            "formula_vs_engine_max_abs_diff": float(np.max(np.abs(predictions - engine_predictions))),
            "model_selection": rule,
            "chosen_complexity": chosen["complexity"],
            "front": stored_front,
        }
        return FitResult(predictions=predictions, expression=expression, details=details)


class OperonDistilled(OperonDirect):
    """Operon fitted to the KAN numeric model's predictions on the training inputs."""

    name = "operon_distilled"
    upstream = "kan_numeric"
    distilled = True
