"""Seed derivation and isolation of libraries that seed global generators."""

import contextlib
import hashlib
import random

import numpy as np

SEED_MODULUS = 2**31 - 1


def derive_seed(base_seed, method, repetition):
    """Return the seed of one run, derived from the base seed, the method name and the repetition.

    A hash keeps the seeds of different methods and repetitions unrelated, so
    adding a method or a repetition leaves every other run's seed unchanged.
    """
    text = f"{int(base_seed)}/{method}/{int(repetition)}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") % SEED_MODULUS


@contextlib.contextmanager
def isolated_global_rng(seed):
    """Seed Python's, NumPy's and torch's global generators for a block, then restore them.

    pykan seeds all three in its constructor and draws its initial weights
    from torch's. This block keeps those effects from leaking into the rest
    of the process, and the run from depending on what ran before it.
    """
    import torch

    python_state = random.getstate()
    numpy_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
