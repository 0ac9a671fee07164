"""verl custom reward function backed by a remote ``stepwise serve``.

    stepwise serve --port 8000 --config clients/rewards.example.toml   # [sources."openai/gsm8k"] etc.

verl config (0.9: ``reward.custom_reward_function.path`` / ``.name``)::

    reward:
      custom_reward_function:
        path: clients/verl_reward.py
        name: compute_score

No server needed: ``stepwise.rewards.verl_compute_score(path="rewards.toml")`` is the same
function in-process. Both take the single form ``compute_score(data_source, solution_str,
ground_truth, extra_info=None, **verl_kwargs)`` and the batch form
``compute_score(data_sources=..., solution_strs=..., ground_truths=..., extra_infos=...)``
(``reward_manager=batch``); the server picks the reward function configured for
``data_source``. Every result has the same keys: ``score`` (the reward), the components
named in STEPWISE_KEYS (comma-separated; default accuracy, format, length, step_check: 0
where an item's function has none), ``no_answer`` and ``timed_out``. Ground truths may be
strings, numbers, lists of acceptable answers or null.
Set STEPWISE_REWARD_URL (default http://127.0.0.1:8000) and STEPWISE_AUTH_TOKEN.
"""

import os

from stepwise import RemoteRewards
from stepwise.client import DEFAULT_KEYS
from stepwise.rewards import verl_compute_score

_KEYS = os.environ.get("STEPWISE_KEYS")
compute_score = verl_compute_score(
    backend=RemoteRewards(
        os.environ.get("STEPWISE_REWARD_URL", "http://127.0.0.1:8000"),
        token=os.environ.get("STEPWISE_AUTH_TOKEN"),
        keys=[k.strip() for k in _KEYS.split(",") if k.strip()] if _KEYS else DEFAULT_KEYS,
        timeout=600,
    )
)
