"""In-process rewards for TRL, verl and OpenRLHF: the reward functions and TOML/presets of
``stepwise serve``, without a server.

>>> from stepwise.rewards import trl_reward
>>> f = trl_reward()
>>> f(prompts=["Q"], completions=["<think>2+2</think> \\\\boxed{4}"], solution=["4"])
[2.0]
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Callable

from ._stepwise import Rewards

__all__ = ["Rewards", "gold_text", "openrlhf_reward_func", "trl_reward", "verl_compute_score"]


def gold_text(gold: Any) -> str | None:
    """A gold label as text: numbers printed, a list as its acceptable answers joined by
    `` or `` is not used; the first element is taken per alternative by the caller.
    ``None`` stays ``None`` (no gold: the item gets no accuracy reward).

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


def _score_any(r: Rewards, prompt: str, resp: str, gold: Any, source: str | None) -> dict:
    """Scores against a gold that may be a list of acceptable answers (the best one)."""
    golds = gold if isinstance(gold, (list, tuple)) else [gold]
    best: dict | None = None
    for g in golds:
        t = gold_text(g)
        s = r.score(prompt, resp, "" if t is None else t, source)
        if t is None:
            s["components"] = {k: (0.0 if k == "accuracy" else v) for k, v in s["components"].items()}
        if best is None or s["reward"] > best["reward"]:
            best = s
    if best is None:
        best = r.score(prompt, resp, "", source)
    return best


def _text(x: Any) -> str:
    """A TRL prompt or completion: a string, or a conversational list of messages."""
    if isinstance(x, str):
        return x
    if isinstance(x, dict):
        return str(x.get("content", ""))
    if isinstance(x, (list, tuple)):
        return "".join(_text(m) for m in x)
    return "" if x is None else str(x)


def _prompt_text(p: Any) -> str:
    # A chat prompt whose template opens the assistant turn with `<think>` hides it from
    # the completion; keep the last message so a prefilled `<think>` counts.
    return _text(p)


def trl_reward(
    preset: str | None = None,
    toml: str | None = None,
    path: str | None = None,
    gold_column: str = "solution",
    think_prefilled: bool = False,
    threads: int | None = None,
) -> Callable[..., list[float | None]]:
    """A reward function for ``trl.GRPOTrainer(reward_funcs=[...])``.

    >>> f = trl_reward(preset="deepseek-r1")
    >>> f(prompts=["Q"], completions=[[{"role": "assistant", "content": "\\\\boxed{4}"}]],
    ...   solution=["4"])
    [1.0]

    TRL calls it with ``prompts``, ``completions`` (strings or message lists),
    ``completion_ids``, ``trainer_state``, ``log_metric`` and the dataset's columns as
    keyword arguments; the gold answer is the ``gold_column`` column (``solution`` by
    default, also ``answer``/``ground_truth``). Returns one ``float`` per completion, ``None``
    for an item without gold (TRL ignores ``None``). Components are logged through
    ``log_metric`` when TRL passes it. ``think_prefilled=True`` says the chat template opens
    the assistant turn with ``<think>`` (R1-style), which the completion then does not show.
    """
    r = Rewards(preset=preset, toml=toml, path=path)

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
        ps = [(_prompt_text(p) + ("<think>" if think_prefilled else "")) for p in prompts]
        if len(ps) != n:
            ps = (ps + [""] * n)[:n]
        out: list[float | None] = []
        comps: dict[str, list[float]] = {}
        for p, c, g in zip(ps, completions, golds):
            if g is None:
                out.append(None)
                continue
            s = _score_any(r, p, _text(c), g, None)
            out.append(float(s["reward"]))
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
    preset: str | None = None, toml: str | None = None, path: str | None = None
) -> Callable[..., Any]:
    """verl's ``compute_score``, single and batch form, with one stable key set.

    >>> cs = verl_compute_score(preset="gsm8k")
    >>> cs("openai/gsm8k", "... #### 24", "24")["score"]
    1.0
    >>> [d["score"] for d in cs(data_sources=["a"], solution_strs=["#### 3"],
    ...                            ground_truths=["3"], extra_infos=[None])]
    [1.0]
    """
    r = Rewards(preset=preset, toml=toml, path=path)
    keys = list(r.keys)

    def one(ds: Any, sol: Any, gt: Any) -> dict:
        s = _score_any(r, "", "" if sol is None else str(sol), gt, None if ds is None else str(ds))
        d = {"score": float(s["reward"])}
        for k in keys:
            d[k] = float(s["components"].get(k, 0.0))
        d["no_answer"] = float(s["no_answer"])
        d["undecided"] = float(s["verdict"] == "undecided")
        return d

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
            return [one(dss[i], solution_strs[i], gts[i]) for i in range(n)]
        return one(data_source, solution_str, ground_truth)

    return compute_score


def openrlhf_reward_func(
    preset: str | None = None, toml: str | None = None, path: str | None = None
) -> Callable[..., dict]:
    """OpenRLHF's ``reward_func(queries, prompts, labels)`` for ``--reward.remote_url file.py``.

    >>> f = openrlhf_reward_func(preset="gsm8k")
    >>> out = f(["Q A #### 3"], ["Q"], [3])
    >>> [float(x) for x in out["rewards"]]
    [1.0]

    Labels may be strings, numbers, lists (any answer counts) or ``None``. Returns
    ``rewards``, ``scores`` (torch tensors when torch is importable, else lists) and
    ``extra_logs`` (one list per component).
    """
    r = Rewards(preset=preset, toml=toml, path=path)
    keys = list(r.keys)

    def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kw: Any):
        rewards: list[float] = []
        logs: dict[str, list[float]] = {k: [] for k in keys + ["no_answer", "prompt_mismatch"]}
        for i, q in enumerate(queries):
            p = prompts[i] if i < len(prompts) else ""
            lab = labels[i] if i < len(labels) else None
            mismatch = bool(p) and not q.startswith(p)
            resp = q[len(p):] if not mismatch else (q.rsplit(p, 1)[-1] if p in q else q)
            s = _score_any(r, p, resp, lab, None)
            rewards.append(float(s["reward"]))
            for k in keys:
                logs[k].append(float(s["components"].get(k, 0.0)))
            logs["no_answer"].append(float(s["no_answer"]))
            logs["prompt_mismatch"].append(float(mismatch))
        try:
            import torch

            t: Any = torch.tensor(rewards, dtype=torch.float32)
            extra: Any = {k: torch.tensor(v, dtype=torch.float32) for k, v in logs.items()}
            return {"rewards": t, "scores": t.clone(), "extra_logs": extra}
        except ImportError:
            return {"rewards": rewards, "scores": list(rewards), "extra_logs": logs}

    return reward_func
