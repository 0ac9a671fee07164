"""Step tools: split a rationale into steps, check its arithmetic claims, and score step
labels against ProcessBench and probabilities against outcomes.

>>> from stepwise.steps import split_steps, check_arithmetic
>>> [c["status"] for c in check_arithmetic(split_steps("2 + 3 = 5\\n\\n5 * 4 = 21")[1])]
['wrong']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _stepwise

__all__ = ["auroc", "brier", "check_arithmetic", "ece", "processbench_f1", "split_steps", "step_score"]


def split_steps(text: str, delimiter: str = "blank-line") -> list[str]:
    """The steps of a rationale, split as ``stepwise`` does everywhere.

    >>> split_steps("Step 1: 2 + 3 = 5\\n\\nStep 2: 5 * 4 = 21")
    ['Step 1: 2 + 3 = 5', 'Step 2: 5 * 4 = 21']
    >>> split_steps("a\\nb", delimiter="line")
    ['a', 'b']

    ``delimiter``: ``blank-line`` (default), ``line``, or another of ``stepwise serve``'s
    ``/v1/step_rewards`` delimiters.
    """
    return _stepwise.split_steps(text, delimiter)


def check_arithmetic(text: str) -> list[dict[str, Any]]:
    """Every arithmetic claim ``lhs = rhs`` in ``text`` with its exact check.

    >>> [(c["claim"], c["status"], c["value"]) for c in check_arithmetic("5 * 4 = 21")]
    [('5 * 4 = 21', 'wrong', '20')]

    ``status`` is ``right``, ``wrong`` or ``unchecked``; ``value`` is the exact value of
    the left side when the claim is wrong.
    """
    return _stepwise.check_arithmetic(text)


def step_score(text: str) -> tuple[float, str]:
    """The arithmetic checker's score of one step (1 when every claim holds) and why.

    >>> step_score("5 * 4 = 21")
    (0.0, "'5 * 4 = 21' is wrong: 5*4 = 20")
    """
    return _stepwise.step_score(text)


def processbench_f1(labels: Sequence[int], predictions: Sequence[int | None]) -> dict[str, Any]:
    """ProcessBench's F1: the harmonic mean of accuracy on erroneous and on correct solutions.

    >>> processbench_f1([-1, 2, 1, -1], [-1, 2, 0, None])["f1"]
    0.5

    A label is the index of the first wrong step, ``-1`` for a correct solution; a
    prediction of ``None`` counts as wrong.
    """
    return _stepwise.processbench_f1(labels, predictions)


def ece(probs: Sequence[float], outcomes: Sequence[bool]) -> float:
    """Expected calibration error over equal-width bins.

    >>> round(ece([0.9, 0.9], [True, False]), 6)
    0.4
    """
    return _stepwise.ece(probs, outcomes)


def auroc(probs: Sequence[float], outcomes: Sequence[bool]) -> float | None:
    """Area under the ROC curve; ``None`` when the outcomes are all alike.

    >>> auroc([0.9, 0.8, 0.2], [True, False, False]), auroc([0.5], [True])
    (1.0, None)
    """
    return _stepwise.auroc(probs, outcomes)


def brier(probs: Sequence[float], outcomes: Sequence[bool]) -> float:
    """Mean squared error of the probabilities against the outcomes.

    >>> brier([1.0, 0.0], [True, True])
    0.5
    """
    return _stepwise.brier(probs, outcomes)
