"""KAN adapters: the numeric model trained by grid refinement, and its symbolic copy."""

import contextlib
import copy
import importlib.metadata
import io
import logging

import numpy as np
import sympy

from bench import formulas
from bench.methods.base import FitResult, Method, RunFailed
from bench.seeds import isolated_global_rng
from bench.signal import X

logger = logging.getLogger(__name__)

STATE_PREFIX = "state__"
NOT_INSTALLED = "not installed"


def _installed_version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return NOT_INSTALLED


def _column(values):
    import torch

    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).reshape(-1, 1)


def _predict(model, x):
    import torch

    with torch.no_grad():
        return model(_column(x)).numpy()[:, 0].copy()


def _state_to_arrays(model):
    return {STATE_PREFIX + name: tensor.detach().numpy().copy() for name, tensor in model.state_dict().items()}


def _arrays_to_state(arrays):
    import torch

    return {
        name[len(STATE_PREFIX):]: torch.from_numpy(np.asarray(value))
        for name, value in arrays.items()
        if name.startswith(STATE_PREFIX)
    }


@contextlib.contextmanager
def _pykan_output_to_log():
    """Send what pykan prints to this module's debug log instead of standard output."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    for line in buffer.getvalue().splitlines():
        logger.debug("pykan: %s", line)


class KANNumeric(Method):
    """pykan KAN trained by grid refinement; each stage is Adam warm-up then LBFGS polishing."""

    name = "kan_numeric"
    settings_label = "settings chosen here"

    def library_versions(self):
        return {name: _installed_version(name) for name in ("torch", "pykan")}

    def unavailable_reason(self):
        missing = [name for name in ("torch", "pykan") if _installed_version(name) == NOT_INSTALLED]
        if missing:
            return f"{' and '.join(missing)} not installed; install the project with the 'methods' extra"
        return None

    def fit(self, task, upstream=None):
        from bench.methods import kan_training

        settings = self.settings
        with kan_training.float64_deterministic(settings["torch_threads"]), isolated_global_rng(task.seed), \
                _pykan_output_to_log():
            x_train, y_train = _column(task.x_train), _column(task.y_train)
            grids = settings["grids"]
            try:
                model, first, starts = kan_training.first_stage(settings, x_train, y_train, task.seed)
            except kan_training.Diverged as error:
                raise RunFailed(f"grid {grids[0]}", str(error)) from error
            stages = [first]
            for index, grid in enumerate(grids[1:], start=1):
                model = kan_training.refine(model, grid, x_train, settings)
                try:
                    stage = kan_training.stage_settings(settings, index)
                    stages.append(kan_training.train_stage(model, x_train, y_train, stage, grid))
                except kan_training.Diverged as error:
                    raise RunFailed(f"grid {grid}", str(error)) from error
            predictions = _predict(model, task.x_all)
            arrays = _state_to_arrays(model)

        details = {"stages": stages, "starts": starts, "final_grid": grids[-1]}
        return FitResult(predictions=predictions, details=details, arrays=arrays)


def rebuild_model(kan_settings, arrays, seed):
    """Rebuild the trained KAN numeric model from its stored state arrays."""
    from bench.methods import kan_training

    model = kan_training.build_model(kan_settings, kan_settings["grids"][-1], seed)
    model.load_state_dict(_arrays_to_state(arrays))
    return model


def snap_points(x_train, count):
    """Return ``count`` training inputs evenly spread over their sorted order (all of them when count is 0)."""
    import torch

    if count == 0 or count >= x_train.shape[0]:
        return x_train
    order = torch.argsort(x_train[:, 0], stable=True)
    picks = np.unique(np.linspace(0, x_train.shape[0] - 1, count).round().astype(np.int64))
    return x_train[order[torch.from_numpy(picks)]]


def snap_symbolic(model, x_snap, lib):
    """Replace every edge of ``model`` with the best function of ``lib`` (pykan's auto_symbolic)."""
    # auto_symbolic fits each edge to the activations cached by the last
    # forward pass, so that pass must be on (a subset of) the training inputs.
    model.save_act = True
    model.symbolic_enabled = True
    model(x_snap)
    try:
        model.auto_symbolic(lib=list(lib), verbose=0)
    except Exception as error:  # pykan raises ZeroDivisionError, among others, on some edges
        raise RunFailed("auto_symbolic", f"{type(error).__name__}: {error}") from error


def refit_symbolic(model, x_train, y_train, kan_settings, lbfgs_steps):
    """Polish the symbolic model's affine parameters with LBFGS; return the final training MSE."""
    from bench.methods import kan_training

    refit = dict(kan_settings, adam_steps=0, lbfgs_steps=lbfgs_steps)
    model.save_act = False
    try:
        return kan_training.train_once(model, x_train, y_train, refit, lr_scale=1.0)["train_mse"]
    except kan_training.Diverged as error:
        raise RunFailed("symbolic refit", str(error)) from error
    finally:
        model.save_act = True


def formula_of(model):
    """Return the symbolic model's output as a sympy expression of ``X``."""
    import torch

    try:
        # Without no_grad, pykan hands sympy tensors that require gradients.
        with torch.no_grad():
            outputs, _ = model.symbolic_formula(var=[X])
        expression = sympy.sympify(outputs[0])
    except Exception as error:
        raise RunFailed("symbolic_formula", f"{type(error).__name__}: {error}") from error
    if expression.free_symbols - {X}:
        raise RunFailed("symbolic_formula", f"formula has unexpected symbols: {expression.free_symbols}")
    return expression


def symbolic_copy(model, x_train, y_train, settings, snap):
    """Return a snapped and refitted deep copy of ``model``, its formula, its refit MSE and its edge fits.

    ``model`` itself is never changed. ``snap(copy, x_snap)`` replaces the
    copy's edges with symbolic functions and returns their summaries.
    ``settings`` are the symbolic method's, with the KAN numeric settings
    under ``kan``.
    """
    copied = copy.deepcopy(model)
    edges = snap(copied, snap_points(x_train, settings["snap_samples"]))
    refit_mse = refit_symbolic(copied, x_train, y_train, settings["kan"], settings["refit_lbfgs_steps"])
    return copied, formula_of(copied), refit_mse, edges


class KANSymbolic(Method):
    """A copy of the trained KAN with every edge snapped to a function of ``lib`` by pykan's auto_symbolic.

    The settings also carry the KAN numeric settings under ``kan``, because
    the stored model is rebuilt from them.
    """

    name = "kan_symbolic"
    settings_label = "settings chosen here"
    symbolic = True
    upstream = "kan_numeric"

    def library_versions(self):
        return KANNumeric.library_versions(self)

    def unavailable_reason(self):
        return KANNumeric.unavailable_reason(self)

    def snap(self, model, x_snap):
        """Snap every edge with pykan's auto_symbolic; return the edge summaries."""
        from bench.methods import kan_snap

        snap_symbolic(model, x_snap, self.settings["lib"])
        return kan_snap.stock_edge_summaries(model)

    def fit(self, task, upstream=None):
        from bench.methods import kan_training

        threads = self.settings["kan"]["torch_threads"]
        with kan_training.float64_deterministic(threads), isolated_global_rng(task.seed), _pykan_output_to_log():
            numeric = rebuild_model(self.settings["kan"], upstream.arrays, task.seed)
            x_train, y_train = _column(task.x_train), _column(task.y_train)
            model, expression, refit_mse, edges = symbolic_copy(numeric, x_train, y_train, self.settings, self.snap)
            model_predictions = _predict(model, task.x_all)

        # The metrics are the formula's; the model's own forward pass is kept
        # as a check that the formula is what the model computes.
        predictions = formulas.evaluate(expression, task.x_all)
        gap = float(np.max(np.abs(predictions - model_predictions)))
        details = {
            "refit_train_mse": refit_mse,
            "formula_vs_model_max_abs_diff": gap,
            "edges_at_range_edge": sum(edge["a_at_edge"] or edge["b_at_edge"] for edge in edges),
            "edges": edges,
        }
        return FitResult(predictions=predictions, expression=expression, details=details)


class KANSymbolicSpectral(KANSymbolic):
    """As KANSymbolic, but each edge's sine is searched around the dominant frequency of its activation.

    pykan's auto_symbolic searches the sine's inner scale only in (-10, 10)
    and ranks an edge's candidate functions with a weight of 0.8 on their
    complexity; here the weight is the ``simplicity_weight`` setting. See
    ``bench.methods.kan_snap``.
    """

    name = "kan_symbolic_spectral"

    def snap(self, model, x_snap):
        """Snap every edge with spectrum-centred sine ranges; return the edge summaries."""
        from bench.methods import kan_snap

        try:
            return kan_snap.snap_spectral(model, x_snap, self.settings["lib"], self.settings["sine_range_width"],
                                          self.settings["simplicity_weight"])
        except Exception as error:  # pykan's fitting raises several exception types on degenerate edges
            raise RunFailed("spectral snap", f"{type(error).__name__}: {error}") from error
