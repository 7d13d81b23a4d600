"""Markdown building blocks that read the same under Pandoc (Quarto) and markdown-it (smalldocs)."""

import math
import re

import numpy as np

# Shown where a value does not apply, such as the metrics of a method with no ok run.
MISSING = "—"
# Shown for a standard deviation over a single ok run, where it is undefined with ddof=1.
UNDEFINED_STD = "n/a"

# R² is at most 1 but unbounded below. A fit far worse than the mean of the targets can reach
# -1e178, which 6 decimals would print as 187 characters, so from this magnitude on R² gets an exponent.
R2_FIXED_LIMIT = 1e4

# ASCII punctuation that means something in Pandoc's or CommonMark's inline syntax. Both accept a
# backslash before any ASCII punctuation, so escaping is safe in both.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|$~^#])")


def escape(text):
    """Escape ``text`` for a Markdown paragraph or table cell, on one line."""
    one_line = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", one_line)


def nowrap(text):
    """Wrap ``text`` in an inline HTML span that the browser does not break across lines.

    Pandoc and markdown-it both pass this inline HTML through to the page.
    """
    return f'<span style="white-space: nowrap">{text}</span>'


def code(text):
    """Return ``text`` as an inline code span."""
    return f"`{text}`"


def fenced_div(identifier, *blocks):
    """Return ``blocks`` inside a fenced div with the HTML id ``identifier``, which Pandoc and smalldocs both write."""
    body = "\n\n".join(blocks)
    return f"::: {{#{identifier}}}\n{body}\n:::"


def pipe_table(header, rows, align):
    """Return a pipe table with one "l" or "r" in ``align`` per column. Cells must already be escaped."""
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} cells to match the header {header}")
    rule = ["---:" if side == "r" else ":---" for side in align]
    lines = [_row(header), _row(rule)]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def display_math(latex):
    """Return display math with ``$$`` on lines of their own, which Pandoc and markdown-it both read.

    Blank lines would end the math block in Pandoc, so the LaTeX is joined
    onto one line. KaTeX never breaks display math across lines, so the
    block sits in a div that scrolls sideways when a long formula is wider
    than the page. The div's class ``formula`` lets a page's style and
    the browser test find every formula.
    """
    one_line = " ".join(str(latex).split())
    return '::: {.formula style="overflow-x: auto"}\n$$\n' + one_line + "\n$$\n:::"


def is_missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_mse(value):
    """Format a mean squared error in scientific notation with 3 significant digits."""
    return MISSING if is_missing(value) else f"{value:.2e}"


def format_r2(value):
    """Format an R² score with 6 decimals, or with 3 significant digits and an exponent when |R²| ≥ R2_FIXED_LIMIT."""
    if is_missing(value):
        return MISSING
    if math.isfinite(value) and abs(value) >= R2_FIXED_LIMIT:
        return f"{value:.2e}"
    return f"{value:.6f}"


def format_seconds(value):
    """Format a duration in seconds with 3 significant digits, without an exponent."""
    if is_missing(value):
        return MISSING
    return np.format_float_positional(value, precision=3, unique=False, fractional=False, trim="-")


def format_count(value):
    """Format a whole number stored as a float, such as a seed read from CSV."""
    return MISSING if is_missing(value) else str(int(value))


def counted(count, noun, plural=None):
    """Return ``count`` and ``noun`` in the singular for 1 and in the plural otherwise, such as "1 run" or "3 runs".

    ``plural`` defaults to ``noun`` with an "s" appended.
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
