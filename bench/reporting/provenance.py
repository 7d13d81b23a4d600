"""Provenance sections: the signal and split settings, and the commit, versions and machine of a stored profile."""

import json

import sympy

from bench.reporting.markdown import code, display_math, escape, pipe_table
from bench.reporting.results import bench_command, render_command

NOT_RECORDED = "not recorded"


def signal_section(results, target):
    """Return the Markdown of the target formula and the sampling, split and repetition settings."""
    config = results.manifest["config"]
    signal = config["signal"]
    split = config.get("split", {})
    run = config.get("run", {})
    start, stop = signal["domain"]
    rows = [
        ["Interval", escape(f"[{start}, {stop})")],
        ["Sampling rate", f"{signal['sampling_rate_hz']} Hz"],
        ["Samples", str(results.grid().size)],
        ["Test fraction", _value(split.get("test_fraction"))],
        ["Data seed (split)", _value(split.get("data_seed"))],
        ["Repetitions per method", _value(run.get("repetitions"))],
        ["Base seed (runs)", _value(run.get("base_seed"))],
    ]
    table = pipe_table(("Setting", "Value"), rows, align="ll")
    caption = f": Signal, split and repetition settings of profile {code(results.profile)}."
    return f"{display_math(sympy.latex(target))}\n\n{table}\n\n{caption}\n"


def provenance_section(results):
    """Return the Markdown that names the profile, commit, versions, machine and the commands that regenerate it."""
    manifest = results.manifest
    machine = manifest.get("machine") or {}
    commit = manifest.get("git_commit")
    rows = [
        ["Profile", code(results.profile)],
        ["Results written", escape(manifest.get("written_at") or NOT_RECORDED)],
        ["Git commit", code(commit) if commit else NOT_RECORDED],
        ["CPU", escape(machine.get("cpu") or NOT_RECORDED)],
        ["Cores", _value(machine.get("cores"))],
        ["Operating system", _value(machine.get("system"))],
    ]
    versions = manifest.get("versions") or {}
    version_rows = [[code(name), escape(version)] for name, version in sorted(versions.items())]

    parts = [
        pipe_table(("Item", "Value"), rows, align="ll"),
        f": Provenance of profile {code(results.profile)}, from its manifest.json.",
    ]
    if version_rows:
        parts += [pipe_table(("Library", "Version"), version_rows, align="ll"), ": Versions recorded with the results."]
    parts += [
        "The configuration the bench ran with, as stored in manifest.json:",
        "```json\n" + compact_json(manifest.get("config", {})) + "\n```",
        "To run the bench again and rebuild this report from its results:",
        f"```bash\n{bench_command(results.profile)}\n{render_command(results.profile)}\n```",
    ]
    return "\n\n".join(parts) + "\n"


def compact_json(value, indent=0):
    """Return ``value`` as JSON with one key a line and every list or empty object on one line."""
    if not isinstance(value, dict) or not value:
        return json.dumps(value)
    inner = " " * (indent + 2)
    items = [f"{inner}{json.dumps(key)}: {compact_json(value[key], indent + 2)}" for key in sorted(value)]
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def _value(value):
    return NOT_RECORDED if value is None else escape(value)
