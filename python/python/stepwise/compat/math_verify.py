"""A drop-in for ``math_verify``: change ``from math_verify import ...`` to
``from stepwise.compat.math_verify import ...``.

>>> from stepwise.compat.math_verify import parse, verify
>>> verify(parse("$\\boxed{\\frac{1}{2}}$"), parse("The answer is 0.5"))
True

``parse`` returns math-verify's shape, ``[answer, extracted_string]`` or ``[]`` when its
extraction targets find nothing. The options' semantics live in the Rust verifier
(extraction targets, ``strict``, ``allow_set_relation_comp``, ``float_rounding``,
``numeric_precision``). ``timeout_seconds`` is accepted and has nothing to do: every call is
bounded by construction and uses no signals, so it works off the main thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

from .. import _stepwise

__all__ = [
    "ExprExtractionConfig",
    "LatexExtractionConfig",
    "Parsed",
    "StringExtractionConfig",
    "parse",
    "verify",
]


@dataclass(frozen=True)
class LatexExtractionConfig:
    """Answers in ``\\boxed{}`` or math environments (``$...$``, ``\\[...\\]``).

    >>> parse("$x$ is $\\boxed{3}$", [LatexExtractionConfig()])[1]
    '3'
    """

    boxed_match_priority: int = 55
    try_extract_without_anchor: bool = True
    normalization_config: Any = None


@dataclass(frozen=True)
class ExprExtractionConfig:
    """Plain expressions (``0.5``, ``x = 3``, the answer of ``The answer is 5``).

    >>> parse("The answer is 5", [ExprExtractionConfig()])[1]
    '5'
    """

    try_extract_without_anchor: bool = True


@dataclass(frozen=True)
class StringExtractionConfig:
    """Literal strings (option letters such as ``A``).

    >>> parse("(C)", [StringExtractionConfig()])[1]
    'C'

    Unlike math-verify, only an answer that is the string alone (inside ``()``, ``*`` or
    ``$`` at most) is found today, not one inside a sentence.
    """

    strings: tuple[str, ...] = ("A", "B", "C", "D")
    try_extract_without_anchor: bool = True
    lowercase: bool = True


@dataclass(frozen=True)
class Parsed:
    """One parsed answer: the text it came from and the extraction targets used.

    >>> p = parse("so $x^2$")[0]
    >>> str(p), p.latex
    ('so $x^2$', True)
    """

    text: str
    latex: bool
    expr: bool
    strings: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.text


_DEFAULT = (LatexExtractionConfig(), ExprExtractionConfig())


def parse(
    pred: str,
    extraction_config: Sequence[Any] = _DEFAULT,
    fallback_mode: str = "first_match",
    extraction_mode: str = "any_match",
    parsing_timeout: int | None = 5,
    raise_on_error: bool = False,
) -> list[Any]:
    """math-verify's ``parse``: ``[Parsed, extracted]``, or ``[]`` when nothing is found.

    >>> parse("$\\frac12$", [LatexExtractionConfig()])[1]
    '\\\\frac12'
    >>> parse("Answer $ \\n 9 \\n $", [LatexExtractionConfig()])
    []
    """
    try:
        latex = any(isinstance(c, LatexExtractionConfig) for c in extraction_config)
        expr = any(isinstance(c, ExprExtractionConfig) for c in extraction_config)
        strings: tuple[str, ...] = ()
        for c in extraction_config:
            if isinstance(c, StringExtractionConfig):
                strings += tuple(c.strings)
        text = str(pred)
        if strings:
            t = text.strip().strip("().*$ ")
            for s in strings:
                if t == s or t.lower() == s.lower():
                    return [Parsed(s, False, False, strings), s]
        if not (latex or expr):
            return []
        found = _stepwise.extract_answer(text, latex, expr)
        if found is None:
            return []
        return [Parsed(text, latex, expr, strings), found]
    except Exception:
        if raise_on_error:
            raise
        return []


def _items(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [i for i in x if i is not None]
    return [] if x is None else [x]


def verify(
    gold: Any,
    target: Any,
    float_rounding: int = 6,
    numeric_precision: int = 15,
    strict: bool = True,
    allow_set_relation_comp: bool = False,
    timeout_seconds: int | None = 5,
    raise_on_error: bool = False,
) -> bool:
    """math-verify's ``verify``: True when any gold matches any target.

    >>> verify(parse("$x=3$"), parse("$3$"))
    True
    >>> verify(parse("$[1,2]$"), parse("$x \\\\in [1,2]$"))
    True
    """
    try:
        golds = _items(gold)
        preds = _items(target)
        for p in preds:
            for g in golds:
                if _one(g, p, float_rounding, numeric_precision, strict, allow_set_relation_comp):
                    return True
        return False
    except Exception:
        if raise_on_error:
            raise
        return False


def _one(g: Any, p: Any, fr: int, npr: int, strict: bool, sets: bool) -> bool:
    gp, pp = isinstance(g, Parsed), isinstance(p, Parsed)
    if (gp and g.strings and not g.latex) or (pp and p.strings and not p.latex):
        return str(g).strip().lower() == str(p).strip().lower()
    gt = (g.latex, g.expr) if gp else (True, True)
    pt = (p.latex, p.expr) if pp else (True, True)
    return (
        _stepwise.verdict(
            [str(g)],
            str(p),
            float_rounding=fr,
            numeric_precision=npr,
            strict=strict,
            allow_set_relation_comp=sets,
            gold_latex=gt[0],
            gold_expr=gt[1],
            pred_latex=pt[0],
            pred_expr=pt[1],
        )
        == "equal"
    )


Answer = Union[Parsed, str]
