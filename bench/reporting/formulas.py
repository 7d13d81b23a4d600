"""The Formulas page: for each symbolic method, the true formula, the formula of every run and the true terms it recovered."""

import json

import sympy

from bench import formulas
from bench.errors import DataError
from bench.recovery import DEFAULT_TOLERANCES, TWO_PI, VERDICTS, decompose, judge, true_terms
from bench.reporting.markdown import (
    MISSING,
    code,
    counted,
    display_math,
    escape,
    fenced_div,
    format_count,
    format_r2,
    is_missing,
    pipe_table,
)
from bench.reporting.results import ordered_methods
from bench.reporting.targets import recovery_gap, stored_signal
from bench.signal import X

# Methods that return no formula. Any other method is listed in the formulas section.
NUMERIC_METHODS = frozenset({"kan_numeric", "kan_numeric_smoothed", "kan_numeric_minimal"})
# The id of the fenced div around the recovery table, which the tests find it by.
RECOVERY_TABLE_ID = "formulas-recovery"
# r is the coefficient of x² in the phase, so the instantaneous frequency f + 2·r·x sweeps at 2·r Hz/s, not r.
PARAMETER_HEADER = ("Amplitude", "Frequency f (Hz)", "r, coefficient of x² (Hz/s; sweep 2r)", "Phase (rad)")
# Significant digits of the fitted and true parameters, enough to show a relative difference of 1e-8.
PARAMETER_DIGITS = 10


def formulas_section(runs, target, heading="##"):
    """Return the Markdown of every symbolic run's formula, each method's runs after the true formula ``target``.

    Ok runs show their stored LaTeX with its size and test R². Failed and
    unavailable runs show their reason. Methods are ``heading`` headings, so
    the including page should not put the section under a heading of that
    level. A data series has no true formula (``target`` None), so its
    methods list only their runs.
    """
    methods = [method for method in ordered_methods(runs["method"]) if method not in NUMERIC_METHODS]
    if not methods:
        return "No symbolic method ran, so there are no formulas to compare.\n"

    parts = []
    for method in methods:
        parts.append(f"{heading} {code(method)}")
        if target is not None:
            parts += [f"True formula, size {counted(formulas.size(target), 'node')}:", display_math(sympy.latex(target))]
        for run in runs[runs["method"] == method].itertuples(index=False):
            parts += _run_entry(run)
    return "\n\n".join(parts) + "\n"


def true_formula_section(target):
    """Return the Markdown of the true formula and its size, or a sentence saying that a data series (None) has none."""
    if target is None:
        return "This signal is a data series with no closed form, so there is no true formula to show.\n"
    return f"{display_math(sympy.latex(target))}\n\nIts expression tree has {counted(formulas.size(target), 'node')}.\n"


def _run_entry(run):
    label = f"Repetition {format_count(run.repetition)}, seed {format_count(run.seed)}"
    if run.status != "ok":
        reason = f": {escape(run.reason)}" if run.reason else ""
        return [f"{label}: {run.status}{reason}."]
    if not run.formula_latex:
        return [f"{label}: ok, but no formula was stored."]
    size = MISSING if is_missing(run.formula_size) else counted(int(run.formula_size), "node")
    summary = f"{label}: size {size}, test R² {format_r2(run.r2_test)}."
    return [summary, display_math(run.formula_latex)]


def recovery_section(results):
    """Return the Markdown of the recovery table, how it is judged, and each judged run's fitted terms.

    The formulas are read from the runs' records, and the target, domain
    and sampling rate from the manifest. A target that recovery cannot judge
    gets a sentence saying why instead. Raises DataError when a stored
    formula cannot be parsed.
    """
    signal = stored_signal(results)
    gap = recovery_gap(signal)
    if gap:
        return f"Recovered terms are not judged here: {gap}.\n"
    symbolic = results.runs[~results.runs["method"].isin(NUMERIC_METHODS)]
    return recovery_tables(symbolic, stored_formulas(results, symbolic),
                           tuple(results.manifest["config"]["signal"]["domain"]), results.sampling_rate_hz(),
                           target=signal.expression)


