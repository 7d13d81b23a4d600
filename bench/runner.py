"""Orchestration: plan every run of a configuration, reuse stored ones, compute the rest.

A run is one (method, noise level, repetition) under one configuration. Its
cache key is a hash of everything that determines its result: the signal,
the split, the label noise, the method's settings, the run's seed, the code
and library versions, and the key of the run it builds on. Paths, verbosity
and key order do not enter.
"""

import concurrent.futures
import contextlib
import csv
import datetime
import hashlib
import io
import json
import logging
import logging.handlers
import math
import multiprocessing
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from bench import execution, formulas, noise, provenance, registry, signals
from bench.errors import BenchError
from bench.progress import Progress
from bench.seeds import derive_seed
from bench.store import MARKER_NAME, RunStore, canonical_json, write_atomic
from bench.time_limit import RunTimedOut, time_limit

logger = logging.getLogger(__name__)

RUNS_CSV_COLUMNS = [
    "method", "noise", "repetition", "seed", "status", "reason", "stage", "mse_test", "r2_test", "mse_train",
    "seconds", "formula", "formula_latex", "formula_size", "key", "finished_at",
]
STATUSES = ("ok", "failed", "unavailable")
# How often a pool worker checks that the bench process is still running, and its exit status when it is not.
PARENT_CHECK_S = 1.0
EXIT_ORPHANED = 1


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: which method, noise level and repetition, its seed and cache key."""

    method: str
    repetition: int
    seed: int
    key: str
    upstream_key: str | None
    settings: dict = field(hash=False, compare=False)
    versions: dict = field(hash=False, compare=False)
    # Relative size of the noise on the training labels (bench.noise).
    noise: float = 0.0


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


def run_key(config, method, settings, seed, versions, upstream_key, noise_level=0.0, signal_identity=None):
    """Return the cache key of one run: a SHA-256 over what determines its result.

    Noise enters only above level 0, so the runs without noise keep the keys
    they had before noise levels existed. ``signal_identity`` is the
    configured signal's (``bench.signals.Signal.identity``), which is
    computed from ``config`` when not given.
    """
    if signal_identity is None:
        signal_identity = signals.load_signal(config).identity
    payload = {
        "signal": signal_identity,
        "split": config["split"],
        "method": method,
        "settings": settings,
        "seed": seed,
        "versions": versions,
        "upstream": upstream_key,
    }
    noise_identity = noise.cache_identity(noise_level)
    if noise_identity is not None:
        payload["noise"] = noise_identity
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:24]


def plan_runs(config, methods=None):
    """Return the adapters and every run of ``config`` plus ``methods``, upstream methods first in each batch.

    The runs come in batches of one noise level and one repetition. A
    method's seed depends on the repetition only, so each noise level
    repeats the same seeds and the levels stay paired.
    """
    names = set(config["run"]["methods"]) | set(methods or ()) | {"kan_numeric"}
    identity = signals.load_signal(config).identity
    adapters = {name: registry.create(config, name) for name in ordered_methods(names)}
    versions = {
        name: {**provenance.base_versions(registry.sources(name)), **adapter.library_versions()}
        for name, adapter in adapters.items()
    }
    planned = []
    for level in config["run"]["noise_levels"]:
        for repetition in range(config["run"]["repetitions"]):
            keys = {}
            for name, adapter in adapters.items():
                seed = derive_seed(config["run"]["base_seed"], name, repetition)
                upstream_key = keys.get(adapter.upstream)
                key = run_key(config, name, adapter.settings, seed, versions[name], upstream_key, level, identity)
                keys[name] = key
                planned.append(PlannedRun(name, repetition, seed, key, upstream_key, adapter.settings,
                                          versions[name], level))
    return adapters, planned


def check_results_dir(results_dir):
    """Raise BenchError when ``results_dir`` is a file, or a folder with content that this tool did not create.

    A folder that this tool created has the marker file, so an existing
    folder is accepted when it is empty, has the marker, or contains only
    a signals/ folder of marked folders (``_has_only_marked_signal_folders``).
    """
    try:
        if results_dir.exists() and not results_dir.is_dir():
            raise BenchError(f"--results-dir {results_dir} is a file; pass a folder.")
        foreign = (results_dir.exists() and any(results_dir.iterdir()) and not (results_dir / MARKER_NAME).exists()
                   and not _has_only_marked_signal_folders(results_dir))
        if foreign:
            raise BenchError(
                f"{results_dir} exists and was not created by this benchmark (no {MARKER_NAME} file); "
                "choose another --results-dir or empty that folder."
            )
    except OSError as error:
        raise BenchError(f"cannot use {results_dir} as the results folder: {error.strerror}. "
                         "Pass a writable folder to --results-dir.") from None


def _has_only_marked_signal_folders(folder):
    """Return whether ``folder`` contains nothing but a signals/ folder whose entries are all marked folders.

    Benches of signals other than the seed created such a folder without
    the marker file until they marked the --results-dir folder too.
    """
    entries = list(folder.iterdir())
    if [entry.name for entry in entries] != ["signals"] or not entries[0].is_dir():
        return False
    return all(entry.is_dir() and (entry / MARKER_NAME).exists() for entry in entries[0].iterdir())


def prepare_results_dir(results_dir, base=None):
    """Create the results folder, or check that an existing one was made by this tool.

    ``base`` is the bench's folder (--results-dir) when ``results_dir`` is a
    signal's folder below it (bench.signals.results_dir). It is checked
    first and gets the marker file too, so that a later bench of the seed
    signal, which writes into ``base`` itself, accepts it.
    """
    folders = [results_dir] if base is None or base == results_dir else [base, results_dir]
    for folder in folders:
        check_results_dir(folder)
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / MARKER_NAME).touch()
        except OSError as error:
            raise BenchError(f"cannot use {folder} as the results folder: {error.strerror}. "
                             "Pass a writable folder to --results-dir.") from None


def run_benchmark(config, profile, results_dir, methods=None, command=None, cluster=None, progress=None, base=None):
    """Run the selected methods (all of the configuration's by default) and return a Summary.

    Everything that can be checked is checked before the results folder is
    touched, the Dask cluster included. Stored ok runs are reused; failed
    and unavailable runs are computed again. ``runs.csv`` and
    ``manifest.json`` are rewritten at the end, listing the configuration's
    methods and any selected with ``methods``. With ``cluster`` (a
    ``bench.cluster.ClusterSpec``) the runs go to Dask, otherwise to this
    process or to ``run.workers`` local processes. ``progress`` (a
    ``bench.progress.Progress``) is told of every run. ``base`` is the
    bench's folder when ``results_dir`` is a signal's folder below it, and
    is created with the marker file too (``prepare_results_dir``).
    """
    progress = progress or Progress()
    make_split(config)
    adapters, planned = plan_runs(config, methods)
    selected = set(methods or config["run"]["methods"])
    needed = selected | {adapters[name].upstream for name in selected if adapters[name].upstream}
    batches = [[run for run in planned if (run.noise, run.repetition) == batch and run.method in needed]
               for batch in _batch_order(config)]

    summary = Summary()
    with contextlib.ExitStack() as stack:
        if cluster is not None:
            from bench import cluster as dask_cluster

            client = stack.enter_context(dask_cluster.connect(cluster))
        prepare_results_dir(results_dir, base)
        progress.planned(sum(len(batch) for batch in batches))
        if cluster is not None:
            outcomes = dask_cluster.run_batches(client, config, results_dir, batches, progress)
        else:
            outcomes = _run_batches(config, results_dir, methods, batches, progress)
        for counts in outcomes:
            summary.counts.update(counts)

    store = RunStore(results_dir)
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


def _batch_order(config):
    """Return the (noise level, repetition) pairs of ``config``, one batch each, in run order.

    The order is the same for every configuration (levels rising, then
    repetitions), so benches that share runs claim them in one order.
    """
    return [(level, repetition) for level in sorted(config["run"]["noise_levels"])
            for repetition in range(config["run"]["repetitions"])]


def make_split(config):
    """Return the signal's samples and train/test split for ``config``."""
    return signals.load_signal(config).split


def split_for_run(config, split, run):
    """Return the split that ``run`` trains on: ``split`` with the run's label noise (bench.noise)."""
    seed = noise.noise_seed(config["split"]["data_seed"], run.noise, run.repetition)
    return noise.noisy_split(split, run.noise, seed)


def _run_batches(config, results_dir, methods, batches, progress):
    """Yield the outcome counts of each batch (one repetition), in worker processes when ``run.workers`` > 1.

    Repetitions are independent, so each worker takes whole repetitions and
    writes their records itself, with the store's atomic writes. Each run
    sets its own thread counts (methods.kan.torch_threads,
    methods.operon.n_threads), so the results do not depend on the worker
    count. Workers send their log records and progress events through a
    queue, and a thread of this process hands them to its loggers and to
    ``progress``.
    """
    workers = min(config["run"]["workers"], len(batches))
    if workers <= 1:
        for batch in batches:
            yield run_batch(config, results_dir, methods, batch, progress)
        return

    context = multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    events = context.Queue()
    listener = threading.Thread(target=_forward_events, args=(events, progress), name="bench-events", daemon=True)
    listener.start()
    try:
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                                    initargs=(level, events)) as pool:
            futures = [pool.submit(_run_batch_in_worker, config, results_dir, methods, batch) for batch in batches]
            try:
                for future in concurrent.futures.as_completed(futures):
                    yield future.result()
            except BaseException:
                # On an interrupt or a failure, stop the workers now instead of letting them finish their
                # repetitions and start the queued ones. Their finished runs are stored, and records are
                # written atomically, so a stopped worker leaves no half-written record.
                _terminate_workers(pool)
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        # The pool has shut down, so the workers' events are all in the
        # queue before this end marker. The timeout covers a worker killed
        # in the middle of a write, which leaves the queue unreadable.
        events.put(None)
        listener.join(timeout=10)


