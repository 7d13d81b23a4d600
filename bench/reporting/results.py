"""Reading stored results: the run table, the manifest, the run records and the prediction arrays of one profile.

The same reader serves a results folder written by the bench and a published
bundle (see ``bench.reporting.bundle``), which has no arrays but keeps the
figures drawn from them.
"""

import dataclasses
import hashlib
import json
import logging
import math
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from bench import registry, signals
from bench.config import METHOD_NAMES, PROFILES, is_int, is_number
from bench.errors import BenchError, DataError, NoResultsError
from bench.methods.base import REFERENCE
from bench.signal import sample_grid
from bench.seeds import derive_seed
from bench.store import checksum

KEY_PATTERN = r"[0-9a-f]{24}"
METHOD_PATTERN = r"[a-z0-9_]{1,64}"

logger = logging.getLogger(__name__)

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
NUMERIC_COLUMNS = ("noise", "repetition", "seed", "mse_test", "r2_test", "mse_train", "seconds", "formula_size")
# Written by the bench but not needed to draw the report, so older run tables without it still load.
OPTIONAL_COLUMNS = ("finished_at",)
# The label noise of a run, as a fraction of std(y) (bench.noise). Run tables and records written before
# noise levels existed lack it, and their runs were trained on clean labels, so it defaults to 0.
NOISE_COLUMN = "noise"
CLEAN_LEVEL = 0.0
# runs.csv copies these fields of each run's record. The metrics are under the record's "metrics".
RECORD_METRICS = ("mse_test", "r2_test", "mse_train")
# The names the report accepts for a profile: it puts them into commands and paths.
PROFILE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
# A git commit as the bench records it: 40 hex digits, with -dirty when the tree had changes, or empty.
COMMIT_TEXT = re.compile(r"([0-9a-f]{40}(-dirty)?)?")
RECORD_FIELDS = tuple(column for column in (*RUN_COLUMNS, *OPTIONAL_COLUMNS, NOISE_COLUMN) if column not in RECORD_METRICS)
INTEGER_COLUMNS = ("repetition", "seed", "formula_size")
# The bench writes the seconds of a run with 3 decimals, and every other number so that it parses back exactly.
SECONDS_DECIMALS = 3
# Longer values are cut in the message that reports a difference between runs.csv and a record.
SHOWN_VALUE_CHARS = 80
# A run table that lacks columns has at most this many of its columns named in the message.
MAX_SHOWN_COLUMNS = 20
STATUSES = ("ok", "failed", "unavailable")
# The file that marks a folder as a published bundle rather than a results folder.
BUNDLE_INDEX = "bundle.json"
# The figure index that only a published bundle has: a results folder has prediction arrays instead.
BUNDLE_FIGURES_INDEX = Path("figures") / "figures.json"
# The folder of the bench's results and the folder of every profile's published bundle, relative to the
# project root, as `python -m bench run` and `python -m bench publish` write them.
RESULTS_ROOT = Path("results")
PUBLISHED_ROOT = Path("published")
# The folder of a suite's signals other than the seed, in a results folder and in its bundle, as
# bench.signals.results_dir names it: signals/<name>/.
SIGNALS_FOLDER = "signals"


def bench_command(profile):
    """Return the command that runs the bench and stores results for ``profile``."""
    return f"nox -s bench -- --profile {profile}"


def render_command(profile):
    """Return the command that writes the report for ``profile`` and renders the site."""
    return f"nox -s render -- --profile {profile}"


def publish_command(profile):
    """Return the command that copies the results of ``profile`` into its published bundle."""
    return f"python -m bench publish --profile {profile}"


def find_results(project_root, profile, results_dir=None):
    """Return the folder the report of ``profile`` is written from.

    An explicit ``results_dir`` is used as given. Otherwise the local results
    ``results/<profile>`` come first, and the committed bundle
    ``published/<profile>`` serves when there are none, as in a fresh clone.
    Raises NoResultsError naming both places when neither exists.
    """
    if results_dir is not None:
        return Path(results_dir)
    project_root = Path(project_root)
    local = project_root / RESULTS_ROOT / profile
    if (local / "runs.csv").is_file():
        return local
    published = project_root / PUBLISHED_ROOT / profile
    if (published / BUNDLE_INDEX).is_file():
        return published
    raise NoResultsError(
        f"no results for profile {profile!r}: {local / 'runs.csv'} and {published / BUNDLE_INDEX} are both missing. "
        f"Run `{bench_command(profile)}` first."
    )


