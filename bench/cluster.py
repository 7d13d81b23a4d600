"""Runs on a Dask cluster: ``bench run --scheduler ADDRESS`` or ``bench run --workers N``.

Each run that must be computed is one Dask task. This process, the client,
plans the runs, reuses the stored ones and submits the rest. A dependent
run (KAN symbolic, the distilled methods) depends on the task of its KAN
numeric run, or receives that run's stored record and arrays when it was
reused. A worker returns the record and arrays of its run, and the client
writes them into the results folder, under the run's lock and with the
store's atomic writes, as a local bench does. Workers never open the
results folder, so they need no shared file system. Every worker needs the
same versions of this package and of the method libraries as the client:
a worker whose versions differ records the run as failed (stage
"environment") instead of computing it under the client's cache key.

dask.distributed is imported only here, and only when a bench uses Dask.
"""

import contextlib
import io
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from bench import provenance, registry, runner
from bench.errors import BenchError
from bench.store import RunStore

logger = logging.getLogger(__name__)

# Seconds to wait for the scheduler to accept the connection, then for its first worker to join.
CONNECT_TIMEOUT_S = 10
WORKERS_TIMEOUT_S = 60
MAX_LOCAL_WORKERS = 64
INSTALL_HINT = "pip install -e '.[distributed]'"
# The topic of the events by which workers announce that a run starts.
STARTED_TOPIC = "kan-sr-bench-run-started"
# The loggers whose level the client passes to its workers; bench.methods.kan carries pykan's output at DEBUG.
FORWARDED_LOGGERS = ("bench", "bench.methods.kan")

_ADDRESS = re.compile(r"(?:tcp://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>[0-9]{1,5})")


@dataclass(frozen=True)
class ClusterSpec:
    """The cluster of a bench: the address of a running Dask scheduler, or the worker count of a local one."""

    scheduler: str | None = None
    local_workers: int | None = None

    def option(self):
        return "--scheduler" if self.scheduler is not None else "--workers"


def parse_scheduler_address(text):
    """Return ``text``, [tcp://]HOST:PORT, as a tcp:// address; raise BenchError for any other form."""
    match = _ADDRESS.fullmatch(text.strip())
    if match is None or not 0 < int(match["port"]) < 65536:
        raise BenchError(f"invalid --scheduler {text!r}: give the Dask scheduler's address as tcp://HOST:PORT, "
                         "for example tcp://10.0.0.5:8786.")
    return f"tcp://{match['host']}:{int(match['port'])}"


def cluster_spec(scheduler=None, workers=None):
    """Return the ClusterSpec of the --scheduler and --workers options, or None when neither is given.

    Raises BenchError for an invalid address or worker count, and when
    dask.distributed is not installed.
    """
    if scheduler is None and workers is None:
        return None
    if scheduler is not None and workers is not None:
        raise BenchError("--scheduler and --workers cannot be used together: --scheduler sends the runs to a running "
                         "Dask cluster, --workers starts a local one.")
    if workers is not None and not 0 < workers <= MAX_LOCAL_WORKERS:
        raise BenchError(f"invalid --workers {workers}: give a number of Dask worker processes from 1 to "
                         f"{MAX_LOCAL_WORKERS}.")
    spec = ClusterSpec(parse_scheduler_address(scheduler) if scheduler is not None else None, workers)
    import_distributed(spec.option())
    return spec


def import_distributed(option):
    """Return the dask.distributed module; raise BenchError naming ``option`` if it is not installed."""
    try:
        import distributed
    except ImportError as error:
        raise BenchError(f"{option} needs dask.distributed, which cannot be imported ({error}); install it with "
                         f"{INSTALL_HINT}, or run without {option}.") from None
    return distributed


