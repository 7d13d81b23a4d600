"""The speed measurements of ``python -m bench perf``, shown on the Reproduce page."""

import json

from bench.errors import DataError
from bench.reporting.markdown import escape, pipe_table

PERF_FILE = "perf.json"


def read_perf(directory):
    """Return the perf report stored in ``directory``, or None when there is none."""
    path = directory / PERF_FILE
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path} is not a perf report ({error}); run `nox -s perf` to write it again.") from None
    fields = ("grid", "samples", "stock_seconds", "fast_seconds", "speedup", "lower_bound_seconds",
              "max_abs_output_difference")
    grids = report.get("grids") if isinstance(report, dict) else None
    if not grids or not all(isinstance(row, dict) and all(name in row for name in fields) for row in grids):
        raise DataError(f"{path} is not a perf report (missing grid rows); run `nox -s perf` to write it again.")
    return report


def speed_section(directory):
    """Return the Markdown of the speed measurements stored in ``directory``."""
    report = read_perf(directory)
    if report is None:
        return "No speed measurements are stored with these results; `nox -s perf` writes them.\n"

    rows = [
        [
            str(row["grid"]),
            f"{row['samples']:,}",
            f"{row['stock_seconds']:.3f}",
            f"{row['fast_seconds']:.4f}",
            f"{row['speedup']:.1f}×",
            f"{row['lower_bound_seconds']:.5f}",
            f"{row['max_abs_output_difference']:.1e}",
        ]
        for row in report["grids"]
    ]
    table = pipe_table(
        ["Grid", "Samples", "pykan s", "Fast path s", "Speed-up", "FLOP bound s", "Max output difference"],
        rows,
        ["r"] * 7,
    )
    machine = report.get("machine", {})
    lines = [
        "One forward and backward pass of the default profile's KAN, with pykan's own spline evaluation and "
        "with this project's local B-spline path, timed side by side on the same model and samples "
        "(best of the timed passes). The bound divides the pass's estimated floating-point operations by "
        "this CPU's float64 matrix-multiply rate, so it is optimistic.",
        "",
        table,
        "",
        f"Measured with {report.get('torch_threads', '?')} torch threads on {escape(str(machine.get('cpu', 'an unknown CPU')))} "
        f"({machine.get('cores', '?')} cores), torch {escape(str(report.get('torch', '?')))}, "
        f"`kan_numeric` code version {escape(str(report.get('code', '?')))}.",
    ]
    run = report.get("default_kan_run")
    if run:
        seed = f"seed {run['seed']}" if "seed" in run else "a seed of its own"
        lines += ["", f"One default-profile KAN numeric run took {run['seconds']:.0f} s and reached test MSE "
                      f"{run['mse_test']:.3g}. It was trained with {seed}, not with the seed of any repetition "
                      "in the tables, so its test MSE is one more draw of the same training, not one of the "
                      "reported runs."]
    return "\n".join(lines) + "\n"
