"""Reading stored results: the run table, the manifest and the prediction arrays of one profile."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.config import METHOD_NAMES
from bench.errors import DataError, NoResultsError
from bench.signal import sample_grid

RUN_COLUMNS = (
    "method",
    "repetition",
    "seed",
    "status",
    "reason",
    "stage",
    "mse_test",
    "r2_test",
    "mse_train",
    "seconds",
    "formula",
    "formula_latex",
    "formula_size",
    "key",
)
NUMERIC_COLUMNS = ("repetition", "seed", "mse_test", "r2_test", "mse_train", "seconds", "formula_size")
STATUSES = ("ok", "failed", "unavailable")


def bench_command(profile):
    """Return the command that runs the bench and stores results for ``profile``."""
    return f"nox -s bench -- --profile {profile}"


def render_command(profile):
    """Return the command that writes the report for ``profile`` and renders the site."""
    return f"nox -s render -- --profile {profile}"


@dataclass(frozen=True)
class StoredResults:
    """The stored results of one profile: its run table, its manifest and where its arrays are."""

    profile: str
    directory: Path
    runs: pd.DataFrame
    manifest: dict

    def grid(self):
        """Return the x of every sample of the signal, as the bench sampled it."""
        signal = self.manifest["config"]["signal"]
        start, stop = signal["domain"]
        return sample_grid(start, stop, signal["sampling_rate_hz"])

    def predictions(self, key):
        """Return the stored predictions of the run with cache key ``key`` on every sample of the grid.

        Raises DataError when the array file or its ``predictions`` array is
        missing, or when its length differs from the grid's.
        """
        path = self.directory / "arrays" / f"{key}.npz"
        if not path.is_file():
            raise DataError(f"{path} is missing for an ok run; run `{bench_command(self.profile)}` to store it again.")
        with np.load(path) as arrays:
            if "predictions" not in arrays:
                raise DataError(f"{path} has no array 'predictions' (it has {sorted(arrays.files)}).")
            values = np.asarray(arrays["predictions"], dtype=np.float64).ravel()
        expected = self.grid().size
        if values.size != expected:
            raise DataError(
                f"{path} contains {values.size} predictions but the signal grid of manifest.json has "
                f"{expected} samples. Run `{bench_command(self.profile)}` to store results that match the manifest."
            )
        return values


def load_results(results_dir):
    """Read the run table and the manifest stored in ``results_dir``.

    Raises NoResultsError, naming the missing file and the command that
    writes it, when ``runs.csv`` or ``manifest.json`` is missing or the run
    table has no rows.
    """
    results_dir = Path(results_dir)
    profile = results_dir.name
    for name in ("runs.csv", "manifest.json"):
        if not (results_dir / name).is_file():
            raise NoResultsError(
                f"{results_dir / name} not found: no results are stored for profile {profile!r}. "
                f"Run `{bench_command(profile)}` first."
            )

    runs = read_runs(results_dir / "runs.csv")
    if runs.empty:
        raise NoResultsError(
            f"{results_dir / 'runs.csv'} has no runs for profile {profile!r}. Run `{bench_command(profile)}` first."
        )
    manifest = read_manifest(results_dir / "manifest.json")
    # The manifest names the profile even when the results live in a folder named otherwise.
    profile = str(manifest.get("profile") or profile)
    return StoredResults(profile=profile, directory=results_dir, runs=runs, manifest=manifest)


def read_runs(path):
    """Read ``runs.csv`` into a DataFrame sorted by method (in the bench's order) and repetition.

    Text columns keep empty cells as empty strings; numeric columns turn them
    into NaN. Raises DataError for missing columns, an unknown status or a
    value that is not a number.
    """
    # With keep_default_na=False, a reason or formula such as "None" or "NA" stays text.
    runs = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in RUN_COLUMNS if column not in runs.columns]
    if missing:
        raise DataError(f"{path} lacks the columns {missing}; it has {list(runs.columns)}.")

    for column in NUMERIC_COLUMNS:
        text = runs[column].str.strip()
        try:
            runs[column] = pd.to_numeric(text.where(text != "", None), errors="raise").astype("float64")
        except (ValueError, TypeError) as error:
            raise DataError(f"{path}: column {column!r} has a value that is not a number: {error}") from error

    unknown = sorted(set(runs["status"]) - set(STATUSES))
    if unknown:
        raise DataError(f"{path}: unknown status values {unknown}; expected one of {list(STATUSES)}.")

    order = {name: position for position, name in enumerate(ordered_methods(runs["method"]))}
    runs = runs.assign(_order=runs["method"].map(order))
    runs = runs.sort_values(["_order", "repetition"], kind="stable").drop(columns="_order")
    return runs.reset_index(drop=True)


def read_manifest(path):
    """Read ``manifest.json`` and check the signal settings that the figures need."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not valid JSON: {error}") from error

    try:
        signal = manifest["config"]["signal"]
        start, stop = (float(value) for value in signal["domain"])
        rate = float(signal["sampling_rate_hz"])
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(
            f"{path} lacks a valid config.signal with 'domain' [start, stop] and 'sampling_rate_hz' ({error!r})."
        ) from error
    if not (math.isfinite(start) and math.isfinite(stop) and start < stop and rate > 0):
        raise DataError(
            f"{path}: config.signal has domain {signal['domain']} and sampling_rate_hz {rate}; "
            "expected start < stop and a positive rate."
        )
    return manifest


def ordered_methods(names):
    """Return the distinct method names in ``names``: the bench's order first, then unknown names sorted."""
    present = set(names)
    known = [name for name in METHOD_NAMES if name in present]
    return known + sorted(present - set(METHOD_NAMES))
