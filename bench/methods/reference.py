"""Reference rows: an accuracy ceiling that is handed the target's form, and two floors that know nothing of it.

None of these methods competes with the KAN and symbolic regression methods.
``ceiling_nls`` fits the true structure, a sum of sinusoids
A·sin(φ + 2π(f·x + r·x²)), so its error shows what the data allow when the
form is known. ``floor_mean`` and ``floor_linear`` fit a constant and a
quadratic polynomial, so their error is what a method reaches by learning
nothing about the oscillations.

scipy is imported inside ``CeilingNLS.fit``, so that the report can read
these classes in an environment without scipy.
"""

import importlib.metadata
import logging
import math

import numpy as np
import sympy

from bench import formulas
from bench.methods.base import REFERENCE, FitResult, Method, RunFailed
from bench.signal import X

logger = logging.getLogger(__name__)

TWO_PI = 2 * math.pi
# A term's parameters in the order of the parameter vector: amplitude, phase, frequency, chirp rate.
TERM_PARAMETERS = ("amplitude", "phase", "frequency", "chirp_rate")
# The FFT of the seeding search is this many times longer than the resampled data (rounded up
# to a power of two), so its bins are an eighth of the natural resolution 1 / (x_max − x_min) apart.
ZERO_PADDING = 8
# The even grid of the seeding search has at most this many points per training input, which
# bounds its memory when the training inputs are spaced very unevenly.
MAX_GRID_POINTS_PER_INPUT = 4


class CeilingNLS(Method):
    """Nonlinear least squares of the true structure, an accuracy CEILING rather than a competitor.

    The model is Σ_k A_k·sin(φ_k + 2π(f_k·x + r_k·x²)) with ``terms`` terms,
    the form of the target. The method is handed that form, so it shows how
    close to the samples a formula of the right form gets, not what a method
    finds on its own.

    The terms are found one at a time. Each step resamples the residual of
    the terms found so far onto an even grid and removes a trial chirp
    exp(−2πi·r·x²) for every r of the chirp-rate grid. The largest peak of
    the windowed FFT over all r gives the new term's f and r. Its amplitude
    and phase come from linear least squares, and then
    ``scipy.optimize.least_squares`` refits all terms found so far with the
    analytic Jacobian. The fit uses no random numbers, so every seed gives
    the same result.
    """

    name = "ceiling_nls"
    symbolic = True
    settings_label = REFERENCE

    def library_versions(self):
        try:
            return {"scipy": importlib.metadata.version("scipy")}
        except importlib.metadata.PackageNotFoundError:
            return {"scipy": "not installed"}

    def unavailable_reason(self):
        if self.library_versions()["scipy"] == "not installed":
            return "scipy not installed; install the project with the 'methods' extra"
        return None

    def fit(self, task, upstream=None):
        x = np.asarray(task.x_train, dtype=np.float64)
        y = np.asarray(task.y_train, dtype=np.float64)
        grid, values, step = even_resample(x, y)
        chirp_rates = chirp_rate_grid(self.settings["max_chirp_rate"], self.settings["chirp_rate_step"])

        parameters = np.empty(0)
        seeds, stages = [], []
        for _ in range(self.settings["terms"]):
            residual_on_grid = values - sinusoid_sum(parameters, grid)
            frequency, chirp_rate = strongest_component(grid, residual_on_grid, step, chirp_rates)
            amplitude, phase = amplitude_and_phase(x, y - sinusoid_sum(parameters, x), frequency, chirp_rate)
            logger.debug("ceiling_nls: term %d seeded at f = %g, r = %g, A = %g", len(seeds) + 1, frequency, chirp_rate,
                         amplitude)
            seeds.append(dict(zip(TERM_PARAMETERS, (amplitude, phase, frequency, chirp_rate))))
            parameters = np.concatenate([parameters, [amplitude, phase, frequency, chirp_rate]])
            solution = self._least_squares(parameters, x, y)
            parameters = solution.x
            stages.append({"terms": len(seeds), "status": int(solution.status), "nfev": int(solution.nfev),
                           "cost": float(solution.cost), "message": str(solution.message)})

        if solution.status == 0:
            raise RunFailed("fit", f"least_squares used max_nfev = {self.settings['max_nfev']} evaluations before "
                                   "its tolerances were met; raise methods.ceiling_nls.max_nfev")
        terms = normal_form(parameters)
        expression = sinusoid_expression(terms)
        details = {
            "terms": [dict(zip(TERM_PARAMETERS, term)) for term in terms],
            "seeds": seeds,
            "stages": stages,
            "seeding_grid": {"points": int(grid.size), "step": step, "chirp_rates": int(chirp_rates.size)},
        }
        return FitResult(predictions=formulas.evaluate(expression, task.x_all), expression=expression, details=details)

    def _least_squares(self, parameters, x, y):
        from scipy.optimize import least_squares

        settings = self.settings
        try:
            return least_squares(
                lambda p: sinusoid_sum(p, x) - y, parameters, jac=lambda p: sinusoid_jacobian(p, x),
                method=settings["method"], ftol=settings["ftol"], xtol=settings["xtol"], gtol=settings["gtol"],
                max_nfev=settings["max_nfev"],
                # Amplitudes are near 1 and frequencies tens of cycles, so each parameter is
                # scaled by its column of the Jacobian.
                x_scale="jac",
            )
        except (ValueError, np.linalg.LinAlgError) as error:
            raise RunFailed("fit", f"least_squares: {type(error).__name__}: {error}") from error


