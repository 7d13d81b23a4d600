"""The Formulas page's table of how closely each snapped KAN edge matches the library function it was replaced by.

A KAN symbolic formula composes one fitted function per edge, so a poor fit
on any edge carries through to the formula. Each run record of a KAN symbolic
method stores one summary per snapped edge (``bench.methods.kan_snap``):
the layer, the chosen function and, for the spectral variant, the R² of
that function's fit to the edge's activation.
"""

import json
import math
from collections import Counter

import numpy as np

from bench.errors import DataError
from bench.reporting.markdown import MISSING, code, counted, escape, fenced_div, format_r2, pipe_table
from bench.reporting.results import ordered_methods

# The methods whose records store snapped edges.
SNAPPING_METHODS = ("kan_symbolic", "kan_symbolic_spectral", "kan_symbolic_sines")
# An edge counts as a close fit at this R² or above.
CLOSE_FIT_R2 = 0.99
# The id of the fenced div around the table, which the tests find it by.
SNAP_TABLE_ID = "formulas-snapped-edges"
HEADER = ("Method", "Layer", "Edges", "Functions chosen", "Fit R², median (min to max)",
          f"Fit R² ≥ {CLOSE_FIT_R2}", "At a range edge that limits the fit")
# Range-edge flags that do not limit the fit, by function. c·(a·x + b)² + d is unchanged when a and b are
# divided by t and c is multiplied by t², so neither bound of x² limits it, and a sine's phase wraps at ±π.
HARMLESS_FLAGS = {"x^2": ("a", "b"), "sin": ("b",)}


def stored_edges(results):
    """Return each snapping method's ok runs and the edge summaries of each, keyed by method.

    Raises DataError when a record's edge summaries are malformed. A record
    without edge summaries, such as one written before they were stored,
    gives an empty list.
    """
    runs = results.runs
    found = {}
    for method in SNAPPING_METHODS:
        ok = runs[(runs["method"] == method) & (runs["status"] == "ok")]
        if ok.empty:
            continue
        records = [json.loads(results.record_bytes(key)) for key in ok["key"]]
        found[method] = (records, [_record_edges(record, results) for record in records])
    return found


def _record_edges(record, results):
    """Return the edge summaries of one record; raise DataError naming the record when they are malformed."""
    details = record.get("details", {})
    edges = details.get("edges", []) if isinstance(details, dict) else None
    if not isinstance(edges, list):
        raise _malformed(record, results, "details.edges is not a list of edge summaries")
    width = kan_width(record)
    layers = len(width) - 1 if width else None
    for index, edge in enumerate(edges):
        problem = _edge_problem(edge, layers)
        if problem:
            raise _malformed(record, results, f"snapped edge {index} {problem}: {edge!r}")
    return edges


def _malformed(record, results, problem):
    return DataError(f"{results.record_path(record['key'])}: {problem}. "
                     f"Run `{results.rerun_command()}` to store the run again.")


def _edge_problem(edge, layers):
    """Return what is wrong with one edge summary, or None."""
    if not isinstance(edge, dict):
        return "is not an object"
    position = edge.get("edge")
    if not (isinstance(position, list) and len(position) == 3
            and all(type(value) is int and value >= 0 for value in position)):
        return "has no position [layer, input, output] of non-negative integers"
    if layers is not None and position[0] >= layers:
        return f"is in layer {position[0]}, but the KAN has {layers} layers, counted from 0"
    if not isinstance(edge.get("function"), str):
        return "has no function name"
    r2 = edge.get("r2")
    if r2 is not None and type(r2) not in (int, float):
        return "has a fit R² that is not a number"
    if any(type(edge.get(flag)) is not bool for flag in ("a_at_edge", "b_at_edge")):
        return "lacks its true/false flags a_at_edge and b_at_edge"
    return None


def kan_width(record):
    """Return the KAN's layer widths stored in a symbolic run's settings, or None when they are not a list of integers.

    The snapped copies of the KAN numeric model store its settings under
    ``kan``; the sine-output KAN stores its number of sines as ``terms``.
    """
    settings = record.get("settings")
    if not isinstance(settings, dict):
        return None
    width = settings.get("kan", {}).get("width")
    if width is None and type(settings.get("terms")) is int:
        width = [1, settings["terms"], 1]
    if isinstance(width, list) and len(width) > 1 and all(type(value) is int for value in width):
        return width
    return None


