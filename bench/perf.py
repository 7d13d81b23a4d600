"""Speed of KAN training: stock pykan against the local spline path, measured side by side.

For each grid this times one forward and backward pass of the default
profile's KAN on the same samples with both spline paths and checks that
they agree. It sets the fast path's time beside a lower bound, the pass's
floating-point operations divided by this CPU's measured float64 matrix
multiply rate. The bound is optimistic, because the pass is mostly
element-wise work limited by memory rather than arithmetic.
"""

import json
import logging
import os
import platform
import time



from bench import provenance, registry

logger = logging.getLogger(__name__)


def _time_pass(model, x, y, repeats):
    import torch

    def one_pass():
        model.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()

    one_pass()  # warm-up: first-call allocations and dispatch
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - started)
    return min(times)


def pass_flops(width, grid, k, samples):
    """Return an estimate of the floating-point operations of one forward and backward pass.

    Per sample and layer, it counts the local Cox-de Boor recursion on each
    input (about 10 operations per basis function and order) and the spline
    and base terms on each edge (2 (k + 1) + 6). The backward pass is taken
    to cost twice the forward, as is usual for element-wise graphs.
    """
    forward = 0
    for fan_in, fan_out in zip(width[:-1], width[1:]):
        basis = fan_in * 10 * (k + 1) * k
        edges = fan_in * fan_out * (2 * (k + 1) + 6)
        forward += samples * (basis + edges)
    return 3 * forward


# Peak resident memory of `python -m bench perf --no-run --repeats 1` (GNU time's %M) with the default
# width [1, 12, 3, 1] and k = 3, under torch 2.13 and pykan 0.2.8 on a 2-core Xeon: 1.5 GB at grid 40 and
# 3.8 GB at grid 150 on 12,000 samples, 5.5 GB at grid 90 on 30,000, 4.4 and 13.5 GB at grids 40 and 150 on
# 48,000. Above a fixed 0.6 GB, that is about 106 bytes per sample, layer input and (grid + 8).
PASS_BYTES_PER_SAMPLE_INPUT_INTERVAL = 106


def pass_bytes(width, grid, samples):
    """Return an estimate of the memory in bytes that timing the stock and fast passes at ``grid`` on ``samples`` points needs.

    The estimate is fitted to the peak memory measured with the default
    width. For another width it assumes that the memory grows with the
    number of layer inputs, as the B-spline bases of pykan's layers do.
    """
    return PASS_BYTES_PER_SAMPLE_INPUT_INTERVAL * samples * sum(width[:-1]) * (grid + 8)


def memory_bytes():
    """Return this machine's physical memory in bytes, or None where the OS does not report it."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def matmul_flops_per_second(size=1024, repeats=5):
    """Return this CPU's float64 matrix-multiply rate, the best of ``repeats`` runs."""
    import torch

    a = torch.rand(size, size, dtype=torch.float64)
    b = torch.rand(size, size, dtype=torch.float64)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure_grid(settings, grid, samples, repeats, seed=0):
    """Time stock and fast passes at ``grid`` on ``samples`` points; return one result row."""
    import torch

    from bench.methods import kan_fast, kan_training

    x = torch.linspace(-0.5, 0.5, samples, dtype=torch.float64).reshape(-1, 1)
    y = torch.sin(20 * torch.pi * x)
    stock = kan_training.build_model(dict(settings, fast_splines=False), grid, seed)
    stock.update_grid(x)
    fast = kan_fast.enable(kan_training.build_model(dict(settings, fast_splines=False), grid, seed))
    fast.load_state_dict(stock.state_dict())
    for model in (stock, fast):
        model.symbolic_enabled = False
        model.save_act = False

    with torch.no_grad():
        difference = float((stock(x) - fast(x)).abs().max())
    stock_seconds = _time_pass(stock, x, y, repeats)
    fast_seconds = _time_pass(fast, x, y, repeats)
    return {
        "grid": grid,
        "samples": samples,
        "stock_seconds": stock_seconds,
        "fast_seconds": fast_seconds,
        "speedup": stock_seconds / fast_seconds,
        "max_abs_output_difference": difference,
        "flops": pass_flops(settings["width"], grid, settings["k"], samples),
    }


def time_default_run(config, seed=0):
    """Fit KAN numeric once with ``config``'s settings and return its wall time and test MSE."""
    from bench import metrics, signal
    from bench.methods.base import Task
    from bench.methods.kan import KANNumeric

    split = signal.make_split(
        signal.target_expression(), config["signal"]["domain"], config["signal"]["sampling_rate_hz"],
        config["split"]["test_fraction"], config["split"]["data_seed"],
    )
    started = time.perf_counter()
    result = KANNumeric(config["methods"]["kan"]).fit(Task(split.x_train, split.y_train, split.x, seed))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "mse_test": metrics.mean_squared_error(split.y_test, result.predictions[split.test]),
            "seed": seed}


def run_perf(config, grids, samples, repeats, time_run=True):
    """Measure every grid and, unless ``time_run`` is false, one full KAN run; return the report dict."""
    import torch

    with _float64(config["methods"]["kan"]["torch_threads"]):
        rate = matmul_flops_per_second()
        rows = []
        for grid in grids:
            row = measure_grid(config["methods"]["kan"], grid, samples, repeats)
            row["lower_bound_seconds"] = row["flops"] / rate
            rows.append(row)
            logger.info("grid %d: stock %.3f s, fast %.4f s, %.1fx", grid, row["stock_seconds"],
                        row["fast_seconds"], row["speedup"])
    report = {
        "grids": rows,
        "matmul_flops_per_second": rate,
        "torch_threads": config["methods"]["kan"]["torch_threads"],
        "machine": provenance.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "code": provenance.code_version(registry.sources("kan_numeric")),
    }
    if time_run:
        report["default_kan_run"] = time_default_run(config)
    return report


def _float64(threads):
    from bench.methods.kan_training import float64_deterministic

    return float64_deterministic(threads)


def format_report(report):
    """Return the perf report as the lines the CLI prints."""
    lines = [
        f"{'grid':>5} {'samples':>8} {'stock s':>9} {'fast s':>9} {'speedup':>8} {'bound s':>9} {'fast/bound':>10} {'max diff':>9}",
    ]
    for row in report["grids"]:
        lines.append(
            f"{row['grid']:>5} {row['samples']:>8} {row['stock_seconds']:>9.3f} {row['fast_seconds']:>9.4f} "
            f"{row['speedup']:>7.1f}x {row['lower_bound_seconds']:>9.5f} "
            f"{row['fast_seconds'] / row['lower_bound_seconds']:>9.1f}x {row['max_abs_output_difference']:>9.1e}"
        )
    lines.append(f"float64 matmul rate: {report['matmul_flops_per_second'] / 1e9:.1f} GFLOP/s, "
                 f"torch threads: {report['torch_threads']}, CPU: {report['machine']['cpu']}")
    run = report.get("default_kan_run")
    if run:
        lines.append(f"one default-profile KAN numeric run: {run['seconds']:.1f} s, test MSE {run['mse_test']:.3e}")
    return lines


def write_report(report, path):
    """Write the perf report as JSON to ``path``."""
    from bench.store import write_atomic

    write_atomic(path, (json.dumps(report, indent=1, sort_keys=True, default=float) + "\n").encode())
    return path



