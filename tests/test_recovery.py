"""Tests of the per-term recovery judge on hand-written formulas.

Expected values are typed from the target's definition: amplitudes 4/π,
4/(3π) and 2/π, frequencies 10, 30 and 50 Hz, a chirp rate of 20 Hz/s on
the last term, every phase 0.
"""

import dataclasses
import logging
import math

import numpy as np
import pytest
import sympy
from sympy import cos, pi, sin

from bench import recovery
from bench.recovery import Sinusoid, decompose, judge, true_terms, value_bound, value_error
from bench.signal import X, evaluate_expression, sample_grid

DOMAIN = (-0.5, 0.5)
RATE_HZ = 15_000
NAMES = ("10 Hz tone", "30 Hz tone", "chirp 30–70 Hz")
TONE_10 = 4 / pi * sin(2 * pi * 10 * X)
TONE_30 = 4 / (3 * pi) * sin(2 * pi * 30 * X)
CHIRP = 2 / pi * sin(2 * pi * (50 * X + 20 * X**2))
# (amplitude, frequency in Hz, chirp rate in Hz/s) of each true term, in NAMES order.
TRUE_PARAMETERS = ((4 / math.pi, 10.0, 0.0), (4 / (3 * math.pi), 30.0, 0.0), (2 / math.pi, 50.0, 20.0))
# The formula's float for π, which sympy does not recognise as π.
PI_FLOAT = sympy.Float(math.pi)