def stored_formulas(results, runs):
    """Return the formula text of each ok run of ``runs``, keyed by cache key, read from its record in ``results``."""
    stored = {}
    for run in runs.itertuples(index=False):
        if run.status == "ok":
            stored[run.key] = json.loads(results.record_bytes(run.key)).get("formula", "")
    return stored


def judge_runs(runs, stored_formulas, domain, sampling_rate_hz, target=None):
    """Judge the formula of every ok run of ``runs`` that has one and return the Recovery of each, keyed by cache key.

    ``stored_formulas`` maps a run's key to its formula text. ``target`` is
    the true expression, by default the seed signal's. Raises DataError
    when a formula cannot be parsed.
    """
    judged = {}
    for run in runs.itertuples(index=False):
        text = stored_formulas.get(run.key, "") if run.status == "ok" else ""
        if text:
            judged[run.key] = judge(_parse_stored(text, run.key), domain=domain, sampling_rate_hz=sampling_rate_hz,
                                    target=target)
    return judged


def recovery_tables(runs, stored_formulas, domain, sampling_rate_hz, target=None):
    """Return the recovery Markdown of the symbolic ``runs``, with ``stored_formulas`` mapping a run's key to its formula text.

    Ok runs with a formula are judged by ``bench.recovery.judge`` against
    ``target``, by default the seed signal's. Runs that are not ok, or ok
    but without a formula, count only in the total of the "Runs judged"
    column. Terms of the target that are not sinusoids are named below the
    table as not judged.
    """
    methods = [method for method in ordered_methods(runs["method"]) if method not in NUMERIC_METHODS]
    if not methods:
        return "No symbolic method ran, so there are no formulas to judge.\n"
    names = true_term_names(domain, target)
    judged = judge_runs(runs, stored_formulas, domain, sampling_rate_hz, target)

    rows = []
    for method in methods:
        method_runs = runs[runs["method"] == method]
        recoveries = [judged[key] for key in method_runs["key"] if key in judged]
        rows.append([code(method), f"{len(recoveries)} of {len(method_runs)}",
                     *(verdict_counts(recoveries, name) for name in names), _suspect_count(recoveries)])

    header = ("Method", "Runs judged", *names, "Runs with a term above Nyquist")
    table = fenced_div(RECOVERY_TABLE_ID, pipe_table(header, rows, align="l" + "r" * (len(header) - 1)),
                       ": How many judged runs of each method recovered each true term of the target.")
    parts = [table, _recovery_explanation(sampling_rate_hz / 2)]
    remainder = decompose(target).remainder if target is not None else 0
    if remainder != 0:
        parts += ["The target's terms that are not sinusoids are not judged:", display_math(sympy.latex(remainder))]
    if judged:
        parts.append(_recovery_detail(runs, judged, domain, target))
    return "\n\n".join(parts) + "\n"


def _parse_stored(text, key):
    try:
        return formulas.parse(text, {"x": X})
    except (sympy.SympifyError, SyntaxError, TypeError) as error:
        raise DataError(f"the formula of run {key} cannot be parsed by sympy ({error}). "
                        "Run the bench again to rewrite its record.") from error


def true_term_names(domain, target=None):
    """Return the names of the true terms of ``target`` on ``domain``, such as "10 Hz tone", in the order of ``judge``.

    ``target`` defaults to the seed signal's.
    """
    return [term.describe(domain) for term in true_terms(target)]


def verdict_counts(recoveries, name):
    """Return how many of ``recoveries`` judged the true term ``name`` exact, almost and missed, as one table cell."""
    if not recoveries:
        return MISSING
    verdicts = [recovery.verdict_of(name) for recovery in recoveries]
    counts = ", ".join(f"{verdicts.count(verdict)} {verdict}" for verdict in VERDICTS)
    return f"{counts} of {len(recoveries)}"


def _suspect_count(recoveries):
    if not recoveries:
        return MISSING
    return f"{sum(1 for recovery in recoveries if recovery.suspect)} of {len(recoveries)}"


