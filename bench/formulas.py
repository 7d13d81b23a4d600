"""Conversions of recovered formulas: parsing, size, LaTeX and evaluation."""

import numpy as np
import sympy

from bench.signal import X, evaluate_expression

# Significant digits of the constants shown in LaTeX. The stored sympy string
# keeps full precision; LaTeX is for reading.
LATEX_DIGITS = 6


def parse(text, symbols):
    """Parse ``text`` into a sympy expression, mapping names in ``symbols`` to expressions of ``X``."""
    return sympy.sympify(text, locals=dict(symbols))


def size(expression):
    """Return the number of nodes in the expression tree (sympy's preorder traversal)."""
    return sum(1 for _ in sympy.preorder_traversal(expression))


def to_latex(expression, digits=LATEX_DIGITS):
    """Return LaTeX for ``expression`` with floats rounded to ``digits`` significant digits."""
    rounded = expression.xreplace({f: sympy.Float(f, digits) for f in expression.atoms(sympy.Float)})
    return sympy.latex(rounded)


def to_string(expression):
    """Return the full-precision sympy string of ``expression``."""
    return sympy.sstr(expression, full_prec=False)


def evaluate(expression, x):
    """Evaluate ``expression`` on ``x``; free symbols other than ``X`` are an error."""
    extra = expression.free_symbols - {X}
    if extra:
        raise ValueError(f"formula has free symbols other than x: {sorted(map(str, extra))}")
    return evaluate_expression(expression, np.asarray(x, dtype=np.float64))
