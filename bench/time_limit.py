"""The wall-clock limit of one run (``run.time_limit_s``), in a process's main thread or in any other."""

import contextlib
import ctypes
import signal as signal_module
import threading


class RunTimedOut(BaseException):
    """A run passed its time limit. A BaseException, so that adapters' own handlers do not catch it."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise RunTimedOut in this block after ``seconds`` of wall time.

    In the main thread an interval timer's SIGALRM raises it. In another
    thread, such as a Dask worker's task thread, a timer thread raises it
    asynchronously in the running thread (PyThreadState_SetAsyncExc).

    NOTE: either way the limit is checked between Python operations, so a
    long call into native code (one Operon search, one LAPACK solve, a
    time.sleep in another thread) ends first. Operon's own max_time_s
    bounds its search.
    """
    if threading.current_thread() is threading.main_thread():
        with _alarm(seconds):
            yield
    else:
        with _async_exception_timer(seconds):
            yield


@contextlib.contextmanager
def _alarm(seconds):
    def expire(signum, frame):
        raise RunTimedOut()

    previous = signal_module.signal(signal_module.SIGALRM, expire)
    signal_module.setitimer(signal_module.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal_module.setitimer(signal_module.ITIMER_REAL, 0)
        signal_module.signal(signal_module.SIGALRM, previous)


def _set_async_exception(thread_id, exception):
    # ``exception`` None clears an exception that was set but not raised yet.
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                      None if exception is None else ctypes.py_object(exception))


@contextlib.contextmanager
def _async_exception_timer(seconds):
    target = threading.get_ident()
    guard = threading.Lock()
    state = {"active": True, "fired": False}

    def expire():
        with guard:
            if state["active"]:
                _set_async_exception(target, RunTimedOut)
                state["fired"] = True

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        # The guard orders this against expire(), so no RunTimedOut can be
        # raised in this thread after the block has ended.
        with guard:
            state["active"] = False
            if state["fired"]:
                _set_async_exception(target, None)
