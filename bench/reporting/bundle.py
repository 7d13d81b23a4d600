"""Published bundles: the stored results of a profile in a small folder meant to be committed.

A bundle contains what the report needs and a clean clone lacks, without the
prediction arrays, which are too large to commit::

    published/<profile>/
        bundle.json          format, profile and the SHA-256 of every other file
        runs.csv             copied from the results folder
        manifest.json        copied from the results folder
        records/<key>.json   the record of every run in runs.csv
        figures/*.svg        the figures, drawn from the arrays at export
        figures/figures.json each figure's section, caption and alt text
        signals/<name>/      a bundle of the same layout for each other signal of a suite

The report reads a bundle like a results folder (``load_results`` checks
the checksums first) and takes its figures from ``figures/``. Every table
and page is written again from runs.csv, manifest.json and the records, so
a change to the report's code shows on the next render. Exporting the same
results twice gives the same bytes.
"""

import hashlib
import json
import logging
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, DataError
from bench.reporting.figures import FIGURES_FOLDER, FIGURES_INDEX, build_figures, figures_index, signal_figure
from bench.reporting.results import (
    BUNDLE_INDEX,
    NOISE_COLUMN,
    PUBLISHED_ROOT,
    SIGNALS_FOLDER,
    load_results,
    ordered_methods,
    publish_command,
    read_runs,
    signal_folders,
)
from bench.reporting.speed import PERF_FILE
from bench.reporting.targets import stored_signal

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class DroppedRuns:
    """The runs of an earlier bundle that the results replacing it lack, identified by method, noise level and repetition.

    ``counts`` lists (method, number of runs) pairs in the bench's method
    order, and ``command`` is the bench command that stores those runs in
    the ``results`` folder.
    """

    bundle: Path
    results: Path
    counts: tuple
    command: str

    def describe_runs(self):
        """Return the dropped runs as text, such as "2 runs of kan_symbolic and 1 run of pysr_direct"."""
        parts = [f"{count} {'run' if count == 1 else 'runs'} of {method}" for method, count in self.counts]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


@dataclass(frozen=True)
class ExportedBundle:
    """The result of an export: the bundle folder, its files, their total size in bytes and the suite signals in it.

    ``kept_signals`` are the signals whose bundles the earlier bundle had and the results folder has no runs
    of: their bundles are copied over unchanged. ``dropped_runs`` lists a DroppedRuns for each replaced
    bundle that lost earlier runs, which only an export with ``drop_runs`` allows.
    """

    directory: Path
    files: tuple
    size: int
    signals: tuple = ()
    kept_signals: tuple = ()
    dropped_runs: tuple = ()


def export_bundle(results_dir, bundle_dir, drop_runs=False):
    """Copy the results in ``results_dir`` into the bundle folder ``bundle_dir``, replacing an earlier bundle.

    The records are checked against their checksums and the figures are
    drawn from the arrays, so the results folder must be one that the bench
    wrote, not another bundle. The new bundle is written beside the old one
    and swapped in, so a failure leaves the old bundle whole. Raises
    DataError when the results are incomplete, and BenchError when
    ``bundle_dir`` exists but is not a bundle, to keep it from being
    overwritten.

    The other signals of a suite, in ``results_dir``/signals/<name>/, are
    exported too, each into a bundle of its own at the same place in
    ``bundle_dir``. Raises DataError when one of them has no finished bench.
    The earlier bundle's signals that ``results_dir`` has no runs of are
    kept as they were, after their checksums are verified, so a bench of a
    few signals does not remove the others from the published suite.

    Raises DataError, before writing anything, when a bundle that this
    export replaces has runs that the new results lack, such as the runs of
    methods left out of the bench. With ``drop_runs`` the export goes on
    and lists those runs in ``dropped_runs``.
    """
    results_dir, bundle_dir = Path(results_dir), Path(bundle_dir)
    results = load_results(results_dir)
    if results.is_bundle:
        raise DataError(f"{results_dir} is already a published bundle; export from the results folder that the bench wrote.")
    if bundle_dir.exists() and not (bundle_dir / BUNDLE_INDEX).is_file():
        raise BenchError(f"{bundle_dir} exists and is not a published bundle (it has no {BUNDLE_INDEX}); "
                         "move it away or choose another folder.")

    signal_results = {name: _load_signal_results(name, folder, results) for name, folder in signal_folders(results_dir)}
    names = tuple(signal_results)
    kept_names = tuple(name for name, _ in signal_folders(bundle_dir) if name not in names)
    # The earlier bundles are checked first, since drawing the new figures takes longer.
    kept_files = {}
    for name in kept_names:
        kept_files.update(_earlier_signal_files(bundle_dir, name))
    dropped = _dropped_runs(results, bundle_dir, signal_results)
    if dropped and not drop_runs:
        raise _dropped_runs_error(dropped)

    files = _suite_files(results, signal_results)
    files.update(kept_files)
    _replace_folder(bundle_dir, files)
    exported = ExportedBundle(directory=bundle_dir, files=tuple(sorted(files)),
                              size=sum(len(data) for data in files.values()), signals=names,
                              kept_signals=kept_names, dropped_runs=dropped)
    _log_export(exported, results)
    return exported


def _suite_files(results, signal_results):
    """Return the files of the bundle of ``results`` and of each of ``signal_results`` in its signals/<name>/ folder."""
    files = bundle_files(results)
    for name, signal in signal_results.items():
        for relative, data in bundle_files(signal).items():
            files[f"{SIGNALS_FOLDER}/{name}/{relative}"] = data
    return files


