"""Per-term recovery: which sinusoidal terms of the target a recovered formula contains.

A formula is expanded with sympy and split into sinusoids
A·sin(φ0 + 2π(f·x + r·x²)) and a remainder of every other term. The true
terms come from splitting the target the same way. Each true term is then
judged ``exact``, ``almost`` or ``missed`` by comparing its parameters with
those of the closest recovered sinusoid, and the match is confirmed by
evaluating both terms as written on a dense grid of the domain.

This module is report-side: it reads stored formulas and fits nothing.
"""

import cmath
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import sympy

from bench.signal import X, evaluate_expression, target_expression

logger = logging.getLogger(__name__)

TWO_PI = 2 * math.pi
# The verdicts from best to worst, and the relative tolerance of each verdict that has one.
VERDICTS = ("exact", "almost", "missed")
DEFAULT_TOLERANCES = {"exact": 1e-6, "almost": 1e-2}
# Sinusoids whose f and r agree to this relative difference are one sinusoid written twice,
# so they are merged. The bound only absorbs rounding in float64 arithmetic.
MERGE_RELATIVE_TOLERANCE = 1e-12
# A merged sinusoid whose amplitude is this fraction of the summed amplitudes or less has cancelled out.
CANCEL_RELATIVE_TOLERANCE = 1e-12
# The value check samples the domain at this many points per cycle of the highest instantaneous
# frequency of the two terms, and never at fewer than MIN_GRID_POINTS points.
POINTS_PER_CYCLE = 32
MIN_GRID_POINTS = 20_001


@dataclass(frozen=True)
class Sinusoid:
    """A term A·sin(φ0 + 2π(f·x + r·x²)) in normal form.

    The normal form has A > 0, f ≥ 0 (r ≥ 0 when f = 0) and φ0 in [0, 2π),
    so one function has one set of parameters. With x in seconds, f is in Hz
    and the instantaneous frequency f + 2·r·x changes by 2·r Hz per second.
    ``source`` is the sum of the formula's terms that make up the sinusoid,
    as written there. The value check evaluates it, so it does not rely on
    the parameters.
    """

    amplitude: float
    frequency_hz: float
    chirp_rate: float
    phase: float
    source: sympy.Expr = field(compare=False, repr=False)

    def instantaneous_frequency(self, x):
        """Return the instantaneous frequency f + 2·r·x in Hz at ``x``."""
        return self.frequency_hz + 2 * self.chirp_rate * np.asarray(x, dtype=np.float64)

    def max_frequency(self, domain):
        """Return the maximum of |f + 2·r·x| over ``domain``, reached at one of its ends because it is linear in x."""
        return float(np.max(np.abs(self.instantaneous_frequency(domain))))

    def describe(self, domain):
        """Return a short name: "10 Hz tone" for r = 0, else "chirp 30–70 Hz" with the frequencies at the ends of ``domain``."""
        if self.chirp_rate == 0:
            return f"{self.frequency_hz:g} Hz tone"
        start, stop = self.instantaneous_frequency(domain)
        return f"chirp {start:g}–{stop:g} Hz"


@dataclass(frozen=True)
class Decomposition:
    """An expression split into sinusoids, sorted by frequency and chirp rate, and a remainder of every other term."""

    sinusoids: tuple[Sinusoid, ...]
    remainder: sympy.Expr


@dataclass(frozen=True)
class ParameterErrors:
    """Relative errors of a fitted sinusoid's parameters against a true one.

    The amplitude error is |A − A*| / A*. The frequency error is |f − f*|
    divided by f*, or by |r*| when f* = 0. The chirp-rate error is |r − r*|
    divided by |r*|, or by f* when r* = 0. A fit of a pure tone must then
    have |r| ≤ tol·f*, so that its instantaneous frequency drifts by at most
    tol·f* over a domain of half-width one half. The phase
    error is the phase difference wrapped into [0, π], divided by 2π.
    """

    amplitude: float
    frequency: float
    chirp_rate: float
    phase: float

    @property
    def largest(self):
        """The largest of the four errors, which a verdict's tolerance bounds."""
        return max(self.amplitude, self.frequency, self.chirp_rate, self.phase)


@dataclass(frozen=True)
class TermVerdict:
    """The verdict on one true term.

    ``fitted`` is the recovered sinusoid compared with the true one, which
    for a missed term is only the closest one left, and None when the
    formula has no sinusoid to compare. ``value_error`` is the relative RMS
    difference of the two terms as written, on a dense grid of the domain.
    It is None where no comparison was made.
    """

    name: str
    verdict: str
    true: Sinusoid
    fitted: Sinusoid | None
    errors: ParameterErrors | None
    value_error: float | None


