"""Piecewise-polynomial evaluation of a numeric pykan network, for loops that evaluate one model many times.

On each knot interval, every B-spline basis function of degree k is a
polynomial of degree k in u, the distance from the interval's left knot.
``PolynomialNetwork`` derives these polynomials once from each layer's grid,
by the Cox-de Boor recursion that pykan's ``B_batch`` runs. At each call, it
folds the layer's coefficients, spline scales and mask into one table of
polynomial coefficients per interval, input and output. A sample then costs
a table lookup and a Horner evaluation, where ``kan_fast`` runs the
recursion for every sample. It computes what ``model(x)`` computes, to
rounding, and gradients flow to the model's parameters (tests: 1e-12).

The grids are read once: a grid update or a refinement needs a new object.
"""

import torch


def _times_linear(poly, constant, slope):
    """Return (constant + slope · u) · poly, for coefficients of u⁰ … uᵏ on the last axis and poly of degree below k."""
    product = constant[..., None] * poly
    product[..., 1:] += slope * poly[..., :-1]
    return product


def _inverse(width):
    """Return 1 / width, with 0 where the width is 0 (repeated knots), as pykan's nan_to_num yields."""
    return torch.reciprocal(width).nan_to_num_(posinf=0.0, neginf=0.0)


def interval_polynomials(grid, k):
    """Return the polynomials of the k + 1 basis functions that are non-zero on each knot interval, and the left knots.

    ``grid`` has shape (in_dim, n_knots). The result is a list of k + 1
    tensors of shape (in_dim, n_knots - 1, k + 1). For interval j, entry r
    contains the coefficients of u⁰ … uᵏ of basis function j - k + r, where
    u = x - t_j. Knot indices past either end are clamped. They only meet
    basis functions that do not exist, which the caller drops.
    """
    knots = grid.detach()
    n_knots = knots.shape[1]
    interval = torch.arange(n_knots - 1)
    # local[s] is knot t_{j - k + s} of interval j.
    local = [knots[:, (interval + s - k).clamp(0, n_knots - 1)] for s in range(2 * k + 2)]
    left_knot = local[k]
    one = knots.new_zeros(knots.shape[0], n_knots - 1, k + 1)
    one[..., 0] = 1.0
    values = [one]
    for p in range(1, k + 1):
        lower, upper = [torch.zeros_like(one)] + values, values + [torch.zeros_like(one)]
        next_values = []
        for m in range(p + 1):
            left_width = local[k + m] - local[k - p + m]
            right_width = local[k + m + 1] - local[k - p + m + 1]
            # pykan divides by zero at repeated knots, and its nan_to_num then
            # zeroes the whole sum, not only the term with the zero width.
            keep = ((left_width != 0) & (right_width != 0)).to(knots.dtype)
            rise = _times_linear(lower[m], left_knot - local[k - p + m], 1.0)  # x - t_{j-p+m}
            fall = _times_linear(upper[m], local[k + m + 1] - left_knot, -1.0)  # t_{j+m+1} - x
            next_values.append((keep * _inverse(left_width))[..., None] * rise
                               + (keep * _inverse(right_width))[..., None] * fall)
        values = next_values
    return values, left_knot


class _LayerTable:
    """The interval polynomials of one spline layer, with the basis indices they belong to."""

    def __init__(self, layer):
        self.k = layer.k
        self.grid = layer.grid.detach().contiguous()
        n_basis = layer.coef.shape[2]
        values, self.left_knot = interval_polynomials(self.grid, self.k)
        self.n_intervals = self.left_knot.shape[1]
        interval = torch.arange(self.n_intervals)
        self.basis_index, polys = [], []
        for r, value in enumerate(values):
            index = interval - self.k + r
            valid = ((index >= 0) & (index < n_basis)).to(value.dtype)
            self.basis_index.append(index.clamp(0, n_basis - 1))
            polys.append(value * valid[None, :, None])
        self.polys = torch.stack(polys)  # (k + 1, in_dim, n_intervals, k + 1): basis r, input, interval, power

    def table(self, coef):
        """Return the curves' polynomial coefficients, shape (k + 1, in_dim · (n_intervals + 1), out_dim).

        Row i · (n_intervals + 1) + j contains input i's interval j. The last
        row of each input is zero, for samples outside its grid.
        """
        gathered = torch.stack([coef[:, :, index] for index in self.basis_index])  # (k + 1, in, out, n_intervals)
        table = torch.einsum("rijd,rioj->dijo", self.polys, gathered)
        in_dim, out_dim = coef.shape[0], coef.shape[1]
        table = torch.cat([table, table.new_zeros(self.k + 1, in_dim, 1, out_dim)], dim=2)
        return table.reshape(self.k + 1, in_dim * (self.n_intervals + 1), out_dim)

    def lookup(self, x):
        """Return each sample's distance from its interval's left knot and its table row, both flattened input-major."""
        xt = x.transpose(0, 1)
        interval = torch.searchsorted(self.grid, xt.detach().contiguous(), right=True) - 1
        inside = (interval >= 0) & (interval < self.n_intervals)
        interval = interval.clamp(0, self.n_intervals - 1)
        distance = xt - torch.gather(self.left_knot, 1, interval)
        first_row = torch.arange(xt.shape[0])[:, None] * (self.n_intervals + 1)
        row = torch.where(inside, interval, self.n_intervals) + first_row
        return distance.reshape(-1), row.reshape(-1)


