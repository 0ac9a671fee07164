import asyncio

import pytest
import stepwise
from stepwise.rewards import (
    Rewards,
    openrlhf_reward_func,
    score_items,
    trl_reward,
    trl_reward_async,
    verl_compute_score,
)

R1 = "<think>2+2=4</think> The answer is \\boxed{4}."


def test_rewards_match_serve_presets():
    r = Rewards(preset="deepseek-r1")
    s = r.score("", R1, "4")
    assert s["reward"] == 2.0 and s["components"] == {"accuracy": 1.0, "format": 1.0}
    assert s["answer"] == "4" and s["verdict"] == "equal"
    toml = '[reward]\ncomponents = [{kind = "accuracy", weight = 1.0}, {kind = "format", weight = 0.5}]\n'
    assert Rewards(toml=toml).score("", R1, "4")["reward"] == 1.5
    with pytest.raises(ValueError):
        Rewards(preset="no-such-preset")
    out = r.score_batch(["", ""], [R1, "\\boxed{5}"], ["4", "4"], [None, None], threads=2)
    assert [o["reward"] for o in out] == [2.0, 0.0]


def test_trl_signature_strings_and_conversations():
    f = trl_reward()
    logged = {}
    out = f(
        prompts=["Q", [{"role": "user", "content": "Q"}]],
        completions=[R1, [{"role": "assistant", "content": R1}]],
        completion_ids=[[1, 2], [3]],
        trainer_state=object(),
        log_metric=lambda k, v: logged.__setitem__(k, v),
        solution=["4", "4"],
        other_column=["x", "y"],
    )
    assert out == [2.0, 2.0]
    assert logged == {"stepwise/accuracy": 1.0, "stepwise/format": 1.0}


def test_trl_prefilled_think_and_none_gold():
    f = trl_reward(think_prefilled=True)
    assert f(prompts=["Q"], completions=["2+2=4</think> \\boxed{4}"], solution=["4"]) == [2.0]
    assert f(prompts=["Q"], completions=[R1], solution=[None]) == [None]


def test_trl_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 completions but 1 gold"):
        trl_reward()(prompts=["a", "b"], completions=[R1, R1], solution=["4"])


def test_trl_async_variant():
    f = trl_reward_async()
    assert asyncio.run(f(prompts=["Q"], completions=[R1], solution=["4"])) == [2.0]


def test_verl_single_and_batch_with_stable_keys():
    toml = (
        '[reward]\npreset = "deepseek-r1"\n'
        '[sources."openai/gsm8k"]\npreset = "gsm8k"\n'
    )
    cs = verl_compute_score(toml=toml)
    a = cs("openai/gsm8k", "so #### 24", "24", extra_info={"index": 1}, reward_router_address=None)
    b = cs("math", R1, "4", None, reward_kwargs={}, reward_model_tokenizer=None)
    assert a["score"] == 1.0 and b["score"] == 2.0
    assert set(a) == set(b)
    batch = cs(
        data_sources=["openai/gsm8k", "math", "math", "math"],
        solution_strs=["#### 24", R1, R1, R1],
        ground_truths=["24", "4", ["5", "4"], None],
        extra_infos=[None] * 4,
    )
    assert [d["score"] for d in batch] == [1.0, 2.0, 2.0, 1.0]
    assert len({frozenset(d) for d in batch}) == 1


def test_openrlhf_labels_of_every_type():
    f = openrlhf_reward_func(preset="gsm8k")
    out = f(["Q #### 3", "Q #### 2.5", "Q #### 7", "Q #### 1"], ["Q"] * 4, ["3", 2.5, [6, 7], None])
    rewards = [float(x) for x in out["rewards"]]
    assert rewards == [1.0, 1.0, 1.0, 0.0]
    assert len(out["scores"]) == 4
    assert set(out["extra_logs"]) >= {"accuracy", "no_answer", "prompt_mismatch"}


