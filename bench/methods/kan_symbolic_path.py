"""A vectorised forward pass for pykan models whose every edge is snapped to a symbolic function.

pykan's ``Symbolic_KANLayer.forward`` loops in Python over every edge, and
``MultKAN.forward`` still evaluates the spline branch, although snapping
sets every spline edge's mask to zero. The symbolic refit runs these passes
hundreds of times. ``enable`` replaces both layer forwards of a fully
snapped model: the spline layers return zeros, and each symbolic layer
computes mask · (c · f(a·x + b) + d) for all its edges at once. Outputs equal
pykan's to rounding, and the formula that pykan's ``symbolic_formula`` writes
is unchanged, because it reads only the fitted functions and parameters.
"""

import logging
import types

logger = logging.getLogger(__name__)


def _functions():
    import torch

    return {"sin": torch.sin, "x": lambda z: z, "x^2": torch.square, "0": torch.zeros_like}


def _symbolic_forward(layer, x, singularity_avoiding=False, y_th=10.0):
    """Return what ``Symbolic_KANLayer.forward`` returns, from one set of tensor operations over all edges."""
    import torch
    from kan.Symbolic_KANLayer import Symbolic_KANLayer

    functions = _functions()
    # An edge changed after ``enable`` to a function outside the supported set goes back to pykan's loop.
    if singularity_avoiding or any(name not in functions for row in layer.funs_name for name in row):
        return Symbolic_KANLayer.forward(layer, x, singularity_avoiding, y_th)
    affine = layer.affine  # (out_dim, in_dim, 4): a, b, c, d of every edge
    inner = affine[None, :, :, 0] * x[:, None, :] + affine[None, :, :, 1]
    values = torch.zeros_like(inner)
    for name, function in functions.items():
        chosen = torch.tensor([[edge == name for edge in row] for row in layer.funs_name])
        if bool(chosen.any()):
            # where, not a 0/1 product, so another function's overflow (x² of a huge a·x + b) cannot give 0 · inf.
            values = torch.where(chosen, function(inner), values)
    postacts = layer.mask[None] * (affine[None, :, :, 2] * values + affine[None, :, :, 3])
    return postacts.sum(dim=2), postacts


def _zero_spline_forward(previous):
    """Return a spline-layer forward pass that skips the splines while every edge's mask is zero, else calls ``previous``."""

    def forward(layer, x):
        if bool(layer.mask.any()):  # an edge unfixed after ``enable``
            return previous(x)
        batch = x.shape[0]
        zeros = x.new_zeros(batch, layer.out_dim, layer.in_dim)
        return x.new_zeros(batch, layer.out_dim), x[:, None, :].expand(batch, layer.out_dim, layer.in_dim), zeros, zeros

    return forward


def unsupported_reason(model):
    """Return why ``enable`` cannot switch ``model``, or None when it can."""
    supported = set(_functions())
    for index, layer in enumerate(model.symbolic_fun):
        names = {name for row in layer.funs_name for name in row} - supported
        if names:
            return f"layer {index} has functions {sorted(names)}, outside {sorted(supported)}"
    for index, layer in enumerate(model.act_fun):
        if bool(layer.mask.any()):
            return f"layer {index} still has spline edges"
    return None


def enable(model):
    """Switch a fully snapped model to the vectorised forward pass; return whether it was switched.

    A model with a spline edge left, or with a function outside sin, x, x^2
    and 0, keeps pykan's own forward pass, and the reason is logged.
    """
    reason = unsupported_reason(model)
    if reason is not None:
        logger.info("symbolic refit keeps pykan's forward pass: %s", reason)
        return False
    for layer in model.symbolic_fun:
        layer.forward = types.MethodType(_symbolic_forward, layer)
    for layer in model.act_fun:
        layer.forward = types.MethodType(_zero_spline_forward(layer.forward), layer)
    return True
