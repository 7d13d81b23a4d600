"""Helpers for the report and site tests: a small fake results folder and a copy of the site's sources.

This module contains no tests. The fake results have the layout the bench
writes (runs.csv, manifest.json, records with checksums, arrays) with ok,
failed and unavailable runs, so the report can be checked without fitting
anything.
"""

import csv
import functools
import json
import shutil
from pathlib import Path

import numpy as np
import sympy

from bench import config as config_module
from bench import signals
from bench import registry
from bench.signal import X, evaluate_expression, sample_grid, target_expression
from bench.runner import run_key
from bench.seeds import derive_seed
from bench.store import RunStore

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The files and folders that make up the site's sources, as a clean clone has them.
SITE_SOURCES = ("_quarto.yml", "index.qmd", "CITATION.cff", "report")
PROFILE = "fake"
RATE_HZ = 200
# The columns of runs.csv as the bench wrote them before noise levels existed. The report must still
# read such tables, as runs without label noise.
COLUMNS = (
    "method", "repetition", "seed", "status", "reason", "stage", "mse_test", "r2_test",
    "mse_train", "seconds", "formula", "formula_latex", "formula_size", "key", "finished_at",
)  # fmt: skip
UNAVAILABLE_REASON = "no Julia executable found: julia is not on PATH. Install Julia to run PySR"
FAILED_REASON = "auto_symbolic found no function | edge (0, 1, 0)"
SYMBOLIC_FORMULA = 4 / sympy.pi * sympy.sin(20 * sympy.pi * X) + sympy.Float("0.01") * X
KAN_MSE_TEST = (1.5e-3, 2.5e-3)
KAN_R2_TEST = (0.9991, 0.9987)
FINISHED_AT = ("2025-01-02T03:04:05+00:00", "2025-01-03T04:05:06+00:00")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
MACHINE = {"cpu": "Fake CPU", "cores": 4, "system": "Linux-6.1-x86_64"}
DEFAULT_METHODS = ("kan_numeric", "kan_symbolic", "pysr_direct")
FAKE_VERSIONS = {"python": "3.11.9"}
# The quick profile's base seed, which fake_config keeps.
FAKE_BASE_SEED = config_module.PROFILES["quick"]["run"]["base_seed"]


def fake_config(methods):
    """Return a valid configuration of the quick profile at RATE_HZ with two repetitions of ``methods``."""
    return config_module.load_config(
        "quick", {"signal": {"sampling_rate_hz": RATE_HZ}, "run": {"repetitions": 2, "methods": list(methods)}}
    )