def _terminate_workers(pool):
    # NOTE: ProcessPoolExecutor has no public way to stop its workers before Python 3.14's
    # terminate_workers(), so this reads its private table of worker processes.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def _exit_with_parent(parent):
    """Exit this worker process once its parent, the bench, is gone, such as after a kill -9."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(EXIT_ORPHANED)


# The progress of a pool worker process, which sends its events to the bench's process; set by _init_worker.
_worker_progress = Progress()


class _QueueProgress(Progress):
    """Sends a worker process's progress events to the bench's process through a queue."""

    def __init__(self, events):
        self._events = events

    def started(self, run):
        self._events.put(("started", (run,)))

    def finished(self, run, status, outcome):
        self._events.put(("finished", (run, status, outcome)))


def _init_worker(level, events):
    global _worker_progress

    root = logging.getLogger()
    root.handlers = [logging.handlers.QueueHandler(events)]
    root.setLevel(level)
    _worker_progress = _QueueProgress(events)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="bench-parent-watch", daemon=True).start()


def _forward_events(events, progress):
    while (event := events.get()) is not None:
        if isinstance(event, logging.LogRecord):
            logging.getLogger(event.name).handle(event)
        else:
            kind, arguments = event
            getattr(progress, kind)(*arguments)


def _run_batch_in_worker(config, results_dir, methods, batch):
    return run_batch(config, results_dir, methods, batch, _worker_progress)


def run_batch(config, results_dir, methods, batch, progress=None):
    """Run one batch's planned runs (one noise level and repetition) in order and return the outcome counts."""
    progress = progress or Progress()
    clean = make_split(config)
    adapters, _ = plan_runs(config, methods)
    store = RunStore(results_dir)
    summary = Summary()
    records = {}
    for run in batch:
        upstream = records.get(run.upstream_key) if run.upstream_key else None
        split = split_for_run(config, clean, run)
        records[run.key] = _reuse_or_compute(run, adapters[run.method], split, store, upstream, summary,
                                             config["run"]["time_limit_s"], progress)
    return summary.counts


