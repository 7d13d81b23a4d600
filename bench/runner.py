"""Orchestration: plan every run of a configuration, reuse stored ones, compute the rest.

A run is one (method, repetition) under one configuration. Its cache key is
a hash of everything that determines its result: the signal, the split, the
method's settings, the run's seed, the code and library versions, and the
key of the run it builds on. Paths, verbosity and key order do not enter.
"""

import concurrent.futures
import csv
import datetime
import hashlib
import io
import json
import logging
import multiprocessing
from collections import Counter
from dataclasses import dataclass, field

from bench import execution, formulas, provenance, registry, signal
from bench.errors import BenchError
from bench.seeds import derive_seed
from bench.store import MARKER_NAME, RunStore, canonical_json, write_atomic
from bench.time_limit import RunTimedOut, time_limit

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


def plan_runs(config, methods=None):
    """Return the adapters and every run of ``config`` plus ``methods``, upstream methods first in each repetition."""
    names = set(config["run"]["methods"]) | set(methods or ()) | {"kan_numeric"}
    adapters = {name: registry.create(config, name) for name in ordered_methods(names)}
    versions = {
        name: {**provenance.base_versions(registry.sources(name)), **adapter.library_versions()}
        for name, adapter in adapters.items()
    }
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
    try:
        if results_dir.exists() and not results_dir.is_dir():
            raise BenchError(f"--results-dir {results_dir} is a file; pass a folder.")
        if results_dir.exists() and any(results_dir.iterdir()) and not marker.exists():
            raise BenchError(
                f"{results_dir} exists and was not created by this benchmark (no {MARKER_NAME} file); "
                "choose another --results-dir or empty that folder."
            )
        results_dir.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError as error:
        raise BenchError(f"cannot use {results_dir} as the results folder: {error.strerror}. "
                         "Pass a writable folder to --results-dir.") from None


def run_benchmark(config, profile, results_dir, methods=None, command=None):
    """Run the selected methods (all of the configuration's by default) and return a Summary.

    Everything that can be checked is checked before the results folder is
    touched. Stored ok runs are reused; failed and unavailable runs are
    computed again. ``runs.csv`` and ``manifest.json`` are rewritten at the
    end, listing the configuration's methods and any selected with
    ``methods``.
    """
    _make_split(config)
    adapters, planned = plan_runs(config, methods)
    prepare_results_dir(results_dir)
    store = RunStore(results_dir)

    selected = set(methods or config["run"]["methods"])
    needed = selected | {adapters[name].upstream for name in selected if adapters[name].upstream}
    batches = [[run for run in planned if run.repetition == repetition and run.method in needed]
               for repetition in range(config["run"]["repetitions"])]
    summary = Summary()
    for counts in _run_batches(config, results_dir, methods, batches):
        summary.counts.update(counts)

    listed = set(config["run"]["methods"]) | selected
    try:
        write_runs_csv(results_dir, store, [run for run in planned if run.method in listed])
        write_manifest(results_dir, profile, config, planned, command, keep_unchanged=not summary.counts["written"])
    except OSError as error:
        raise BenchError(f"cannot write runs.csv or manifest.json in {results_dir}: {error.strerror}. Fix the "
                         "folder, then run again; every run is stored and will be reused.") from None
    return summary


def _same_outcome(stored, record):
    fields = ("status", "stage", "reason")
    return record["status"] != "ok" and all(stored.get(name) == record[name] for name in fields)


def _make_split(config):
    return signal.make_split(
        signal.target_expression(), config["signal"]["domain"], config["signal"]["sampling_rate_hz"],
        config["split"]["test_fraction"], config["split"]["data_seed"],
    )


def _run_batches(config, results_dir, methods, batches):
    """Yield the outcome counts of each batch (one repetition), in worker processes when ``run.workers`` > 1.

    Repetitions are independent, so each worker takes whole repetitions and
    writes their records itself, with the store's atomic writes. Every fit
    uses one torch thread whatever the worker count (see execution), so the
    results do not depend on it.
    """
    workers = min(config["run"]["workers"], len(batches))
    if workers <= 1:
        for batch in batches:
            yield run_batch(config, results_dir, methods, batch)
        return

    context = multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                                initargs=(level,)) as pool:
        futures = [pool.submit(run_batch, config, results_dir, methods, batch) for batch in batches]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _init_worker(level):
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s",
                        datefmt="%H:%M:%S")


