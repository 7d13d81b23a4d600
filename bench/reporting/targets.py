"""The signal behind stored results: its name, description, target expression, sampled values and split.

Manifests written since signals became configurable have a ``signal`` block
(``bench.runner.signal_summary``) and name their signal in
``config.signal``. Older manifests have neither, and their runs are the
seed signal's. No stored text is evaluated: the expression comes from
``bench.signals.target_expression``, which parses a user formula without
running it.
"""

import copy
from dataclasses import dataclass

import numpy as np

from bench import recovery, signals
from bench.errors import ConfigError, DataError
from bench.signal import evaluate_expression, make_split

SEED_SIGNAL = signals.DEFAULT_SIGNAL


@dataclass(frozen=True)
class StoredSignal:
    """The signal of stored results: its name, description and target, None for a data series."""

    name: str
    description: str
    expression: object

    @property
    def is_data(self):
        """Whether the signal is a data series, which has no closed form and so no ground truth."""
        return self.expression is None


def stored_signal(results):
    """Return the StoredSignal of ``results``, read from its manifest; raise DataError when it names no valid signal."""
    section = results.manifest["config"]["signal"]
    try:
        entry = signals.suite_entry(section)
    except ConfigError as error:
        raise DataError(f"{results.directory / 'manifest.json'}: config.signal does not name a valid signal: {error} "
                        "Run the bench again to rewrite manifest.json.") from None
    name = section.get("name", SEED_SIGNAL)
    block = results.manifest.get("signal")
    description = block.get("description") if isinstance(block, dict) else None
    return StoredSignal(name=name, description=description or entry.description, expression=entry.expression)


def drawn_split(results):
    """Return the samples and train/test split of ``results``'s signal, drawn again as the bench drew them.

    A data series is read again from its package, and its values must hash
    to the identity stored in the manifest, so that the report never draws
    another series than the one the runs were fitted to. Raises DataError
    when they differ.
    """
    config = results.manifest["config"]
    signal = stored_signal(results)
    if not signal.is_data:
        section, split = config["signal"], config["split"]
        return make_split(signal.expression, section["domain"], results.sampling_rate_hz(), split["test_fraction"],
                          split["data_seed"])

    configured = signals.load_signal(copy.deepcopy(config))
    stored = (results.manifest.get("signal") or {}).get("identity")
    if stored is not None and stored != configured.identity:
        raise DataError(
            f"{results.directory / 'manifest.json'} records the {signal.name} series as {stored}, but the series read "
            f"now is {configured.identity}, so the installed package ships other values than the bench used. "
            "Install the versions that manifest.json lists, or run the bench again."
        )
    return configured.split


def target_values(results, target):
    """Return the target on every sample of ``results``'s grid: ``target`` evaluated, or the data series when it is None."""
    if target is not None:
        return evaluate_expression(target, results.grid())
    values = drawn_split(results).y
    expected = results.grid().size
    if values.size != expected:
        raise DataError(f"the {stored_signal(results).name} series has {values.size} values, but the grid of "
                        f"{results.directory / 'manifest.json'} has {expected} samples. Run the bench again.")
    return np.asarray(values, dtype=np.float64)


def recovery_gap(signal):
    """Return why per-term recovery cannot be judged for ``signal``, a StoredSignal, or "" when it can.

    Recovery compares a formula's sinusoids with the target's
    (``bench.recovery``), so it needs a closed-form target with at least one
    sinusoidal term. Terms of the target that are not sinusoids are not judged.
    """
    if signal.is_data:
        return (f"the {signal.name} signal is a data series with no closed form, so there is no ground truth to "
                "judge a formula's terms by")
    if not recovery.decompose(signal.expression).sinusoids:
        return (f"the {signal.name} target is not a sum of sinusoids A·sin(φ₀ + 2π(f·x + r·x²)), the only terms that "
                "the recovery judge compares")
    return ""
