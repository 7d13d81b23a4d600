"""One run, from its inputs to its record: availability, the fit, and the metrics.

This module and the method adapters determine a run's result, so their
source is part of every cache key (``bench.provenance.SHARED_COMPUTE_MODULES``).
"""

import datetime
import json
import logging
import time

import numpy as np

from bench import formulas, metrics, provenance
from bench.methods.base import RunFailed, Task, Upstream

logger = logging.getLogger(__name__)


def base_record(run, status, reason="", stage=""):
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


def execute(run, adapter, split, upstream, upstream_arrays):
    """Fit one run and return its record and arrays; failures become records, never exceptions.

    ``upstream`` is the record of the run this one builds on and
    ``upstream_arrays`` its stored arrays, both None for independent methods.
    """
    reason = adapter.unavailable_reason()
    if reason:
        return base_record(run, "unavailable", reason, "availability"), None

    if adapter.upstream and (upstream is None or upstream["status"] != "ok" or upstream_arrays is None):
        cause = upstream["reason"] if upstream else "it was not run"
        message = f"the {adapter.upstream} run of this repetition is not usable: {cause}"
        return base_record(run, "failed", message, "upstream"), None

    logger.info("%s repetition %d: computing run %s (seed %d)", run.method, run.repetition, run.key, run.seed)

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
    record = base_record(run, "failed", message, stage)
    record["seconds"] = time.perf_counter() - started
    return record


def _scored_record(run, adapter, split, result):
    predictions = np.asarray(result.predictions, dtype=np.float64)
    if predictions.shape != split.x.shape:
        raise ValueError(f"predictions have shape {predictions.shape}, expected {split.x.shape}")
    record = base_record(run, "ok")
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