def run_batch(config, results_dir, methods, batch):
    """Run one repetition's planned runs in order and return the outcome counts."""
    split = _make_split(config)
    adapters, _ = plan_runs(config, methods)
    store = RunStore(results_dir)
    summary = Summary()
    records = {}
    for run in batch:
        upstream = records.get(run.upstream_key) if run.upstream_key else None
        records[run.key] = _reuse_or_compute(run, adapters[run.method], split, store, upstream, summary,
                                             config["run"]["time_limit_s"])
    return summary.counts


def _reuse_or_compute(run, adapter, split, store, upstream, summary, limit_s):
    # The lock keeps two benches on one folder from computing the same run
    # at once. The second one waits, then finds the first one's record.
    with store.lock(run.key):
        stored = store.load(run.key)
        if stored is not None and stored["status"] == "ok":
            logger.info("%s repetition %d: reused stored run %s", run.method, run.repetition, run.key)
            summary.counts["reused"] += 1
            return stored

        upstream_arrays = store.load_arrays(upstream["key"]) if upstream and upstream["status"] == "ok" else None
        record, arrays = _execute_with_limit(run, adapter, split, upstream, upstream_arrays, limit_s)
        summary.counts["computed" if record["status"] == "ok" else record["status"]] += 1
        seconds = f" in {record['seconds']:.2f} s" if record["seconds"] is not None else ""
        reason = f": {record['reason']}" if record["reason"] else ""
        logger.info("%s repetition %d: %s%s%s", run.method, run.repetition, record["status"], seconds, reason)
        if stored is not None and _same_outcome(stored, record):
            # A failure or unavailability seen again keeps its first record, so
            # that a rerun leaves the stored results byte for byte as they were.
            return stored
        try:
            store.save(record, arrays)
        except OSError as error:
            raise BenchError(f"cannot write run {run.key} to {store.root}: {error.strerror}. Free space or fix the "
                             "folder's permissions, then run again; the runs already stored are kept.") from None
        summary.counts["written"] += 1
        return record


def _execute_with_limit(run, adapter, split, upstream, upstream_arrays, limit_s):
    try:
        with time_limit(limit_s):
            return execution.execute(run, adapter, split, upstream, upstream_arrays)
    except RunTimedOut:
        record = execution.base_record(run, "failed", f"the run exceeded run.time_limit_s = {limit_s} s; "
                                       "raise the limit or lower the method's budget", "time limit")
        record["seconds"] = float(limit_s)
        return record, None


def write_runs_csv(results_dir, store, planned):
    """Write ``runs.csv``: one row per planned run that has a stored record."""
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


def write_manifest(results_dir, profile, config, planned, command=None, keep_unchanged=False):
    """Write ``manifest.json``: the configuration, versions and machine behind the stored runs.

    With ``keep_unchanged``, an existing manifest that differs only in its
    date, commit and command line is left as it is, so that a bench that
    wrote no record changes no file.
    """
    # Each method's "bench" version hashes its own modules, so the manifest
    # keeps the shared part there and every method's in method_code.
    versions, method_code = {}, {}
    for run in planned:
        versions.update(run.versions)
        method_code[run.method] = run.versions["bench"]
    versions["bench"] = provenance.code_version()
    manifest = {
        "profile": profile,
        "config": config,
        "signal": {"expression": str(signal.target_expression()), "latex": formulas.to_latex(signal.target_expression())},
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": provenance.git_commit(),
        # The bench command line, so that the report can show how to rerun it.
        "command": command,
        "versions": versions,
        "method_code": method_code,
        "machine": provenance.machine(),
    }
    path = results_dir / "manifest.json"
    if keep_unchanged and _same_manifest(path, manifest):
        return
    write_atomic(path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())


MANIFEST_VOLATILE_FIELDS = ("written_at", "git_commit", "command")


def _stable_part(manifest):
    return {key: value for key, value in manifest.items() if key not in MANIFEST_VOLATILE_FIELDS}


def _same_manifest(path, manifest):
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(existing, dict):
        return False
    # The round trip through JSON turns tuples into lists, as on disk.
    return _stable_part(existing) == json.loads(json.dumps(_stable_part(manifest)))
