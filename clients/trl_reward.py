"""TRL reward function backed by the stepwise reward server.

    from trl import GRPOTrainer
    from trl_reward import StepwiseReward

    trainer = GRPOTrainer(model=..., reward_funcs=[StepwiseReward(gold_key="answer")],
                          train_dataset=dataset)   # dataset has an "answer" column

TRL calls ``reward_funcs(prompts=..., completions=..., **dataset_columns)``; completions
may be strings or chat messages. One HTTP request per batch. Standard library only.
Set STEPWISE_REWARD_URL (default http://127.0.0.1:8000) and STEPWISE_AUTH_TOKEN.
"""

import json
import os
import time
import urllib.error
import urllib.request


def _text(x):
    """A plain string from a TRL prompt/completion (string or list of chat messages)."""
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return "".join(m.get("content", "") if isinstance(m, dict) else str(m) for m in x)
    return str(x)


class StepwiseReward:
    """Callable reward: one float per completion."""

    def __init__(self, url=None, gold_key="answer", token=None, data_source=None, timeout=600):
        self.url = (url or os.environ.get("STEPWISE_REWARD_URL", "http://127.0.0.1:8000")).rstrip("/")
        self.gold_key = gold_key
        self.token = token or os.environ.get("STEPWISE_AUTH_TOKEN")
        self.data_source = data_source
        self.timeout = timeout
        self.__name__ = "stepwise"  # TRL logs rewards under the function's name

    def _post(self, path, payload, retries=5):
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in range(retries):
            req = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:
                if e.code == 503 and attempt + 1 < retries:
                    time.sleep(float(e.headers.get("Retry-After", "1")))
                    continue
                raise RuntimeError(f"{self.url}{path}: HTTP {e.code}: {e.read().decode(errors='replace')}") from e
        raise RuntimeError(f"{self.url}{path}: still busy after {retries} tries")

    def __call__(self, prompts, completions, **kwargs):
        golds = kwargs.get(self.gold_key)
        if golds is None:
            raise KeyError(f"the dataset has no '{self.gold_key}' column (set gold_key=...)")
        items = []
        for p, c, g in zip(prompts, completions, golds):
            item = {"prompt": _text(p), "response": _text(c), "gold": str(g)}
            if self.data_source:
                item["data_source"] = self.data_source
            items.append(item)
        results = self._post("/v1/rewards", {"items": items})["results"]
        return [r["reward"] for r in results]