class FloorMean(Method):
    """The mean of the training targets, a constant: an accuracy FLOOR rather than a competitor."""

    name = "floor_mean"
    symbolic = True
    settings_label = REFERENCE

    def fit(self, task, upstream=None):
        expression = sympy.Float(float(np.mean(task.y_train)))
        return FitResult(predictions=formulas.evaluate(expression, task.x_all), expression=expression,
                         details={"mean": float(expression)})


class FloorLinear(Method):
    """Ordinary least squares on the features [1, x, x²], a quadratic: an accuracy FLOOR rather than a competitor.

    The features are those the symbolic regression methods get, without
    any operator to combine them.
    """

    name = "floor_linear"
    symbolic = True
    settings_label = REFERENCE

    def fit(self, task, upstream=None):
        x = np.asarray(task.x_train, dtype=np.float64)
        design = np.column_stack([np.ones_like(x), x, x**2])
        coefficients, _, rank, _ = np.linalg.lstsq(design, np.asarray(task.y_train, dtype=np.float64), rcond=None)
        if rank < design.shape[1]:
            raise RunFailed("fit", f"the features [1, x, x²] have rank {rank} on the training inputs; "
                                   "least squares needs at least 3 distinct inputs")
        constant, linear, quadratic = (sympy.Float(float(value)) for value in coefficients)
        expression = constant + linear * X + quadratic * X**2
        return FitResult(predictions=formulas.evaluate(expression, task.x_all), expression=expression,
                         details={"coefficients": [float(value) for value in coefficients]})


def sinusoid_sum(parameters, x):
    """Return Σ_k A_k·sin(φ_k + 2π(f_k·x + r_k·x²)) at ``x`` for the flat vector [A_1, φ_1, f_1, r_1, A_2, …]."""
    amplitude, phase, frequency, chirp_rate = (column[:, None] for column in _by_term(parameters))
    return np.sum(amplitude * np.sin(phase + TWO_PI * (frequency * x + chirp_rate * x**2)), axis=0)


def sinusoid_jacobian(parameters, x):
    """Return the derivatives of ``sinusoid_sum`` with respect to each parameter, shape (len(x), len(parameters))."""
    amplitude, phase, frequency, chirp_rate = (column[:, None] for column in _by_term(parameters))
    angle = phase + TWO_PI * (frequency * x + chirp_rate * x**2)
    slope = amplitude * np.cos(angle)
    # Rows are terms, then the four derivatives of each term in parameter order.
    columns = np.stack([np.sin(angle), slope, slope * (TWO_PI * x), slope * (TWO_PI * x**2)], axis=1)
    return columns.reshape(-1, x.size).T


def _by_term(parameters):
    """Return the columns A, φ, f and r of the flat parameter vector, one entry per term."""
    return np.reshape(parameters, (-1, len(TERM_PARAMETERS))).T


