"""Orchestration: plan every run of a configuration, reuse stored ones, compute the rest.

A run is one (method, repetition) under one configuration. Its cache key is
a hash of everything that determines its result: the signal, the split, the
method's settings, the run's seed, the code and library versions, and the
key of the run it builds on. Paths, verbosity and key order do not enter.
"""

import csv
import datetime
import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from bench import formulas, metrics, provenance, registry, signal
from bench.errors import BenchError
from bench.methods.base import RunFailed, Task, Upstream
from bench.seeds import derive_seed
from bench.store import MARKER_NAME, RunStore, canonical_json, write_atomic

logger = logging.getLogger(__name__)

RUNS_CSV_COLUMNS = [
    "method", "repetition", "seed", "status", "reason", "stage", "mse_test", "r2_test", "mse_train",
    "seconds", "formula", "formula_latex", "formula_size", "key", "finished_at",
]
STATUSES = ("ok", "failed", "unavailable")


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: which method, which repetition, its seed and cache key."""

    method: str
    repetition: int
    seed: int
    key: str
    upstream_key: str | None
    settings: dict = field(hash=False, compare=False)
    versions: dict = field(hash=False, compare=False)


@dataclass
class Summary:
    """Counts of what a bench did, by outcome."""

    counts: Counter = field(default_factory=Counter)

    @property
    def failed(self):
        return self.counts["failed"]

    def line(self):
        order = ("computed", "reused", "failed", "unavailable")
        return ", ".join(f"{self.counts[name]} {name}" for name in order)


def ordered_methods(names):
    """Return ``names`` in the canonical order, which puts KAN numeric before the methods that build on it."""
    from bench.config import METHOD_NAMES

    return sorted(names, key=METHOD_NAMES.index)


def _signal_identity(config):
    return {"expression": str(signal.target_expression()), **config["signal"]}


def run_key(config, method, settings, seed, versions, upstream_key):
    """Return the cache key of one run: a SHA-256 over what determines its result."""
    payload = {
        "signal": _signal_identity(config),
        "split": config["split"],
        "method": method,
        "settings": settings,
        "seed": seed,
        "versions": versions,
        "upstream": upstream_key,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:24]


def plan_runs(config):
    """Return every run of ``config``, upstream methods first within each repetition."""
    adapters = {name: registry.create(config, name) for name in ordered_methods(set(config["run"]["methods"]) | {"kan_numeric"})}
    versions = {name: {**provenance.base_versions(), **adapter.library_versions()} for name, adapter in adapters.items()}
    planned = []
    for repetition in range(config["run"]["repetitions"]):
        keys = {}
        for name, adapter in adapters.items():
            seed = derive_seed(config["run"]["base_seed"], name, repetition)
            upstream_key = keys.get(adapter.upstream)
            key = run_key(config, name, adapter.settings, seed, versions[name], upstream_key)
            keys[name] = key
            planned.append(PlannedRun(name, repetition, seed, key, upstream_key, adapter.settings, versions[name]))
    return adapters, planned


def prepare_results_dir(results_dir):
    """Create the results folder, or check that an existing one was made by this tool."""
    marker = results_dir / MARKER_NAME
    if results_dir.exists() and any(results_dir.iterdir()) and not marker.exists():
        raise BenchError(
            f"{results_dir} exists and was not created by this benchmark (no {MARKER_NAME} file); "
            "choose another --results-dir or empty that folder."
        )
    results_dir.mkdir(parents=True, exist_ok=True)
    marker.touch()


def run_benchmark(config, profile, results_dir, methods=None):
    """Run the selected methods (all of the configuration's by default) and return a Summary.

    Stored ok runs are reused; failed and unavailable runs are computed again.
    ``runs.csv`` and ``manifest.json`` are rewritten at the end.
    """
    prepare_results_dir(results_dir)
    split = signal.make_split(
        signal.target_expression(), config["signal"]["domain"], config["signal"]["sampling_rate_hz"],
        config["split"]["test_fraction"], config["split"]["data_seed"],
    )
    store = RunStore(results_dir)
    adapters, planned = plan_runs(config)
    selected = set(methods or config["run"]["methods"])
    needed = selected | {adapters[name].upstream for name in selected if adapters[name].upstream}
    records = {}
    summary = Summary()
    for run in planned:
        if run.method not in needed:
            continue
        upstream = records.get(run.upstream_key) if run.upstream_key else None
        records[run.key] = _reuse_or_compute(run, adapters[run.method], split, store, upstream, summary)

    write_runs_csv(results_dir, store, [run for run in planned if run.method in config["run"]["methods"]])
    write_manifest(results_dir, profile, config, planned)
    return summary


def _reuse_or_compute(run, adapter, split, store, upstream, summary):
    stored = store.load(run.key)
    if stored is not None and stored["status"] == "ok":
        logger.info("%s repetition %d: reused stored run %s", run.method, run.repetition, run.key)
        summary.counts["reused"] += 1
        return stored

    logger.info("%s repetition %d: computing run %s (seed %d)", run.method, run.repetition, run.key, run.seed)
    record, arrays = execute(run, adapter, split, store, upstream)
    store.save(record, arrays)
    summary.counts["computed" if record["status"] == "ok" else record["status"]] += 1
    logger.info("%s repetition %d: %s in %.2f s%s", run.method, run.repetition, record["status"],
                record["seconds"] or 0.0, f" ({record['reason']})" if record["reason"] else "")
    return record


def _base_record(run, status, reason="", stage=""):
    return {
        "key": run.key,
        "method": run.method,
        "repetition": run.repetition,
        "seed": run.seed,
        "status": status,
        "reason": reason,
        "stage": stage,
        "metrics": {"mse_test": None, "r2_test": None, "mse_train": None},
        "seconds": None,
        "formula": "",
        "formula_latex": "",
        "formula_size": None,
        "details": {},
        "settings": run.settings,
        "versions": run.versions,
        "machine": provenance.machine(),
        "upstream_key": run.upstream_key,
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def execute(run, adapter, split, store, upstream):
    """Fit one run and return its record and arrays; failures become records, never exceptions."""
    reason = adapter.unavailable_reason()
    if reason:
        return _base_record(run, "unavailable", reason, "availability"), None

    upstream_arrays = None
    if adapter.upstream:
        if upstream is None or upstream["status"] != "ok":
            cause = upstream["reason"] if upstream else "it was not run"
            message = f"the {adapter.upstream} run of this repetition is not usable: {cause}"
            return _base_record(run, "failed", message, "upstream"), None
        upstream_arrays = store.load_arrays(upstream["key"])

    y_train = upstream_arrays["predictions"][split.train] if adapter.distilled else split.y_train
    task = Task(x_train=split.x_train, y_train=y_train, x_all=split.x, seed=run.seed)
    started = time.perf_counter()
    try:
        result = adapter.fit(task, Upstream(upstream, upstream_arrays) if adapter.upstream else None)
    except RunFailed as error:
        return _failed(run, error.stage, error.message, started), None
    except Exception as error:  # one method's crash must not stop the other runs
        logger.exception("%s repetition %d raised", run.method, run.repetition)
        return _failed(run, "fit", f"{type(error).__name__}: {error}", started), None
    seconds = time.perf_counter() - started

    try:
        record = _scored_record(run, adapter, split, result)
    except ValueError as error:
        return _failed(run, "score", f"{run.method}: {error}", started), None
    record["seconds"] = seconds
    return record, {"predictions": np.asarray(result.predictions, dtype=np.float64), **result.arrays}


def _failed(run, stage, message, started):
    record = _base_record(run, "failed", message, stage)
    record["seconds"] = time.perf_counter() - started
    return record


def _scored_record(run, adapter, split, result):
    predictions = np.asarray(result.predictions, dtype=np.float64)
    if predictions.shape != split.x.shape:
        raise ValueError(f"predictions have shape {predictions.shape}, expected {split.x.shape}")
    record = _base_record(run, "ok")
    record["metrics"] = {
        "mse_test": metrics.mean_squared_error(split.y_test, predictions[split.test]),
        "r2_test": metrics.r2_score(split.y_test, predictions[split.test]),
        "mse_train": metrics.mean_squared_error(split.y_train, predictions[split.train]),
    }
    if adapter.symbolic:
        record["formula"] = formulas.to_string(result.expression)
        record["formula_latex"] = formulas.to_latex(result.expression)
        record["formula_size"] = formulas.size(result.expression)
    record["details"] = json.loads(json.dumps(result.details, default=float))
    return record


def write_runs_csv(results_dir, store, planned):
    """Write ``runs.csv``: one row per planned run that has a stored record."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RUNS_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for run in planned:
        record = store.load(run.key)
        if record is not None:
            writer.writerow(_csv_row(record))
    write_atomic(results_dir / "runs.csv", buffer.getvalue().encode())


def _csv_row(record):
    row = {name: record.get(name, "") for name in RUNS_CSV_COLUMNS}
    row.update({name: "" if value is None else repr(float(value)) for name, value in record["metrics"].items()})
    row["seconds"] = "" if record["seconds"] is None else f"{record['seconds']:.3f}"
    row["formula_size"] = "" if record["formula_size"] is None else record["formula_size"]
    return row


def write_manifest(results_dir, profile, config, planned):
    """Write ``manifest.json``: the configuration, versions and machine behind the stored runs."""
    versions = {}
    for run in planned:
        versions.update(run.versions)
    manifest = {
        "profile": profile,
        "config": config,
        "signal": {"expression": str(signal.target_expression()), "latex": formulas.to_latex(signal.target_expression())},
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": provenance.git_commit(),
        "versions": versions,
        "machine": provenance.machine(),
    }
    write_atomic(results_dir / "manifest.json", (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
