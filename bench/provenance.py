"""Versions, machine and code identity recorded with every run."""

import functools
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import bench

PACKAGE_ROOT = Path(bench.__file__).resolve().parent

# The modules whose code determines a run's result. Editing any of them
# changes every run's cache key; the CLI, reporting and storage do not.
COMPUTE_MODULES = ("signal.py", "metrics.py", "formulas.py", "seeds.py", "execution.py", "methods")


@functools.cache
def code_version():
    """Return a hash of the source of the modules that compute results."""
    digest = hashlib.sha256()
    for name in COMPUTE_MODULES:
        path = PACKAGE_ROOT / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(PACKAGE_ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    return f"{bench.__version__}+{digest.hexdigest()[:12]}"


def base_versions():
    """Return the versions of Python and the libraries every run uses."""
    versions = {"python": platform.python_version(), "bench": code_version()}
    for package in ("numpy", "sympy"):
        versions[package] = importlib.metadata.version(package)
    return versions


def machine():
    """Return a short description of this machine's CPU and operating system."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform()}


def git_commit(directory="."):
    """Return the git commit of ``directory`` (with ``-dirty`` for uncommitted changes), or None."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                                capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if status else "")