def signal_folders(folder):
    """Return (name, folder) for each signal folder under ``folder``/signals/, the built-in signals in suite order first.

    ``folder`` is a results folder or a bundle, which contains the seed
    signal's runs itself. A subfolder whose name is not a signal name is logged and
    skipped. The folders are listed whether or not their bench finished.
    """
    parent = Path(folder) / SIGNALS_FOLDER
    if not parent.is_dir():
        return []
    found = {}
    for path in sorted(parent.iterdir()):
        if not path.is_dir():
            continue
        if not signals.NAME_PATTERN.fullmatch(path.name) or path.name == signals.DEFAULT_SIGNAL:
            logger.warning("skipped %s: its name is not the name of a signal other than the seed", path)
            continue
        found[path.name] = path
    order = [name for name in signals.suite_names() if name in found] + sorted(set(found) - set(signals.SUITE))
    return [(name, found[name]) for name in order]


def noise_levels(runs):
    """Return the distinct noise levels of the run table ``runs``, in increasing order."""
    return sorted(float(level) for level in runs[NOISE_COLUMN].unique())


@dataclasses.dataclass(frozen=True)
class StoredResults:
    """The stored results of one profile: its run table, its manifest and where its records and arrays are.

    ``is_bundle`` is true for a published bundle, which has no arrays.
    """

    profile: str
    directory: Path
    runs: pd.DataFrame
    manifest: dict
    is_bundle: bool = False

    def grid(self):
        """Return the x of every sample of the signal, as the bench sampled it."""
        start, stop = self.manifest["config"]["signal"]["domain"]
        return sample_grid(start, stop, self.sampling_rate_hz())

    def sampling_rate_hz(self):
        """Return the sampling rate that the bench used: the manifest's signal block's, else the configured one.

        A data series sets its own rate, one value per 1/rate, whatever the
        configured rate. Manifests written before signals were configurable
        have no signal block, and their configured rate is the one used.
        """
        used = self.manifest.get("signal")
        if isinstance(used, dict) and "sampling_rate_hz" in used:
            return used["sampling_rate_hz"]
        return self.manifest["config"]["signal"]["sampling_rate_hz"]

    def rerun_command(self, methods=None, signal=None):
        """Return the nox command that stores these results again, with the options of the bench that wrote them.

        The manifest stores that bench's command line, such as ``python -m bench run --profile quick
        --results-dir out``, so any --config is kept. --results-dir names the folder that this bench
        was given, wherever it is now: for a signal of a suite or an --expression, the folder above
        ``signals/<name>/``. --signals names only this signal, or ``signal`` when given, which then
        replaces an --expression. --methods is replaced by ``methods`` when given, and dropped
        otherwise: a bench of a few methods cannot store the runs of the others, and a bench of every
        method reuses each run it finds. Without a stored command, the profile's bench command is
        returned.
        """
        command = self.manifest.get("command")
        prefix = "python -m bench run"
        if isinstance(command, str) and (command == prefix or command.startswith(prefix + " ")):
            options = self._adapted_options(command[len(prefix):].strip(), methods, signal)
            return f"nox -s bench -- {options}".rstrip()
        suffix = f" --signals {signal}" if signal else ""
        suffix += f" --methods {','.join(methods)}" if methods else ""
        return bench_command(self.profile) + suffix

    def _bench_folder(self):
        """Return the --results-dir of the bench that wrote these results: for a suite signal, the folder above signals/."""
        name = self.manifest["config"]["signal"].get("name", signals.DEFAULT_SIGNAL)
        folder = self.directory
        if name != signals.DEFAULT_SIGNAL and folder.name == name and folder.parent.name == SIGNALS_FOLDER:
            return folder.parent.parent
        return folder

    def _adapted_options(self, options, methods, signal):
        """Return the bench options ``options`` adapted as ``rerun_command`` describes."""
        try:
            words = shlex.split(options)
        except ValueError:
            return options
        base = self._bench_folder()
        name = self.manifest["config"]["signal"].get("name", signals.DEFAULT_SIGNAL)
        replaced = {"--results-dir": str(base), "--methods": None, "--signals": signal or name}
        if signal:
            replaced["--expression"] = None
        adapted, skip = [], False
        for index, word in enumerate(words):
            if skip:
                skip = False
                continue
            option, equals, _ = word.partition("=")
            if option not in replaced:
                adapted.append(word)
                continue
            skip = not equals and index + 1 < len(words)
            value = replaced.pop(option)
            if value is not None:
                adapted += [f"{option}={value}"] if equals else [option, value]
        if "--results-dir" in replaced and base.resolve() != (RESULTS_ROOT / self.profile).resolve():
            adapted += ["--results-dir", str(base)]
        if signal and "--signals" in replaced:
            adapted += ["--signals", signal]
        if methods:
            adapted += ["--methods", ",".join(methods)]
        return shlex.join(adapted)

    def predictions(self, key):
        """Return the stored predictions of the run with cache key ``key`` on every sample of the grid.

        Raises DataError when the array file or its ``predictions`` array is
        missing, when the file does not match the checksum in the run's
        record, or when its length differs from the grid's.
        """
        if self.is_bundle:
            raise DataError(
                f"{self.directory} is a published bundle, which keeps figures but no prediction arrays. "
                f"Pass the results folder that `{bench_command(self.profile)}` writes instead."
            )
        path = self.directory / "arrays" / f"{key}.npz"
        if not path.is_file():
            raise DataError(f"{path} is missing for an ok run; run `{self._rerun_run(key)}` to store it again.")
        expected = json.loads(self.record_bytes(key)).get("arrays_sha256")
        if expected and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            raise DataError(
                f"{path} does not match the checksum in its record, so it changed after the bench wrote it. "
                f"Run `{self._rerun_run(key)}` to store it again."
            )
        with np.load(path, allow_pickle=False) as arrays:
            if "predictions" not in arrays:
                raise DataError(f"{path} has no array 'predictions' (it has {sorted(arrays.files)}).")
            values = np.asarray(arrays["predictions"], dtype=np.float64).ravel()
        expected = self.grid().size
        if values.size != expected:
            raise DataError(
                f"{path} contains {values.size} predictions but the signal grid of manifest.json has "
                f"{expected} samples. Run `{self._rerun_run(key)}` to store results that match the manifest."
            )
        return values

    def _rerun_run(self, key):
        """Return the command that stores the run ``key`` again: the stored bench's, for that run's method."""
        methods = list(self.runs.loc[self.runs["key"] == key, "method"].unique())
        return self.rerun_command(methods or None)

    def record_path(self, key):
        """Return the path of the JSON record of the run with cache key ``key``."""
        return self.directory / "records" / f"{key}.json"

    def record_bytes(self, key):
        """Return the stored bytes of the record of ``key``, after checking its checksum.

        Raises DataError when the record is missing, is not JSON, belongs to
        another key or fails its checksum.
        """
        path = self.record_path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise DataError(
                f"{path} is missing, but runs.csv lists run {key}. "
                f"Run `{self._rerun_run(key)}` to store it again."
            ) from None
        except OSError as error:
            # Such as a folder in place of the record, or a file in place of the records folder.
            if path.parent.is_dir():
                problem = f"cannot read {path}: {error.strerror}"
            else:
                problem = f"{path.parent} is not a folder"
            raise DataError(
                f"{problem}. Restore the records folder as the bench wrote it, "
                f"or run `{self._rerun_run(key)}` to store the record again."
            ) from None
        try:
            record = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{path} is not valid JSON: {error}. "
                            f"Run `{self._rerun_run(key)}` to store the record again.") from error
        if not isinstance(record, dict) or record.get("key") != key:
            raise DataError(f"{path} is not the record of run {key}. Run `{self._rerun_run(key)}`, which moves "
                            "such a record aside to corrupt/ and computes the run again.")
        if record.get("checksum") != checksum(record):
            raise DataError(
                f"{path} does not match its checksum, so it was changed after the bench wrote it. "
                f"Run `{self._rerun_run(key)}` to store it again."
            )
        return data

    def records(self):
        """Return the record of every run in the run table, keyed by cache key, in the table's order."""
        return {key: json.loads(self.record_bytes(key)) for key in self.runs["key"]}

    def at_lowest_noise(self):
        """Return these results with only the runs at their lowest noise level, which is 0 unless no clean run is stored.

        The tables, figures and statistics outside the noise-robustness page
        compare the methods at one level, so they read these runs.
        """
        lowest = min(noise_levels(self.runs))
        lowest_runs = self.runs[self.runs[NOISE_COLUMN] == lowest].reset_index(drop=True)
        return dataclasses.replace(self, runs=lowest_runs)

    def results_date(self):
        """Return the date (YYYY-MM-DD, UTC) of the most recent run in the table, or None when none is recorded.

        Unlike the manifest's ``written_at``, this date stays the same when a
        rerun reuses every stored run.
        """
        stamps = [stamp for stamp in self.runs.get("finished_at", []) if stamp]
        return max(stamps)[:10] if stamps else None


