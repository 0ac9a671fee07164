"""Rewards for TRL, verl and OpenRLHF: the reward functions and TOML/presets of
``stepwise serve``, in-process (no server), or from a remote ``stepwise serve`` with
``backend=RemoteRewards(url)``.

>>> from stepwise.rewards import trl_reward
>>> f = trl_reward()
>>> f(prompts=["Q"], completions=["<think>2+2</think> \\\\boxed{4}"], solution=["4"])
[2.0]
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Callable, Protocol

from ._stepwise import Rewards

__all__ = [
    "Backend",
    "Rewards",
    "gold_text",
    "message_text",
    "openrlhf_reward_func",
    "score_items",
    "trl_reward",
    "trl_reward_async",
    "verl_compute_score",
]


def gold_text(gold: Any) -> str | None:
    """One gold label as text: numbers printed (``24.0`` as ``24``), booleans in lower case;
    ``None`` stays ``None`` (no gold: the item gets no accuracy reward). Lists of acceptable
    answers are handled by :func:`score_items`.

    >>> gold_text(24), gold_text(None), gold_text("7")
    ('24', None, '7')
    """
    if gold is None:
        return None
    if isinstance(gold, bool):
        return str(gold).lower()
    if isinstance(gold, float) and gold.is_integer():
        return str(int(gold))
    return str(gold)


class Backend(Protocol):
    """What the trainer adapters score with: in-process :class:`Rewards`, or
    :class:`stepwise.client.RemoteRewards` for a ``stepwise serve``."""

    @property
    def keys(self) -> list[str]: ...

    def score_batch(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        golds: Sequence[str],
        sources: Sequence[str | None],
        threads: int | None = None,
        logprobs: Sequence[list[list[float]] | None] | None = None,
    ) -> list[dict[str, Any]]: ...


def _backend(preset: str | None, toml: str | None, path: str | None, backend: Any) -> Any:
    if backend is not None:
        if preset or toml or path:
            raise ValueError("give either backend= or preset/toml/path, not both")
        return backend
    return Rewards(preset=preset, toml=toml, path=path)


def score_items(
    r: Backend,
    prompts: Sequence[str],
    responses: Sequence[str],
    golds: Sequence[Any],
    sources: Sequence[str | None],
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Scores item ``i`` against ``golds[i]`` in one batch: a list gold is a set of acceptable
    answers (the best-scoring one counts); a ``None`` gold is scored with its accuracy
    component set to 0 (no gold, no accuracy).

    >>> [s["reward"] for s in score_items(Rewards(preset="gsm8k"), ["", ""], ["#### 7", "#### 7"],
    ...                                    [["6", 7], None], [None, None])]
    [1.0, 0.0]
    """
    n = len(responses)
    if not (len(prompts) == len(golds) == len(sources) == n):
        raise ValueError(
            f"stepwise score_items: {len(prompts)} prompts, {n} responses, {len(golds)} golds "
            f"and {len(sources)} sources (one each per item)"
        )
    owner: list[int] = []
    no_gold: list[bool] = []
    flat: tuple[list[str], list[str], list[str], list[str | None]] = ([], [], [], [])
    for i, (p, c, g, src) in enumerate(zip(prompts, responses, golds, sources)):
        alts = [gold_text(a) for a in g] if isinstance(g, (list, tuple)) else [gold_text(g)]
        for t in alts or [None]:
            owner.append(i)
            no_gold.append(t is None)
            for col, v in zip(flat, (p, c, "" if t is None else t, src)):
                col.append(v)
    scored = r.score_batch(*flat, threads=threads)
    best: list[dict[str, Any] | None] = [None] * n
    for i, missing, s in zip(owner, no_gold, scored):
        if missing:
            comps = s["components"]
            s["components"] = {k: (0.0 if k == "accuracy" else v) for k, v in comps.items()}
        b = best[i]
        if b is None or s["reward"] > b["reward"]:
            best[i] = s
    return [b for b in best if b is not None]


def message_text(x: Any) -> str:
    """A TRL prompt or completion as text: a string, or a conversational list of messages.

    >>> message_text([{"role": "assistant", "content": "\\\\boxed{4}"}])
    '\\\\boxed{4}'
    """
    if isinstance(x, str):
        return x
    if isinstance(x, dict):
        return str(x.get("content", ""))
    if isinstance(x, (list, tuple)):
        return "".join(message_text(m) for m in x)
    return "" if x is None else str(x)


