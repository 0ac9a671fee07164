"""stepwise: bounded, thread-safe math answer verification and in-process rewards.

>>> import stepwise
>>> stepwise.verify("\\frac12", "0.5")
True

Every call is bounded by the verifier's caps (no signals, no timeouts, no threads of
its own), so it is safe from any thread, asyncio task or process pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from . import _stepwise
from ._stepwise import Rewards
from .client import AsyncClient, Client, RemoteRewards
from .steps import auroc, brier, check_arithmetic, ece, processbench_f1, split_steps, step_score

__all__ = [
    "AsyncClient",
    "Client",
    "RemoteRewards",
    "Rewards",
    "auroc",
    "brier",
    "check_arithmetic",
    "ece",
    "explain",
    "extract_answer",
    "processbench_f1",
    "split_steps",
    "step_score",
    "verdict",
    "verify",
    "verify_batch",
]

Gold = Union[str, int, float, Sequence[Union[str, int, float]]]


def verdict(gold: Gold, pred: str, **options: Any) -> str:
    """The three-way verdict: ``"equal"``, ``"not_equal"`` or ``"undecided"``.

    >>> import stepwise
    >>> stepwise.verdict("x^2+2x+1", "(x+1)^2")
    'equal'

    ``gold`` may be a list of acceptable answers (equal when any is). Options:
    ``float_rounding`` (6), ``numeric_precision`` (15), ``strict`` (True),
    ``allow_set_relation_comp`` (False).
    """
    return _stepwise.verdict(gold, pred, **options)


def verify(gold: Gold, pred: str, **options: Any) -> bool:
    """Whether ``pred`` is equivalent to ``gold`` (``undecided`` counts as False).

    >>> import stepwise
    >>> stepwise.verify(["1/2", "0.5"], "\\frac{1}{2}")
    True
    """
    return _stepwise.verdict(gold, pred, **options) == "equal"


def explain(gold: str, pred: str, **options: Any) -> dict[str, Any]:
    """The verdict with both sides' extracted, parsed and normalized forms.

    >>> import stepwise
    >>> stepwise.explain("\\frac12", "0.5")["verdict"]
    'equal'
    """
    return _stepwise.explain(str(gold), str(pred), **options)


def verify_batch(
    golds: Sequence[Gold], preds: Sequence[str], threads: int | None = None, **options: Any
) -> list[bool]:
    """Verifies many pairs on a rayon pool with the GIL released; results in input order.

    >>> import stepwise
    >>> stepwise.verify_batch(["1", "2"], ["1.0", "3"], threads=2)
    [True, False]

    ``threads=None`` uses one thread per core.
    """
    # The labels are read (a list gold, None, numbers) in Rust: a Python loop over them
    # cost more than the verification of the batch.
    g = golds if isinstance(golds, (list, tuple)) else list(golds)
    p = preds if isinstance(preds, (list, tuple)) else list(preds)
    return _stepwise.verify_batch(g, p, threads, **options)


def extract_answer(text: str) -> str | None:
    """The answer the verifier would judge in ``text`` (``None`` when there is none).

    >>> import stepwise
    >>> stepwise.extract_answer("So the total is $\\boxed{42}$.")
    '42'
    """
    return _stepwise.extract_answer(str(text))