def load_results(results_dir):
    """Read the run table and the manifest stored in ``results_dir``, a results folder or a published bundle.

    A bundle's files are checked against the checksums in its index first.
    Raises NoResultsError, naming the missing file and the command that
    writes it, when ``runs.csv`` or ``manifest.json`` is missing or the run
    table has no rows. Raises DataError when a stored file is malformed, a
    bundle's file does not match its index, or a row of ``runs.csv``
    differs from its run's record.
    """
    results_dir = Path(results_dir)
    profile = results_dir.name
    is_bundle = (results_dir / BUNDLE_INDEX).is_file()
    if not is_bundle and (results_dir / BUNDLE_FIGURES_INDEX).is_file() and not (results_dir / "arrays").is_dir():
        raise DataError(f"{results_dir} looks like a published bundle, but its {BUNDLE_INDEX} is missing. Restore it "
                        f"with git, or export the bundle again with `{publish_command(profile)}`.")
    index = verify_bundle(results_dir) if is_bundle else None
    for name in ("runs.csv", "manifest.json"):
        if not (results_dir / name).is_file():
            if profile not in PROFILES:
                # A folder not named after a profile: no command can be guessed.
                raise NoResultsError(
                    f"{results_dir / name} not found: {results_dir} contains no stored bench results. "
                    "Pass the folder a bench wrote (results/<profile> by default) or run the bench first."
                )
            raise NoResultsError(
                f"{results_dir / name} not found: no results are stored for profile {profile!r}. "
                f"Run `{bench_command(profile)}` first."
            )

    runs = read_runs(results_dir / "runs.csv")
    if runs.empty:
        if profile not in PROFILES:
            raise NoResultsError(f"{results_dir / 'runs.csv'} lists no runs. Pass the folder a bench wrote "
                                 "(results/<profile> by default) or run the bench first.")
        raise NoResultsError(
            f"{results_dir / 'runs.csv'} has no runs for profile {profile!r}. Run `{bench_command(profile)}` first."
        )
    manifest = read_manifest(results_dir / "manifest.json")
    # The manifest names the profile even when the results live in a folder named otherwise.
    profile = str(manifest.get("profile") or profile)
    if not PROFILE_NAME.fullmatch(profile):
        raise DataError(f"{results_dir / 'manifest.json'} names the profile {_shown(profile)}, which is not a profile "
                        "name (lowercase letters, digits, _ and -), so manifest.json was edited. Run the bench again "
                        "to rewrite it.")
    if index is not None and index.get("profile") != profile:
        raise DataError(f"{results_dir / BUNDLE_INDEX} names profile {index.get('profile')!r}, but its manifest.json "
                        f"names {profile!r}. Restore the bundle with git, or export it again with "
                        f"`{publish_command(profile)}`.")
    results = StoredResults(profile=profile, directory=results_dir, runs=runs, manifest=manifest, is_bundle=is_bundle)
    check_runs_against_records(results)
    # After the comparison with the records, so that an edited runs.csv is reported as such.
    _check_ok_metrics(results_dir / "runs.csv", runs)
    return results


