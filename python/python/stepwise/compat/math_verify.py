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
    "StringAnswer",
    "StringExtractionConfig",
    "parse",
    "verify",
]


@dataclass(frozen=True)
class LatexExtractionConfig:
    """Answers in ``\\boxed{}`` or math environments (``$...$``, ``\\[...\\]``).

    >>> parse("$x$ is $\\boxed{3}$", [LatexExtractionConfig()])[1]
    '3'
    >>> parse("so $x = 3$", [LatexExtractionConfig(try_extract_without_anchor=False)])
    []

    ``try_extract_without_anchor=False`` reads only anchored answers: a box or an answer
    phrase (``final answer is $3$``), not the last math environment of the text.
    ``boxed_match_priority`` ranks a box against a ``StringExtractionConfig`` answer
    (lower wins; below 0 a box ranks as plain LaTeX). ``normalization_config`` is accepted
    and not used: the verifier's normalization is fixed.
    """

    boxed_match_priority: int = 55
    try_extract_without_anchor: bool = True
    normalization_config: Any = None


@dataclass(frozen=True)
class ExprExtractionConfig:
    """Plain expressions (``0.5``, ``x = 3``, the answer of ``The answer is 5``).

    >>> parse("The answer is 5", [ExprExtractionConfig()])[1]
    '5'
    >>> parse("5", [ExprExtractionConfig(try_extract_without_anchor=False)])
    []

    ``try_extract_without_anchor=False`` reads only an answer phrase's answer, not the
    whole text or the last number of prose.
    """

    try_extract_without_anchor: bool = True


@dataclass(frozen=True)
class StringExtractionConfig:
    """Literal strings (option letters such as ``A``), found as math-verify finds them.

    >>> parse("The answer is C.", [StringExtractionConfig()])
    ['c', 'C']
    >>> parse("The answer is C.", [StringExtractionConfig(lowercase=False)])
    ['C', 'C']
    >>> parse("Because B is valid", [StringExtractionConfig(try_extract_without_anchor=False)])
    []

    A key counts as a token (after whitespace or at the start, ``**bold**`` allowed, before
    ``.``, ``,``, ``:``, whitespace or the end): after ``final answer is``, ``answer:`` or
    ``answer`` first, else (``try_extract_without_anchor``) at the start of the text or
    anywhere, the last occurrence winning. ``parse`` returns the key lower-cased when
    ``lowercase`` and the key as written; ``verify`` compares such answers as strings.
    """

    strings: tuple[str, ...] = ("A", "B", "C", "D")
    try_extract_without_anchor: bool = True
    lowercase: bool = True


class StringAnswer(str):
    """A literal answer of ``StringExtractionConfig`` (``verify`` compares it as text).

    >>> a = parse("Answer: B", [StringExtractionConfig()])[0]
    >>> isinstance(a, StringAnswer), a
    (True, 'b')
    """


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
    latex_anchorless: bool = True
    expr_anchorless: bool = True

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
    """math-verify's ``parse``: ``[answer, extracted]``, or ``[]`` when nothing is found.

    >>> parse("$\\frac12$", [LatexExtractionConfig()])[1]
    '\\\\frac12'
    >>> parse("Answer $ \\n 9 \\n $", [LatexExtractionConfig()])
    []

    The extraction itself (which answer each config finds, and which config's answer
    wins) is the Rust extractor's.
    """
    try:
        lx = [c for c in extraction_config if isinstance(c, LatexExtractionConfig)]
        ex = [c for c in extraction_config if isinstance(c, ExprExtractionConfig)]
        sx = [c for c in extraction_config if isinstance(c, StringExtractionConfig)]
        strings: tuple[str, ...] = tuple(k for c in sx for k in c.strings)
        anchorless = (
            any(c.try_extract_without_anchor for c in lx),
            any(c.try_extract_without_anchor for c in ex),
        )
        found = _stepwise.parse_answer(
            str(pred),
            bool(lx),
            bool(ex),
            anchorless,
            min((c.boxed_match_priority for c in lx), default=55),
            list(strings) if sx else None,
            any(c.try_extract_without_anchor for c in sx),
            any(c.lowercase for c in sx),
        )
        if found is None:
            return []
        kind, answer, extracted = found
        if kind == "string":
            return [StringAnswer(answer), extracted]
        return [
            Parsed(str(pred), bool(lx), bool(ex), strings, anchorless[0], anchorless[1]),
            extracted,
        ]
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
    # math-verify compares a literal answer with the other side as strings.
    if isinstance(g, StringAnswer) or isinstance(p, StringAnswer):
        gs, ps = str(g).strip(), str(p).strip()
        return bool(gs) and gs == ps
    gp, pp = isinstance(g, Parsed), isinstance(p, Parsed)
    gt = (g.latex, g.expr, g.latex_anchorless, g.expr_anchorless) if gp else (True,) * 4
    pt = (p.latex, p.expr, p.latex_anchorless, p.expr_anchorless) if pp else (True,) * 4
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
            gold_anchorless=(gt[2], gt[3]),
            pred_anchorless=(pt[2], pt[3]),
        )
        == "equal"
    )


Answer = Union[Parsed, StringAnswer, str]
