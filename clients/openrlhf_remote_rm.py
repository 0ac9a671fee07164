"""OpenRLHF with the stepwise reward server.

Easiest: point OpenRLHF straight at the server, no Python needed::

    stepwise serve --port 8000 --preset deepseek-r1
    python -m openrlhf.cli.train_ppo_ray ... \
        --reward.remote_url http://127.0.0.1:8000/get_reward --data.label_key answer

OpenRLHF posts {"query": [...], "prompts": [...], "labels": [...]} and reads
"rewards", "scores" and "extra_logs" (accuracy, format, timed_out, ... per query).

This file is also a reward-function file for OpenRLHF's ``--reward.remote_url
/path/to/openrlhf_remote_rm.py`` mode, forwarding to the server (set
STEPWISE_REWARD_URL, and STEPWISE_AUTH_TOKEN when the server has --auth-token).
Standard library only; returns torch tensors when torch is importable.
"""

import json
import os
import time
import urllib.error
import urllib.request

URL = os.environ.get("STEPWISE_REWARD_URL", "http://127.0.0.1:8000")
TOKEN = os.environ.get("STEPWISE_AUTH_TOKEN")


def _post(path, payload, base=None, retries=5, timeout=600):
    """POST JSON; retries 503 (server busy) after its Retry-After."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if TOKEN:
        headers["Authorization"] = "Bearer " + TOKEN
    url = (base or URL).rstrip("/") + path
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


def reward_func(queries, prompts, labels, base=None):
    """OpenRLHF reward function: rewards for query = prompt + response."""
    out = _post("/get_reward", {"query": list(queries), "prompts": list(prompts), "labels": list(labels)}, base)
    try:
        import torch

        return {
            "rewards": torch.tensor(out["rewards"]),
            "scores": torch.tensor(out["scores"]),
            "extra_logs": {k: torch.tensor(v) for k, v in out["extra_logs"].items()},
        }
    except ImportError:
        return out


if __name__ == "__main__":
    import sys

    base = sys.argv[1] if len(sys.argv) > 1 else URL
    p = "Question: what is 3+4?\n"
    print(json.dumps(reward_func([p + "<think>3+4=7</think> \\boxed{7}"], [p], ["7"], base=base)))
