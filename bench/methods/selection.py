"""One rule to pick the reported formula from a symbolic engine's Pareto front of loss against complexity.

PySR's model_selection rules (pysr.sr.idx_model_selection in PySR 2.7.2),
written once so that every engine's front is judged the same way:

- "accuracy": the lowest loss.
- "best": among the candidates whose loss is at most 1.5 times the lowest,
  the highest score. A candidate's score is the drop in log loss per unit
  of complexity from the next simpler candidate on the front, PySR's
  "score" column. The simplest candidate scores 0.
"""

import math

RULES = ("best", "accuracy")
BEST_LOSS_FACTOR = 1.5


def scores(front):
    """Return each candidate's score: -Δ log(loss) / Δ complexity from the next simpler candidate.

    ``front`` is a list of dicts with "complexity" and "loss", sorted by
    increasing complexity. The simplest candidate, a candidate of the same
    complexity as its predecessor and a non-positive loss score 0.
    """
    result = []
    previous = None
    for candidate in front:
        score = 0.0
        if previous is not None and candidate["complexity"] > previous["complexity"] \
                and candidate["loss"] > 0 and previous["loss"] > 0:
            score = -math.log(candidate["loss"] / previous["loss"]) / (candidate["complexity"] - previous["complexity"])
        result.append(score)
        previous = candidate
    return result


def select(front, rule):
    """Return the index in ``front`` of the candidate that ``rule`` picks.

    Each candidate is a dict with "loss" and "score". Ties go to the first
    candidate, as with pandas' idxmin and idxmax, and a NaN loss or score
    never wins, as pandas skips NaN.
    """
    if rule not in RULES:
        raise ValueError(f"unknown model selection rule {rule!r}; expected one of {list(RULES)}")
    losses = [_or(candidate["loss"], math.inf) for candidate in front]
    lowest = min(losses)
    if rule == "accuracy":
        return losses.index(lowest)
    eligible = [index for index, loss in enumerate(losses) if loss <= BEST_LOSS_FACTOR * lowest]
    return max(eligible, key=lambda index: (_or(front[index]["score"], -math.inf), -index))


def _or(value, fallback):
    return fallback if value is None or math.isnan(value) else value