def read_bundle_index(bundle_dir):
    """Return the index of the published bundle in ``bundle_dir``: its format, profile and file checksums."""
    path = Path(bundle_dir) / BUNDLE_INDEX
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(index, dict) or not isinstance(index.get("files"), dict):
        raise DataError(f"{path} has no 'files' table of relative paths and SHA-256 checksums.")
    return index


def verify_bundle(bundle_dir):
    """Check every file that the bundle's index lists against its SHA-256 checksum.

    A changed or missing file means that the bundle no longer matches the
    figures that were drawn with it, so this raises DataError naming the files
    and the command that exports the bundle again. Files that the index does
    not list are logged and ignored.
    """
    bundle_dir = Path(bundle_dir)
    index = read_bundle_index(bundle_dir)
    # Without these two, the checksums would leave the run table or the configuration unchecked.
    unlisted = [name for name in ("runs.csv", "manifest.json") if name not in index["files"]]
    if unlisted:
        raise DataError(f"{bundle_dir / BUNDLE_INDEX} lists no checksum for {', '.join(unlisted)}. "
                        f"Restore it with git, or export the bundle again with "
                        f"`{publish_command(index.get('profile', '<profile>'))}`.")
    escaping = [name for name in index["files"] if Path(name).is_absolute() or ".." in Path(name).parts]
    if escaping:
        raise DataError(f"{bundle_dir / BUNDLE_INDEX} lists paths outside the bundle: {escaping[:3]}. "
                        f"Restore it with git, or export the bundle again with `{publish_command(index.get('profile', '<profile>'))}`.")
    changed = []
    for relative, expected in sorted(index["files"].items()):
        path = bundle_dir / relative
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != expected:
            changed.append(relative)
    if changed:
        named = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise DataError(
            f"{bundle_dir} does not match its {BUNDLE_INDEX}: {named} changed or went missing since the bundle was "
            f"exported, or {BUNDLE_INDEX} itself was edited. "
            f"Restore them with git, or export the bundle again with `{publish_command(index.get('profile', '<profile>'))}` "
            "from results that include the prediction arrays."
        )
    listed = set(index["files"]) | {BUNDLE_INDEX}
    # The bundles of a suite's other signals lie in signals/<name>/, each with its own index.
    extra = sorted(
        path.relative_to(bundle_dir).as_posix()
        for path in bundle_dir.rglob("*")
        if path.is_file() and path.relative_to(bundle_dir).as_posix() not in listed
        and path.relative_to(bundle_dir).parts[0] != SIGNALS_FOLDER
    )
    if extra:
        logger.warning("ignored %d files in %s that %s does not list: %s", len(extra), bundle_dir, BUNDLE_INDEX, extra[:5])
    return index


