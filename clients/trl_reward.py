"""TRL reward function backed by a remote ``stepwise serve`` (one request per batch).

    from trl import GRPOTrainer
    from trl_reward import StepwiseReward

    trainer = GRPOTrainer(model=..., reward_funcs=[StepwiseReward(gold_key="answer")],
                          train_dataset=dataset)   # dataset has an "answer" column

No server needed: ``stepwise.rewards.trl_reward(preset=...)`` is the same function
in-process. Both are ``stepwise.rewards.trl_reward``: completions as strings or chat
messages, ``None`` gold gives a ``None`` reward (TRL ignores it), fewer golds than
completions is an error, components are logged through TRL's ``log_metric``; set
``think_prefilled=True`` when the chat template opens the assistant turn with ``<think>``.
Set STEPWISE_REWARD_URL (default http://127.0.0.1:8000) and STEPWISE_AUTH_TOKEN.
"""

import os

from stepwise import RemoteRewards
from stepwise.rewards import trl_reward


# A function with the class-like name earlier versions had (StepwiseReward(...) still works).
def StepwiseReward(
    url=None, gold_key="answer", token=None, data_source=None, think_prefilled=False, timeout=600
):
    """A TRL reward function scoring on the server at ``url``."""
    backend = RemoteRewards(
        url or os.environ.get("STEPWISE_REWARD_URL", "http://127.0.0.1:8000"),
        token=token or os.environ.get("STEPWISE_AUTH_TOKEN"),
        timeout=timeout,
    )
    f = trl_reward(
        backend=backend, gold_column=gold_key, think_prefilled=think_prefilled, source=data_source
    )
    f.__name__ = "stepwise"  # TRL logs rewards under the function's name
    return f
