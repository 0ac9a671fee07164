"""OpenRLHF reward-function file with stepwise in-process (no server, no auth needed).

    python -m openrlhf.cli.train_ppo_ray ... \\
        --reward.remote_url clients/openrlhf_inprocess.py --data.label_key answer

Needs the ``stepwise`` package (``python/``, installed by ``scripts/setup`` into
``.venv``). Labels may be strings, numbers, lists (any answer counts) or null. Set
STEPWISE_PRESET (default deepseek-r1) or STEPWISE_CONFIG (a ``stepwise serve`` TOML).
"""

import os

from stepwise.rewards import openrlhf_reward_func

_CONFIG = os.environ.get("STEPWISE_CONFIG")
reward_func = openrlhf_reward_func(
    preset=None if _CONFIG else os.environ.get("STEPWISE_PRESET", "deepseek-r1"),
    path=_CONFIG,
)