@dataclass(frozen=True)
class Recovery:
    """The verdicts on every true term of one formula.

    ``suspect`` lists the recovered sinusoids whose instantaneous frequency
    exceeds the Nyquist limit ``nyquist_hz`` somewhere on the domain. On the
    sampled grid such a term equals a lower-frequency one, so the samples
    alone cannot confirm it. ``remainder`` is the sum of the formula's terms
    that are not sinusoids.
    """

    terms: tuple[TermVerdict, ...]
    suspect: tuple[Sinusoid, ...]
    remainder: sympy.Expr
    nyquist_hz: float

    def verdict_of(self, name):
        """Return the verdict on the true term named ``name``."""
        for term in self.terms:
            if term.name == name:
                return term.verdict
        raise KeyError(f"no true term named {name!r}. The true terms are {[term.name for term in self.terms]}.")


def decompose(expression):
    """Split ``expression``, a sympy expression of ``X``, into sinusoids and a remainder.

    After ``sympy.expand``, each added term of the form c·sin(p(x)) or
    c·cos(p(x)), with c a real number and p a real polynomial in x of degree
    1 or 2, becomes a sinusoid. A cosine is a sine with its phase moved by
    π/2. Every other term goes to the remainder: constants, polynomials,
    products of functions, powers of sines and sines of anything else.
    Sinusoids with the same f and r are merged by adding their phasors.
    """
    expanded = sympy.expand(sympy.sympify(expression))
    sinusoids, others = [], []
    for term in sympy.Add.make_args(expanded):
        sinusoid = _as_sinusoid(term)
        if sinusoid is None:
            others.append(term)
        else:
            sinusoids.append(sinusoid)
    merged = sorted(_merge(sinusoids), key=lambda item: (item.frequency_hz, item.chirp_rate))
    return Decomposition(sinusoids=tuple(merged), remainder=sympy.Add(*others))


def true_terms(target=None):
    """Return the sinusoids of ``target``, by default the bench's target, split by ``decompose``.

    Raises ValueError when the target has no sinusoid. A remainder of the
    target is not judged, and it is logged.
    """
    target = target_expression() if target is None else target
    decomposition = decompose(target)
    if not decomposition.sinusoids:
        raise ValueError(f"the target {target} has no sinusoidal term to judge recovery by")
    if decomposition.remainder != 0:
        logger.info("the target's terms %s are not sinusoids, so recovery does not judge them", decomposition.remainder)
    return decomposition.sinusoids


def judge(expression, *, domain, sampling_rate_hz, target=None, tolerances=None):
    """Judge how well ``expression`` recovers each sinusoidal term of ``target``, by default the bench's target.

    Each true term is paired with one recovered sinusoid, the closest first,
    so no recovered sinusoid counts for two true terms. A pair is ``exact``
    when every relative error of ``ParameterErrors`` is at most
    ``tolerances["exact"]`` and the value check passes at that tolerance,
    ``almost`` when both pass at ``tolerances["almost"]``, and
    ``missed`` otherwise. The value check evaluates the two terms as written
    and requires their relative RMS difference to stay within the bound
    that the parameter tolerance implies (see ``value_bound``). So a term
    written in another form that equals the true one passes, and a
    decomposition that got a sign or phase wrong fails.

    ``domain`` is the (start, stop) interval of x and ``sampling_rate_hz``
    the sampling rate, whose half is the Nyquist limit of the suspect flag.
    """
    tolerances = _check_tolerances(tolerances)
    start, stop = _check_domain(domain)
    truth = true_terms(target)
    decomposition = decompose(expression)
    pairs = _pair(truth, decomposition.sinusoids)
    verdicts = tuple(_judge_term(true, fitted, (start, stop), tolerances) for true, fitted in zip(truth, pairs))

    nyquist = sampling_rate_hz / 2
    suspect = tuple(item for item in decomposition.sinusoids if item.max_frequency((start, stop)) > nyquist)
    if suspect:
        logger.debug("%d recovered sinusoids exceed the Nyquist limit %g Hz: %s", len(suspect), nyquist, suspect)
    return Recovery(terms=verdicts, suspect=suspect, remainder=decomposition.remainder, nyquist_hz=nyquist)


