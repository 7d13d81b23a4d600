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

# The modules whose code determines every run's result. Each method adds
# its own modules (``bench.registry.sources``), so editing one method's
# adapter changes only that method's cache keys, and those of the methods
# that build on it. The CLI, reporting and storage change no key.
SHARED_COMPUTE_MODULES = (
    "signal.py", "metrics.py", "formulas.py", "seeds.py", "execution.py", "methods/__init__.py", "methods/base.py",
)


@functools.cache
def code_version(method_modules=()):
    """Return a hash of the shared compute modules' source and of ``method_modules`` (paths in the package)."""
    digest = hashlib.sha256()
    for name in SHARED_COMPUTE_MODULES + tuple(sorted(method_modules)):
        digest.update(name.encode())
        digest.update((PACKAGE_ROOT / name).read_bytes())
    return f"{bench.__version__}+{digest.hexdigest()[:12]}"


def base_versions(method_modules=()):
    """Return the versions of Python, of the libraries every run uses and of the code of ``method_modules``."""
    versions = {"python": platform.python_version(), "bench": code_version(tuple(method_modules))}
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
