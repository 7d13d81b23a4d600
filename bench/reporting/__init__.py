"""The report: Markdown tables, formulas, figures and provenance written from stored results only.

Nothing here fits a model. ``write_report`` reads ``results/<profile>/`` and
writes the files that the Quarto pages under ``report/`` include.
"""

from bench.reporting.writer import write_report

__all__ = ["write_report"]