@contextlib.contextmanager
def connect(spec):
    """Yield a dask.distributed Client of ``spec``'s cluster, starting a local one if ``spec.local_workers`` is set.

    A local cluster listens on 127.0.0.1 only, and each of its worker
    processes has one thread. Raises BenchError when the scheduler cannot be
    reached within CONNECT_TIMEOUT_S or has no worker within WORKERS_TIMEOUT_S.
    """
    distributed = import_distributed(spec.option())
    with _quiet_dask_logs():
        if spec.local_workers is not None:
            with _start_local_cluster(distributed, spec.local_workers) as cluster, \
                    distributed.Client(cluster, set_as_default=False) as client:
                yield client
            return

        try:
            client = distributed.Client(spec.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except OSError as error:
            raise BenchError(f"cannot connect to the Dask scheduler at {spec.scheduler}: {error}. Check that "
                             "'dask scheduler' runs there and that this machine can reach its port.") from None
        with client:
            _wait_for_workers(client, spec.scheduler)
            yield client


@contextlib.contextmanager
def _quiet_dask_logs():
    """Keep dask.distributed's INFO messages (workers starting and stopping) out of the log, unless it shows DEBUG."""
    dask_logger = logging.getLogger("distributed")
    previous = dask_logger.level
    if logger.getEffectiveLevel() > logging.DEBUG:
        dask_logger.setLevel(max(logging.WARNING, dask_logger.getEffectiveLevel()))
    try:
        yield
    finally:
        dask_logger.setLevel(previous)


def _start_local_cluster(distributed, workers):
    # dashboard_address=None still binds the scheduler's HTTP server to port
    # 8787 (distributed 2026.8.0), so a second cluster on this machine would
    # collide with the first; port 0 takes a free port.
    try:
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address="127.0.0.1:0")
    except (OSError, RuntimeError) as error:
        raise BenchError(f"cannot start a local Dask cluster of {workers} workers: {error}. "
                         "Run without --workers to use local processes.") from None


def _wait_for_workers(client, address):
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError:
        raise BenchError(f"the Dask scheduler at {address} has no worker after {WORKERS_TIMEOUT_S} s; start "
                         f"workers with 'dask worker {address} --nthreads 1'.") from None
    for worker, info in client.scheduler_info(n_workers=-1)["workers"].items():
        if info["nthreads"] > 1:
            logger.warning("Dask worker %s has %d threads but computes one run at a time, so the others stay idle; "
                           "start workers with --nthreads 1 and more processes (--nworkers)", worker, info["nthreads"])


def run_batches(client, config, results_dir, batches, progress):
    """Yield the outcome counts of each run of ``batches`` as it finishes, computing the runs on ``client``'s cluster.

    Dask orders the runs; a batch (one repetition) is kept only in that a
    dependent run waits for its upstream run of the same batch. Each run is
    claimed (``RunStore.claim``) before it is submitted and released once its
    record is stored, so another bench on the same folder waits for it
    rather than computing it too. Every bench claims runs in the order of
    ``bench.runner._batch_order`` and of the method list, so two benches
    never wait for each other.
    """
    from distributed import as_completed
    from distributed.client import FutureCancelledError

    if config["run"]["workers"] > 1:
        logger.info("run.workers = %d is ignored: the Dask cluster's workers run this bench", config["run"]["workers"])
    store = RunStore(results_dir)
    runs = {run.key: run for batch in batches for run in batch}
    client.subscribe_topic(STARTED_TOPIC, lambda event: progress.started(runs[event[1]]))
    client.forward_logging("bench")
    claims = {}
    try:
        submitted = {}
        for batch in batches:
            for counts in _submit_batch(client, config, store, batch, submitted, claims, progress):
                yield counts
        task_runs = {future.key: runs[key] for key, future in submitted.items()}
        try:
            for future in as_completed(list(submitted.values()), loop=client.loop):
                run = task_runs[future.key]
                yield _store_result(future, run, runs, submitted, store, progress)
                claims.pop(run.key).release()
        except (OSError, FutureCancelledError) as error:
            raise BenchError(f"lost the Dask cluster ({type(error).__name__}: {error}); the runs stored so far are "
                             "kept and will be reused, so run the bench again to compute the rest.") from None
    finally:
        for claim in claims.values():
            claim.release()
        client.unsubscribe_topic(STARTED_TOPIC)
        client.unforward_logging("bench")