def parameter_errors(fitted, true):
    """Return the relative errors of ``fitted`` against ``true``, as ``ParameterErrors`` defines them."""
    frequency_scale = true.frequency_hz if true.frequency_hz != 0 else abs(true.chirp_rate)
    chirp_scale = abs(true.chirp_rate) if true.chirp_rate != 0 else true.frequency_hz
    phase_difference = (fitted.phase - true.phase) % TWO_PI
    wrapped = min(phase_difference, TWO_PI - phase_difference)
    return ParameterErrors(
        amplitude=abs(fitted.amplitude - true.amplitude) / true.amplitude,
        frequency=abs(fitted.frequency_hz - true.frequency_hz) / frequency_scale,
        chirp_rate=abs(fitted.chirp_rate - true.chirp_rate) / chirp_scale,
        phase=wrapped / TWO_PI,
    )


def value_error(fitted, true, domain):
    """Return the relative RMS difference of the two sinusoids' sources on a dense grid of ``domain``.

    The grid has POINTS_PER_CYCLE points per cycle of the higher of the two
    maximum instantaneous frequencies and at least MIN_GRID_POINTS points,
    both ends of the domain included.
    """
    highest = max(fitted.max_frequency(domain), true.max_frequency(domain))
    count = max(MIN_GRID_POINTS, math.ceil(POINTS_PER_CYCLE * highest * (domain[1] - domain[0])) + 1)
    x = np.linspace(domain[0], domain[1], count)
    expected = evaluate_expression(true.source, x)
    difference = evaluate_expression(fitted.source, x) - expected
    return float(np.sqrt(np.mean(difference**2)) / np.sqrt(np.mean(expected**2)))


def value_bound(true, tolerance, domain):
    """Return the largest relative RMS difference that a sinusoid within ``tolerance`` of ``true`` can have.

    With h = max |x| on the domain, every parameter within the tolerance
    moves the phase by at most 2π·tol·(1 + s_f·h + s_r·h²), where s_f and
    s_r are the frequency and chirp-rate scales of ``ParameterErrors``. As
    |sin a − sin b| ≤ |a − b|, the two terms then differ by at most
    tol·A*·(1 + 2π(1 + s_f·h + s_r·h²)) at any x. That maximum bounds the
    RMS difference, which is divided by the RMS of the true term.
    """
    frequency_scale = true.frequency_hz if true.frequency_hz != 0 else abs(true.chirp_rate)
    chirp_scale = abs(true.chirp_rate) if true.chirp_rate != 0 else true.frequency_hz
    half_width = max(abs(domain[0]), abs(domain[1]))
    phase_bound = TWO_PI * (1 + frequency_scale * half_width + chirp_scale * half_width**2)
    x = np.linspace(domain[0], domain[1], MIN_GRID_POINTS)
    true_rms = float(np.sqrt(np.mean(evaluate_expression(true.source, x) ** 2)))
    return tolerance * true.amplitude * (1 + phase_bound) / true_rms


def _judge_term(true, fitted, domain, tolerances):
    name = true.describe(domain)
    if fitted is None:
        return TermVerdict(name=name, verdict="missed", true=true, fitted=None, errors=None, value_error=None)
    errors = parameter_errors(fitted, true)
    if errors.largest > tolerances["almost"]:
        return TermVerdict(name=name, verdict="missed", true=true, fitted=fitted, errors=errors, value_error=None)

    # The parameters are close enough to count, so the two terms are evaluated as written to confirm it.
    difference = value_error(fitted, true, domain)
    verdict = "missed"
    for level in ("exact", "almost"):
        tolerance = tolerances[level]
        if errors.largest <= tolerance and difference <= value_bound(true, tolerance, domain):
            verdict = level
            break
    if verdict == "missed":
        logger.warning("the %s of %s matched by its parameters %s, but the terms differ by a relative RMS of %.3g",
                       name, fitted.source, errors, difference)
    return TermVerdict(name=name, verdict=verdict, true=true, fitted=fitted, errors=errors, value_error=difference)


def _pair(truth, recovered):
    """Return the recovered sinusoid paired with each true one, or None, the pairs with the smallest largest error first."""
    candidates = sorted(
        (parameter_errors(fitted, true).largest, t, r) for t, true in enumerate(truth) for r, fitted in enumerate(recovered)
    )
    pairs, used = [None] * len(truth), set()
    for _, t, r in candidates:
        if pairs[t] is None and r not in used:
            pairs[t] = recovered[r]
            used.add(r)
    return pairs


