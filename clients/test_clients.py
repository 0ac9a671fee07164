"""The client files of clients/ and ``stepwise.Client`` / ``AsyncClient`` against a real
``stepwise serve``, started here in both set-ups the README shows.

    .venv/bin/pytest clients/test_clients.py    # run by scripts/test after cargo build

The binary is ``$STEPWISE_BIN``, else ``stepwise`` in ``$CARGO_TARGET_DIR/debug`` (or
``target/debug``) as ``cargo build --workspace`` leaves it.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from stepwise import AsyncClient, Client
from stepwise.client import ServeError

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
P = "Question: what is 3+4?\n"
GOOD = "<think>3+4=7</think> The answer is \\boxed{7}."
BAD = "<think>3+4=8</think> The answer is \\boxed{8}."
GSM8K = "48 / 2 = 24\n#### 24"

# The README's two set-ups and what each documents: reward of GOOD / BAD (accuracy weight 1,
# format weight 1 for the preset, 0.5 in the example file) and of a GSM8K `#### 24` answer
# sent with data_source "openai/gsm8k" (the preset reads \boxed{} and <answer> only; the
# example file routes that source to the gsm8k preset).
SETUPS = {
    "preset-deepseek-r1": (["--preset", "deepseek-r1"], 2.0, 1.0, 0.0),
    "rewards.example.toml": (["--config", str(HERE / "rewards.example.toml")], 1.5, 0.5, 1.0),
}


def _binary() -> Path:
    env = os.environ.get("STEPWISE_BIN")
    if env:
        return Path(env)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    b = target / "debug" / "stepwise"
    if not b.exists():
        pytest.fail(f"{b} not found: build it with `cargo build -p stepwise` or set STEPWISE_BIN")
    return b


class Serve:
    """A `stepwise serve` on a free port; stopped with SIGTERM."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(_binary()), "serve", "--port", "0", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.log: list[str] = []
        found = threading.Event()
        self.url = ""

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on (http://[0-9.:]+)", line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(60) or not self.url:
            self.stop()
            raise RuntimeError(f"stepwise serve did not start: {''.join(self.log)}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module", params=list(SETUPS))
def setup(request, monkeypatch_module):
    args, good, bad, gsm8k = SETUPS[request.param]
    s = Serve(*args)
    monkeypatch_module.setenv("STEPWISE_REWARD_URL", s.url)
    monkeypatch_module.delenv("STEPWISE_AUTH_TOKEN", raising=False)
    monkeypatch_module.syspath_prepend(str(HERE))
    mods = {}
    for name in ("openrlhf_remote_rm", "verl_reward", "trl_reward"):
        sys.modules.pop(name, None)  # they read STEPWISE_REWARD_URL when imported
        mods[name] = importlib.import_module(name)
    yield {"url": s.url, "good": good, "bad": bad, "gsm8k": gsm8k, **mods}
    s.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_openrlhf_file_labels_of_every_type(setup):
    f = setup["openrlhf_remote_rm"].reward_func
    out = f([P + GOOD, P + BAD, P + GOOD, P + GOOD], [P] * 4, ["7", 7, [6, 7], None])
    rewards = [float(x) for x in out["rewards"]]
    good, bad = setup["good"], setup["bad"]
    assert rewards == [good, bad, good, bad], rewards
    assert [float(x) for x in out["extra_logs"]["accuracy"]] == [1.0, 0.0, 1.0, 0.0]
    assert len(out["scores"]) == 4


def test_verl_single_batch_and_stable_keys(setup):
    cs = setup["verl_reward"].compute_score
    a = cs("openai/gsm8k", GSM8K, "24", {"index": 0}, reward_router_address=None)
    b = cs("lighteval/MATH", GOOD, "7", reward_kwargs={}, reward_model_tokenizer=None)
    assert a["score"] == setup["gsm8k"], a
    assert b["score"] == setup["good"] and b["accuracy"] == 1.0 and b["format"] == 1.0, b
    assert set(a) == set(b)
    batch = cs(
        data_sources=["openai/gsm8k", "lighteval/MATH", "lighteval/MATH", "lighteval/MATH"],
        solution_strs=[GSM8K, GOOD, GOOD, GOOD],
        ground_truths=[24, "7", ["3", "7"], None],
        extra_infos=[None] * 4,
    )
    good, bad = setup["good"], setup["bad"]
    assert [d["score"] for d in batch] == [setup["gsm8k"], good, good, bad]
    assert len({frozenset(d) for d in batch}) == 1 and set(batch[0]) == set(a)


def test_trl_function_strings_conversations_and_none_gold(setup):
    f = setup["trl_reward"].StepwiseReward(gold_key="answer")
    logged: dict[str, float] = {}
    r = f(
        prompts=[P, [{"role": "user", "content": P}], P],
        completions=[[{"role": "assistant", "content": GOOD}], BAD, GOOD],
        completion_ids=[[1], [2], [3]],
        trainer_state=None,
        log_metric=logged.__setitem__,
        answer=["7", "7", None],
    )
    assert r == [setup["good"], setup["bad"], None]
    assert f.__name__ == "stepwise"
    assert logged["stepwise/accuracy"] == 0.5
    with pytest.raises(ValueError, match="3 completions but 2 gold"):
        f(prompts=[P] * 3, completions=[GOOD] * 3, answer=["7", "7"])


def test_client_and_async_client(setup):
    c = Client(setup["url"])
    assert c.health()["status"] == "ok"
    res = c.rewards([{"prompt": P, "response": GOOD, "gold": "7"}])["results"]
    assert res[0]["reward"] == setup["good"] and res[0]["answer"] == "7"
    v = c.verify([{"gold": "\\frac12", "pred": "0.5"}, {"gold": "3", "pred": "4"}])["results"]
    assert [x["verdict"] for x in v] == ["equal", "not_equal"]
    g = c.get_reward([P + GOOD], [P], ["7"])
    assert g["rewards"] == [setup["good"]]
    s = c.step_rewards([{"prompt": P, "steps": ["2 + 3 = 5", "5 * 4 = 21"]}], scorer="arith")
    assert [x["score"] for x in s["results"][0]["steps"]] == [1.0, 0.0]

    async def many():
        a = AsyncClient(setup["url"])
        return await asyncio.gather(
            a.ahealth(),
            *(a.arewards([{"prompt": P, "response": GOOD, "gold": "7"}]) for _ in range(8)),
            a.averify([{"gold": "2", "pred": "4/2"}]),
            a.aget_reward([P + BAD], [P], ["7"]),
        )

    h, *rest = asyncio.run(many())
    assert h["status"] == "ok"
    assert [r["results"][0]["reward"] for r in rest[:8]] == [setup["good"]] * 8
    assert rest[8]["results"][0]["verdict"] == "equal"
    assert rest[9]["rewards"] == [setup["bad"]]
    with pytest.raises(ServeError, match="HTTP 4"):
        c.request("/v1/rewards", {"no_items": []})


def test_auth_token_is_sent_and_required():
    s = Serve("--preset", "deepseek-r1", "--auth-token", "s3cret")
    try:
        item = [{"prompt": P, "response": GOOD, "gold": "7"}]
        assert Client(s.url, token="s3cret").rewards(item)["results"][0]["reward"] == 2.0
        with pytest.raises(ServeError, match="HTTP 401"):
            Client(s.url).rewards(item)
        with pytest.raises(ServeError, match="HTTP 401"):
            Client(s.url, token="wrong").rewards(item)
    finally:
        s.stop()
