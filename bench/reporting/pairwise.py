"""The Results page's pairwise table: each pair of methods compared on the test MSE of their paired repetitions."""

from itertools import combinations

from bench.reporting.markdown import MISSING, code, fenced_div, is_missing, nowrap, pipe_table
from bench.reporting.results import is_reference, ordered_methods
from bench.reporting.statistics import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    EQUIVALENCE_MARGIN,
    MIN_PAIRS,
    compare_paired,
    paired_test_errors,
)

PAIRWISE_TABLE_ID = "results-pairwise"
# Ratios in this range are written without an exponent, the others in scientific notation.
RATIO_FIXED_RANGE = (0.01, 1000.0)
PAIRWISE_HEADER = (
    "Method A",
    "Method B",
    "Pairs",
    "Test MSE ratio A / B, geometric mean",
    f"{CONFIDENCE:.0%} bootstrap interval",
    "Verdict for A",
)


def pairwise_table(runs):
    """Return the Markdown of the pairwise comparisons of the methods with ok runs, and how they are computed.

    Each unordered pair of methods is one row, with the method that comes
    first in the bench's order as A. Methods with no ok run have nothing to
    pair and are named below the table. Reference rows (an accuracy ceiling
    or floor) are left out and named below the table too: the ceiling's test
    MSE can be rounding noise near 1e-29, so ratios to it mean nothing.
    """
    methods = ordered_methods(runs["method"])
    references = [method for method in methods if is_reference(method)]
    competitors = [method for method in methods if method not in references]
    with_ok = [method for method in competitors if ((runs["method"] == method) & (runs["status"] == "ok")).any()]
    without_ok = [method for method in competitors if method not in with_ok]

    parts = []
    if len(with_ok) < 2:
        others = " other than the reference rows" if references else ""
        parts.append(f"Fewer than two methods{others} have an ok run, so no pair of methods can be compared.")
    else:
        rows = [_row(runs, first, second) for first, second in combinations(with_ok, 2)]
        parts.append(fenced_div(
            PAIRWISE_TABLE_ID,
            pipe_table(PAIRWISE_HEADER, rows, align="llrrrl"),
            ": Test MSE of method A relative to method B over the repetitions where both runs are ok.",
        ))
    if references:
        parts.append(_references_sentence(references))
    if without_ok:
        names = ", ".join(code(method) for method in without_ok)
        subject = "it has" if len(without_ok) == 1 else "they have"
        parts.append(f"Left out because {subject} no ok run: {names}.")
    parts.append(pairwise_note())
    return "\n\n".join(parts) + "\n"


def _references_sentence(references):
    names = ", ".join(code(method) for method in references)
    if len(references) == 1:
        return (f"The reference row {names} is left out: it is an accuracy ceiling or floor, not a competitor, and "
                "a ceiling's test MSE can be rounding noise, which makes a ratio to it meaningless.")
    return (f"The reference rows {names} are left out: they are accuracy ceilings and floors, not competitors, and "
            "a ceiling's test MSE can be rounding noise, which makes a ratio to it meaningless.")


def pairwise_note():
    """Return the list that explains the pairing, the statistic, the interval and the verdicts."""
    lower, upper = 1 / (1 + EQUIVALENCE_MARGIN), 1 + EQUIVALENCE_MARGIN
    items = [
        "Pairs: every run fits the same train/test split, and the runs of A and B with the same repetition index "
        "form a pair when both are ok. When both methods use the `kan_numeric` run of the repetition (it, or a "
        "method that builds on it: a copy of it trained further or snapped to formulas, or a fit to its "
        "predictions), the two runs of a pair "
        "share that network. Other pairs are independent runs.",
        "Ratio: the geometric mean over the pairs of test MSE(A) / test MSE(B). A ratio does not depend on the "
        "scale of the signal, and the test errors of these methods span orders of magnitude, so an arithmetic "
        "mean would follow the largest errors.",
        f"Interval: the {CONFIDENCE:.0%} percentile interval of that geometric mean over "
        f"{BOOTSTRAP_RESAMPLES:,} bootstrap resamples of the pairs, drawn with replacement from a generator seeded "
        "with a hash of the two method names, so every report draws the same resamples.",
        f"Verdict, with an equivalence margin of {EQUIVALENCE_MARGIN:.0%}: A is better when the whole interval "
        f"lies below 1 / {upper:g} = {lower:.3f}, worse when it lies above {upper:g}, equivalent when it lies "
        f"between {lower:.3f} and {upper:g}, and undecided otherwise. Fewer than {MIN_PAIRS} pairs get no "
        f"interval ({MISSING}) and are undecided.",
        "Limit: a resampled geometric mean cannot reach beyond the smallest and largest per-repetition ratio, so "
        f"with few pairs the interval tends to be too narrow and a verdict is weaker than its {CONFIDENCE:.0%} "
        "suggests.",
    ]
    return "How the comparison works:\n\n" + "\n".join(f"- {item}" for item in items)


def _row(runs, first, second):
    comparison = compare_paired(first, second, *paired_test_errors(runs, first, second))
    if is_missing(comparison.low):
        interval = MISSING
    else:
        interval = nowrap(f"[{_format_ratio(comparison.low)}, {_format_ratio(comparison.high)}]")
    verdict = comparison.verdict + (f": {comparison.reason}" if comparison.reason else "")
    return [
        code(first),
        code(second),
        str(comparison.pairs),
        nowrap(_format_ratio(comparison.ratio)),
        interval,
        verdict,
    ]


def _format_ratio(value):
    """Format a ratio with 3 significant digits: 0.952 or 12.0 near 1, 9.52e-05 or 1.05e+04 far from it."""
    if is_missing(value):
        return MISSING
    if RATIO_FIXED_RANGE[0] <= value < RATIO_FIXED_RANGE[1]:
        return f"{value:#.3g}"
    return f"{value:.2e}"
