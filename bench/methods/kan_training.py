"""Training of a pykan model: grid refinement stages of Adam warm-up and LBFGS polishing.

pykan's own ``fit`` draws batches from NumPy's global generator, prints a
progress bar and, after ``refine``, writes checkpoints to ./model. This
loop has none of those side effects. It keeps pykan's optimisation
semantics on the full training set: Adam, then pykan's LBFGS with a strong
Wolfe line search, and grid updates from samples early in the Adam phase.
"""

import contextlib
import copy
import logging
import math

import torch

logger = logging.getLogger(__name__)


class Diverged(Exception):
    """The loss or the predictions became non-finite during a training stage."""


@contextlib.contextmanager
def float64_deterministic(threads=1):
    """Use float64, deterministic algorithms and ``threads`` torch threads for a block, then restore torch's settings.

    A fixed thread count fixes how reductions are split, and so the results
    to the last bit, whatever the machine's core count. The count is a
    setting of the method, part of its cache key.
    """
    previous_dtype = torch.get_default_dtype()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_threads = torch.get_num_threads()
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_default_dtype(previous_dtype)
        torch.use_deterministic_algorithms(previous_deterministic)
        torch.set_num_threads(previous_threads)


def build_model(settings, grid, seed):
    """Build a pykan KAN with checkpointing off; its constructor seeds the global generators."""
    from kan import KAN

    # pykan rewrites the width list in place, so it gets a copy.
    model = KAN(
        width=list(settings["width"]),
        grid=grid,
        k=settings["k"],
        seed=seed,
        symbolic_enabled=True,
        auto_save=False,
    )
    return _spline_path(model, settings)


def _spline_path(model, settings):
    from bench.methods import kan_fast

    return kan_fast.enable(model) if settings["fast_splines"] else model


def refine(model, grid, x_train, settings):
    """Return ``model`` refined to ``grid`` intervals, with checkpointing kept off.

    ``settings["refine"]`` picks the method: ``"nested"`` inserts knots into
    the old grid, so the refined model computes the same function
    (``bench.methods.kan_refine``); ``"pykan"`` is pykan's own ``refine``,
    a least-squares fit on a new grid. pykan's
    ``refine`` builds the new model with ``auto_save=True`` and seeds the
    global generators with its default seed; the caller's isolation
    context contains that.
    """
    from bench.methods import kan_refine

    if settings["refine"] == "nested":
        refined = kan_refine.refine_nested(model, grid, x_train)
    else:
        model.get_act(x_train)
        refined = model.refine(grid)
    refined.auto_save = False
    return _spline_path(refined, settings)


def mse_loss(model, x, y):
    return torch.mean((model(x) - y) ** 2)


def _check_finite(loss, step, optimiser):
    value = float(loss.detach())
    if not math.isfinite(value):
        raise Diverged(f"{optimiser} loss became {value} at step {step}")