def _log_export(exported, results):
    """Log what the export of ``results`` wrote, kept and dropped."""
    logger.info("exported %d files (%d bytes) of profile %r, with %d other signals, to %s", len(exported.files),
                exported.size, results.profile, len(exported.signals), exported.directory)
    if exported.kept_signals:
        logger.info("kept the earlier bundles of signals %s in %s: %s has no runs of them",
                    ", ".join(exported.kept_signals), exported.directory, results.directory)
    for entry in exported.dropped_runs:
        logger.info("dropped %s from %s: %s lacks them", entry.describe_runs(), entry.bundle, entry.results)


def _dropped_runs(results, bundle_dir, signal_results):
    """Return a DroppedRuns for each earlier bundle that the export replaces and that has runs the new results lack.

    ``results`` replace the bundle in ``bundle_dir``, and each of ``signal_results`` replaces the bundle of
    its signal under ``bundle_dir``/signals/.
    """
    replaced = [(results, bundle_dir)]
    replaced += [(signal, bundle_dir / SIGNALS_FOLDER / name) for name, signal in signal_results.items()]
    dropped = []
    for new, folder in replaced:
        earlier = _earlier_runs(folder)
        if earlier is None:
            continue
        counts = _lost_run_counts(earlier, new.runs)
        if counts:
            command = new.rerun_command(methods=[method for method, _ in counts])
            dropped.append(DroppedRuns(bundle=folder, results=new.directory, counts=counts, command=command))
    return tuple(dropped)


def _earlier_runs(folder):
    """Return the run table of the earlier bundle in ``folder``, or None when there is none or it cannot be read.

    The bundle is replaced whatever it contains, so a run table that cannot
    be read is logged as a warning instead of stopping the export.
    """
    if not folder.exists():
        return None
    try:
        return read_runs(folder / "runs.csv")
    except DataError as error:
        logger.warning("cannot compare the earlier bundle %s with the new results, so any runs that only it has "
                       "are dropped: %s", folder, error)
        return None


def _run_ids(runs):
    """Return the (method, noise level, repetition) of every run in the run table ``runs``."""
    return zip(runs["method"], runs[NOISE_COLUMN].astype(float), runs["repetition"].astype(float))


def _lost_run_counts(earlier, runs):
    """Return (method, number of runs) for each method with runs in ``earlier`` that ``runs`` lacks, in the bench's order."""
    kept = set(_run_ids(runs))
    counts = Counter(run[0] for run in _run_ids(earlier) if run not in kept)
    return tuple((method, counts[method]) for method in ordered_methods(counts))


def _dropped_runs_error(dropped):
    """Return the DataError that names the runs in ``dropped`` and the commands that store them."""
    sentences = [f"{entry.bundle} has {entry.describe_runs()} that {entry.results} lacks. Run `{entry.command}` to "
                 "store them there first." for entry in dropped]
    return DataError("this publish would drop earlier published runs. " + " ".join(sentences)
                     + " Or pass --drop-runs to publish without these runs.")


def _earlier_signal_files(bundle_dir, name):
    """Return the files of signal ``name``'s bundle in ``bundle_dir``, keyed by path in ``bundle_dir``.

    ``load_results`` verifies the files against the bundle's index first, so
    a damaged bundle raises DataError instead of being published again.
    """
    folder = bundle_dir / SIGNALS_FOLDER / name
    try:
        load_results(folder)
    except BenchError as error:
        raise DataError(f"the earlier bundle of signal {name}, which this publish would keep, is damaged: {error} "
                        f"Restore {folder} with git, or move it away to publish without it.") from None
    index = json.loads((folder / BUNDLE_INDEX).read_bytes())
    relatives = [*index["files"], BUNDLE_INDEX]
    return {f"{SIGNALS_FOLDER}/{name}/{relative}": (folder / relative).read_bytes() for relative in relatives}


def _load_signal_results(name, folder, results):
    """Load the results of the suite signal ``name`` in ``folder``, or raise DataError when its bench did not finish.

    ``results`` are those of the folder above, whose bench command the advice reuses.
    """
    if not (folder / "runs.csv").is_file() or not (folder / "manifest.json").is_file():
        raise DataError(
            f"{folder} has no runs.csv or no manifest.json, so the bench of signal {name} did not finish and it cannot "
            f"be published. Run `{results.rerun_command(signal=name)}` to finish it, or move the folder away."
        )
    return load_results(folder)


def bundle_files(results):
    """Return every file of the bundle of ``results`` as bytes, keyed by its path in the bundle, the index included.

    The figures show the runs at the lowest noise level, as the report's Figures page does, and include the
    figure of the signal's page in a suite.
    """
    compared = results.at_lowest_noise()
    target = stored_signal(results).expression
    figures = [*build_figures(compared, target), signal_figure(compared, target)]
    files = {
        "runs.csv": (results.directory / "runs.csv").read_bytes(),
        "manifest.json": (results.directory / "manifest.json").read_bytes(),
        f"{FIGURES_FOLDER}/{FIGURES_INDEX}": figures_index(figures),
    }
    for key in results.runs["key"]:
        files[f"records/{key}.json"] = results.record_bytes(key)
    if (results.directory / PERF_FILE).is_file():
        files[PERF_FILE] = (results.directory / PERF_FILE).read_bytes()
    for figure in figures:
        files[f"{FIGURES_FOLDER}/{figure.name}"] = figure.svg

    index = {
        "format": BUNDLE_FORMAT,
        "profile": results.profile,
        "command": publish_command(results.profile),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[BUNDLE_INDEX] = (json.dumps(index, indent=1, sort_keys=True) + "\n").encode("utf-8")
    return files


def _replace_folder(folder, files):
    """Write ``files`` into a new folder beside ``folder``, then swap it in and delete the old one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.new."))
    try:
        for relative, data in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(0o644)
        staging.chmod(0o755)
        old = None
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old."))
            folder.rename(old / folder.name)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)