def layer_label(layer, width):
    """Return a layer's number, counted from 1, and its node counts when the KAN's ``width`` is known."""
    if width is None or layer + 1 >= len(width):
        return str(layer + 1)
    return f"{layer + 1}: {counted(width[layer], 'node')} → {counted(width[layer + 1], 'node')}"


def limiting_flag(edge):
    """Return whether an edge's fit ended at a range edge that can limit it (see HARMLESS_FLAGS)."""
    harmless = HARMLESS_FLAGS.get(edge["function"], ())
    return any(edge[f"{name}_at_edge"] and name not in harmless for name in ("a", "b"))


def _functions_cell(edges):
    counts = Counter(edge["function"] for edge in edges)
    return ", ".join(f"{escape(name)} {count}" for name, count in sorted(counts.items(), key=lambda item: -item[1]))


def _fit_cells(edges):
    scores = [float(edge["r2"]) for edge in edges if edge.get("r2") is not None and math.isfinite(edge["r2"])]
    if not scores:
        return "not stored", MISSING
    spread = f"{format_r2(float(np.median(scores)))} ({format_r2(min(scores))} to {format_r2(max(scores))})"
    close = f"{sum(score >= CLOSE_FIT_R2 for score in scores)} of {len(edges)}"
    if len(scores) < len(edges):
        close += f" ({len(edges) - len(scores)} without a fit R²)"
    return spread, close


def edge_rows(method, edges, width):
    """Return the table rows of one method's edge summaries, one row per layer."""
    rows = []
    for layer in sorted({edge["edge"][0] for edge in edges}):
        in_layer = [edge for edge in edges if edge["edge"][0] == layer]
        spread, close = _fit_cells(in_layer)
        limited = sum(limiting_flag(edge) for edge in in_layer)
        rows.append([code(method), escape(layer_label(layer, width)), str(len(in_layer)),
                     _functions_cell(in_layer), spread, close, str(limited)])
    return rows


def _runs_phrase(method, records, per_run):
    stored = sum(bool(edges) for edges in per_run)
    phrase = f"{code(method)} over {counted(stored, 'run')}"
    if stored < len(records):
        phrase += f", leaving out {counted(len(records) - stored, 'ok run')} that stored no edges"
    return phrase


def snap_fits_section(results):
    """Return the Markdown of the snapped-edge table of ``results``, or a sentence when no ok run stored its edges."""
    found = stored_edges(results)
    if not found:
        return "These results have no ok run of a KAN symbolic method.\n"
    rows, runs = [], []
    for method in ordered_methods(list(found)):
        records, per_run = found[method]
        edges = [edge for run_edges in per_run for edge in run_edges]
        if edges:
            rows += edge_rows(method, edges, kan_width(records[0]))
            runs.append(_runs_phrase(method, records, per_run))
    if not rows:
        return "No ok KAN symbolic run of these results stored its snapped edges.\n"

    intro = (
        "Each KAN symbolic formula replaces every edge of the trained KAN with one function of the library, "
        "fitted as c·f(a·x + b) + d to the values the edge takes on the training inputs. A poor fit on one edge "
        "carries through every later layer, and the short refit after snapping tunes only the constants a, b, c "
        f"and d of each edge. The table counts the edges of the ok runs ({'; '.join(runs)}). The fit R² of an "
        "edge compares its function with the edge's own values. pykan's `auto_symbolic` does not return it, so "
        "the stock variant has none stored. The sine-output variant snaps only its first layer, the phases: "
        "its output edges are sines from the start of training, so they have no fit R², and its pruned sines "
        "are not counted."
    )
    flags = (
        "The last column counts the fits whose a or b ended at the edge of its search range where that can cut "
        "the fit short, such as a sine's scale a. The stock variant's records also flag x² fits at a bound of a "
        "or b and sine fits at a bound of the phase b, which the column leaves out: c absorbs any common scale "
        "of a and b in c·(a·x + b)², and the phase wraps around at ±π. The spectral variant solves b, c and d "
        "by least squares, and fits x² without a search, so only its sines' a can be flagged, except on an edge "
        "whose fit falls back to pykan's grid search (its record then says closed_form false). Linear fits are "
        "never flagged, because c and d absorb a and b. The sine-output variant's output sines are trained "
        "rather than searched, and are never flagged; with its default library, x and x², its phases are fitted "
        "without a search too, and a sine added to that library is searched as in the spectral variant."
    )
    table = pipe_table(HEADER, rows, "llrlrrr")
    return intro + "\n\n" + fenced_div(SNAP_TABLE_ID, table) + "\n\n" + flags + "\n"
