"""KAN numeric smoothed: the trained KAN numeric model, polished with a penalty on its output's curvature.

The trained KAN numeric model fits its training inputs far better than the
inputs held out between them: some of its edges compose into an output that
bends sharply between neighbouring training inputs (README, Accuracy). This
method takes that model and minimises, with pykan's LBFGS::

    mean((model(x_i) - y_i)²) + weight · mean((L² · D2(z_j))²)

over the training pairs (x_i, y_i) and the points z_j of an even grid across
the training inputs' span L, ``points_per_sample`` per training input. D2 is
the central second difference of the model's output on that grid, divided
by the grid's spacing squared: close to the second derivative, because the
grid is finer than the signal's oscillations. L² makes ``weight`` a pure
number: the penalty then has the units of the squared error. The
weight is far too small to flatten the signal's own bends. On the seed
signal, the mean squared curvature of two trained models was 95 and 1,500
times the signal's own, so the penalty mostly removes the spurious bends.

The model is rebuilt in pykan from the stored KAN numeric run of the same
repetition, so this method's runs cost only the polish. The polish evaluates
the model through ``kan_poly``, which computes what pykan computes, about
three times faster on these inputs; the training MSE and curvature it
records before and after come from pykan's own forward pass.
"""

import copy
import logging
import math

from bench.methods import kan
from bench.methods.base import CHOSEN_HERE, FitResult, Method, RunFailed
from bench.seeds import isolated_global_rng

logger = logging.getLogger(__name__)


def curvature_points(x_train, per_sample):
    """Return the penalty's grid across the span of ``x_train`` (per_sample points per training input), its spacing and the span."""
    import torch

    low, high = float(x_train.min()), float(x_train.max())
    span = high - low
    count = max(3, math.ceil(per_sample * x_train.shape[0]))
    points = torch.linspace(low, high, count, dtype=torch.float64).reshape(-1, 1)
    return points, span / (count - 1), span


class CurvaturePenalty:
    """The penalty weight · mean((L² · D2)²) on the model's output on the grid that ``curvature_points`` returns."""

    def __init__(self, points, spacing, span, weight):
        self.points = points
        self.scale = span ** 2 / spacing ** 2
        self.weight = weight

    def mean_square(self, model):
        """Return mean((L² · D2)²) of ``model``'s output, a tensor that carries gradients when enabled."""
        return self._of_outputs(model(self.points))

    def _of_outputs(self, outputs):
        import torch

        second = (outputs[:-2] - 2 * outputs[1:-1] + outputs[2:]) * self.scale
        return torch.mean(second ** 2)

    def loss(self, evaluate, x, y):
        """Return the training MSE plus the weighted penalty, from one call of ``evaluate`` on x and the grid."""
        import torch

        outputs = evaluate(torch.cat([x, self.points]))
        fitted, curve = outputs[: x.shape[0]], outputs[x.shape[0]:]
        return torch.mean((fitted - y) ** 2) + self.weight * self._of_outputs(curve)


def _lbfgs(model, objective, settings):
    """Minimise ``objective(model)`` with pykan's LBFGS and a strong Wolfe line search, as kan_training does."""
    from kan.LBFGS import LBFGS

    from bench.methods import kan_training

    optimiser = LBFGS(
        [p for p in model.parameters() if p.requires_grad],
        lr=1.0,
        max_iter=settings["lbfgs_max_iter"],
        history_size=settings["lbfgs_history"],
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-32,
        tolerance_change=1e-32,
        tolerance_ys=1e-32,
    )

    def closure():
        optimiser.zero_grad()
        loss = objective(model)
        loss.backward()
        return loss

    for step in range(settings["lbfgs_steps"]):
        loss = optimiser.step(closure)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise kan_training.Diverged(f"smoothing loss became {value} at LBFGS step {step}")


def _measure(model, x, y, penalty):
    import torch

    with torch.no_grad():
        return {"train_mse": float(torch.mean((model(x) - y) ** 2)), "curvature": float(penalty.mean_square(model))}


def smooth(model, x, y, settings):
    """Polish ``model`` in place with the curvature penalty; return its training MSE and curvature before and after.

    On divergence the model is restored to its state before the polish and
    kan_training.Diverged is raised.
    """
    from bench.methods import kan_poly, kan_training

    points, spacing, span = curvature_points(x, settings["points_per_sample"])
    penalty = CurvaturePenalty(points, spacing, span, settings["curvature_weight"])
    before = _measure(model, x, y, penalty)
    snapshot = copy.deepcopy(model.state_dict())
    model.symbolic_enabled = False  # nothing is symbolic, so skip that branch, as kan_training does
    model.save_act = False
    try:
        network = kan_poly.PolynomialNetwork(model)
        _lbfgs(model, lambda m: penalty.loss(network, x, y), settings)
        after = _measure(model, x, y, penalty)
        if not all(math.isfinite(value) for value in after.values()):
            raise kan_training.Diverged(f"smoothing ended with non-finite values: {after}")
    except kan_training.Diverged:
        model.load_state_dict(snapshot)
        raise
    finally:
        model.symbolic_enabled = True
        model.save_act = True
    logger.info("smoothed: train MSE %.3e -> %.3e, curvature %.3e -> %.3e", before["train_mse"], after["train_mse"],
                before["curvature"], after["curvature"])
    return {"before": before, "after": after, "points": points.shape[0], "spacing": spacing}


class KANNumericSmoothed(Method):
    """The stored KAN numeric model of the same repetition, polished by ``smooth``.

    The settings carry the KAN numeric settings under ``kan``, because the
    stored model is rebuilt from them.
    """

    name = "kan_numeric_smoothed"
    settings_label = CHOSEN_HERE
    upstream = "kan_numeric"

    def library_versions(self):
        return kan.KANNumeric.library_versions(self)

    def unavailable_reason(self):
        return kan.KANNumeric.unavailable_reason(self)

    def fit(self, task, upstream=None):
        from bench.methods import kan_training

        kan_settings = self.settings["kan"]
        with kan_training.float64_deterministic(kan_settings["torch_threads"]), isolated_global_rng(task.seed), \
                kan._pykan_output_to_log():
            model = kan.rebuild_model(kan_settings, upstream.arrays, task.seed)
            x_train, y_train = kan._column(task.x_train), kan._column(task.y_train)
            try:
                details = smooth(model, x_train, y_train, self.settings)
            except kan_training.Diverged as error:
                raise RunFailed("smoothing", str(error)) from error
            predictions = kan._predict(model, task.x_all)
            arrays = kan._state_to_arrays(model)
        return FitResult(predictions=predictions, details=details, arrays=arrays)
