"""The vectorised forward pass of fully snapped models against pykan's own: outputs and gradients to 1e-12."""

import copy

import torch

from bench.methods import kan_symbolic_path, kan_training

SETTINGS = {"width": [1, 4, 3, 1], "k": 3, "fast_splines": True, "refine": "nested"}
NAMES = ("sin", "x", "x^2")


def snapped_model(names=NAMES, skip=None):
    """Return a small KAN with every edge (but ``skip``) fixed to a function of ``names`` with random parameters."""
    model = kan_training.build_model(SETTINGS, 5, seed=0)
    generator = torch.Generator().manual_seed(4)
    count = 0
    for layer in range(len(model.width_in) - 1):
        for i in range(model.width_in[layer]):
            for j in range(model.width_out[layer + 1]):
                if (layer, i, j) == skip:
                    continue
                model.fix_symbolic(layer, i, j, names[count % len(names)], fit_params_bool=False, log_history=False)
                count += 1
        with torch.no_grad():
            model.symbolic_fun[layer].affine.copy_(torch.randn(model.symbolic_fun[layer].affine.shape,
                                                               generator=generator, dtype=torch.float64))
    with torch.no_grad():
        model.symbolic_fun[1].mask[0, 2] = 0.0  # a pruned edge
    return model


def outputs_and_gradients(model, x):
    model.zero_grad()
    x = x.clone().requires_grad_(True)
    outputs = model(x)
    torch.mean((outputs - torch.sin(5 * x.detach())) ** 2).backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return outputs.detach(), x.grad.clone(), gradients


def stock_and_vectorised(model):
    """Return ``model`` on pykan's forward pass and a deep copy switched to the vectorised one."""
    fast = copy.deepcopy(model)
    assert kan_symbolic_path.enable(fast)
    return model, fast


def grid_inputs(count=50):
    return torch.linspace(-1, 1, count, dtype=torch.float64).reshape(-1, 1)


def test_matches_pykan_on_snapped_model():
    with kan_training.float64_deterministic():
        stock, fast = stock_and_vectorised(snapped_model())
        x = torch.linspace(-1.2, 1.2, 300, dtype=torch.float64).reshape(-1, 1)
        out_stock, dx_stock, grads_stock = outputs_and_gradients(stock, x)
        out_fast, dx_fast, grads_fast = outputs_and_gradients(fast, x)
    assert torch.allclose(out_fast, out_stock, rtol=0, atol=1e-12)
    assert torch.allclose(dx_fast, dx_stock, rtol=0, atol=1e-12)
    assert "symbolic_fun.0.affine" in grads_fast
    for name, gradient in grads_stock.items():
        expected = gradient if name.startswith("symbolic_fun") else torch.zeros_like(gradient)
        assert torch.allclose(grads_fast.get(name, torch.zeros_like(gradient)), expected, rtol=0, atol=1e-12), name


def test_singularity_avoiding_pass_uses_pykan():
    with kan_training.float64_deterministic():
        stock, fast = stock_and_vectorised(snapped_model())
        x = grid_inputs()
        with torch.no_grad():
            expected = stock(x, singularity_avoiding=True)
            computed = fast(x, singularity_avoiding=True)
    assert torch.allclose(computed, expected, rtol=0, atol=1e-12)


def test_keeps_pykan_pass_for_other_functions():
    model = snapped_model(names=("sin", "exp"))
    assert "exp" in kan_symbolic_path.unsupported_reason(model)
    assert not kan_symbolic_path.enable(model)
    assert all("forward" not in layer.__dict__ for layer in model.symbolic_fun)


def test_keeps_pykan_pass_with_spline_edges_left():
    model = snapped_model(skip=(0, 0, 1))
    assert kan_symbolic_path.unsupported_reason(model) == "layer 0 still has spline edges"
    assert not kan_symbolic_path.enable(model)


def test_follows_edges_changed_after_enable():
    with kan_training.float64_deterministic():
        stock, fast = stock_and_vectorised(snapped_model())
        x = grid_inputs()
        for change in (lambda m: m.fix_symbolic(0, 0, 1, "exp", fit_params_bool=False, log_history=False),
                       lambda m: m.unfix_symbolic(0, 0, 2, log_history=False)):
            change(stock)
            change(fast)
            with torch.no_grad():
                assert torch.allclose(fast(x), stock(x), rtol=0, atol=1e-12)


def test_overflow_of_unchosen_function_stays_out():
    with kan_training.float64_deterministic():
        stock = snapped_model()
        with torch.no_grad():
            # A linear edge with a huge scale: its x² would overflow, and 0 · inf would be NaN.
            stock.symbolic_fun[0].affine[1, 0] = torch.tensor([1e200, 0.0, 1e-200, 0.0], dtype=torch.float64)
        stock.symbolic_fun[0].funs_name[1][0] = "x"
        stock, fast = stock_and_vectorised(stock)
        x = torch.full((3, 1), 2.0, dtype=torch.float64)
        with torch.no_grad():
            expected, computed = stock(x), fast(x)
    assert torch.isfinite(computed).all()
    assert torch.allclose(computed, expected, rtol=1e-12, atol=1e-12)
