"""Command-line interface: ``python -m bench run | report | render | profiles``.

This module is the only place that prints. Usage errors and invalid input
exit with code 2; a bench in which some run failed exits with code 1.
"""

import argparse
import contextlib
import difflib
import logging
import shlex
import signal
import sys
import tempfile
import threading
from pathlib import Path

from bench import config as config_module
from bench.errors import BenchError

EXIT_FAILED_RUNS = 1
EXIT_USAGE = 2
# The shell's status for a process stopped by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130

DEFAULT_RESULTS_ROOT = Path("results")
DEFAULT_GENERATED_DIR = Path("report") / "_generated"

# Bounds of perf's sizes. The published figure times 12,000 samples at grids 40, 90 and 150, and the
# maxima leave room for scaling studies far beyond that. By the estimate of bench.perf.pass_bytes, grid
# 10,000 on 12,000 samples needs about 200 GB and 10,000,000 samples need about 150 GB even at grid 1,
# so a larger value is a typo. Sizes within the bounds are checked against this machine's memory too.
PERF_MIN_SAMPLES = 10
PERF_MAX_SAMPLES = 10_000_000
PERF_MAX_GRID = 10_000


class UsageError(BenchError):
    """Invalid command-line arguments."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        if message.startswith("argument --expression: expected one argument"):
            # argparse reads a value that starts with '-', such as "-x", as an option.
            message += "; write a formula that starts with '-' as --expression='-x'"
        raise UsageError(f"{message}. Run 'python -m {self.prog} --help' for the options.")


def _non_empty_path(example):
    """Return an argparse type function that converts a value to a Path and rejects an empty value.

    Path("") would be the current folder, which no path option means. The
    error message for an empty value ends with ``example``.
    """
    def parse(text):
        if not text:
            raise argparse.ArgumentTypeError(f"the path is empty; give {example}")
        return Path(text)

    return parse


def _add_profile(parser):
    parser.add_argument("--profile", default="default",
                        help=f"named configuration: {', '.join(config_module.PROFILES)} (default: default)")
    parser.add_argument("--results-dir", type=_non_empty_path("a folder such as results/quick"), default=None,
                        help="folder of stored runs (default: results/<profile>; render falls back to the committed "
                             "published/<profile>)")


def _add_suite_profile(parser):
    parser.add_argument("--suite-profile", default=config_module.SUITE_PROFILE,
                        help="profile whose suite of signals the Suite page and the signal pages show, read from "
                             f"results/<profile>/ or else published/<profile>/ (default: {config_module.SUITE_PROFILE})")


def build_parser():
    parser = _Parser(prog="bench", description="Benchmark KAN against symbolic regression on a 1-D signal.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages, pykan's output included")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run every method over the profile's repetitions, reusing stored runs")
    _add_profile(run)
    run.add_argument("--config", type=_non_empty_path("a TOML file such as overrides.toml"), default=None,
                     help="TOML file whose values override the profile's")
    run.add_argument("--methods", default=None,
                     help=f"comma-separated methods to run (default: the configuration's): {', '.join(config_module.METHOD_NAMES)}")
    run.add_argument("--signals", default=None, metavar="NAMES",
                     help="run the suite: 'all' or comma-separated built-in signals; each signal's runs go to "
                          "<results folder>/signals/<name>/, the seed signal's to the results folder itself")
    run.add_argument("--expression", default=None, metavar="FORMULA",
                     help="run on a formula of x instead, such as 'sin(2*pi*5*x)'; its runs go to "
                          "<results folder>/signals/custom/ (name it with signal.name in --config)")
    run.add_argument("--scheduler", metavar="ADDRESS", default=None,
                     help="send the runs to the running Dask scheduler at ADDRESS (tcp://HOST:PORT); needs the "
                          "distributed extra")
    run.add_argument("--workers", metavar="N", type=int, default=None,
                     help="start a Dask cluster of N worker processes, one thread each, on this machine and run on it; "
                          "needs the distributed extra (the configuration's run.workers sizes a pool of local "
                          "processes instead)")

    report = commands.add_parser("report", help="write the report's tables, formulas and figures from stored runs")
    _add_profile(report)
    _add_suite_profile(report)
    report.add_argument("--out", type=_non_empty_path(f"a folder such as {DEFAULT_GENERATED_DIR}"),
                        default=DEFAULT_GENERATED_DIR,
                        help=f"folder for the generated includes (default: {DEFAULT_GENERATED_DIR})")

    render = commands.add_parser("render", help="write the report from stored runs, then render the site into _site/")
    _add_profile(render)
    _add_suite_profile(render)

    publish = commands.add_parser("publish", help="copy a profile's runs, records, manifest and figures into published/<profile>/")
    _add_profile(publish)
    publish.add_argument("--drop-runs", action="store_true",
                         help="publish even when the earlier bundle has runs (by method, noise level and repetition) "
                              "that the results folder lacks, and drop those runs")

    perf = commands.add_parser("perf", help="time stock pykan against the fast spline path and one default KAN run")
    perf.add_argument("--grids", default="40,90,150", help="comma-separated grid sizes to time (default: 40,90,150)")
    perf.add_argument("--samples", type=int, default=12000, help="samples per pass (default: 12000)")
    perf.add_argument("--repeats", type=int, default=3, help="timed passes per grid and path; the best counts (default: 3)")
    perf.add_argument("--no-run", action="store_true", help="skip timing one default-profile KAN numeric run")
    perf.add_argument("--out", type=_non_empty_path("a file such as results/default/perf.json"),
                      default=DEFAULT_RESULTS_ROOT / "default" / "perf.json",
                      help="JSON file for the figures (default: results/default/perf.json, which the report "
                           "and the published bundle include)")

    commands.add_parser("profiles", help="list the profiles")
    return parser


def parse_methods(text):
    """Return the list of method names in the comma-separated ``text``; empty, repeated or unknown names raise UsageError."""
    names = [name.strip() for name in text.split(",")]
    if not any(names):
        raise UsageError("--methods is empty; give comma-separated names such as kan_numeric,operon_direct.")
    if not all(names):
        raise UsageError(f"--methods {text!r} has an empty name; separate the names with single commas.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"--methods lists {', '.join(repeated)} more than once; give each method once.")
    for name in names:
        if name not in config_module.METHOD_NAMES:
            close = difflib.get_close_matches(name, config_module.METHOD_NAMES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"unknown method '{name}' in --methods.{hint} "
                             f"Known methods: {', '.join(config_module.METHOD_NAMES)}.")
    return names


def _results_dir(args):
    return args.results_dir if args.results_dir is not None else DEFAULT_RESULTS_ROOT / args.profile


def parse_signals(text):
    """Return the built-in signal names in ``text``: 'all' or comma-separated names; unknown names raise UsageError."""
    from bench import signals

    if text.strip() == "all":
        return signals.suite_names()
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--signals is empty; give 'all' or comma-separated names such as seed,chirp.")
    for name in names:
        if name == "all":
            raise UsageError("--signals all runs every built-in signal and takes no other names; give 'all' alone "
                             "or only names such as seed,chirp.")
        if name not in signals.SUITE:
            close = difflib.get_close_matches(name, list(signals.SUITE), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise UsageError(f"unknown signal '{name}' in --signals.{hint} "
                             f"Built-in signals: {', '.join(signals.SUITE)}; use --expression for a formula.")
    return list(dict.fromkeys(names))


def _signal_configs(args, overrides):
    """Return (configuration, results folder) pairs, one per signal that this bench runs."""
    from bench import signals

    if args.signals is not None and args.expression is not None:
        raise UsageError("--signals and --expression cannot be combined; run them as two benches.")
    if args.expression is not None and not args.expression.strip():
        raise UsageError("--expression is empty; give a formula of x such as 'sin(2*pi*5*x)'.")
    # Checked as given first, so that a bad value is reported before anything is put over it.
    configured = config_module.load_config(args.profile, overrides)
    if args.expression is not None:
        config_name = (overrides or {}).get("signal", {}).get("name")
        if config_name in signals.SUITE:
            raise UsageError(f"signal.name = \"{config_name}\" in --config names a built-in signal, but --expression "
                             "gives a formula of its own. Choose a new name, or leave signal.name out to use 'custom'.")
        name = configured["signal"]["name"] if configured["signal"]["name"] not in signals.SUITE else "custom"
        overrides = config_module.merge_overrides(overrides, {"signal": {"name": name, "expression": args.expression}})
    base = _results_dir(args)
    if args.signals is None:
        config = config_module.load_config(args.profile, overrides)
        return [(config, signals.results_dir(base, config["signal"]["name"]))]
    pairs = []
    for name in parse_signals(args.signals):
        named = config_module.merge_overrides(overrides, {"signal": {"name": name, "expression": ""}})
        pairs.append((config_module.load_config(args.profile, named), signals.results_dir(base, name)))
    return pairs


def _check_signal_folders(base, results_dir, name):
    """Raise UsageError when a folder that the bench creates between ``base`` and ``results_dir``, such as signals/, is a file."""
    path = base
    for part in results_dir.relative_to(base).parts:
        path = path / part
        try:
            misplaced = path.exists() and not path.is_dir()
        except OSError:
            # The runner reports an unreadable folder when it prepares the results folder.
            return
        if misplaced:
            raise UsageError(f"{path} is a file, but the bench writes the runs of signal '{name}' into {results_dir}. "
                             "Remove or rename the file, then run the bench again.")


def _command_run(args):
    from bench import cluster, runner
    from bench.progress import progress_display
    from bench.store import RunStore

    overrides = config_module.read_toml(args.config) if args.config else None
    pairs = _signal_configs(args, overrides)
    methods = parse_methods(args.methods) if args.methods is not None else None
    spec = cluster.cluster_spec(args.scheduler, args.workers)
    base = _results_dir(args)
    # Each signal's bench checks its folders too, but only after the signals before it were computed.
    runner.check_results_dir(base)
    for config, results_dir in pairs:
        _check_signal_folders(base, results_dir, config["signal"]["name"])
        runner.check_results_dir(results_dir)
        RunStore(results_dir).check_folders()
    failed = 0
    for config, results_dir in pairs:
        with progress_display(sys.stderr) as progress:
            summary = runner.run_benchmark(config, args.profile, results_dir, methods, command=args.command_line,
                                           cluster=spec, progress=progress, base=base)
        print(f"bench: signal {config['signal']['name']}: {summary.line()}; results in {results_dir}")
        if summary.failed:
            print(f"bench: {summary.failed} runs failed; their reasons are in {results_dir / 'runs.csv'}",
                  file=sys.stderr)
        failed += summary.failed
    return EXIT_FAILED_RUNS if failed else 0


def _command_report(args):
    from bench.reporting import write_report

    config_module.load_config(args.profile)
    config_module.load_config(args.suite_profile)
    if args.results_dir is not None:
        _check_results_profile(args.results_dir, args.profile, "report")
    written = write_report(_results_dir(args), args.out, suite_profile=args.suite_profile)
    print(f"report: wrote {len(written)} files to {args.out}")
    return 0


def _command_render(args):
    from bench.render import build_site

    if not Path("_quarto.yml").is_file():
        raise UsageError(f"no _quarto.yml in {Path.cwd()}; run 'python -m bench render' from the project's root folder.")
    config_module.load_config(args.profile)
    config_module.load_config(args.suite_profile)
    if args.results_dir is not None:
        _check_results_profile(args.results_dir, args.profile, "render")
    source, renderer = build_site(Path.cwd(), args.profile, args.results_dir, args.suite_profile)
    print(f"render: site written to _site/ from {source} with {renderer}")
    return 0


def _command_publish(args):
    from bench.reporting import PUBLISHED_ROOT, export_bundle

    config_module.load_config(args.profile)
    results_dir = _results_dir(args)
    _check_results_profile(results_dir, args.profile, "publish")
    exported = export_bundle(results_dir, PUBLISHED_ROOT / args.profile, drop_runs=args.drop_runs)
    print(f"publish: wrote {len(exported.files)} files ({exported.size} bytes) to {exported.directory}")
    if exported.signals:
        noun = "signal" if len(exported.signals) == 1 else "signals"
        print(f"publish: with the bundles of {len(exported.signals)} other {noun} of the suite in "
              f"{exported.directory / 'signals'}: {', '.join(exported.signals)}")
    if exported.kept_signals:
        noun = "signal" if len(exported.kept_signals) == 1 else "signals"
        print(f"publish: kept the earlier bundles of {len(exported.kept_signals)} {noun} that {results_dir} has no "
              f"runs of: {', '.join(exported.kept_signals)}")
    for dropped in exported.dropped_runs:
        print(f"publish: dropped {dropped.describe_runs()} from {dropped.bundle}, which {dropped.results} lacks")
    return 0


def _check_results_profile(results_dir, profile, command):
    """Raise UsageError when the bench behind ``results_dir`` ran another profile than ``profile``."""
    from bench.reporting.results import load_results

    if results_dir.exists() and not results_dir.is_dir():
        raise UsageError(f"--results-dir {results_dir} is a file; pass the folder that `python -m bench run` wrote, "
                         f"such as results/{profile}.")
    stored = load_results(results_dir).profile
    if stored != profile:
        raise UsageError(f"{results_dir} contains results of profile '{stored}', not '{profile}'. Run {command} with "
                         f"--profile {stored}, or pass the results folder of profile '{profile}'.")


def _positive_ints(text, option, maximum):
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise UsageError(f"invalid {option} {text!r}: give comma-separated positive integers such as 40,90,150.")
    if max(values) > maximum:
        raise UsageError(f"invalid {option} {text!r}: {max(values)} is above the maximum of {maximum:,}; "
                         "give values such as 40,90,150.")
    return values


def _check_perf_counts(samples, repeats):
    if not PERF_MIN_SAMPLES <= samples <= PERF_MAX_SAMPLES:
        raise UsageError(f"invalid --samples {samples}: give from {PERF_MIN_SAMPLES} to {PERF_MAX_SAMPLES:,} "
                         "samples per pass, such as 12000.")
    if repeats < 1:
        raise UsageError(f"invalid --repeats {repeats}: give 1 or more timed passes per grid and path.")


def _check_perf_memory(settings, grids, samples):
    """Raise UsageError when timing the largest grid on ``samples`` points needs more memory than this machine has.

    A pass that fits may still fail when other processes use the memory.
    """
    from bench import perf

    available = perf.memory_bytes()
    needed = perf.pass_bytes(settings["width"], max(grids), samples)
    if available is not None and needed > available:
        raise UsageError(f"--samples {samples} at grid {max(grids)} needs about {needed / 2**30:,.0f} GiB of memory, "
                         f"but this machine has {available / 2**30:,.0f} GiB; pass fewer --samples or smaller --grids.")


def _check_writable_file(path, option):
    """Raise UsageError unless ``path`` can be written: not a folder, in a folder that exists or can be made."""
    if path.is_dir():
        raise UsageError(f"invalid {option} {path}: it is a folder; give a file path such as results/default/perf.json.")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        # Permission bits do not tell everything (root, /proc), so try a file there.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        raise UsageError(f"invalid {option} {path}: {folder} is not a writable folder; give a path you can write.") from None


def _command_perf(args):
    from bench import perf, runner

    grids = _positive_ints(args.grids, "--grids", PERF_MAX_GRID)
    _check_perf_counts(args.samples, args.repeats)
    _check_writable_file(args.out, "--out")
    config = config_module.load_config("default")
    _check_perf_memory(config["methods"]["kan"], grids, args.samples)
    report = perf.run_perf(config, grids, args.samples, args.repeats, time_run=not args.no_run)
    if args.out == DEFAULT_RESULTS_ROOT / "default" / "perf.json":
        runner.prepare_results_dir(args.out.parent)
    for line in perf.format_report(report):
        print(line)
    try:
        written = perf.write_report(report, args.out)
    except OSError as error:
        raise UsageError(f"cannot write {args.out}: {error.strerror}; pass another --out.") from None
    print(f"perf: figures written to {written}")
    return 0


def _command_profiles(args):
    for name, description in config_module.PROFILE_DESCRIPTIONS.items():
        print(f"{name}: {description}")
    return 0


COMMANDS = {
    "run": _command_run,
    "report": _command_report,
    "render": _command_render,
    "publish": _command_publish,
    "perf": _command_perf,
    "profiles": _command_profiles,
}


def main(argv=None):
    """Run the command line and return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    args.command_line = "python -m bench " + shlex.join(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not args.verbose:
        logging.getLogger("bench.methods.kan").setLevel(logging.INFO)
    try:
        with _sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.command == "run":
            print("bench: interrupted. Runs that finished are stored, and the same command run again reuses them.",
                  file=sys.stderr)
        else:
            print(f"bench: {args.command} interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Handle SIGTERM as Ctrl-C for a block, so that a bench stopped by a scheduler or `timeout` stops its workers too.

    Signal handlers belong to the main thread, so in any other thread the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
