"""A client for a remote ``stepwise serve`` (sync and async), standard library only::

    c = Client("http://127.0.0.1:8000")
    c.rewards([{"response": "\\\\boxed{4}", "gold": "4"}])["results"][0]["reward"]  # 1.0

Retries on 503/429 and connection errors, waiting what ``Retry-After`` says (else an
exponential backoff), at most ``retries`` times.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any


class ServeError(RuntimeError):
    """A request that failed for good (its status and body in the message)."""


class Client:
    """Synchronous client: ``/v1/rewards``, ``/v1/verify``, ``/v1/step_rewards``,
    ``/get_reward``, ``/health``::

        c = Client("http://127.0.0.1:8000", token="...")   # token: the server's --auth-token
        c.verify([{"gold": "\\\\frac12", "pred": "0.5"}])["results"][0]["verdict"]   # 'equal'

    A request answered 503 or 429 (or not answered) is retried up to ``retries`` times,
    after ``Retry-After`` seconds when the server sends it; other errors raise
    :class:`ServeError` with the URL, status and body.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        backoff: float = 0.1,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                pass
        return self.backoff * (2**attempt)

    def request(self, path: str, body: dict | None = None) -> Any:
        """One JSON request with retries; returns the decoded answer."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(
                self.url + path, data=data, headers=headers, method="GET" if data is None else "POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                text = e.read().decode(errors="replace")
                if e.code not in (429, 503) or attempt == self.retries:
                    raise ServeError(f"{self.url}{path}: HTTP {e.code}: {text}") from e
                last = e
                time.sleep(self._wait(attempt, e.headers.get("Retry-After")))
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                if attempt == self.retries:
                    raise ServeError(f"{self.url}{path}: {e}") from e
                last = e
                time.sleep(self._wait(attempt, None))
        raise ServeError(f"{self.url}{path}: gave up: {last}")

    def health(self) -> Any:
        return self.request("/health")

    def rewards(self, items: list[dict]) -> Any:
        return self.request("/v1/rewards", {"items": items})

    def verify(self, pairs: list[dict]) -> Any:
        return self.request("/v1/verify", {"pairs": pairs})

    def get_reward(self, queries: list[str], prompts: list[str], labels: list[Any]) -> Any:
        return self.request("/get_reward", {"query": queries, "prompts": prompts, "labels": labels})

    def step_rewards(self, items: list[dict], **options: Any) -> Any:
        """``/v1/step_rewards``; ``options``: ``scorer``, ``aggregation``, ``delimiter``.

        Each step comes with its ``char_start`` / ``char_end`` (Python ``str`` indices into
        the item's ``response``, or into its ``steps`` joined by the delimiter) and, when the
        server has a tokenizer (``stepwise serve --tokenizer``), ``token_end``: the step's
        last token is ``token_end - 1`` of the response tokenized alone."""
        return self.request("/v1/step_rewards", {"items": items, **options})


class AsyncClient(Client):
    """The same requests as awaitables (each runs in a worker thread)::

        c = AsyncClient("http://127.0.0.1:8000")
        results = await asyncio.gather(*(c.arewards(batch) for batch in batches))
    """

    async def arequest(self, path: str, body: dict | None = None) -> Any:
        return await asyncio.to_thread(Client.request, self, path, body)

    async def ahealth(self) -> Any:
        return await self.arequest("/health")

    async def arewards(self, items: list[dict]) -> Any:
        return await self.arequest("/v1/rewards", {"items": items})

    async def averify(self, pairs: list[dict]) -> Any:
        return await self.arequest("/v1/verify", {"pairs": pairs})

    async def aget_reward(self, queries: list[str], prompts: list[str], labels: list[Any]) -> Any:
        body = {"query": queries, "prompts": prompts, "labels": labels}
        return await self.arequest("/get_reward", body)

    async def astep_rewards(self, items: list[dict], **options: Any) -> Any:
        return await self.arequest("/v1/step_rewards", {"items": items, **options})


# Component names of the built-in presets and clients/rewards.example.toml.
DEFAULT_KEYS = ("accuracy", "format", "length", "step_check")


class RemoteRewards:
    """A remote ``stepwise serve`` as the scoring backend of :mod:`stepwise.rewards`' trainer
    adapters: each batch is one ``POST /v1/rewards`` request::

        from stepwise.rewards import trl_reward
        f = trl_reward(backend=RemoteRewards("http://127.0.0.1:8000"))

    ``keys`` are the component names the adapters report for every item (verl needs one key
    set for all items; a component the server does not return for an item is 0).
    """

    def __init__(
        self,
        url: str | Client,
        token: str | None = None,
        keys: Sequence[str] = DEFAULT_KEYS,
        **client_options: Any,
    ) -> None:
        self.client = url if isinstance(url, Client) else Client(url, token=token, **client_options)
        self._keys = list(keys)

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    def score_batch(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        golds: Sequence[str],
        sources: Sequence[str | None],
        threads: int | None = None,
        logprobs: Sequence[list[list[float]] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """One request for the batch; results as :meth:`stepwise.Rewards.score_batch` gives
        them (``verdict`` is ``None``: the server does not send it). ``logprobs``: one entry
        per item (``None`` for an item without), sent as the item's ``logprobs``."""
        if not responses:
            return []
        if logprobs is not None and len(logprobs) != len(responses):
            raise ValueError(
                f"logprobs must have one entry per item (None for an item without): "
                f"{len(logprobs)} for {len(responses)} items"
            )
        items = []
        for i, (p, c, g, s) in enumerate(zip(prompts, responses, golds, sources)):
            item = {"prompt": p, "response": c, "gold": g}
            if s is not None:
                item["data_source"] = s
            if logprobs is not None and logprobs[i] is not None:
                item["logprobs"] = logprobs[i]
            items.append(item)
        results = self.client.rewards(items)["results"]
        if len(results) != len(items):
            raise ServeError(
                f"{self.client.url}/v1/rewards: {len(results)} results for {len(items)} items"
            )
        return [
            {
                "reward": float(r["reward"]),
                "components": dict(r.get("components", {})),
                "answer": r.get("answer"),
                "verdict": None,
                "no_answer": r.get("answer") is None,
                "timed_out": bool(r.get("timed_out", False)),
                "flags": dict(r.get("flags", {})),
                "logs": dict(r.get("logs", {})),
            }
            for r in results
        ]
