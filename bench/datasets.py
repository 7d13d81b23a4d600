"""Real-world series shipped with installed packages, read without any download.

A series is placed on the configured domain at evenly spaced positions, one
per value, in its own order, and standardised to mean 0 and standard
deviation 1. The same positions come from ``bench.signal.sample_grid`` at
the rate of one value per 1/rate, so the shared split code applies.
"""

import numpy as np
from sympy.utilities.lambdify import implemented_function

from bench.errors import ConfigError, DataError

DATASETS = ("sunspots",)


def load(name):
    """Return the standardised values of the series ``name`` as a float64 array, in time order."""
    if name != "sunspots":
        raise ConfigError(f"unknown dataset \"{name}\"; known datasets: {', '.join(DATASETS)}.")
    try:
        from statsmodels.datasets import sunspots
    except ImportError:
        raise ConfigError("the sunspots signal needs statsmodels, which is not installed; install the project "
                          "with the 'methods' or 'render' extra (pip install -e '.[methods]').") from None
    table = sunspots.load_pandas().data.sort_values("YEAR")
    values = table["SUNACTIVITY"].to_numpy(dtype=np.float64)
    return (values - values.mean()) / values.std()


def sample_function(name, values, start, rate):
    """Return a sympy function f whose value at the i-th sample position start + i/rate is ``values[i]``.

    ``bench.signal.make_split`` evaluates f(x) on those positions. A position
    that is not one of them raises DataError.
    """
    def lookup(x):
        position = (np.asarray(x, dtype=np.float64) - start) * rate
        index = np.rint(position).astype(np.int64)
        if np.any(np.abs(position - index) > 1e-6) or index.min() < 0 or index.max() >= values.size:
            raise DataError(f"the {name} series is defined only at its {values.size} sample positions.")
        return values[index]

    return implemented_function(name, lookup)
