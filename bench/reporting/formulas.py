"""The formulas section: the true target, then each symbolic method's recovered formula per run."""

import sympy

from bench.reporting.markdown import code, display_math, escape, format_count, format_r2
from bench.reporting.results import ordered_methods

# Methods that return no formula. Any other method is listed in the formulas section.
NUMERIC_METHODS = frozenset({"kan_numeric"})


def formulas_section(runs, target):
    """Return the Markdown of the true formula ``target`` and of every symbolic run.

    Ok runs show their stored LaTeX with its size and test R². Failed and
    unavailable runs show their reason. Methods are ``###`` headings, so the
    including page should put the section under a ``##`` heading.
    """
    parts = ["### True target", display_math(sympy.latex(target))]
    for method in ordered_methods(runs["method"]):
        if method in NUMERIC_METHODS:
            continue
        parts.append(f"### {code(method)}")
        for run in runs[runs["method"] == method].itertuples(index=False):
            parts += _run_entry(run)
    return "\n\n".join(parts) + "\n"


def _run_entry(run):
    label = f"Repetition {format_count(run.repetition)} (seed {format_count(run.seed)})"
    if run.status != "ok":
        reason = f": {escape(run.reason)}" if run.reason else ""
        return [f"{label}: {run.status}{reason}."]
    if not run.formula_latex:
        return [f"{label}: ok, but no formula was stored."]
    summary = f"{label}: size {format_count(run.formula_size)} nodes, test R² {format_r2(run.r2_test)}."
    return [summary, display_math(run.formula_latex)]