def _submit_batch(client, config, store, batch, submitted, claims, progress):
    """Submit the runs of ``batch`` that have no stored ok record, and yield the counts of those that have one.

    Each submitted run's claim goes into ``claims``; the claims of reused runs are released at once.
    """
    reused = {}
    upstream_data = None
    dependents = {run.upstream_key for run in batch if run.upstream_key}
    levels = {name: logging.getLogger(name).getEffectiveLevel() for name in FORWARDED_LOGGERS}
    for run in batch:
        claim = store.claim(run.key)
        stored = store.load(run.key)
        if stored is not None and stored["status"] == "ok":
            claim.release()
            reused[run.key] = stored
            runner.report_finished(run, stored, "reused", progress)
            yield Counter(reused=1)
            continue

        upstream = None
        if run.upstream_key in submitted:
            upstream = submitted[run.upstream_key]
        elif run.upstream_key is not None:
            # The reused upstream goes to the cluster once for all its dependents.
            if upstream_data is None:
                value = (reused[run.upstream_key], store.load_arrays(run.upstream_key))
                upstream_data = client.scatter([value], hash=False)[0]
            upstream = upstream_data
        claims[run.key] = claim
        submitted[run.key] = client.submit(
            compute_run, config, run, upstream, levels, key=f"bench-{run.method}-r{run.repetition}-{run.key}",
            priority=1 if run.key in dependents else 0, pure=False,
        )


def _store_result(future, run, runs, submitted, store, progress):
    """Store the record that ``future`` returned, or a failed record if its task failed; return the counts.

    The caller must have claimed the run (``RunStore.claim``).
    """
    record, arrays = _task_result(future, run, runs, submitted)
    summary = runner.Summary()
    summary.counts["computed" if record["status"] == "ok" else record["status"]] += 1
    runner.store_outcome(store, run, store.load(run.key), record, arrays, summary)
    runner.report_finished(run, record, "computed", progress)
    return summary.counts


def _task_result(future, run, runs, submitted):
    if future.status == "finished":
        return future.result()
    if future.status != "error":
        raise BenchError(f"the Dask task of {run.method} repetition {run.repetition} ended as {future.status!r}; "
                         "the runs stored so far are kept and will be reused, so run the bench again.")
    upstream = submitted.get(run.upstream_key)
    if upstream is not None and upstream.status == "error":
        reason = f"the {runs[run.upstream_key].method} run of this repetition is not usable: {_task_error(upstream)}"
        return runner.failure_record(run, reason, "upstream"), None
    logger.warning("the Dask task %s failed: %r", future.key, future.exception())
    return runner.failure_record(run, _task_error(future), "dask"), None


def _task_error(future):
    error = future.exception()
    return f"its Dask task failed: {type(error).__name__}: {error}"


# One run at a time in each worker process: torch's thread count and
# default dtype, and the global generators that pykan seeds, are shared by
# the process's threads.
_ONE_RUN_AT_A_TIME = threading.Lock()


def compute_run(config, run, upstream, log_levels):
    """Compute ``run`` on a Dask worker and return its record and arrays.

    ``upstream`` is the (record, arrays) pair of the run it builds on, or
    None. ``log_levels`` maps logger names to the client's levels, which the
    worker's loggers take so that the client receives what it would log
    itself. The results folder is not touched here.
    """
    for name, level in log_levels.items():
        logging.getLogger(name).setLevel(level)
    with _ONE_RUN_AT_A_TIME:
        _announce_start(run)
        adapter = registry.create(config, run.method)
        problem = _environment_problem(adapter, run)
        if problem is not None:
            return runner.failure_record(run, problem, "environment"), None

        upstream_record, upstream_arrays = upstream if upstream is not None else (None, None)
        if upstream_record is None or upstream_record["status"] != "ok":
            upstream_arrays = None
        split = runner.split_for_run(config, runner.make_split(config), run)
        record, arrays = runner.execute_with_limit(run, adapter, split, upstream_record, upstream_arrays,
                                                   config["run"]["time_limit_s"])
        return record, _as_stored(arrays)


def _announce_start(run):
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return  # called outside a worker, as the tests do
    worker.log_event(STARTED_TOPIC, run.key)


def _environment_problem(adapter, run):
    """Return why this worker cannot compute ``run`` under its cache key (versions differ), or None."""
    versions = {**provenance.base_versions(registry.sources(run.method)), **adapter.library_versions()}
    if versions == run.versions:
        return None
    differences = ", ".join(
        f"{name} {versions.get(name, 'missing')} here, {run.versions.get(name, 'missing')} on the client"
        for name in sorted(set(versions) | set(run.versions)) if versions.get(name) != run.versions.get(name)
    )
    return (f"this Dask worker's versions differ from the client's ({differences}); install the same versions of "
            "this package and the method libraries on every worker")


def _as_stored(arrays):
    """Return ``arrays`` as the store loads them back, so that dependents get what a local bench gives them."""
    if arrays is None:
        return None
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