def read_runs(path):
    """Read ``runs.csv`` into a DataFrame sorted by method (in the bench's order), noise level and repetition.

    Text columns keep empty cells as empty strings; numeric columns turn them
    into NaN. An optional column that the file lacks stays absent, except the
    noise column, which a table written before noise levels existed lacks and
    which is then filled with CLEAN_LEVEL. Raises DataError for a file that
    is not a CSV table, missing columns, an unknown status, a value that is
    not a number, a noise level that is empty, negative or infinite, or a key
    listed twice.
    """
    # With keep_default_na=False, a reason or formula such as "None" or "NA" stays text.
    try:
        runs = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        detail = " ".join(str(error).split())
        raise DataError(f"{path} is not a valid run table ({detail}). "
                        "Run the bench again to rewrite runs.csv.") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror}. Run the bench again to rewrite runs.csv.") from None
    missing = [column for column in RUN_COLUMNS if column not in runs.columns]
    if missing:
        found = ", ".join(_shown(str(column)) for column in runs.columns[:MAX_SHOWN_COLUMNS])
        more = f" and {len(runs.columns) - MAX_SHOWN_COLUMNS} more" if len(runs.columns) > MAX_SHOWN_COLUMNS else ""
        raise DataError(f"{path} lacks the columns {missing}; it has {found}{more}. "
                        "Run the bench again to rewrite runs.csv.")

    if NOISE_COLUMN not in runs.columns:
        runs.insert(list(runs.columns).index("method") + 1, NOISE_COLUMN, repr(CLEAN_LEVEL))
    for column in NUMERIC_COLUMNS:
        text = runs[column].str.strip()
        try:
            runs[column] = pd.to_numeric(text.where(text != "", None), errors="raise").astype("float64")
        except (ValueError, TypeError):
            cells = text[pd.to_numeric(text.where(text != "", None), errors="coerce").isna() & (text != "")]
            bad_cell = cells.iloc[0] if len(cells) else "?"
            raise DataError(f"{path}: column {column!r} has the value {_shown(bad_cell)}, which is not a number. "
                            "Run the bench again to rewrite runs.csv.") from None

    unknown = sorted(set(runs["status"]) - set(STATUSES))
    if unknown:
        raise DataError(f"{path}: unknown status values {unknown}; expected one of {list(STATUSES)}.")

    # Keys and method names become file names (records, arrays, figures), so
    # only the shapes the bench writes are accepted: no path can leave the folder.
    for column, pattern, shape in (("key", KEY_PATTERN, "24 lowercase hex digits"),
                                   ("method", METHOD_PATTERN, "lowercase letters, digits and _")):
        bad = runs.loc[~runs[column].str.fullmatch(pattern), column]
        if not bad.empty:
            raise DataError(f"{path}: invalid {column} {bad.iloc[0]!r}; a {column} is {shape}. "
                            "Run the bench again to rewrite runs.csv.")

    invalid = runs.loc[~(np.isfinite(runs[NOISE_COLUMN]) & (runs[NOISE_COLUMN] >= 0))]
    if not invalid.empty:
        first = invalid.iloc[0]
        raise DataError(f"{path}: the noise of run {first['key']} is {_shown(float(first[NOISE_COLUMN]))}, not a "
                        "noise level of 0 or more. Run the bench again to rewrite runs.csv.")

    repeated = runs.loc[runs["key"].duplicated(), "key"]
    if not repeated.empty:
        raise DataError(f"{path} lists run {repeated.iloc[0]} twice. Run the bench again to rewrite runs.csv.")

    order = {name: position for position, name in enumerate(ordered_methods(runs["method"]))}
    runs = runs.assign(_order=runs["method"].map(order))
    runs = runs.sort_values(["_order", NOISE_COLUMN, "repetition"], kind="stable").drop(columns="_order")
    return runs.reset_index(drop=True)


