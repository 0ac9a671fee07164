"""OpenRLHF with the stepwise reward server.

Easiest: point OpenRLHF straight at the server, no Python needed::

    stepwise serve --port 8000 --preset deepseek-r1
    python -m openrlhf.cli.train_ppo_ray ... \\
        --reward.remote_url http://127.0.0.1:8000/get_reward --data.label_key answer

OpenRLHF posts {"query": [...], "prompts": [...], "labels": [...]} and reads
"rewards", "scores" and "extra_logs" (accuracy, format, timed_out, ... per query).
OpenRLHF's HTTP mode sends no auth header: with ``--auth-token`` use this file instead.

This file is a reward-function file for OpenRLHF's ``--reward.remote_url
/path/to/openrlhf_remote_rm.py`` mode, scoring on the server (set STEPWISE_REWARD_URL,
and STEPWISE_AUTH_TOKEN when the server has --auth-token). Labels may be strings,
numbers, lists (any answer counts) or null. No server at all:
``clients/openrlhf_inprocess.py``.
"""

import json
import os

from stepwise import RemoteRewards
from stepwise.rewards import openrlhf_reward_func

URL = os.environ.get("STEPWISE_REWARD_URL", "http://127.0.0.1:8000")
reward_func = openrlhf_reward_func(
    backend=RemoteRewards(URL, token=os.environ.get("STEPWISE_AUTH_TOKEN"), timeout=600)
)


if __name__ == "__main__":
    p = "Question: what is 3+4?\n"
    out = reward_func([p + "<think>3+4=7</think> \\boxed{7}"], [p], ["7"])
    print(json.dumps([float(x) for x in out["rewards"]]))
