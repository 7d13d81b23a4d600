"""The interval-polynomial network against pykan's own forward pass: outputs and gradients equal to 1e-12."""

import numpy as np
import pytest
import torch

from bench.methods import kan_poly, kan_training

SETTINGS = {"width": [1, 4, 3, 1], "k": 3, "fast_splines": False, "refine": "pykan"}


def stock_model(grid, settings=SETTINGS, seed=0):
    model = kan_training.build_model(settings, grid, seed)
    model.symbolic_enabled = False
    return model


def inputs(count=600, columns=1):
    # Points outside [-0.5, 0.5] reach the grid's extension intervals and the
    # samples beyond the grid, where every basis function is zero.
    line = torch.linspace(-1.3, 1.3, count, dtype=torch.float64)
    return torch.stack([line * (1 - 0.3 * c) for c in range(columns)], dim=1)


def outputs_and_gradients(model, evaluate, x):
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    target = torch.sin(7 * x.detach().sum(dim=1, keepdim=True))
    outputs = evaluate(x)
    torch.mean((outputs - target) ** 2).backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return outputs.detach(), x.grad.clone(), gradients


def assert_matches_pykan(model, x):
    out_stock, dx_stock, grads_stock = outputs_and_gradients(model, model, x)
    out_poly, dx_poly, grads_poly = outputs_and_gradients(model, kan_poly.PolynomialNetwork(model), x)
    assert torch.allclose(out_poly, out_stock, rtol=0, atol=1e-12)
    assert torch.allclose(dx_poly, dx_stock, rtol=0, atol=1e-12)
    assert grads_poly.keys() == grads_stock.keys()
    assert {"act_fun.0.coef", "act_fun.0.scale_sp", "act_fun.0.scale_base"} <= grads_poly.keys()
    for name in grads_stock:
        assert torch.allclose(grads_poly[name], grads_stock[name], rtol=0, atol=1e-12), name


@pytest.mark.parametrize("grid", [3, 40, 150])
def test_matches_pykan_on_uniform_grid(grid):
    with kan_training.float64_deterministic():
        assert_matches_pykan(stock_model(grid), inputs())


def test_matches_pykan_with_node_affine_terms():
    with kan_training.float64_deterministic():
        model = stock_model(8, dict(SETTINGS, width=[2, 3, 1]))
        generator = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for parameters in (model.subnode_scale, model.subnode_bias, model.node_scale, model.node_bias):
                for parameter in parameters:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
            model.act_fun[0].mask[1, 2] = 0.0  # a pruned edge
        assert_matches_pykan(model, inputs(columns=2))


@pytest.mark.parametrize("grid", [5, 40])
def test_matches_pykan_after_update_grid(grid):
    with kan_training.float64_deterministic():
        model = stock_model(grid)
        model.update_grid(torch.from_numpy(np.random.default_rng(1).beta(2, 5, size=(500, 1)) - 0.3))
        assert_matches_pykan(model, inputs())


@pytest.mark.parametrize("method", ["nested", "pykan"])
def test_matches_pykan_after_refine(method):
    with kan_training.float64_deterministic():
        model = kan_training.refine(stock_model(10), 20, inputs(400), dict(SETTINGS, refine=method))
        model.symbolic_enabled = False
        assert_matches_pykan(model, inputs())


def test_matches_pykan_values_at_repeated_knots():
    with kan_training.float64_deterministic():
        model = stock_model(6)
        grid = model.act_fun[0].grid.data
        grid[0, 5] = grid[0, 4]  # a zero-width interval
        with torch.no_grad():
            expected = model(inputs())
            computed = kan_poly.PolynomialNetwork(model)(inputs())
    assert torch.allclose(computed, expected, rtol=0, atol=1e-12)


def test_basis_polynomials_sum_to_one_inside_the_grid():
    with kan_training.float64_deterministic():
        grid = stock_model(7).act_fun[0].grid
        values, left_knot = kan_poly.interval_polynomials(grid, 3)
        k = 3
        # On the intervals of the original grid, all k + 1 basis functions exist and sum to one.
        inner = slice(k, left_knot.shape[1] - k)
        total = sum(value[:, inner, :] for value in values)
    assert torch.allclose(total[..., 0], torch.ones_like(total[..., 0]), rtol=0, atol=1e-12)
    assert torch.allclose(total[..., 1:], torch.zeros_like(total[..., 1:]), rtol=0, atol=1e-9)


def test_rejects_symbolic_edges():
    with kan_training.float64_deterministic():
        model = stock_model(5)
        model.fix_symbolic(0, 0, 1, "sin", fit_params_bool=False, log_history=False)
    with pytest.raises(ValueError, match="symbolic mode"):
        kan_poly.PolynomialNetwork(model)


def test_rejects_multiplication_nodes():
    with kan_training.float64_deterministic():
        model = stock_model(5, dict(SETTINGS, width=[1, [2, 1], 1]))
    with pytest.raises(ValueError, match="multiplication nodes"):
        kan_poly.PolynomialNetwork(model)


def test_second_derivative_raises():
    with kan_training.float64_deterministic():
        network = kan_poly.PolynomialNetwork(stock_model(5))
        x = inputs(20).requires_grad_(True)
        # create_graph=True asks for a differentiable first derivative, which this backward cannot give.
        with pytest.raises(RuntimeError, match="no second derivatives"):
            torch.autograd.grad(network(x).sum(), x, create_graph=True)
        (slope,) = torch.autograd.grad(network(x).sum(), x)
    assert torch.isfinite(slope).all()


def test_single_precision_inputs_are_promoted():
    with kan_training.float64_deterministic():
        model = stock_model(5)
        network = kan_poly.PolynomialNetwork(model)
        x = inputs(50).to(torch.float32)
        with torch.no_grad():
            computed = network(x)
            expected = network(x.to(torch.float64))
    assert computed.dtype == torch.float64
    assert torch.equal(computed, expected)
