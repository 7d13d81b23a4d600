"""The contract every method adapter implements.

A method is fitted on training inputs and targets with a seed, and returns
its predictions on every sample of the signal (train, test and the points in
between, for figures). A symbolic method also returns its formula as a sympy
expression of ``bench.signal.X``. Its predictions must then be the formula's
values, so that the reported metrics are those of the formula itself.

The runner owns everything around the fit: seeds, caching, timing, metrics
and records. Adapters own their engine's quirks and nothing else.
"""

from dataclasses import dataclass, field

import numpy as np

# The labels of where a method's settings come from, which the report shows beside each method.
# "reference" marks a row that is not a competitor: a ceiling handed the target's form, or a floor.
PACKAGE_DEFAULTS = "package defaults"
CHOSEN_HERE = "settings chosen here"
REFERENCE = "reference"
SETTINGS_LABELS = (PACKAGE_DEFAULTS, CHOSEN_HERE, REFERENCE)


class RunFailed(Exception):
    """A method run failed at a named stage; the run is recorded as failed with this reason."""

    def __init__(self, stage, message):
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


@dataclass(frozen=True)
class Task:
    """The inputs of one fit: training data, the points to predict and the run's seed."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_all: np.ndarray
    seed: int


@dataclass
class Upstream:
    """The stored result of the run that a dependent method builds on (KAN numeric)."""

    record: dict
    arrays: dict


@dataclass
class FitResult:
    """The outcome of a fit: predictions on ``Task.x_all`` and, for symbolic methods, the formula.

    ``details`` must be JSON-serialisable and is stored in the run record.
    ``arrays`` are stored beside the record in an NPZ file, for dependent
    runs and figures.
    """

    predictions: np.ndarray
    expression: object = None
    details: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


class Method:
    """Base class of method adapters.

    Subclasses set ``name``, ``symbolic``, ``settings_label`` (one of
    SETTINGS_LABELS) and, for methods that build on another run of the same
    repetition, ``upstream`` (that method's name), and implement ``fit``.
    ``settings`` is the validated dictionary from the configuration; every
    entry feeds the run's cache key.
    """

    name = None
    symbolic = False
    settings_label = None
    upstream = None
    # Set by distilled methods: the upstream run's predictions replace the
    # true training targets.
    distilled = False

    def __init__(self, settings):
        self.settings = dict(settings)

    def unavailable_reason(self):
        """Return why this method cannot run on this machine, or None when it can.

        Called before every run; must be quick and must not import heavy
        engines that are missing.
        """
        return None

    def library_versions(self):
        """Return the versions of the libraries that compute this method's results."""
        return {}

    def fit(self, task, upstream=None):
        """Fit on ``task`` and return a FitResult; raise RunFailed with the stage on failure."""
        raise NotImplementedError