def even_resample(x, y):
    """Return (grid, values, step): ``y`` linearly interpolated onto an even grid from min(x) to max(x).

    The step is the median spacing of the sorted inputs, which for a random
    subset of an even grid is that grid's step, so the resampled data keep
    the sampling rate. The grid has at most MAX_GRID_POINTS_PER_INPUT
    points per input, and a coarser step where that bound requires it.
    """
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    spacings = np.diff(x)
    if x.size < 2 or x[-1] <= x[0]:
        raise RunFailed("seed", f"the training inputs span no interval ({x.size} inputs); at least 2 distinct inputs are needed")
    step = float(np.median(spacings[spacings > 0]))
    count = min(int(round((x[-1] - x[0]) / step)) + 1, MAX_GRID_POINTS_PER_INPUT * x.size)
    grid = np.linspace(x[0], x[-1], count)
    return grid, np.interp(grid, x, y), float(grid[1] - grid[0])


def chirp_rate_grid(max_chirp_rate, step):
    """Return the chirp rates −max … max at ``step`` apart, 0 included, in cycles per unit of x²."""
    count = int(math.floor(max_chirp_rate / step + 1e-9))
    return step * np.arange(-count, count + 1, dtype=np.float64)


def strongest_component(grid, values, step, chirp_rates):
    """Return (f, r): the largest peak, with f ≥ 0, of |FFT(w·v·exp(−2πi·r·x²))| over the chirp rates r.

    Removing the trial chirp turns a term with that chirp rate into a tone
    at f, which a Hann window w keeps narrow. ``values`` is sampled at the
    even ``grid`` spaced ``step`` apart.
    """
    size = ZERO_PADDING * 2 ** math.ceil(math.log2(grid.size))
    frequencies = np.fft.fftfreq(size, d=step)[: size // 2]
    windowed = np.hanning(grid.size) * values
    best = (-1.0, 0.0, 0.0)
    for chirp_rate in chirp_rates:
        spectrum = np.abs(np.fft.fft(windowed * np.exp(-2j * np.pi * chirp_rate * grid**2), n=size)[: size // 2])
        peak = int(np.argmax(spectrum))
        if spectrum[peak] > best[0]:
            best = (float(spectrum[peak]), float(frequencies[peak]), float(chirp_rate))
    return best[1], best[2]


def amplitude_and_phase(x, y, frequency, chirp_rate):
    """Return (A, φ) of the least-squares fit of A·sin(φ + θ) to ``y``, with θ = 2π(f·x + r·x²).

    A·sin(φ + θ) = a·sin θ + b·cos θ with a = A·cos φ and b = A·sin φ, which
    is linear in a and b.
    """
    angle = TWO_PI * (frequency * x + chirp_rate * x**2)
    design = np.column_stack([np.sin(angle), np.cos(angle)])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(math.hypot(a, b)), float(math.atan2(b, a))


def normal_form(parameters):
    """Return the terms as (A, φ, f, r) tuples with A > 0, f ≥ 0 and φ in [0, 2π), sorted by f then r.

    The same normal form as ``bench.recovery``: sin(−u) = −sin(u) turns a
    negative f into a positive one, and −sin(u) = sin(u + π) a negative A.
    """
    terms = []
    for amplitude, phase, frequency, chirp_rate in _by_term(parameters).T:
        if frequency < 0 or (frequency == 0 and chirp_rate < 0):
            amplitude, phase, frequency, chirp_rate = -amplitude, -phase, -frequency, -chirp_rate
        if amplitude < 0:
            amplitude, phase = -amplitude, phase + math.pi
        phase = phase % TWO_PI
        # A tiny negative phase wraps to exactly 2π in float64, which is 0.
        terms.append((float(amplitude), 0.0 if phase >= TWO_PI else float(phase), float(frequency), float(chirp_rate)))
    return sorted(terms, key=lambda term: (term[2], term[3]))


def sinusoid_expression(terms):
    """Return Σ A·sin(φ + 2π(f·x + r·x²)) over ``terms``, (A, φ, f, r) tuples, as a sympy expression of X."""
    return sympy.Add(*(
        sympy.Float(amplitude) * sympy.sin(sympy.Float(phase) + 2 * sympy.pi * (sympy.Float(frequency) * X
                                                                                  + sympy.Float(chirp_rate) * X**2))
        for amplitude, phase, frequency, chirp_rate in terms
    ))