def _reuse_or_compute(run, adapter, split, store, upstream, summary, limit_s, progress):
    # The lock keeps two benches on one folder from computing the same run
    # at once. The second one waits, then finds the first one's record.
    with store.lock(run.key):
        stored = store.load(run.key)
        if stored is not None and stored["status"] == "ok":
            summary.counts["reused"] += 1
            report_finished(run, stored, "reused", progress)
            return stored

        progress.started(run)
        upstream_arrays = store.load_arrays(upstream["key"]) if upstream and upstream["status"] == "ok" else None
        record, arrays = execute_with_limit(run, adapter, split, upstream, upstream_arrays, limit_s)
        summary.counts["computed" if record["status"] == "ok" else record["status"]] += 1
        stored_record = store_outcome(store, run, stored, record, arrays, summary)
        report_finished(run, record, "computed", progress)
        return stored_record


def store_outcome(store, run, stored, record, arrays, summary):
    """Store a computed run's ``record`` and ``arrays`` and return the record kept for the run.

    ``stored`` is the run's record already on disk, or None. The caller
    holds the run's lock.
    """
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


def report_finished(run, record, outcome, progress):
    """Log one line for a finished run and tell ``progress``; ``outcome`` is "computed" or "reused".

    The seconds are the run's fit time from its record, so a reused run
    shows the time it took when it was computed.
    """
    seconds = "-" if record["seconds"] is None else f"{record['seconds']:.2f}"
    reason = f": {record['reason']}" if record["reason"] else ""
    level = f" noise {run.noise:g}" if run.noise else ""
    logger.info("%s repetition %d%s seed %d: %s, %s, %s s, run %s%s", run.method, run.repetition, level, run.seed,
                record["status"], outcome, seconds, run.key, reason)
    progress.finished(run, record["status"], outcome)


