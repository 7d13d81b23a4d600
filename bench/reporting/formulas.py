"""The Formulas page: for each symbolic method, the true formula and the formula of every run."""

import sympy

from bench import formulas
from bench.reporting.markdown import code, display_math, escape, format_count, format_r2
from bench.reporting.results import ordered_methods

# Methods that return no formula. Any other method is listed in the formulas section.
NUMERIC_METHODS = frozenset({"kan_numeric"})


def formulas_section(runs, target):
    """Return the Markdown of every symbolic run's formula, each method's runs after the true formula ``target``.

    Ok runs show their stored LaTeX with its size and test R². Failed and
    unavailable runs show their reason. Methods are ``##`` headings, so the
    including page should not put the section under another ``##`` heading.
    """
    true_latex = sympy.latex(target)
    true_size = formulas.size(target)
    methods = [method for method in ordered_methods(runs["method"]) if method not in NUMERIC_METHODS]
    if not methods:
        return "No symbolic method ran, so there are no formulas to compare.\n"

    parts = []
    for method in methods:
        parts += [
            f"## {code(method)}",
            f"True formula, size {true_size} nodes:",
            display_math(true_latex),
        ]
        for run in runs[runs["method"] == method].itertuples(index=False):
            parts += _run_entry(run)
    return "\n\n".join(parts) + "\n"


def true_formula_section(target):
    """Return the Markdown of the true formula and its size."""
    return f"{display_math(sympy.latex(target))}\n\nIts expression tree has {formulas.size(target)} nodes.\n"


def _run_entry(run):
    label = f"Repetition {format_count(run.repetition)}, seed {format_count(run.seed)}"
    if run.status != "ok":
        reason = f": {escape(run.reason)}" if run.reason else ""
        return [f"{label}: {run.status}{reason}."]
    if not run.formula_latex:
        return [f"{label}: ok, but no formula was stored."]
    summary = f"{label}: size {format_count(run.formula_size)} nodes, test R² {format_r2(run.r2_test)}."
    return [summary, display_math(run.formula_latex)]