def test_step_tools():
    text = "Step 1: 2 + 3 = 5\n\nStep 2: 5 * 4 = 21\n\nSo the answer is 21."
    steps = stepwise.split_steps(text)
    assert len(steps) == 3
    claims = stepwise.check_arithmetic(text)
    assert [c["status"] for c in claims] == ["right", "wrong"]
    assert claims[1]["value"] == "20"
    assert stepwise.step_score("2 + 3 = 5")[0] == 1.0
    m = stepwise.processbench_f1([-1, 2, 1, -1], [-1, 2, 0, None])
    # erroneous: 1 of 2 hit; correct: 1 of 2 hit -> F1 0.5
    assert m["acc_erroneous"] == 0.5 and m["acc_correct"] == 0.5 and m["f1"] == 0.5
    assert stepwise.auroc([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == 1.0
    assert stepwise.auroc([0.5, 0.5], [True, True]) is None
    # one bin: two predictions of 0.95, one right -> |0.95 - 0.5| = 0.45
    assert abs(stepwise.ece([0.95, 0.95], [True, False]) - 0.45) < 1e-12
    assert abs(stepwise.brier([1.0, 0.0], [True, True]) - 0.5) < 1e-12


def _trl_in_worker(i):
    # Module-level so a ProcessPoolExecutor can pickle it; each worker builds its function.
    return trl_reward()(prompts=["Q"], completions=[f"<think>x</think> \\boxed{{{i}}}"], solution=[str(i)])


def test_rewards_from_8_threads_and_a_process_pool():
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    f, cs = trl_reward(), verl_compute_score(preset="gsm8k")

    def work(i):
        a = f(prompts=["Q"] * 2, completions=[R1, f"\\boxed{{{i}}}"], solution=["4", str(i)])
        b = cs("openai/gsm8k", f"#### {i}", i)["score"]
        return a, b

    with ThreadPoolExecutor(8) as ex:
        out = list(ex.map(work, range(64)))
    assert out == [([2.0, 1.0], 1.0)] * 64
    with ProcessPoolExecutor(2) as ex:
        assert list(ex.map(_trl_in_worker, range(8))) == [[2.0]] * 8


def test_hostile_completions_are_scored_within_50ms_each():
    import time

    from test_verify import HOSTILE

    f = trl_reward()
    cs = verl_compute_score()
    orm = openrlhf_reward_func()
    f(prompts=["Q"], completions=[R1], solution=["4"])  # warm up (and torch's first import)
    orm(["Q"], ["Q"], ["4"])
    calls = (
        lambda h: f(prompts=["Q"], completions=[f"<think>{h}</think> \\boxed{{{h}}}"], solution=[h]),
        lambda h: cs("math", h, h),
        lambda h: orm(["Q" + h], ["Q"], [h]),
    )
    for h in HOSTILE:
        for call in calls:
            t = time.perf_counter()
            call(h)
            dt = time.perf_counter() - t
            assert dt < 0.05, f"{dt * 1000:.1f} ms on {h[:40]!r}"


def test_score_items_refuses_lists_of_different_lengths():
    with pytest.raises(ValueError, match="2 prompts, 1 responses"):
        score_items(Rewards(), ["", ""], [R1], ["4"], [None])


SHOP = (
    '[[reward.components]]\nkind = "shop_action"\n'
    '[[reward.components]]\nkind = "self_certainty"\nweight = 0.1\n'
)
SHOP_GOLD = '{"type": "click", "name": "Add to cart"}'
SHOP_RESP = (
    '<think>ok</think>{"rationale": "I like it", '
    '"action": {"type": "click", "name": "add to cart"}}'
)


def test_rewards_take_logprobs_and_report_flags():
    import math

    r = Rewards(toml=SHOP)
    # no logprobs: self-certainty 0 and the flag, as /v1/rewards reports it
    s = r.score("", SHOP_RESP, SHOP_GOLD)
    assert s["components"]["self_certainty"] == 0.0
    assert s["flags"] == {"action_unparsed": False, "no_logprobs": True}
    assert s["logs"] == {}
    # one token (1/2, 1/4, 1/4), one uniform: KL(U || p) is 1/3 [ln(2/3) + 2 ln(4/3)]
    # for the first and 0 for the second, so the mean is half that
    lp = [[math.log(0.5), math.log(0.25), math.log(0.25)], [math.log(0.5)] * 2]
    want = (math.log(2 / 3) + 2 * math.log(4 / 3)) / 6
    s = r.score("", SHOP_RESP, SHOP_GOLD, logprobs=lp)
    assert abs(s["components"]["self_certainty"] - want) < 1e-12
    assert abs(s["reward"] - (1.0 + 0.1 * want)) < 1e-12
    assert s["flags"]["no_logprobs"] is False
    # per item in a batch, None for an item without
    out = r.score_batch(["", ""], [SHOP_RESP] * 2, [SHOP_GOLD] * 2, [None, None], logprobs=[lp, None])
    assert abs(out[0]["components"]["self_certainty"] - want) < 1e-12
    assert [o["flags"]["no_logprobs"] for o in out] == [False, True]
    with pytest.raises(ValueError, match="one entry per item"):
        r.score_batch([""], [SHOP_RESP], [SHOP_GOLD], [None], logprobs=[lp, lp])
    # a configuration that raises no flag reports none
    assert Rewards(preset="deepseek-r1").score("", R1, "4")["flags"] == {}