def failure_record(run, reason, stage):
    """Return the record of a run that failed before or outside ``execution.execute``."""
    return {**execution.base_record(run, "failed", reason, stage), "noise": run.noise}


def execute_with_limit(run, adapter, split, upstream, upstream_arrays, limit_s):
    """Return the record and arrays of ``execution.execute``, or a failed record if the run passes ``limit_s``."""
    try:
        with time_limit(limit_s):
            record, arrays = execution.execute(run, adapter, split, upstream, upstream_arrays)
    except RunTimedOut:
        record = failure_record(run, f"the run exceeded run.time_limit_s = {limit_s} s; "
                                "raise the limit or lower the method's budget", "time limit")
        record["seconds"] = float(limit_s)
        arrays = None
    record["noise"] = run.noise
    return _fail_non_finite_metrics(run, record, arrays)


def _fail_non_finite_metrics(run, record, arrays):
    """Return ``record`` and ``arrays``, or a failed record when an ok run's metric overflowed to inf or NaN."""
    if record["status"] != "ok":
        return record, arrays
    bad = {name: value for name, value in record["metrics"].items() if not math.isfinite(value)}
    if not bad:
        return record, arrays
    described = ", ".join(f"{name} is {value}" for name, value in bad.items())
    reason = f"{run.method}: {described}; the predictions or the targets are too large or too small to score in float64"
    failed = failure_record(run, reason, "score")
    failed["seconds"] = record["seconds"]
    return failed, None


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
    # Records stored before noise levels existed have none: they were trained on clean labels.
    row["noise"] = repr(float(record.get("noise", 0.0)))
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
        "signal": signal_summary(signals.load_signal(config)),
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


def signal_summary(configured):
    """Return what the manifest records of a ``bench.signals.Signal``: the report draws its pages from it."""
    expression = configured.expression
    return {
        "name": configured.name,
        "description": configured.description,
        "expression": None if expression is None else str(expression),
        "latex": None if expression is None else formulas.to_latex(expression),
        "sampling_rate_hz": configured.sampling_rate_hz,
        "samples": int(configured.split.x.size),
        "identity": configured.identity,
    }


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
