"""A local B-spline evaluation path for pykan's spline layers.

pykan's ``B_batch`` evaluates every basis function of the whole grid at
every sample, although a cubic B-spline has only k + 1 non-zero basis
functions at any point. This module finds each sample's knot interval,
runs the same Cox-de Boor recursion on those k + 1 functions only, and
gathers the matching coefficients. It computes what pykan computes from the
same parameters (grid, coefficients, scales, mask), forward and backward,
so the model stays a pykan model: ``refine``, ``update_grid``,
``auto_symbolic`` and ``symbolic_formula`` work on it as before.
"""

import types

import torch


def _inverse(width):
    """Return 1 / width, with 0 where the width is 0 (repeated knots), which is what pykan's nan_to_num yields."""
    return torch.reciprocal(width).nan_to_num_(posinf=0.0, neginf=0.0)


def local_basis(x, grid, k):
    """Return the k + 1 non-zero B-spline values at ``x``, their derivatives in x, and the first index.

    ``x`` has shape (batch, in_dim) and ``grid`` (in_dim, n_knots). Values
    and derivatives are lists of k + 1 tensors of shape (in_dim, batch), one
    per basis function from ``first`` on; ``first`` has shape (in_dim, batch)
    and may be negative or past the last basis function near the ends of the
    grid, where the matching values are zero. Samples outside the grid get
    all-zero values, as in pykan's ``B_batch``, whose half-open intervals
    grid[j] <= x < grid[j + 1] this follows. Each sample's arithmetic is the
    same Cox-de Boor recursion as pykan's, restricted to the functions that
    are not zero there.
    """
    xt = x.detach().transpose(0, 1).contiguous()
    knots = grid.detach().contiguous()
    n_knots = knots.shape[1]

    interval = torch.searchsorted(knots, xt, right=True) - 1
    inside = (interval >= 0) & (interval <= n_knots - 2)
    interval = interval.clamp(0, n_knots - 2)
    # local[s] is knot t_{j - k + s}. Clamped indices only meet basis
    # functions that are zero at the sample.
    local = [torch.gather(knots, 1, (interval + offset).clamp(0, n_knots - 1)) for offset in range(-k, k + 2)]

    # values[m] is B^p_{j - p + m}, whose knots t_{j - p + m + s} are
    # local[k - p + m + s], and derivatives[m] is its derivative in x, carried
    # through the recursion as autograd would differentiate pykan's.
    values = [inside.to(x.dtype)]
    derivatives = [torch.zeros_like(xt)]
    zero = torch.zeros_like(xt)
    for p in range(1, k + 1):
        lower, upper = [zero] + values, values + [zero]  # B^{p-1}_{j-p+m} and B^{p-1}_{j-p+m+1}
        d_lower, d_upper = [zero] + derivatives, derivatives + [zero]
        new_values, new_derivatives = [], []
        for m in range(p + 1):
            rise = xt - local[k - p + m]
            fall = local[k + m + 1] - xt
            left_width = local[k + m] - local[k - p + m]
            right_width = local[k + m + 1] - local[k - p + m + 1]
            # pykan divides by zero at repeated knots and its nan_to_num then
            # zeroes the whole sum, not only the term with the zero width.
            keep = ((left_width != 0) & (right_width != 0)).to(x.dtype)
            left, right = _inverse(left_width), _inverse(right_width)
            new_values.append(keep * (rise * left * lower[m] + fall * right * upper[m]))
            new_derivatives.append(keep * (left * (lower[m] + rise * d_lower[m]) + right * (fall * d_upper[m] - upper[m])))
        values, derivatives = new_values, new_derivatives
    return values, derivatives, interval - k


class _LocalCurve(torch.autograd.Function):
    """Spline curves from the local basis, with gradients for the inputs and the coefficients."""

    @staticmethod
    def forward(ctx, x, grid, coef, k):
        values, derivatives, first = local_basis(x, grid, k)
        n_basis = coef.shape[2]
        table = coef.detach().permute(0, 2, 1).contiguous()  # (in_dim, n_basis, out_dim)
        out_dim = table.shape[2]

        indices, gathered = [], []
        curve = None
        for r in range(k + 1):
            index = first + r
            valid = ((index >= 0) & (index < n_basis)).to(x.dtype)
            values[r] = values[r] * valid
            derivatives[r] = derivatives[r] * valid
            index = index.clamp(0, n_basis - 1)[..., None].expand(-1, -1, out_dim)
            rows = torch.gather(table, 1, index)  # (in_dim, batch, out_dim)
            term = values[r][..., None] * rows
            curve = term if curve is None else curve + term
            indices.append(index)
            gathered.append(rows)
        ctx.save_for_backward(*values, *derivatives, *indices, *gathered)
        ctx.k = k
        ctx.n_basis = n_basis
        return curve.permute(1, 0, 2)

    @staticmethod
    def backward(ctx, grad_output):
        k = ctx.k
        saved = ctx.saved_tensors
        values, derivatives = saved[: k + 1], saved[k + 1 : 2 * k + 2]
        indices, gathered = saved[2 * k + 2 : 3 * k + 3], saved[3 * k + 3 :]
        grad = grad_output.permute(1, 0, 2)  # (in_dim, batch, out_dim)
        grad_x = grad_coef = None
        if ctx.needs_input_grad[0]:
            slope = sum(derivatives[r][..., None] * gathered[r] for r in range(k + 1))
            grad_x = (slope * grad).sum(dim=2).transpose(0, 1)
        if ctx.needs_input_grad[2]:
            in_dim, _, out_dim = grad.shape
            table = grad.new_zeros(in_dim, ctx.n_basis, out_dim)
            for r in range(k + 1):
                table.scatter_add_(1, indices[r], values[r][..., None] * grad)
            grad_coef = table.permute(0, 2, 1)
        return grad_x, None, grad_coef, None


def local_curve(x, grid, coef, k):
    """Return the spline curves at ``x``, shape (batch, in_dim, out_dim), as pykan's ``coef2curve``."""
    return _LocalCurve.apply(x, grid, coef, k)


def fast_forward(layer, x):
    """Compute a KANLayer's forward pass with the local basis; returns what ``KANLayer.forward`` returns."""
    batch = x.shape[0]
    preacts = x[:, None, :].expand(batch, layer.out_dim, layer.in_dim)
    base = layer.base_fun(x)
    spline = local_curve(x, layer.grid, layer.coef, layer.k)
    postspline = spline.permute(0, 2, 1)
    y = layer.scale_base[None, :, :] * base[:, :, None] + layer.scale_sp[None, :, :] * spline
    y = layer.mask[None, :, :] * y
    postacts = y.permute(0, 2, 1)
    return torch.sum(y, dim=1), preacts, postacts, postspline


def enable(model):
    """Switch every spline layer of a pykan model to the local evaluation path; return the model."""
    for layer in model.act_fun:
        layer.forward = types.MethodType(fast_forward, layer)
    return model


def disable(model):
    """Restore pykan's own evaluation path on every spline layer; return the model."""
    for layer in model.act_fun:
        layer.__dict__.pop("forward", None)
    return model