def _check_ok_metrics(path, runs):
    """Raise DataError unless every ok run has a finite test MSE and R², no MSE below 0 and no R² above 1.

    The bench stores a run whose metrics are not finite as failed, and an MSE
    is a mean of squares, while R² = 1 - SSE/SST is at most 1.
    """
    ok = runs[runs["status"] == "ok"]
    checks = (("mse_test", True, lambda v: v >= 0, "a finite MSE of 0 or more"),
              ("mse_train", False, lambda v: v >= 0, "a finite MSE of 0 or more"),
              ("r2_test", True, lambda v: v <= 1, "a finite R² of at most 1"))
    for column, required, in_range, expected in checks:
        values = ok[column]
        present = values.notna()
        bad = ok[(~present & required) | (present & ~(np.isfinite(values) & values.map(in_range)))]
        if not bad.empty:
            first = bad.iloc[0]
            raise DataError(f"{path}: the ok run {first['key']} has {column} = {_shown(float(first[column]))}, not "
                            f"{expected}. Run the bench again to rewrite runs.csv.")


def check_runs_against_records(results):
    """Raise DataError when a row of runs.csv differs from its run's record in a field that both contain.

    The bench writes runs.csv from the records, and the records carry
    checksums, so a difference means that runs.csv was edited afterwards.
    Text must match exactly. Numbers are compared as parsed: the bench
    writes them so that they parse back to the record's values, except the
    seconds, which it rounds to SECONDS_DECIMALS decimals. A record without
    a noise level was trained on clean labels, so its level is CLEAN_LEVEL.
    """
    path = results.directory / "runs.csv"
    columns = [column for column in (*RECORD_FIELDS, *RECORD_METRICS) if column in results.runs.columns]
    identity = _manifest_signal_identity(results)
    seen = {}
    for row in results.runs.to_dict("records"):
        key = row["key"]
        record = json.loads(results.record_bytes(key))
        _check_key(results, record, identity)
        for column in columns:
            found = row[column]
            if column in RECORD_METRICS:
                metrics = record.get("metrics")
                if not isinstance(metrics, dict) or column not in metrics:
                    continue
                expected = metrics[column]
            elif column == NOISE_COLUMN:
                expected = record.get(NOISE_COLUMN, CLEAN_LEVEL)
            elif column in record:
                expected = record[column]
            else:
                continue
            if not _same_cell(column, found, expected):
                raise DataError(
                    f"{path}: the {column} of run {key} is {_shown(found, column)}, but its record "
                    f"{results.record_path(key)} has {_shown(expected, column)}, so runs.csv or the record was "
                    f"changed after the bench wrote them. {_rewrite_runs_advice(results)}"
                )
        _check_repetition(results, row)
        # After the comparison with the record, so that an edited cell is reported as such.
        run = (row["method"], float(row.get(NOISE_COLUMN, CLEAN_LEVEL)), row["repetition"])
        if run in seen:
            raise DataError(f"{path} lists method {run[0]} at noise level {run[1]:g}, repetition "
                            f"{_shown(run[2], 'repetition')}, twice: runs {seen[run]} and {key}. "
                            f"{_rewrite_runs_advice(results)}")
        seen[run] = key


def _manifest_signal_identity(results):
    """Return the signal identity of the manifest's bench, after checking it against the manifest's configuration.

    Manifests written before the signal block existed have none, and the
    identity then follows from the configured signal. Raises DataError when
    the signal block and the configuration disagree on the domain or the
    sampling rate, which means that manifest.json was edited.
    """
    manifest = results.manifest
    configured = manifest["config"]["signal"]
    block = manifest.get("signal")
    if not isinstance(block, dict) or not isinstance(block.get("identity"), dict):
        # Those configurations predate signal.name and signal.expression too: their signal is the seed's.
        section = {"name": signals.DEFAULT_SIGNAL, "expression": "", **configured}
        return signals.load_signal({**manifest["config"], "signal": section}).identity
    identity = block["identity"]
    _check_identity_source(results, identity, block)
    pairs = [("domain", identity.get("domain"), configured.get("domain"))]
    if "sampling_rate_hz" in identity:
        pairs.append(("sampling_rate_hz", identity["sampling_rate_hz"], configured.get("sampling_rate_hz")))
        pairs.append(("sampling_rate_hz", identity["sampling_rate_hz"], block.get("sampling_rate_hz")))
    for name, used, stated in pairs:
        if used != stated:
            raise DataError(f"{results.directory / 'manifest.json'} states signal {name} {stated!r}, but its runs used "
                            f"{used!r}, so manifest.json was edited after the bench wrote it. {_manifest_advice(results)}")
    return identity


