"""The local spline path against pykan's own: outputs and gradients equal to 1e-12."""

import numpy as np
import pytest
import torch

from bench.methods import kan_fast, kan_training

SETTINGS = {"width": [1, 4, 3, 1], "k": 3, "fast_splines": False, "refine": "pykan"}


def pair(grid, seed=0):
    """Return a stock pykan model and a fast-path copy with identical parameters."""
    stock = kan_training.build_model(SETTINGS, grid, seed)
    fast = kan_training.build_model(SETTINGS, grid, seed)
    fast.load_state_dict(stock.state_dict())
    kan_fast.enable(fast)
    for model in (stock, fast):
        model.symbolic_enabled = False
    return stock, fast


def inputs(count=600):
    # Points outside [-0.5, 0.5] exercise the grid's extension intervals
    # and the samples beyond the grid, where every basis function is zero.
    return torch.linspace(-1.3, 1.3, count, dtype=torch.float64).reshape(-1, 1)


def outputs_and_gradients(model, x):
    x = x.clone().requires_grad_(True)
    target = torch.sin(7 * x.detach())
    loss = torch.mean((model(x) - target) ** 2)
    loss.backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return model(x.detach()).detach(), x.grad.clone(), gradients


def assert_equivalent(stock, fast, x):
    out_stock, dx_stock, grads_stock = outputs_and_gradients(stock, x)
    out_fast, dx_fast, grads_fast = outputs_and_gradients(fast, x)
    assert torch.allclose(out_fast, out_stock, rtol=0, atol=1e-12)
    assert torch.allclose(dx_fast, dx_stock, rtol=0, atol=1e-12)
    assert grads_fast.keys() == grads_stock.keys()
    for name in grads_stock:
        assert torch.allclose(grads_fast[name], grads_stock[name], rtol=0, atol=1e-12), name


@pytest.mark.parametrize("grid", [3, 40, 150])
def test_matches_pykan_on_uniform_grid(grid):
    with kan_training.float64_deterministic():
        stock, fast = pair(grid)
        assert_equivalent(stock, fast, inputs())


@pytest.mark.parametrize("grid", [5, 40])
def test_matches_pykan_after_update_grid(grid):
    with kan_training.float64_deterministic():
        stock, fast = pair(grid)
        samples = torch.from_numpy(np.random.default_rng(1).beta(2, 5, size=(500, 1)) - 0.3)
        stock.update_grid(samples)
        fast.update_grid(samples)
        # update_grid reads activations, so each path adapts its own grid.
        for name, value in stock.state_dict().items():
            assert torch.allclose(fast.state_dict()[name], value, rtol=0, atol=1e-10), name
        fast.load_state_dict(stock.state_dict())
        assert_equivalent(stock, fast, inputs())


def test_matches_pykan_after_refine():
    with kan_training.float64_deterministic():
        stock, fast = pair(10)
        x = inputs(400)
        stock = kan_training.refine(stock, 20, x, SETTINGS)
        fast = kan_training.refine(fast, 20, x, dict(SETTINGS, fast_splines=True))
        assert all("forward" in layer.__dict__ for layer in fast.act_fun)
        assert_equivalent(stock, fast, inputs())


def test_repeated_knots_values_match():
    with kan_training.float64_deterministic():
        stock, fast = pair(6)
        for model in (stock, fast):
            grid = model.act_fun[0].grid.data
            grid[0, 5] = grid[0, 4]  # a zero-width interval
        out_stock, dx_stock, grads_stock = outputs_and_gradients(stock, inputs())
        out_fast, dx_fast, grads_fast = outputs_and_gradients(fast, inputs())
        step = 1e-6
        with torch.no_grad():
            target = torch.sin(7 * inputs())
            loss = lambda shift: (stock(inputs() + shift) - target) ** 2 / inputs().shape[0]
            central = (loss(step) - loss(-step)) / (2 * step)
    assert torch.allclose(out_fast, out_stock, rtol=0, atol=1e-12)
    assert torch.allclose(dx_fast, central, rtol=1e-4, atol=1e-8)
    # pykan's autograd goes through inf * 0 there, so its gradients are NaN;
    # the fast path returns the gradient of the values pykan computes.
    assert torch.isnan(dx_stock).all()
    assert torch.isfinite(dx_fast).all()
    assert all(torch.isfinite(grad).all() for grad in grads_fast.values())


def test_disable_restores_stock_forward():
    with kan_training.float64_deterministic():
        _, fast = pair(5)
        kan_fast.disable(fast)
        assert all("forward" not in layer.__dict__ for layer in fast.act_fun)