def trl_reward(
    preset: str | None = None,
    toml: str | None = None,
    path: str | None = None,
    gold_column: str = "solution",
    think_prefilled: bool = False,
    threads: int | None = None,
    backend: Backend | None = None,
    source: str | None = None,
) -> Callable[..., list[float | None]]:
    """A reward function for ``trl.GRPOTrainer(reward_funcs=[...])``.

    >>> f = trl_reward(preset="deepseek-r1")
    >>> f(prompts=["Q"], completions=[[{"role": "assistant", "content": "\\\\boxed{4}"}]],
    ...   solution=["4"])
    [1.0]

    TRL calls it with ``prompts``, ``completions`` (strings or message lists),
    ``completion_ids``, ``trainer_state``, ``log_metric`` and the dataset's columns as
    keyword arguments; the gold answer is the ``gold_column`` column (``solution`` by
    default, also ``answer``/``ground_truth``/``label``); a gold may be a list of acceptable
    answers. Returns one ``float`` per completion, ``None`` for an item without gold (TRL
    ignores ``None``); fewer golds than completions is an error, never a shorter list.
    Components are logged through ``log_metric`` when TRL passes it. ``think_prefilled=True``
    says the chat template opens the assistant turn with ``<think>`` (R1-style), which the
    completion then does not show. The batch is scored at once (``threads``: the rayon pool
    in-process; one request with ``backend=RemoteRewards(url)``); ``source`` picks a
    ``[sources."name"]`` reward function.
    """
    r = _backend(preset, toml, path, backend)

    def reward(prompts: Sequence[Any] = (), completions: Sequence[Any] = (), **kwargs: Any):
        log_metric = kwargs.pop("log_metric", None)
        golds = None
        for col in (gold_column, "solution", "answer", "ground_truth", "label"):
            if col in kwargs and kwargs[col] is not None:
                golds = list(kwargs[col])
                break
        n = len(completions)
        if golds is None or len(golds) != n:
            raise ValueError(
                f"stepwise trl_reward: {n} completions but "
                f"{'no' if golds is None else len(golds)} gold answers in column "
                f"'{gold_column}' (TRL passes dataset columns as keyword arguments)"
            )
        ps = [(message_text(p) + ("<think>" if think_prefilled else "")) for p in prompts]
        ps = (ps + [""] * n)[:n]
        keep = [i for i in range(n) if golds[i] is not None]
        scored = score_items(
            r,
            [ps[i] for i in keep],
            [message_text(completions[i]) for i in keep],
            [golds[i] for i in keep],
            [source] * len(keep),
            threads,
        )
        out: list[float | None] = [None] * n
        comps: dict[str, list[float]] = {}
        for i, s in zip(keep, scored):
            out[i] = float(s["reward"])
            for k, v in s["components"].items():
                comps.setdefault(k, []).append(v)
        if log_metric is not None:
            for k, vs in comps.items():
                log_metric(f"stepwise/{k}", sum(vs) / len(vs))
        return out

    reward.__name__ = "stepwise_reward"
    return reward


def trl_reward_async(**kw: Any) -> Callable[..., Any]:
    """The async variant (TRL awaits coroutine reward functions); runs in a worker thread.

    >>> import asyncio
    >>> f = trl_reward_async()
    >>> asyncio.run(f(prompts=["Q"], completions=["\\\\boxed{1}"], solution=["1"]))
    [1.0]
    """
    f = trl_reward(**kw)

    async def reward(*args: Any, **kwargs: Any):
        return await asyncio.to_thread(f, *args, **kwargs)

    reward.__name__ = "stepwise_reward_async"
    return reward