def verdicts(expression):
    """Return the verdict on each true term, in NAMES order."""
    result = judge(expression, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert tuple(term.name for term in result.terms) == NAMES
    return [term.verdict for term in result.terms]


def term(expression, name):
    result = judge(expression, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    return next(item for item in result.terms if item.name == name)


def sinusoid_formula(amplitude, frequency, chirp_rate=0.0, phase=0.0):
    """Return A·sin(φ0 + 2π(f·x + r·x²)) with float parameters."""
    return sympy.Float(amplitude) * sin(sympy.Float(phase) + 2 * pi * (sympy.Float(frequency) * X + sympy.Float(chirp_rate) * X**2))


# The true terms.


def test_true_terms_from_target():
    terms = true_terms()
    assert [item.describe(DOMAIN) for item in terms] == list(NAMES)
    for item, (amplitude, frequency, chirp_rate) in zip(terms, TRUE_PARAMETERS):
        assert item.amplitude == pytest.approx(amplitude, rel=1e-15)
        assert item.frequency_hz == frequency
        assert item.chirp_rate == chirp_rate
        assert item.phase == 0.0


def test_exact_truth_all_exact():
    result = judge(TONE_10 + TONE_30 + CHIRP, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert [item.verdict for item in result.terms] == ["exact"] * 3
    for item in result.terms:
        assert item.fitted == item.true
        assert item.errors.largest == 0.0
        assert item.value_error == 0.0
    assert result.suspect == ()
    assert result.remainder == 0
    assert result.nyquist_hz == 7500.0


@pytest.mark.parametrize(("index", "alone"), list(enumerate((TONE_10, TONE_30, CHIRP))))
def test_each_term_alone(index, alone):
    result = judge(alone, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    expected = ["missed"] * 3
    expected[index] = "exact"
    assert [item.verdict for item in result.terms] == expected
    for position, item in enumerate(result.terms):
        if position != index:
            assert item.fitted is None
            assert item.errors is None


# Equal forms written differently.


def test_negated_argument_plus_pi_exact():
    # sin(π − u) = sin(u), with π as a float so that sympy keeps the form as written.
    formula = (4 / pi * sin(-2 * PI_FLOAT * 10 * X + PI_FLOAT) + TONE_30
               + 2 / pi * sin(PI_FLOAT - 2 * pi * (50 * X + 20 * X**2)))
    result = judge(formula, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert [item.verdict for item in result.terms] == ["exact"] * 3
    tone = result.terms[0].fitted
    assert tone.amplitude == pytest.approx(4 / math.pi, rel=1e-15)
    assert tone.frequency_hz == pytest.approx(10.0, rel=1e-15)
    assert result.terms[0].errors.phase < 1e-15


def test_minus_sin_plus_pi_exact():
    # −sin(u + π) = sin(u).
    formula = -4 / pi * sin(2 * pi * 10 * X + PI_FLOAT)
    assert term(formula, "10 Hz tone").verdict == "exact"
    assert term(formula, "10 Hz tone").value_error < 1e-12


def test_cos_shifted_exact():
    # cos(u − π/2) = sin(u) and cos(−u + π/2) = sin(u).
    formula = 4 / pi * cos(2 * pi * 10 * X - PI_FLOAT / 2) + 4 / (3 * pi) * cos(-2 * pi * 30 * X + PI_FLOAT / 2)
    assert verdicts(formula) == ["exact", "exact", "missed"]


def test_plain_cos_phase_off():
    item = term(4 / pi * cos(2 * pi * 10 * X), "10 Hz tone")
    assert item.verdict == "missed"
    assert item.fitted.phase == pytest.approx(math.pi / 2)
    assert item.errors.phase == pytest.approx(0.25)
    assert item.errors.amplitude == pytest.approx(0.0, abs=1e-15)


def test_same_frequency_phasors_merged():
    decomposition = decompose(sin(2 * pi * 10 * X) + cos(2 * pi * 10 * X) + 0.5 * X)
    assert len(decomposition.sinusoids) == 1
    merged = decomposition.sinusoids[0]
    assert merged.amplitude == pytest.approx(math.sqrt(2))
    assert merged.phase == pytest.approx(math.pi / 4)
    assert merged.frequency_hz == 10.0
    assert decomposition.remainder == 0.5 * X


def test_merged_halves_recover_tone():
    formula = 2 / pi * sin(2 * pi * 10 * X) + 2 / pi * sin(2 * pi * 10 * X + PI_FLOAT * 2)
    item = term(formula, "10 Hz tone")
    assert item.verdict == "exact"
    assert item.fitted.amplitude == pytest.approx(4 / math.pi, rel=1e-12)


def test_cancelling_sinusoids_dropped():
    decomposition = decompose(sin(2 * pi * 10 * X) + sin(2 * pi * 10 * X + PI_FLOAT) + X)
    assert decomposition.sinusoids == ()
    assert decomposition.remainder == X


# Tolerances.


def test_seven_digits_exact_three_almost():
    seven = ("1.273240*sin(62.83185*x) + 0.4244132*sin(188.4956*x) "
             "+ 0.6366198*sin(314.1593*x + 125.6637*x**2)")
    three = "1.27*sin(62.8*x) + 0.424*sin(188*x) + 0.637*sin(314*x + 126*x**2)"
    assert verdicts(sympy.sympify(seven, locals={"x": X})) == ["exact"] * 3
    assert verdicts(sympy.sympify(three, locals={"x": X})) == ["almost"] * 3


# Each parameter set just inside and just outside each tolerance, as (amplitude, frequency, chirp rate, phase) changes.
NEAR_MISSES = {
    "amplitude": lambda a, f, r, scale: (a * (1 + scale), f, r, 0.0),
    "frequency": lambda a, f, r, scale: (a, f * (1 + scale), r, 0.0),
    "chirp rate": lambda a, f, r, scale: (a, f, r * (1 + scale) if r else scale * f, 0.0),
    "phase": lambda a, f, r, scale: (a, f, r, 2 * math.pi * scale),
}


@pytest.mark.parametrize("parameter", NEAR_MISSES)
@pytest.mark.parametrize("index", range(3))
@pytest.mark.parametrize(("scale", "expected"), [(0.5e-6, "exact"), (1.5e-6, "almost"), (0.5e-2, "almost"),
                                                 (1.5e-2, "missed")])
def test_near_miss_each_tolerance(parameter, index, scale, expected):
    changed = NEAR_MISSES[parameter](*TRUE_PARAMETERS[index], scale)
    item = term(sinusoid_formula(*changed), NAMES[index])
    assert item.verdict == expected
    assert item.fitted is not None
    assert item.errors.largest == pytest.approx(scale, rel=1e-6)


def test_negative_phase_wraps():
    item = term(sinusoid_formula(4 / math.pi, 10.0, phase=-2 * math.pi * 0.5e-6), "10 Hz tone")
    assert item.verdict == "exact"
    assert item.fitted.phase == pytest.approx(2 * math.pi * (1 - 0.5e-6), rel=1e-12)


def test_wrong_frequency_missed():
    item = term(4 / pi * sin(2 * pi * 11 * X) + TONE_30 + CHIRP, "10 Hz tone")
    assert item.verdict == "missed"
    assert item.fitted.frequency_hz == 11.0
    assert item.errors.frequency == pytest.approx(0.1)
    assert item.value_error is None
    assert verdicts(4 / pi * sin(2 * pi * 11 * X) + TONE_30 + CHIRP) == ["missed", "exact", "exact"]


def test_tolerances_validated():
    with pytest.raises(ValueError, match="Pass tolerances with 0 < exact ≤ almost < 1"):
        judge(TONE_10, domain=DOMAIN, sampling_rate_hz=RATE_HZ, tolerances={"exact": 1e-2, "almost": 1e-6})
    with pytest.raises(ValueError, match=r"unknown tolerance names \['close'\]"):
        judge(TONE_10, domain=DOMAIN, sampling_rate_hz=RATE_HZ, tolerances={"close": 1e-3})


def test_looser_tolerance_upgrades():
    formula = sinusoid_formula(4 / math.pi * (1 + 1.5e-6), 10.0)
    result = judge(formula, domain=DOMAIN, sampling_rate_hz=RATE_HZ, tolerances={"exact": 1e-5})
    assert result.verdict_of("10 Hz tone") == "exact"


# Nyquist.


def test_aliased_frequency_suspect():
    aliased = 4 / pi * sin(2 * pi * (RATE_HZ + 10) * X)
    grid = sample_grid(*DOMAIN, RATE_HZ)
    # On the sampled grid the alias equals the 10 Hz tone, so the samples cannot distinguish the two.
    assert np.max(np.abs(evaluate_expression(aliased, grid) - evaluate_expression(TONE_10, grid))) < 1e-9

    result = judge(aliased + TONE_30 + CHIRP, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert [item.verdict for item in result.terms] == ["missed", "exact", "exact"]
    assert len(result.suspect) == 1
    assert result.suspect[0].frequency_hz == RATE_HZ + 10


def test_chirp_above_nyquist_at_edge():
    # 7400 Hz at x = 0 stays below the 7500 Hz limit, but f + 2·r·x reaches 7600 Hz at x = 0.5.
    chirp = sinusoid_formula(1.0, 7400.0, 200.0)
    result = judge(TONE_10 + chirp, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert [item.max_frequency(DOMAIN) for item in result.suspect] == [7600.0]
    below = judge(TONE_10 + sinusoid_formula(1.0, 7400.0, 50.0), domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert below.suspect == ()


# Remainders.


def test_junk_terms_left_in_remainder():
    junk = sympy.Float("0.3") * X**2 + sin(X) * cos(X) + sympy.Float("0.01") * sin(2 * pi * 200 * X)
    result = judge(TONE_10 + TONE_30 + CHIRP + junk, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert [item.verdict for item in result.terms] == ["exact"] * 3
    assert result.remainder == sympy.Float("0.3") * X**2 + sin(X) * cos(X)
    assert result.suspect == ()


def test_junk_at_true_frequency_merges():
    # A small cosine at 10 Hz merges with the tone and moves its phase by atan(1e-4 · π/4), about 8e-5 rad.
    formula = TONE_10 + sympy.Float("1e-4") * cos(2 * pi * 10 * X)
    item = term(formula, "10 Hz tone")
    assert item.verdict == "almost"
    assert item.errors.phase == pytest.approx(math.atan(1e-4 * math.pi / 4) / (2 * math.pi), rel=1e-6)


@pytest.mark.parametrize("formula", [sin(sin(X)), sin(X**3 + X), X * sin(2 * pi * 10 * X), sin(2 * pi * 10 * X) ** 2,
                                     sin(2 * pi * 10 * X) * sin(2 * pi * 30 * X)])
def test_not_decomposable_all_missed(formula):
    result = judge(formula, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert [item.verdict for item in result.terms] == ["missed"] * 3
    assert all(item.fitted is None for item in result.terms)
    assert result.remainder == sympy.expand(formula)
    assert result.remainder != 0


@pytest.mark.parametrize("constant", [sympy.Float("0.5"), sympy.Integer(0), sin(sympy.Float(3))])
def test_constant_all_missed(constant):
    result = judge(constant, domain=DOMAIN, sampling_rate_hz=RATE_HZ)
    assert [item.verdict for item in result.terms] == ["missed"] * 3
    assert result.remainder == constant
    assert result.suspect == ()


def test_polynomial_sine_argument_expanded():
    # A KAN formula's style: the chirp's phase as a square of a linear term.
    formula = 2 / pi * sin(2 * pi * 20 * (X + sympy.Rational(5, 4)) ** 2 - 2 * pi * sympy.Rational(125, 4))
    item = term(formula, "chirp 30–70 Hz")
    assert item.verdict == "exact"
    assert item.fitted.frequency_hz == pytest.approx(50.0, rel=1e-15)
    assert item.fitted.chirp_rate == pytest.approx(20.0, rel=1e-15)


# The value check.


def test_value_check_equal_forms_agree():
    true = true_terms()[0]
    rewritten = dataclasses.replace(true, source=4 / pi * cos(2 * pi * 10 * X - PI_FLOAT / 2))
    assert value_error(rewritten, true, DOMAIN) < 1e-14


def test_value_check_catches_wrong_source():
    true = true_terms()[0]
    flipped = dataclasses.replace(true, source=-true.source)
    assert value_error(flipped, true, DOMAIN) == pytest.approx(2.0)
    assert value_error(flipped, true, DOMAIN) > value_bound(true, 1e-2, DOMAIN)


@pytest.mark.parametrize("index", range(3))
def test_value_bound_holds_at_tolerance(index):
    amplitude, frequency, chirp_rate = TRUE_PARAMETERS[index]
    tolerance = 1e-2
    true = true_terms()[index]
    worst = sinusoid_formula(amplitude * (1 + tolerance), frequency * (1 + tolerance),
                             chirp_rate * (1 + tolerance) if chirp_rate else tolerance * frequency,
                             2 * math.pi * tolerance)
    fitted = decompose(worst).sinusoids[0]
    assert value_error(fitted, true, DOMAIN) <= value_bound(true, tolerance, DOMAIN)


def test_wrong_normal_form_caught(monkeypatch, caplog):
    # A normal form that forgot the π of −sin(u) = sin(u + π) would match the true tone by its parameters.
    monkeypatch.setattr(recovery, "_wrap_phase", lambda phase: 0.0)
    with caplog.at_level(logging.WARNING, logger="bench.recovery"):
        item = term(-4 / pi * sin(2 * pi * 10 * X), "10 Hz tone")
    assert item.errors.largest == 0.0
    assert item.value_error == pytest.approx(2.0)
    assert item.verdict == "missed"
    assert "differ by a relative RMS of 2" in caplog.text


def test_decomposition_sums_to_expression():
    formula = (sympy.Float("-0.95") * sin(sympy.Float("42.3") * X - sympy.Float("1.19") * (sympy.Float("-1.69") * X - 9) ** 2)
               + 3 * cos(-sympy.Float("7.5") * X + 1) + sin(sin(X)) + X)
    decomposition = decompose(formula)
    rebuilt = sum((item.amplitude * sin(item.phase + 2 * pi * (item.frequency_hz * X + item.chirp_rate * X**2))
                   for item in decomposition.sinusoids), decomposition.remainder)
    x = np.linspace(*DOMAIN, 1001)
    assert np.allclose(evaluate_expression(rebuilt, x), evaluate_expression(formula, x), rtol=0, atol=1e-12)
    assert len(decomposition.sinusoids) == 2
    for item in decomposition.sinusoids:
        assert item.amplitude > 0
        assert item.frequency_hz >= 0
        assert 0 <= item.phase < 2 * math.pi


def test_sinusoid_fields_are_parameters():
    first = Sinusoid(1.0, 10.0, 0.0, 0.0, source=sin(2 * pi * 10 * X))
    second = Sinusoid(1.0, 10.0, 0.0, 0.0, source=cos(2 * pi * 10 * X - pi / 2))
    assert first == second
    assert first.describe(DOMAIN) == "10 Hz tone"