def _check_identity_source(results, identity, block):
    """Raise DataError unless config.signal names the signal, formula or data series that the runs used."""
    configured = results.manifest["config"]["signal"]
    path = results.directory / "manifest.json"
    try:
        entry = signals.suite_entry(configured)
    except BenchError as error:
        raise DataError(f"{path} has an invalid config.signal: {error} {_manifest_advice(results)}") from None
    name = configured.get("name", signals.DEFAULT_SIGNAL)
    if entry.dataset:
        used, stated = identity.get("dataset"), entry.dataset
    else:
        used, stated = identity.get("expression"), str(entry.expression)
    if used != stated or block.get("name", name) != name:
        raise DataError(f"{path} states signal {name!r} ({stated}), but its runs used {used}, so manifest.json was "
                        f"edited after the bench wrote it. {_manifest_advice(results)}")


def _check_key(results, record, identity):
    """Raise DataError when a record's cache key does not follow from the manifest's configuration.

    The key hashes the signal, the split, the method's settings, the seed
    and the versions, so a manifest whose split or signal was edited after
    the bench, or that belongs to another bench, gives other keys.
    """
    from bench.runner import run_key

    expected = run_key(results.manifest["config"], record.get("method"), record.get("settings"), record.get("seed"),
                       record.get("versions"), record.get("upstream_key"), record.get(NOISE_COLUMN, CLEAN_LEVEL),
                       signal_identity=identity)
    if expected != record.get("key"):
        raise DataError(f"{results.record_path(record.get('key'))} does not follow from the configuration in "
                        f"{results.directory / 'manifest.json'}: with its signal and split, the run's key would be "
                        f"{expected}. manifest.json was edited or comes from another bench. {_manifest_advice(results)}")
    _check_record_against_run_settings(results, record)


def _check_record_against_run_settings(results, record):
    """Raise DataError when a record's seed, noise level or versions disagree with the manifest's run settings.

    A run's seed is derived from the base seed, the method and the
    repetition, and the manifest's versions are those of every run.
    """
    manifest, path = results.manifest, results.directory / "manifest.json"
    run = manifest["config"]["run"]
    problems = []
    if "base_seed" in run:
        seed = derive_seed(run["base_seed"], record.get("method"), record.get("repetition"))
        if seed != record.get("seed"):
            problems.append(f"its seed is {_shown(record.get('seed'))}, but base_seed {run['base_seed']} gives {seed}")
    level = float(record.get(NOISE_COLUMN, CLEAN_LEVEL))
    if "noise_levels" in run and level not in {float(value) for value in run["noise_levels"]}:
        problems.append(f"its noise level {level:g} is not among the configured {run['noise_levels']}")
    versions = manifest.get("versions") or {}
    for package, version in (record.get("versions") or {}).items():
        if package != "bench" and package in versions and versions[package] != version:
            problems.append(f"it used {package} {version}, but the manifest records {versions[package]}")
    if problems:
        raise DataError(f"run {record.get('key')} does not match {path}: {'; '.join(problems)}. manifest.json or "
                        f"the record was edited after the bench wrote them. {_manifest_advice(results)}")


def _manifest_advice(results):
    if results.is_bundle:
        return f"Restore the bundle with git, or export it again with `{publish_command(results.profile)}`."
    return f"Run `{results.rerun_command()}` to write the results again."


def _check_repetition(results, row):
    """Raise DataError when a run's repetition lies outside the repetitions of the manifest's configuration.

    The pages count seeds from manifest.json, and the bench writes it with
    the runs, so such a run means that one of them was edited. Runs whose
    settings differ from the manifest's are listed on the Settings page.
    """
    repetitions = results.manifest["config"]["run"]["repetitions"]
    if not 0 <= row["repetition"] < repetitions:
        noun = "repetition" if repetitions == 1 else "repetitions"
        raise DataError(f"{results.directory / 'manifest.json'} asks for {repetitions} {noun}, but run "
                        f"{row['key']} is repetition {_shown(row['repetition'], 'repetition')}. "
                        f"Run `{results.rerun_command()}` to write the results again.")


def _same_cell(column, found, expected):
    """Return whether the runs.csv value ``found`` is what the bench writes for the record's value ``expected``."""
    if column not in NUMERIC_COLUMNS:
        return found == ("" if expected is None else str(expected))
    if expected is None:
        return math.isnan(found)
    try:
        expected = float(expected)
        if column == "seconds":
            expected = float(f"{expected:.{SECONDS_DECIMALS}f}")
    except (TypeError, ValueError):
        return False
    return found == expected or (math.isnan(found) and math.isnan(expected))


def _shown(value, column=None):
    if isinstance(value, float) and math.isnan(value):
        return "an empty cell"
    if column in INTEGER_COLUMNS and isinstance(value, float) and value.is_integer():
        value = int(value)
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE_CHARS else text[:SHOWN_VALUE_CHARS] + "…"


