"""Progress of a bench: the interface the runner reports to, and the CLI's live bar.

The runner calls a Progress from whichever thread learns of a run: the
main thread, a thread that reads the worker processes' events, or the Dask
client's event loop. ProgressBar is the only part of the library that
writes to the terminal, and only the CLI creates one.
"""

import contextlib
import threading

# Runs in progress that the bar names; more are counted as "+N".
SHOWN_RUNNING = 2


class Progress:
    """Receives a bench's progress. This base class ignores it."""

    def planned(self, total):
        """Take the number of runs the bench will finish, before the first starts."""

    def started(self, run):
        """Take a run (a PlannedRun) whose fit starts now. Reused runs do not start."""

    def finished(self, run, status, outcome):
        """Take a finished run, its status (ok, failed, unavailable) and outcome (computed or reused)."""


class ProgressBar(Progress):
    """A tqdm bar of runs finished out of planned, with an ETA and the runs being computed."""

    def __init__(self, stream):
        self._stream = stream
        self._bar = None
        self._lock = threading.Lock()
        self._running = []
        self._finished = set()
        self._failed = 0

    def planned(self, total):
        from tqdm import tqdm

        # smoothing=0 estimates the rate over the whole bench, and reused
        # runs count as initial progress, so they do not make the ETA
        # optimistic. NOTE: the ETA assumes that the remaining runs take as
        # long as the average computed one, whatever their method.
        with self._lock:
            self._bar = tqdm(total=total, desc="bench", unit="run", file=self._stream, smoothing=0,
                             dynamic_ncols=True)

    def started(self, run):
        with self._lock:
            # A Dask worker's start event can arrive after the run's result.
            if (run.method, run.repetition) in self._finished:
                return
            self._running.append((run.method, run.repetition))
            self._show_running()

    def finished(self, run, status, outcome):
        with self._lock:
            self._finished.add((run.method, run.repetition))
            if (run.method, run.repetition) in self._running:
                self._running.remove((run.method, run.repetition))
            self._failed += status == "failed"
            if outcome == "reused":
                self._bar.initial += 1
            self._bar.update(1)
            self._show_running()

    def close(self):
        with self._lock:
            if self._bar is not None:
                self._bar.close()

    def _show_running(self):
        names = [f"{method} r{repetition}" for method, repetition in self._running[:SHOWN_RUNNING]]
        if len(self._running) > SHOWN_RUNNING:
            names.append(f"+{len(self._running) - SHOWN_RUNNING}")
        if self._failed:
            names.append(f"{self._failed} failed")
        self._bar.set_postfix_str(", ".join(names), refresh=True)


@contextlib.contextmanager
def progress_display(stream):
    """Yield a ProgressBar drawn on ``stream`` if it is a terminal, else a Progress that draws nothing.

    While the bar is drawn, log records that the root logger writes to the
    console go through tqdm, so that they print above the bar.
    """
    if not stream.isatty():
        yield Progress()
        return

    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = ProgressBar(stream)
    with logging_redirect_tqdm():
        try:
            yield bar
        finally:
            bar.close()
