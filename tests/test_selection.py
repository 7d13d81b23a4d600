"""The rule that picks a formula from a Pareto front, shared by PySR and Operon."""

import math

import pytest

from bench.methods import selection


def front(*pairs):
    candidates = [{"complexity": complexity, "loss": loss} for complexity, loss in pairs]
    for candidate, score in zip(candidates, selection.scores(candidates)):
        candidate["score"] = score
    return candidates


def test_scores_are_log_loss_drop_per_complexity():
    scores = selection.scores([{"complexity": 1, "loss": 1.0}, {"complexity": 3, "loss": math.exp(-4)}])
    assert scores == [0.0, pytest.approx(2.0)]


def test_equal_complexity_scores_zero():
    assert selection.scores([{"complexity": 2, "loss": 1.0}, {"complexity": 2, "loss": 0.5}]) == [0.0, 0.0]


def test_accuracy_picks_lowest_loss():
    candidates = front((1, 1.0), (5, 0.01), (9, 0.009))
    assert selection.select(candidates, "accuracy") == 2


def test_best_picks_the_knee_within_the_loss_factor():
    # The knee at complexity 5 is within 1.5 times the lowest loss and has the highest score.
    candidates = front((1, 1.0), (5, 0.01), (9, 0.009))
    assert selection.select(candidates, "best") == 1


def test_best_ignores_scores_outside_the_loss_factor():
    # Complexity 3 has the steepest drop, but its loss is above 1.5 times the lowest.
    candidates = front((1, 1.0), (3, 0.001), (20, 0.0005))
    assert candidates[1]["score"] > candidates[2]["score"]
    assert selection.select(candidates, "best") == 2


def test_nan_loss_and_score_never_win():
    candidates = [{"loss": math.nan, "score": 10.0}, {"loss": 0.5, "score": math.nan}, {"loss": 0.5, "score": 0.1}]
    assert selection.select(candidates, "accuracy") == 1
    assert selection.select(candidates, "best") == 2


def test_ties_go_to_the_first_candidate():
    candidates = [{"loss": 0.5, "score": 1.0}, {"loss": 0.5, "score": 1.0}]
    assert selection.select(candidates, "best") == 0
    assert selection.select(candidates, "accuracy") == 0


def test_unknown_rule_is_rejected():
    with pytest.raises(ValueError, match="unknown model selection rule 'simplest'"):
        selection.select(front((1, 1.0)), "simplest")