def make_results(root, methods=DEFAULT_METHODS, profile=PROFILE):
    """Write a fake results/<profile>/ folder under ``root`` and return it.

    kan_numeric has two ok runs, kan_symbolic one ok and one failed run,
    pysr_direct two unavailable runs: the cases the report must show.
    """
    results = root / "results" / profile
    store = RunStore(results)
    config = fake_config(methods)
    x = sample_grid(*config["signal"]["domain"], RATE_HZ)
    y = evaluate_expression(target_expression(), x)

    rows = []
    for repetition in (0, 1):
        for method in methods:
            record, arrays = _run(config, method, repetition, x, y)
            store.save(record, arrays)
            rows.append(_csv_row(record))

    with open(results / "runs.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    manifest = {
        "profile": profile,
        "config": config,
        "written_at": "2025-01-04T00:00:00+00:00",
        "git_commit": COMMIT,
        "command": f"python -m bench run --profile {profile}",
        "versions": {"python": "3.11.9", "numpy": "2.4.6", "sympy": "1.14.0", "bench": "0.1.0+fake"},
        "machine": MACHINE,
    }
    (results / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return results


def edit_runs_csv(results, key, **cells):
    """Replace cells of the row of run ``key`` in runs.csv, leaving its record as it is."""
    path = results / "runs.csv"
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        columns, rows = reader.fieldnames, list(reader)
    for row in rows:
        if row["key"] == key:
            row.update(cells)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@functools.cache
def fake_key(method, repetition):
    """Return the cache key of a fake run: the key the bench computes from the fake configuration and record."""
    config = fake_config(DEFAULT_METHODS)
    return run_key(config, method, registry.settings_for(config, method), fake_seed(method, repetition),
                   FAKE_VERSIONS, None, signal_identity=_fake_identity())


@functools.cache
def _fake_identity():
    return signals.load_signal(fake_config(DEFAULT_METHODS)).identity


def fake_seed(method, repetition):
    """Return the seed of a fake run: the one the bench derives from the fake configuration's base seed."""
    return derive_seed(FAKE_BASE_SEED, method, repetition)


def _run(config, method, repetition, x, y):
    """Return the record and arrays of one fake run."""
    record = {
        "key": fake_key(method, repetition),
        "method": method,
        "repetition": repetition,
        "seed": fake_seed(method, repetition),
        "status": "ok",
        "reason": "",
        "stage": "",
        "metrics": {"mse_test": None, "r2_test": None, "mse_train": None},
        "seconds": None,
        "formula": "",
        "formula_latex": "",
        "formula_size": None,
        "details": {},
        "settings": registry.settings_for(config, method),
        "versions": FAKE_VERSIONS,
        "machine": MACHINE,
        "upstream_key": None,
        "finished_at": FINISHED_AT[repetition],
    }
    if method == "kan_numeric":
        record.update(metrics={"mse_test": KAN_MSE_TEST[repetition], "r2_test": KAN_R2_TEST[repetition],
                               "mse_train": 1e-3 * (repetition + 1)}, seconds=12.5 + repetition)
        return record, {"predictions": y + 0.01 * (repetition + 1) * np.cos(x)}
    if method == "kan_symbolic" and repetition == 0:
        record.update(metrics={"mse_test": 0.25, "r2_test": 0.5, "mse_train": 0.24}, seconds=3.0,
                      formula=str(SYMBOLIC_FORMULA), formula_latex=sympy.latex(SYMBOLIC_FORMULA), formula_size=9)
        return record, {"predictions": evaluate_expression(SYMBOLIC_FORMULA, x)}
    if method == "kan_symbolic":
        record.update(status="failed", stage="symbolic", reason=FAILED_REASON, seconds=2.0)
        return record, None
    record.update(status="unavailable", stage="availability", reason=UNAVAILABLE_REASON)
    return record, None


def _csv_row(record):
    row = {name: record.get(name, "") for name in COLUMNS}
    row.update({name: "" if value is None else repr(float(value)) for name, value in record["metrics"].items()})
    row["seconds"] = "" if record["seconds"] is None else f"{record['seconds']:.3f}"
    row["formula_size"] = "" if record["formula_size"] is None else record["formula_size"]
    return row


def _ignore_generated(folder, names):
    """Return the names in ``folder`` that .gitignore leaves out of the report's sources: report/_generated, report/signals."""
    return [name for name in names if name == "_generated" or (Path(folder).name == "report" and name == "signals")]


def copy_site_sources(destination):
    """Copy the site's sources into ``destination`` as a clean clone has them: no generated files, no _site."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in SITE_SOURCES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            # The generated includes and signal pages are not in git, so a clean clone lacks them.
            shutil.copytree(source, destination / name, ignore=_ignore_generated)
        else:
            shutil.copy2(source, destination / name)
    return destination


def records_of(results_dir):
    """Return every record in ``results_dir``/records, read from the JSON files themselves."""
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted((results_dir / "records").glob("*.json"))]


def table_cells(markdown, table_id):
    """Return the body rows of the pipe table inside the fenced div ``table_id``, as lists of cells without spans."""
    block = markdown.split(f"::: {{#{table_id}}}", 1)[1].split("\n:::", 1)[0]
    rows = []
    for line in [line for line in block.splitlines() if line.startswith("|")][2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows.append([cell.replace('<span style="white-space: nowrap">', "").replace("</span>", "") for cell in cells])
    return rows