def _adam(model, x, y, settings, lr):
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    updates, until = settings["grid_updates"], settings["grid_update_steps"]
    every = max(1, until // updates) if updates and until else 0
    loss = None
    for step in range(settings["adam_steps"]):
        if every and step < until and step % every == 0:
            model.update_grid(x)
        optimiser.zero_grad()
        loss = mse_loss(model, x, y)
        _check_finite(loss, step, "Adam")
        loss.backward()
        optimiser.step()
    return None if loss is None else float(loss.detach())


def _lbfgs(model, x, y, settings, lr):
    from kan.LBFGS import LBFGS

    # The tolerances are pykan's own choice in MultKAN.fit: never stop early.
    optimiser = LBFGS(
        [p for p in model.parameters() if p.requires_grad],
        lr=lr,
        max_iter=settings["lbfgs_max_iter"],
        history_size=settings["lbfgs_history"],
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-32,
        tolerance_change=1e-32,
        tolerance_ys=1e-32,
    )

    def closure():
        optimiser.zero_grad()
        loss = mse_loss(model, x, y)
        loss.backward()
        return loss

    loss = None
    for step in range(settings["lbfgs_steps"]):
        loss = optimiser.step(closure)
        _check_finite(loss, step, "LBFGS")
    return None if loss is None else float(loss.detach())


def train_once(model, x, y, settings, lr_scale):
    """Run Adam then LBFGS with learning rates scaled by ``lr_scale``; return the losses."""
    adam_loss = _adam(model, x, y, settings, settings["adam_lr"] * lr_scale)
    lbfgs_loss = _lbfgs(model, x, y, settings, 1.0 * lr_scale)
    with torch.no_grad():
        final = mse_loss(model, x, y)
        predictions = model(x)
    if not bool(torch.isfinite(predictions).all()):
        raise Diverged("predictions on the training inputs are not finite")
    _check_finite(final, "end", "final")
    return {"adam_loss": adam_loss, "lbfgs_loss": lbfgs_loss, "train_mse": float(final)}


def _attempt(model, x, y, settings, grid, lr_scale, attempt):
    model.symbolic_enabled = False  # nothing is symbolic yet, so skip that branch while training
    model.save_act = False
    try:
        record = train_once(model, x, y, settings, lr_scale)
    finally:
        model.symbolic_enabled = True
        model.save_act = True
    record.update(grid=grid, attempts=attempt, lr_scale=lr_scale)
    logger.info("grid %d trained: train MSE %.3e", grid, record["train_mse"])
    return record


def stage_settings(settings, index):
    """Return the settings of grid stage ``index``: the stages after the first use the later-stage Adam settings.

    The first stage starts from pykan's random initialisation, so it takes
    large Adam steps and adapts the grids to the activations. Later stages
    start from the refined, already trained model: a large step or a grid
    update, which refits every spline on a new grid, undoes much of the
    previous stage's polish.
    """
    if index == 0:
        return settings
    return dict(settings, adam_lr=settings["later_adam_lr"], grid_updates=settings["later_grid_updates"])


def start_seed(seed, start):
    """Return the initialisation seed of first-stage start ``start``: the run's own seed for start 0."""
    from bench.seeds import derive_seed

    return seed if start == 0 else derive_seed(seed, "kan_start", start)


def first_stage(settings, x, y, seed):
    """Train the first grid stage from ``settings["starts"]`` initialisations and keep the lowest training MSE.

    The first stage bounds what the later stages reach: in the default
    profile's five repetitions, the lower its training MSE, the lower the
    final test MSE, in four cases of five. Each start is built with its own seed
    (``start_seed``) and trained as ``train_stage`` trains; a start that
    diverges is skipped. Returns the kept model, its stage record and one
    summary per start. Raises Diverged when every start diverges.
    """
    grid = settings["grids"][0]
    best, summaries, error = None, [], None
    for start in range(settings["starts"]):
        model = build_model(settings, grid, start_seed(seed, start))
        try:
            record = train_stage(model, x, y, settings, grid)
        except Diverged as caught:
            logger.warning("grid %d: start %d diverged and is skipped: %s", grid, start, caught)
            summaries.append({"start": start, "train_mse": None, "reason": str(caught)})
            error = caught
            continue
        summaries.append({"start": start, "train_mse": record["train_mse"], "reason": None})
        if best is None or record["train_mse"] < best[2]["train_mse"]:
            best = (start, model, record)
    if best is None:
        raise error
    start, model, record = best
    logger.info("grid %d: kept start %d of %d, train MSE %.3e", grid, start, len(summaries), record["train_mse"])
    return model, dict(record, start=start), summaries


def train_stage(model, x, y, settings, grid):
    """Train one grid stage; on divergence roll back and retry once with smaller learning rates.

    Returns the stage's record. Raises Diverged naming the stage if the
    retry diverges too; the model is then left at its state before the stage.
    """
    snapshot = copy.deepcopy(model.state_dict())
    try:
        return _attempt(model, x, y, settings, grid, 1.0, attempt=1)
    except Diverged as error:
        logger.warning("grid %d diverged, retrying with smaller learning rates: %s", grid, error)
        model.load_state_dict(snapshot)

    scale = settings["retry_lr_factor"]
    try:
        return _attempt(model, x, y, settings, grid, scale, attempt=2)
    except Diverged as error:
        model.load_state_dict(snapshot)
        raise Diverged(f"grid {grid} diverged again with learning rates scaled by {scale}: {error}") from error
