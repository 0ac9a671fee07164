"""Runs the three client examples against a live server: python3 test_clients.py BASE_URL.

Used by crates/serve/tests/clients.rs; exits non-zero with a message on any mismatch.
"""

import importlib
import os
import sys

base = sys.argv[1]
os.environ["STEPWISE_REWARD_URL"] = base
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

openrlhf = importlib.import_module("openrlhf_remote_rm")
verl = importlib.import_module("verl_reward")
trl = importlib.import_module("trl_reward")

P = "Question: what is 3+4?\n"
GOOD = "<think>3+4=7</think> The answer is \\boxed{7}."
BAD = "<think>3+4=8</think> The answer is \\boxed{8}."


def check(cond, msg):
    if not cond:
        print("FAIL:", msg)
        sys.exit(1)


out = openrlhf.reward_func([P + GOOD, P + BAD], [P, P], ["7", "7"], base=base)
rewards = [float(x) for x in out["rewards"]]
check(rewards == [2.0, 1.0], f"openrlhf rewards {rewards}")
check([float(x) for x in out["extra_logs"]["accuracy"]] == [1.0, 0.0], f"openrlhf logs {out['extra_logs']}")

s = verl.compute_score("openai/gsm8k", "48 / 2 = 24\n#### 24", "24", {})
check(s["score"] == 1.0 and s["accuracy"] == 1.0, f"verl gsm8k {s}")
s = verl.compute_score("lighteval/MATH", GOOD, "7")
check(s["score"] == 2.0 and s["format"] == 1.0, f"verl math {s}")

f = trl.StepwiseReward(gold_key="answer")
r = f(prompts=[P, P], completions=[[{"role": "assistant", "content": GOOD}], BAD], answer=["7", "7"])
check(r == [2.0, 1.0], f"trl rewards {r}")
check(f.__name__ == "stepwise", "trl name")

print("clients: 3 passed, 0 failed")