def verl_compute_score(
    preset: str | None = None,
    toml: str | None = None,
    path: str | None = None,
    backend: Backend | None = None,
) -> Callable[..., Any]:
    """verl's ``compute_score``, single and batch form, with one stable key set.

    >>> cs = verl_compute_score(preset="gsm8k")
    >>> cs("openai/gsm8k", "... #### 24", "24")["score"]
    1.0
    >>> [d["score"] for d in cs(data_sources=["a"], solution_strs=["#### 3"],
    ...                            ground_truths=["3"], extra_infos=[None])]
    [1.0]

    Every result has the keys ``score``, the reward functions' components (those of every
    ``[sources]`` entry: 0 where an item's function lacks one), ``no_answer``,
    ``timed_out``. Extra keyword arguments verl passes (``reward_kwargs``,
    ``reward_router_address``, ``reward_model_tokenizer``, ...) are accepted and ignored;
    nothing depends on ``extra_info``. Ground truths may be strings, numbers, lists of
    acceptable answers or ``None``.
    """
    r = _backend(preset, toml, path, backend)
    keys = list(r.keys)

    def row(s: dict[str, Any]) -> dict[str, float]:
        d = {"score": float(s["reward"])}
        for k in keys:
            d[k] = float(s["components"].get(k, 0.0))
        d["no_answer"] = float(bool(s.get("no_answer")))
        d["timed_out"] = float(bool(s.get("timed_out")))
        return d

    def batch(dss: Sequence[Any], sols: Sequence[Any], gts: Sequence[Any]) -> list[dict]:
        n = len(sols)
        scored = score_items(
            r,
            [""] * n,
            ["" if x is None else str(x) for x in sols],
            list(gts),
            [None if ds is None else str(ds) for ds in dss],
        )
        return [row(s) for s in scored]

    def compute_score(
        data_source: Any = None,
        solution_str: Any = None,
        ground_truth: Any = None,
        extra_info: Any = None,
        data_sources: Any = None,
        solution_strs: Any = None,
        ground_truths: Any = None,
        extra_infos: Any = None,
        **kwargs: Any,
    ):
        if solution_strs is not None:
            n = len(solution_strs)
            dss = list(data_sources) if data_sources is not None else [None] * n
            gts = list(ground_truths) if ground_truths is not None else [None] * n
            if len(dss) != n or len(gts) != n:
                raise ValueError(
                    f"stepwise compute_score: {n} solution_strs, {len(dss)} data_sources, "
                    f"{len(gts)} ground_truths"
                )
            return batch(dss, list(solution_strs), gts)
        return batch([data_source], [solution_str], [ground_truth])[0]

    return compute_score


def openrlhf_reward_func(
    preset: str | None = None,
    toml: str | None = None,
    path: str | None = None,
    backend: Backend | None = None,
) -> Callable[..., dict]:
    """OpenRLHF's ``reward_func(queries, prompts, labels)`` for ``--reward.remote_url file.py``.

    >>> f = openrlhf_reward_func(preset="gsm8k")
    >>> out = f(["Q A #### 3"], ["Q"], [3])
    >>> [float(x) for x in out["rewards"]]
    [1.0]

    Labels may be strings, numbers, lists (any answer counts) or ``None``. A query is its
    prompt followed by the response; a query that does not start with its prompt is
    scored from the prompt's last occurrence (or whole) and logged as ``prompt_mismatch``.
    Returns ``rewards``, ``scores`` (torch tensors when torch is importable, else lists)
    and ``extra_logs`` (one list per component, ``no_answer``, ``prompt_mismatch``).
    """
    r = _backend(preset, toml, path, backend)
    keys = list(r.keys)

    def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kw: Any):
        n = len(queries)
        ps = [prompts[i] if i < len(prompts) else "" for i in range(n)]
        labs = [labels[i] if i < len(labels) else None for i in range(n)]
        resps, mismatch = [], []
        for q, p in zip(queries, ps):
            bad = bool(p) and not q.startswith(p)
            mismatch.append(float(bad))
            resps.append(q[len(p):] if not bad else (q.rsplit(p, 1)[-1] if p in q else q))
        scored = score_items(r, ps, resps, labs, [None] * n)
        rewards = [float(s["reward"]) for s in scored]
        logs: dict[str, list[float]] = {
            k: [float(s["components"].get(k, 0.0)) for s in scored] for k in keys
        }
        logs["no_answer"] = [float(bool(s.get("no_answer"))) for s in scored]
        logs["prompt_mismatch"] = mismatch
        try:
            import torch

            t: Any = torch.tensor(rewards, dtype=torch.float32)
            extra: Any = {k: torch.tensor(v, dtype=torch.float32) for k, v in logs.items()}
            return {"rewards": t, "scores": t.clone(), "extra_logs": extra}
        except ImportError:
            return {"rewards": rewards, "scores": list(rewards), "extra_logs": logs}

    return reward_func
