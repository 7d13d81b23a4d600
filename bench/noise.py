"""Gaussian noise on the training labels, for the noise-robustness sweep.

A run at noise level s is trained on labels y + e, with e drawn from
N(0, (s·std(y))²) independently for every training sample, std(y) being
the standard deviation of the clean signal over all its samples. The test
labels stay clean, so test metrics measure how close a model comes to the
signal itself. Each (level, repetition) pair gets its own draw from a seed
derived from the split's data seed. All methods of one repetition train
on the same noisy labels, so their results stay paired.

A run at level 0 runs none of this code, so its cache key is the same as
before the sweep existed. A run above level 0 carries this module's hash in
its key (``cache_identity``).
"""

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

SEED_MODULUS = 2**31 - 1


def noise_seed(data_seed, level, repetition):
    """Return the seed of the noise drawn at ``level`` for ``repetition``, derived from ``data_seed``."""
    text = f"{int(data_seed)}/noise/{float(level)!r}/{int(repetition)}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") % SEED_MODULUS


def noisy_split(split, level, seed):
    """Return ``split`` with noise of relative size ``level`` added to its training labels only.

    The test labels are left clean, and so are the labels of ``split`` itself.
    """
    if level == 0:
        return split
    scale = float(level) * float(np.std(split.y))
    y = split.y.copy()
    y[split.train] += np.random.default_rng(seed).normal(0.0, scale, size=split.train.size)
    return dataclasses.replace(split, y=y)


def cache_identity(level):
    """Return the noise part of a run's cache key: None at level 0, else the level and this module's hash."""
    if level == 0:
        return None
    source = Path(__file__).read_bytes()
    return {"level": float(level), "code": hashlib.sha256(source).hexdigest()[:12]}