def _recovery_explanation(nyquist_hz):
    exact, almost = (f"{DEFAULT_TOLERANCES[level]:.0e}" for level in ("exact", "almost"))
    return (
        "Each formula is expanded and split into sinusoids A·sin(φ₀ + 2π(f·x + r·x²)) and other terms, "
        "and each true term is compared with the closest sinusoid. "
        "With x in seconds, r is in Hz/s, and the instantaneous frequency f + 2·r·x sweeps at 2·r Hz/s. "
        f"A term is exact when the amplitude, the frequency f and the coefficient r are each within a relative "
        f"{exact} of the true ones and the phase within 2π·{exact} rad, almost when they are within {almost}, "
        "and missed otherwise. "
        "Where the true r is 0, the fitted r must be at most the tolerance times the true frequency. "
        "The match is then confirmed by evaluating both terms as the formula writes them on a dense grid. "
        "Runs that failed, were unavailable or stored no formula are not judged.\n\n"
        "The last column counts the judged runs whose formula has a sinusoid with an instantaneous frequency "
        f"f + 2·r·x above the Nyquist limit of {nyquist_hz:g} Hz, half the sampling rate, somewhere on the domain. "
        "On the samples such a term equals a sinusoid of lower frequency, so the fit can use it in place of a true "
        "term without the formula containing that term."
    )


def _recovery_detail(runs, judged, domain, target=None):
    """Return a collapsed callout with the true terms and, for every judged run and true term, the fitted sinusoid."""
    truth = true_terms(target)
    true_rows = [[escape(term.describe(domain)), *_parameters(term)] for term in truth]
    true_table = pipe_table(("True term", *PARAMETER_HEADER), true_rows, align="lrrrr") + "\n\n: The true terms."

    rows, suspects = [], []
    for run in runs.itertuples(index=False):
        if run.key not in judged:
            continue
        recovery = judged[run.key]
        for term in recovery.terms:
            fitted = _parameters(term.fitted) if term.fitted else [MISSING] * len(PARAMETER_HEADER)
            largest = f"{term.errors.largest:.2e}" if term.errors else MISSING
            difference = f"{term.value_error:.2e}" if term.value_error is not None else MISSING
            rows.append([code(run.method), format_count(run.repetition), escape(term.name), term.verdict, *fitted,
                         largest, difference])
        for sinusoid in recovery.suspect:
            amplitude, frequency, chirp_rate, _ = _parameters(sinusoid)
            suspects.append(f"- {code(run.method)} repetition {format_count(run.repetition)}: amplitude {amplitude}, "
                            f"frequency {frequency} Hz, r {chirp_rate} Hz/s, "
                            f"up to {sinusoid.max_frequency(domain):.{PARAMETER_DIGITS}g} Hz on the domain.")

    header = ("Method", "Repetition", "True term", "Verdict", *(f"Fitted {name[0].lower()}{name[1:]}" for name in PARAMETER_HEADER),
              "Largest relative error", "Relative RMS difference")
    fitted_table = pipe_table(header, rows, align="lrll" + "r" * 6) + (
        "\n\n: The recovered sinusoid compared with each true term. For a missed term it is only the closest one left, "
        "and a dash means the formula has no sinusoid left to compare."
    )
    blocks = [true_table, fitted_table]
    if suspects:
        blocks += ["Recovered sinusoids above the Nyquist limit:", "\n".join(suspects)]
    body = "\n\n".join(blocks)
    return f'::: {{.callout-note collapse="true" title="Fitted and true terms of every judged run"}}\n{body}\n:::'


def _parameters(sinusoid):
    values = (sinusoid.amplitude, sinusoid.frequency_hz, sinusoid.chirp_rate)
    return [*(f"{value:.{PARAMETER_DIGITS}g}" for value in values), _format_phase(sinusoid.phase)]


def _format_phase(phase):
    """Format a phase in [0, 2π) with PARAMETER_DIGITS significant digits, showing one that rounds to 2π as 0.

    A phase just below 2π, such as a fitted -1e-13 rad wrapped into [0, 2π),
    is the same angle as 0, and 0 is its value rounded to the digits shown.
    """
    text = f"{phase:.{PARAMETER_DIGITS}g}"
    return "0" if text == f"{TWO_PI:.{PARAMETER_DIGITS}g}" else text
