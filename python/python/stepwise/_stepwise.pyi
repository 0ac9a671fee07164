from collections.abc import Sequence
from typing import Any

def verdict(
    golds: Any,
    pred: Any,
    float_rounding: int = 6,
    numeric_precision: int = 15,
    strict: bool = True,
    allow_set_relation_comp: bool = False,
    gold_latex: bool = True,
    gold_expr: bool = True,
    pred_latex: bool = True,
    pred_expr: bool = True,
    gold_anchorless: tuple[bool, bool] = (True, True),
    pred_anchorless: tuple[bool, bool] = (True, True),
) -> str: ...
def explain(
    gold: str,
    pred: str,
    float_rounding: int = 6,
    numeric_precision: int = 15,
    strict: bool = True,
    allow_set_relation_comp: bool = False,
) -> dict[str, Any]: ...
def verify_batch(
    golds: Sequence[Any],
    preds: Sequence[Any],
    threads: int | None = None,
    float_rounding: int = 6,
    numeric_precision: int = 15,
    strict: bool = True,
    allow_set_relation_comp: bool = False,
) -> list[bool]: ...
def extract_answer(
    text: str, latex: bool = True, expr: bool = True, anchorless: tuple[bool, bool] = (True, True)
) -> str | None: ...
def parse_answer(
    text: str,
    latex: bool = True,
    expr: bool = True,
    anchorless: tuple[bool, bool] = (True, True),
    boxed_priority: int = 55,
    strings: Sequence[str] | None = None,
    strings_anchorless: bool = True,
    lowercase: bool = True,
) -> tuple[str, str, str] | None: ...
def split_steps(text: str, delimiter: str = "blank-line") -> list[str]: ...
def check_arithmetic(text: str) -> list[dict[str, Any]]: ...
def step_score(text: str) -> tuple[float, str]: ...
def processbench_f1(labels: Sequence[int], predictions: Sequence[int | None]) -> dict[str, Any]: ...
def ece(probs: Sequence[float], outcomes: Sequence[bool]) -> float: ...
def auroc(probs: Sequence[float], outcomes: Sequence[bool]) -> float | None: ...
def brier(probs: Sequence[float], outcomes: Sequence[bool]) -> float: ...

class Rewards:
    def __init__(
        self, preset: str | None = None, toml: str | None = None, path: str | None = None
    ) -> None: ...
    @property
    def keys(self) -> list[str]: ...
    def score(
        self,
        prompt: str,
        response: str,
        gold: str,
        source: str | None = None,
        logprobs: list[list[float]] | None = None,
    ) -> dict[str, Any]: ...
    def score_batch(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        golds: Sequence[str],
        sources: Sequence[str | None],
        threads: int | None = None,
        logprobs: Sequence[list[list[float]] | None] | None = None,
    ) -> list[dict[str, Any]]: ...
