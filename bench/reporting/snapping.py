"""The Formulas page's table of how closely each snapped KAN edge matches the library function it was replaced by.

A KAN symbolic formula composes one fitted function per edge, so a poor fit
on any edge carries through to the formula. Each run record of a KAN symbolic
method stores one summary per snapped edge (``bench.methods.kan_snap``):
the layer, the chosen function and, for the spectral variant, the R² of
that function's fit to the edge's activation.
"""

import json
from collections import Counter

import numpy as np

from bench.errors import DataError
from bench.reporting.markdown import MISSING, code, counted, escape, fenced_div, format_r2, pipe_table
from bench.reporting.results import ordered_methods

# The methods whose records store snapped edges.
SNAPPING_METHODS = ("kan_symbolic", "kan_symbolic_spectral")
# An edge counts as a close fit at this R² or above.
CLOSE_FIT_R2 = 0.99
# The id of the fenced div around the table, which the tests find it by.
SNAP_TABLE_ID = "formulas-snapped-edges"
HEADER = ("Method", "Layer", "Edges", "Functions chosen", "Fit R², median (min to max)",
          f"Fit R² ≥ {CLOSE_FIT_R2}", "At the edge of a search range")


def stored_edges(results):
    """Return each snapping method's ok runs and the edge summaries their records store, keyed by method.

    A record without edge summaries, such as one written before they were
    stored, adds a run but no edges.
    """
    runs = results.runs
    found = {}
    for method in SNAPPING_METHODS:
        ok = runs[(runs["method"] == method) & (runs["status"] == "ok")]
        if ok.empty:
            continue
        records = [json.loads(results.record_bytes(key)) for key in ok["key"]]
        edges = [edge for record in records for edge in _record_edges(record, results)]
        found[method] = (records, edges)
    return found


def _record_edges(record, results):
    """Return the edge summaries of one record; raise DataError when one lacks its layer or function."""
    edges = record.get("details", {}).get("edges", [])
    for edge in edges:
        position, function = edge.get("edge"), edge.get("function")
        if not (isinstance(position, list) and len(position) == 3 and isinstance(position[0], int)
                and isinstance(function, str)):
            raise DataError(
                f"{results.record_path(record['key'])}: a snapped edge has no valid position and function: {edge!r}. "
                f"Run `{results.rerun_command()}` to store the run again."
            )
    return edges


def layer_label(layer, width):
    """Return a layer's number, counted from 1, and its node counts when the KAN's ``width`` is known."""
    if width is None or layer + 1 >= len(width):
        return str(layer + 1)
    return f"{layer + 1}: {width[layer]} → {width[layer + 1]} nodes"


def _functions_cell(edges):
    counts = Counter(edge["function"] for edge in edges)
    return ", ".join(f"{escape(name)} {count}" for name, count in sorted(counts.items(), key=lambda item: -item[1]))


def _fit_cells(edges):
    scores = [edge["r2"] for edge in edges if edge.get("r2") is not None]
    if not scores:
        return "not stored", MISSING
    median = format_r2(float(np.median(scores)))
    spread = f"{median} ({format_r2(min(scores))} to {format_r2(max(scores))})"
    close = sum(score >= CLOSE_FIT_R2 for score in scores)
    return spread, f"{close} of {len(scores)}"


def edge_rows(method, edges, width):
    """Return the table rows of one method's edge summaries, one row per layer."""
    rows = []
    for layer in sorted({edge["edge"][0] for edge in edges}):
        in_layer = [edge for edge in edges if edge["edge"][0] == layer]
        spread, close = _fit_cells(in_layer)
        at_edge = sum(bool(edge.get("a_at_edge") or edge.get("b_at_edge")) for edge in in_layer)
        rows.append([code(method), escape(layer_label(layer, width)), str(len(in_layer)),
                     _functions_cell(in_layer), spread, close, str(at_edge)])
    return rows


def _width(records):
    settings = records[0].get("settings", {}).get("kan", {})
    return settings.get("width")


def snap_fits_section(results):
    """Return the Markdown of the snapped-edge table of ``results``, or a sentence when no run stored its edges."""
    found = stored_edges(results)
    rows, runs = [], []
    for method in ordered_methods(list(found)):
        records, edges = found[method]
        if edges:
            rows += edge_rows(method, edges, _width(records))
            runs.append(f"{code(method)} over {counted(len(records), 'run')}")
    if not rows:
        return "No KAN symbolic run of these results stored its snapped edges.\n"

    intro = (
        "Each KAN symbolic formula replaces every edge of the trained KAN with one function of the library, "
        "fitted as c·f(a·x + b) + d to the values the edge takes on the training inputs. A poor fit on one edge "
        "carries through every later layer, and the short refit after snapping tunes only the constants a, b, c "
        f"and d of each edge. The table counts the edges of all ok runs ({'; '.join(runs)}). The fit R² of an "
        "edge compares its function with the edge's own values. pykan's `auto_symbolic` does not return it, so "
        "the stock variant has none stored."
    )
    table = pipe_table(HEADER, rows, "llrlrrr")
    return intro + "\n\n" + fenced_div(SNAP_TABLE_ID, table) + "\n"