def _as_sinusoid(term):
    """Return ``term`` as a Sinusoid in normal form, or None when it is not c·sin(p(x)) or c·cos(p(x))."""
    coefficient, factor = term.as_independent(X, as_Add=False)
    if not isinstance(factor, (sympy.sin, sympy.cos)):
        return None
    amplitude = _real_number(coefficient)
    argument = factor.args[0]
    if amplitude is None or amplitude == 0 or not argument.is_polynomial(X):
        return None
    polynomial = sympy.Poly(argument, X)
    if polynomial.degree() > 2:
        return None

    # p(x) = c0 + c1·x + c2·x² = φ0 + 2π(f·x + r·x²), and cos(u) = sin(u + π/2).
    c0, c1, c2 = (polynomial.coeff_monomial(X**power) for power in range(3))
    phase = _real_number(c0 + sympy.pi / 2 if isinstance(factor, sympy.cos) else c0)
    frequency = _real_number(c1 / (2 * sympy.pi))
    chirp_rate = _real_number(c2 / (2 * sympy.pi))
    if phase is None or frequency is None or chirp_rate is None or (frequency == 0 and chirp_rate == 0):
        return None
    return _normal_form(amplitude, frequency, chirp_rate, phase, term)


def _normal_form(amplitude, frequency, chirp_rate, phase, source):
    """Return the Sinusoid with A > 0, f ≥ 0 (r ≥ 0 when f = 0) and φ0 in [0, 2π) that equals the given one.

    NOTE: near f = 0 the normal form jumps, because a term with a slightly
    negative f has its r and phase negated. A true term with f = 0 can then
    be judged missed by a fit that is close to it. The bench's target has
    no such term.
    """
    if frequency < 0 or (frequency == 0 and chirp_rate < 0):
        # sin(−u) = −sin(u).
        amplitude, frequency, chirp_rate, phase = -amplitude, -frequency, -chirp_rate, -phase
    if amplitude < 0:
        # −sin(u) = sin(u + π).
        amplitude, phase = -amplitude, phase + math.pi
    return Sinusoid(amplitude=amplitude, frequency_hz=frequency, chirp_rate=chirp_rate,
                    phase=_wrap_phase(phase), source=source)


def _merge(sinusoids):
    """Merge the sinusoids with the same f and r into one by adding their phasors A·exp(iφ0)."""
    groups = []
    for sinusoid in sinusoids:
        for group in groups:
            if _same_frequencies(group[0], sinusoid):
                group.append(sinusoid)
                break
        else:
            groups.append([sinusoid])

    merged = []
    for group in groups:
        if len(group) == 1:
            merged.append(group[0])
            continue
        phasor = sum(cmath.rect(item.amplitude, item.phase) for item in group)
        source = sympy.Add(*(item.source for item in group))
        if abs(phasor) <= CANCEL_RELATIVE_TOLERANCE * sum(item.amplitude for item in group):
            logger.debug("the sinusoids %s cancel out, so they are dropped", source)
            continue
        first = group[0]
        merged.append(Sinusoid(amplitude=abs(phasor), frequency_hz=first.frequency_hz, chirp_rate=first.chirp_rate,
                               phase=_wrap_phase(cmath.phase(phasor)), source=source))
    return merged


def _same_frequencies(first, second):
    return (math.isclose(first.frequency_hz, second.frequency_hz, rel_tol=MERGE_RELATIVE_TOLERANCE)
            and math.isclose(first.chirp_rate, second.chirp_rate, rel_tol=MERGE_RELATIVE_TOLERANCE))


def _wrap_phase(phase):
    wrapped = phase % TWO_PI
    # A tiny negative phase wraps to exactly 2π in float64, which is 0.
    return 0.0 if wrapped >= TWO_PI else wrapped


def _real_number(value):
    """Return ``value`` as a finite float, or None when it depends on x or is not a finite real number."""
    value = sympy.sympify(value)
    if not value.is_number:
        return None
    try:
        number = complex(value.evalf())
    except TypeError:
        return None
    if number.imag != 0 or not math.isfinite(number.real):
        return None
    return number.real


def _check_tolerances(tolerances):
    """Return the tolerances with the defaults filled in, after checking that 0 < exact ≤ almost < 1."""
    merged = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    unknown = sorted(set(merged) - set(DEFAULT_TOLERANCES))
    if unknown:
        raise ValueError(f"unknown tolerance names {unknown}. Use the names {sorted(DEFAULT_TOLERANCES)}.")
    if not 0 < merged["exact"] <= merged["almost"] < 1:
        raise ValueError(f"invalid tolerances {merged}. Pass tolerances with 0 < exact ≤ almost < 1.")
    return merged


def _check_domain(domain):
    start, stop = (float(value) for value in domain)
    if not (math.isfinite(start) and math.isfinite(stop) and start < stop):
        raise ValueError(f"invalid domain {domain}. Pass finite (start, stop) with start < stop.")
    return start, stop
