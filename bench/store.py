"""Stored runs: one JSON record per run, its arrays in NPZ, both written atomically.

Layout under a results folder (``results/<profile>/``)::

    records/<key>.json   the run record, with checksums of its content and arrays
    arrays/<key>.npz     predictions on every sample, and model state where needed
    runs.csv             one row per run of the current configuration
    manifest.json        the configuration, versions and machine of the last bench

The arrays are written before the record, so a record on disk always has
its arrays: the record is the commit marker. Nothing is ever pickled.
"""

import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.errors import DataError

logger = logging.getLogger(__name__)

RECORD_SCHEMA = 1
MARKER_NAME = ".kan-sr-bench"


def canonical_json(value):
    """Return ``value`` as JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)


def checksum(record):
    """Return the SHA-256 of a record's canonical JSON, without its own checksum field."""
    body = {key: value for key, value in record.items() if key != "checksum"}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def write_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a synced temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates the file readable by its owner only; results are shared.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class RunClaim:
    """An exclusive lock on one run, held from before its computation until its record is stored."""

    def __init__(self, handle):
        self._handle = handle

    def release(self):
        """Release the lock; releasing twice does nothing."""
        if not self._handle.closed:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


class RunStore:
    """The records and arrays of one results folder."""

    def __init__(self, root):
        self.root = Path(root)
        self.records = self.root / "records"
        self.arrays = self.root / "arrays"
        self.locks = self.root / "locks"
        self.corrupt = self.root / "corrupt"

    def check_folders(self):
        """Raise DataError when one of the store's folders exists as a file or another non-folder.

        The CLI's run command calls this before it computes anything, because
        a save into such a path fails only after the run was computed.
        """
        for path in (self.records, self.arrays, self.locks, self.corrupt):
            try:
                misplaced = (path.exists() or path.is_symlink()) and not path.is_dir()
            except OSError:
                # The runner reports an unreadable results folder when it prepares the folder.
                continue
            if misplaced:
                raise DataError(f"{path} is a file, but the bench writes into a folder of that name. "
                                "Remove or rename the file, then run the bench again.")

    def record_path(self, key):
        return self.records / f"{key}.json"

    def arrays_path(self, key):
        return self.arrays / f"{key}.npz"

    @contextlib.contextmanager
    def lock(self, key):
        """Hold an exclusive lock on run ``key`` across processes (fcntl.flock) for a block."""
        claim = self.claim(key)
        try:
            yield
        finally:
            claim.release()

    def claim(self, key):
        """Return a ``RunClaim``: the exclusive lock on run ``key``, waiting while another process holds it.

        The lock is per open file, so one process must not claim a run twice.
        """
        path = self.locks / f"{key}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a")
        except OSError as error:
            raise DataError(f"cannot create the lock file {path}: {error.strerror or error}. "
                            f"Make {path.parent} a writable folder, or choose another --results-dir.") from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("run %s is being computed by another process; waiting for it", key)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            handle.close()
            raise
        return RunClaim(handle)

    def save(self, record, arrays=None):
        """Store ``record`` (a dict with a ``key``) and its ``arrays`` (name to ndarray)."""
        key = record["key"]
        stored = dict(record, schema=RECORD_SCHEMA, arrays_sha256=None)
        if arrays:
            buffer = _npz_bytes(arrays)
            write_atomic(self.arrays_path(key), buffer)
            stored["arrays_sha256"] = hashlib.sha256(buffer).hexdigest()
        stored["checksum"] = checksum(stored)
        write_atomic(self.record_path(key), (json.dumps(stored, indent=1, sort_keys=True) + "\n").encode())

    def load(self, key):
        """Return the stored record of ``key``, or None if absent or unreadable.

        An unreadable record (truncated, not JSON, wrong checksum) is logged
        with its path and the reason and moved aside to ``corrupt/``, so that
        its run is computed again.
        """
        path = self.record_path(key)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            problem = _record_problem(record, key)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problem = f"not valid JSON ({error})"
        if problem is None and record.get("status") == "ok":
            problem = self._arrays_problem(key, record.get("arrays_sha256"))
        if problem is not None:
            self._quarantine(key, problem)
            return None
        return record

    def load_arrays(self, key):
        """Return the arrays stored for ``key`` as a dict of ndarrays."""
        with np.load(self.arrays_path(key), allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def _arrays_problem(self, key, expected):
        path = self.arrays_path(key)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            return f"its arrays file {path} is missing"
        except OSError as error:
            return f"its arrays file {path} cannot be read ({error.strerror})"
        if digest != expected:
            return f"its arrays file {path} does not match the checksum in the record"
        return None

    def _quarantine(self, key, problem):
        """Move a bad record and its arrays to ``corrupt/``, stamped so that earlier ones are kept."""
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        folder = self.corrupt
        folder.mkdir(parents=True, exist_ok=True)
        for path in (self.record_path(key), self.arrays_path(key)):
            if path.exists():
                os.replace(path, folder / f"{path.stem}.{stamp}{path.suffix}")
        logger.warning("stored run %s is unusable (%s); moved it to %s and the run will be computed again",
                       key, problem, folder)


def _record_problem(record, key):
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("schema") != RECORD_SCHEMA:
        return f"schema {record.get('schema')!r}, expected {RECORD_SCHEMA}"
    if record.get("key") != key:
        return f"its key {record.get('key')!r} does not match the file name"
    if record.get("checksum") != checksum(record):
        return "checksum mismatch: the file was changed or truncated"
    return None


def _npz_bytes(arrays):
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    return buffer.getvalue()
