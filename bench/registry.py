"""Method names and the adapter class behind each, imported only when used."""

import importlib

from bench.config import METHOD_NAMES, method_settings

_ADAPTERS = {
    "kan_numeric": ("bench.methods.kan", "KANNumeric"),
    "kan_numeric_minimal": ("bench.methods.kan_variants", "KANNumericMinimal"),
    "kan_numeric_smoothed": ("bench.methods.kan_smoothing", "KANNumericSmoothed"),
    "kan_symbolic": ("bench.methods.kan", "KANSymbolic"),
    "kan_symbolic_spectral": ("bench.methods.kan", "KANSymbolicSpectral"),
    "kan_symbolic_sines": ("bench.methods.kan_sines", "KANSymbolicSines"),
    "pysr_direct": ("bench.methods.pysr", "PySRDirect"),
    "pysr_distilled": ("bench.methods.pysr", "PySRDistilled"),
    "operon_direct": ("bench.methods.operon", "OperonDirect"),
    "operon_distilled": ("bench.methods.operon", "OperonDistilled"),
    "ceiling_nls": ("bench.methods.reference", "CeilingNLS"),
    "floor_mean": ("bench.methods.reference", "FloorMean"),
    "floor_linear": ("bench.methods.reference", "FloorLinear"),
}

# The modules, besides bench.provenance.SHARED_COMPUTE_MODULES, whose code
# determines each method's result; they are part of its cache key.
_KAN_SOURCES = ("methods/kan.py", "methods/kan_training.py", "methods/kan_fast.py", "methods/kan_refine.py")
_SOURCES = {
    "kan_numeric": _KAN_SOURCES,
    "kan_numeric_minimal": _KAN_SOURCES + ("methods/kan_variants.py",),
    "kan_numeric_smoothed": _KAN_SOURCES + ("methods/kan_smoothing.py", "methods/kan_poly.py"),
    "kan_symbolic": _KAN_SOURCES + ("methods/kan_snap.py", "methods/kan_symbolic_path.py"),
    "kan_symbolic_spectral": _KAN_SOURCES + ("methods/kan_snap.py", "methods/kan_symbolic_path.py"),
    # It trains a KAN of its own, without kan_fast or kan_refine, and snaps it with kan_snap's fits.
    "kan_symbolic_sines": ("methods/kan.py", "methods/kan_training.py", "methods/kan_snap.py", "methods/kan_sines.py"),
    "pysr_direct": ("methods/pysr.py", "methods/selection.py"),
    "pysr_distilled": ("methods/pysr.py", "methods/selection.py"),
    "operon_direct": ("methods/operon.py", "methods/selection.py"),
    "operon_distilled": ("methods/operon.py", "methods/selection.py"),
    "ceiling_nls": ("methods/reference.py",),
    "floor_mean": ("methods/reference.py",),
    "floor_linear": ("methods/reference.py",),
}

assert set(_ADAPTERS) == set(METHOD_NAMES) == set(_SOURCES)


def sources(name):
    """Return the package paths of the modules that compute method ``name``'s result."""
    return _SOURCES[name]


def settings_for(config, name):
    """Return the settings of method ``name``; the methods that rebuild the KAN numeric model also carry its settings."""
    settings = dict(method_settings(config, name))
    if name in ("kan_symbolic", "kan_symbolic_spectral", "kan_numeric_smoothed"):
        settings["kan"] = dict(config["methods"]["kan"])
    return settings


def adapter_class(name):
    """Return the adapter class of method ``name``, importing its module."""
    module_name, class_name = _ADAPTERS[name]
    return getattr(importlib.import_module(module_name), class_name)


def settings_label(name):
    """Return the label of method ``name``'s settings, one of ``bench.methods.base.SETTINGS_LABELS``."""
    return adapter_class(name).settings_label


def create(config, name):
    """Return the adapter of method ``name`` built with its settings from ``config``."""
    return adapter_class(name)(settings_for(config, name))