def _rewrite_runs_advice(results):
    if results.is_bundle:
        return (f"Restore the bundle with git, or export it again with `{publish_command(results.profile)}` "
                "from results that include the prediction arrays.")
    return f"Run `{results.rerun_command()}` again to rewrite runs.csv from the records."


def read_manifest(path):
    """Read ``manifest.json`` and check the signal settings that the figures need."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}). Run the bench again to rewrite manifest.json.") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror}. Run the bench again to rewrite manifest.json.") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path} is not a JSON object. Run the bench again to rewrite manifest.json.")

    try:
        signal = manifest["config"]["signal"]
        start, stop = (float(value) for value in signal["domain"])
        rate = float(signal["sampling_rate_hz"])
    except (KeyError, TypeError, ValueError):
        raise DataError(
            f"{path} lacks a valid config.signal with 'domain' [start, stop] and 'sampling_rate_hz'. Run the bench "
            "again to rewrite manifest.json."
        ) from None
    if not (math.isfinite(start) and math.isfinite(stop) and start < stop and rate > 0):
        raise DataError(
            f"{path}: config.signal has domain {signal['domain']} and sampling_rate_hz {rate}; "
            "expected start < stop and a positive rate. Run the bench again to rewrite manifest.json."
        )
    _check_signal_block(path, manifest, stop - start)
    _check_manifest_fields(path, manifest)
    return manifest


def _check_manifest_fields(path, manifest):
    """Raise DataError unless the manifest's fields that the pages read have the types the bench writes."""
    config = manifest["config"]
    checks = [
        ("config.split", config.get("split"), lambda value: isinstance(value, dict)),
        ("config.split.test_fraction", (config.get("split") or {}).get("test_fraction"), is_number),
        ("config.split.data_seed", (config.get("split") or {}).get("data_seed"), is_int),
        ("config.run", config.get("run"), lambda value: isinstance(value, dict)),
        ("config.run.repetitions", (config.get("run") or {}).get("repetitions"),
         lambda value: is_int(value) and value >= 1),
        ("config.run.methods", (config.get("run") or {}).get("methods"),
         lambda value: isinstance(value, list) and all(isinstance(name, str) for name in value)),
        ("config.methods", config.get("methods"), lambda value: isinstance(value, dict)),
        ("machine", manifest.get("machine", {}), lambda value: isinstance(value, dict)),
        ("versions", manifest.get("versions", {}), lambda value: isinstance(value, dict)),
        ("git_commit", manifest.get("git_commit"),
         lambda value: value is None or (isinstance(value, str) and COMMIT_TEXT.fullmatch(value) is not None)),
        ("command", manifest.get("command"),
         lambda value: value is None or (isinstance(value, str) and value.startswith("python -m bench ")
                                         and "\n" not in value and "\r" not in value)),
    ]
    run = config.get("run") or {}
    if "base_seed" in run:
        checks.append(("config.run.base_seed", run["base_seed"], is_int))
    if "noise_levels" in run:
        checks.append(("config.run.noise_levels", run["noise_levels"],
                       lambda value: isinstance(value, list) and all(is_number(level) for level in value)))
    for name, value, valid in checks:
        if not valid(value):
            raise DataError(f"{path} has an invalid {name}: {_shown(value)}. The bench never writes that, so the "
                            "file was edited; run the bench again to rewrite manifest.json.")


def _check_signal_block(path, manifest, width):
    """Raise DataError unless the manifest's signal block, when it gives a rate, gives a positive one and its sample count.

    Manifests written before the suite existed have a block with only the expression and its LaTeX.
    """
    block = manifest.get("signal")
    if not isinstance(block, dict) or "sampling_rate_hz" not in block:
        return
    try:
        rate = float(block["sampling_rate_hz"])
        samples = int(block["samples"])
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path} has a signal block without a valid 'sampling_rate_hz' and 'samples' ({error!r}). "
                        "Run the bench again to rewrite manifest.json.") from None
    if not (math.isfinite(rate) and rate > 0) or round(width * rate) != samples:
        raise DataError(f"{path}: the signal block gives sampling_rate_hz {rate} and {samples} samples, which do not "
                        "match the domain of config.signal. Run the bench again to rewrite manifest.json.")


def ordered_methods(names):
    """Return the distinct method names in ``names``: the bench's order first, then unknown names sorted."""
    present = set(names)
    known = [name for name in METHOD_NAMES if name in present]
    return known + sorted(present - set(METHOD_NAMES))


def settings_label(method):
    """Return the label of ``method``'s settings that its adapter declares, or None for a method this code does not know."""
    return registry.settings_label(method) if method in METHOD_NAMES else None


def is_reference(method):
    """Return whether ``method`` is a reference row (an accuracy ceiling or floor) rather than a competitor."""
    return settings_label(method) == REFERENCE
