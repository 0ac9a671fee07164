"""verl custom reward function backed by the stepwise reward server.

    stepwise serve --port 8000 --config rewards.toml   # [sources."openai/gsm8k"] etc.

verl config (0.9: ``reward.custom_reward_function.path`` / ``.name``)::

    reward:
      custom_reward_function:
        path: clients/verl_reward.py
        name: compute_score

For no server at all, ``python/`` builds the ``stepwise`` package:
``stepwise.rewards.verl_compute_score()`` is the same function in-process.

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` for each
response; the server picks the reward function configured for ``data_source`` (the
default one when it has none). Returns a dict: "score" is the reward, the other keys
(the components, e.g. accuracy and format) are logged by verl. Standard library only.
Set STEPWISE_REWARD_URL (default http://127.0.0.1:8000) and STEPWISE_AUTH_TOKEN.
"""

import json
import os
import time
import urllib.error
import urllib.request

URL = os.environ.get("STEPWISE_REWARD_URL", "http://127.0.0.1:8000")
TOKEN = os.environ.get("STEPWISE_AUTH_TOKEN")


def _post(path, payload, retries=5, timeout=600):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if TOKEN:
        headers["Authorization"] = "Bearer " + TOKEN
    url = URL.rstrip("/") + path
    for attempt in range(retries):
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            if e.code == 503 and attempt + 1 < retries:
                time.sleep(float(e.headers.get("Retry-After", "1")))
                continue
            raise RuntimeError(f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')}") from e
    raise RuntimeError(f"{url}: still busy after {retries} tries")


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    """One response's reward and its components."""
    item = {"prompt": "", "response": solution_str, "gold": str(ground_truth), "data_source": data_source}
    if isinstance(extra_info, dict) and isinstance(extra_info.get("prompt"), str):
        item["prompt"] = extra_info["prompt"]
    res = _post("/v1/rewards", {"items": [item]})["results"][0]
    out = {"score": res["reward"]}
    out.update(res["components"])
    out["timed_out"] = 1.0 if res["timed_out"] else 0.0
    return out
