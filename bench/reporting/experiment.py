"""The Method page: the signal, its sampling and split, and each method's settings, from the stored configuration."""

import json

import sympy

from bench import registry
from bench.errors import DataError
from bench.reporting.markdown import code, display_math, escape, pipe_table
from bench.reporting.results import ordered_methods, settings_label
from bench.reporting.targets import drawn_split, stored_signal

NOT_RECORDED = "not recorded"


def signal_section(results, target):
    """Return the Markdown of the target formula and a table of the sampling, split and repetition settings.

    A data series (``target`` None) has no formula, so its description stands in its place.
    """
    if target is None:
        return f"The target is {escape(stored_signal(results).description)}.\n\n{sampling_table(results)}\n"
    return f"{display_math(sympy.latex(target))}\n\n{sampling_table(results)}\n"


def sampling_table(results):
    """Return the Markdown table of the sampling, split and repetition settings of ``results``, with its caption.

    The train and test counts come from drawing the split again with the
    stored settings, the same way the bench drew it.
    """
    config = results.manifest["config"]
    signal, split, run = config["signal"], config.get("split", {}), config.get("run", {})
    start, stop = signal["domain"]
    rate = _format_rate(results.sampling_rate_hz())
    samples = results.grid().size
    rows = [
        ["Interval", escape(f"[{start}, {stop})") + ", half-open"],
        _rate_row(results, rate),
        ["Samples", str(samples)],
    ]
    if "test_fraction" in split and "data_seed" in split:
        drawn = drawn_split(results)
        rows += [
            ["Test fraction", escape(split["test_fraction"])],
            ["Training samples", str(drawn.train.size)],
            ["Test samples", str(drawn.test.size)],
            ["Data seed (split)", escape(split["data_seed"])],
        ]
    rows += [
        ["Repetitions per method", _value(run.get("repetitions"))],
        ["Base seed (runs)", _value(run.get("base_seed"))],
    ]
    if "noise_levels" in run:
        levels = ", ".join(f"{float(level):g}" for level in run["noise_levels"])
        rows.append(["Label noise levels (fractions of std(y))", levels])
    table = pipe_table(("Setting", "Value"), rows, align="ll")
    caption = f": Sampling, split and repetition settings of profile {code(results.profile)}, from its manifest.json."
    return f"{table}\n\n{caption}"


def _rate_row(results, rate):
    """Return the table row of the sampling rate: in Hz for a formula, in values per unit of x for a data series."""
    if stored_signal(results).is_data:
        return ["Values per unit of x", f"{rate}: the series' values, spaced evenly on the interval in time order"]
    return ["Sampling rate", f"{rate} Hz: x advances by 1/{rate} s from one sample to the next"]


def _format_rate(rate):
    """Format a sampling rate in Hz, a whole number without a decimal point, such as 309 for a data series's 309.0."""
    return str(int(rate)) if float(rate).is_integer() else str(rate)


def settings_section(results):
    """Return the Markdown of each method's settings as the configuration in manifest.json gives them.

    Methods with identical settings and the same settings label share one
    table, whose heading names them and their label. Each run's record
    carries the settings it ran with. A run whose record differs from the
    configuration is listed under the table, because the configuration does
    not describe that run.
    """
    config = results.manifest["config"]
    records = results.records()
    methods = ordered_methods(results.runs["method"])
    groups = []
    for method in methods:
        try:
            settings = registry.settings_for(config, method)
        except KeyError as error:
            raise DataError(f"the configuration in manifest.json has no settings for method {method} ({error!r}).") from error
        label = settings_label(method)
        for group in groups:
            if group["settings"] == settings and group["label"] == label:
                group["methods"].append(method)
                break
        else:
            groups.append({"methods": [method], "settings": settings, "label": label})

    parts = []
    for group in groups:
        names = ", ".join(code(method) for method in group["methods"])
        heading = f"### {names}" + (f" ({escape(group['label'])})" if group["label"] else "")
        rows = [[code(key), code(_format(value))] for key, value in _flatten(group["settings"])]
        if rows:
            parts += [heading, pipe_table(("Setting", "Value"), rows, align="ll")]
        else:
            parts += [heading, "These methods have no settings." if len(group["methods"]) > 1 else "This method has no settings."]
        different = [
            record for record in records.values()
            if record.get("method") in group["methods"] and record.get("settings") != group["settings"]
        ]
        if different:
            listed = ", ".join(f"{code(record['method'])} repetition {record['repetition']}" for record in different)
            parts.append(f"These runs' records hold other settings than the configuration above: {listed}. "
                         "Their records on the Downloads page give the settings they ran with.")
    return "\n\n".join(parts) + "\n"


def _flatten(settings, prefix=""):
    """Yield (dotted key, value) for every setting, in sorted key order.

    A nested table of settings, such as the KAN settings that KAN symbolic
    carries under ``kan``, is spread into dotted keys. A table of tables, such
    as PySR's nested_constraints, is one setting and stays whole.
    """
    for key in sorted(settings):
        value = settings[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict) and any(not isinstance(item, dict) for item in value.values()):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _format(value):
    text = value if isinstance(value, str) else json.dumps(value)
    # A code span cannot hold a backtick or a pipe inside a table cell.
    return text.replace("`", "'").replace("|", "\\|")


def _value(value):
    return NOT_RECORDED if value is None else escape(value)
