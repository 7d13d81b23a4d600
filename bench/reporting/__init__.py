"""The report: pages, tables, formulas, figures and downloads written from stored results only.

Nothing here fits a model. ``write_report`` reads ``results/<profile>/`` or a
published bundle and writes the files that the Quarto pages include.
``export_bundle`` copies a profile's results into a bundle meant to be committed.
"""

from bench.reporting.bundle import PUBLISHED_ROOT, export_bundle
from bench.reporting.writer import write_report

__all__ = ["PUBLISHED_ROOT", "export_bundle", "write_report"]
