"""A client for a remote ``stepwise serve`` (sync and async), standard library only.

>>> c = Client("http://127.0.0.1:8000")  # doctest: +SKIP
>>> c.rewards([{"response": "\\\\boxed{4}", "gold": "4"}])  # doctest: +SKIP

Retries on 503/429 and connection errors, waiting what ``Retry-After`` says (else an
exponential backoff), at most ``retries`` times.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any


class ServeError(RuntimeError):
    """A request that failed for good (its status and body in the message)."""


class Client:
    """Synchronous client: ``/v1/rewards``, ``/v1/verify``, ``/get_reward``, ``/health``."""

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


class AsyncClient(Client):
    """The same requests as awaitables (each runs in a worker thread)."""

    async def arequest(self, path: str, body: dict | None = None) -> Any:
        return await asyncio.to_thread(Client.request, self, path, body)

    async def ahealth(self) -> Any:
        return await self.arequest("/health")

    async def arewards(self, items: list[dict]) -> Any:
        return await self.arequest("/v1/rewards", {"items": items})

    async def averify(self, pairs: list[dict]) -> Any:
        return await self.arequest("/v1/verify", {"pairs": pairs})