class _SummedCurves(torch.autograd.Function):
    """Sum over the inputs of the spline curves, from polynomial table rows, with gradients for u and the table."""

    @staticmethod
    def forward(ctx, distance, table, row, in_dim):
        degree = table.shape[0] - 1
        rows = [table[d].index_select(0, row) for d in range(degree + 1)]  # each (in_dim · batch, out_dim)
        u = distance[:, None]
        curve = rows[degree]
        slope = rows[degree] * degree if ctx.needs_input_grad[0] else None
        for d in range(degree - 1, -1, -1):
            curve = torch.addcmul(rows[d], curve, u)
            if slope is not None and d >= 1:
                slope = torch.addcmul(rows[d] * d, slope, u)
        ctx.save_for_backward(distance, row, slope)
        ctx.table_shape = table.shape
        ctx.in_dim = in_dim
        return curve.view(in_dim, -1, table.shape[2]).sum(dim=0)

    @staticmethod
    def backward(ctx, grad):
        # Grad mode is on in backward only when a caller asks for second derivatives (create_graph=True). This
        # backward is built from saved values, so they would silently come out as zero.
        if torch.is_grad_enabled():
            raise RuntimeError("kan_poly has no second derivatives: differentiate pykan's own forward pass instead")
        distance, row, slope = ctx.saved_tensors
        per_input = grad[None].expand(ctx.in_dim, -1, -1).reshape(-1, grad.shape[1])
        grad_distance = grad_table = None
        if ctx.needs_input_grad[0]:
            grad_distance = (per_input * slope).sum(dim=1)
        if ctx.needs_input_grad[1]:
            grad_table = grad.new_zeros(ctx.table_shape)
            term, u = per_input, distance[:, None]
            for d in range(ctx.table_shape[0]):
                grad_table[d].index_add_(0, row, term)
                if d + 1 < ctx.table_shape[0]:
                    term = term * u
        return grad_distance, grad_table, None, None


class PolynomialNetwork:
    """A numeric pykan KAN evaluated through interval polynomials; calling it returns what ``model(x)`` returns.

    Raises ValueError for models this evaluation does not cover: those with
    multiplication nodes or with any edge in symbolic mode.
    """

    def __init__(self, model):
        if any(width[1] for width in model.width):
            raise ValueError(f"multiplication nodes are not supported (width {model.width}); evaluate the model itself")
        if any(bool(symbolic.mask.any()) for symbolic in model.symbolic_fun):
            raise ValueError("some edges are in symbolic mode; evaluate the model itself, or unfix them first")
        self.model = model
        self.tables = [_LayerTable(layer) for layer in model.act_fun]

    def __call__(self, x):
        model = self.model
        # pykan's forward pass promotes other floating types to the parameters' type; the matrix product here would not.
        x = x[:, model.input_id.long()].to(model.act_fun[0].coef.dtype)
        for index, (layer, tables) in enumerate(zip(model.act_fun, self.tables)):
            base = layer.base_fun(x) @ (layer.mask * layer.scale_base)
            coef = layer.coef * (layer.mask * layer.scale_sp)[:, :, None]
            distance, row = tables.lookup(x)
            x = base + _SummedCurves.apply(distance, tables.table(coef), row, layer.in_dim)
            x = model.subnode_scale[index][None, :] * x + model.subnode_bias[index][None, :]
            x = model.node_scale[index][None, :] * x + model.node_bias[index][None, :]
        return x
