import asyncio
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import stepwise

PAIRS = [("\\frac12", "0.5", True), ("x^2+2x+1", "(x+1)^2", True), ("3", "4", False),
         ("[0, 1)", "[0,1)", True), ("\\sqrt{12}", "2\\sqrt{3}", True), ("5", "50%", False)]


def test_verify_and_verdict():
    for g, p, want in PAIRS:
        assert stepwise.verify(g, p) is want, (g, p)
    assert stepwise.verdict("3", "4") == "not_equal"
    assert stepwise.verdict("\\frac12", "0.5") == "equal"


def test_gold_may_be_a_list():
    assert stepwise.verify(["7", "seven", "0.5"], "1/2")
    assert not stepwise.verify(["7", "8"], "1/2")
    assert not stepwise.verify([], "1/2")


def test_options_change_the_answer():
    assert stepwise.verify("3.14159", "3.14", float_rounding=2)
    assert not stepwise.verify("3.14159", "3.14", float_rounding=5)
    assert not stepwise.verify("f(x) = x", "f(y) = y")
    assert stepwise.verify("f(x) = x", "f(y) = y", strict=False)
    assert not stepwise.verify("(1, \\infty)", "x > 1")
    assert stepwise.verify("(1, \\infty)", "x > 1", allow_set_relation_comp=True)


def test_explain_gives_both_forms():
    ex = stepwise.explain("\\frac12", "The answer is $0.5$.")
    assert ex["verdict"] == "equal"
    assert ex["pred"]["extracted"] == "0.5"
    assert ex["gold"]["normalized"] is not None and ex["pred"]["parsed"] is not None


def test_extract_answer():
    assert stepwise.extract_answer("So the total is $\\boxed{42}$.") == "42"
    assert stepwise.extract_answer("The answer is **73**.") == "73"


def test_verify_batch_in_order_with_threads():
    golds = [g for g, _, _ in PAIRS] * 50
    preds = [p for _, p, _ in PAIRS] * 50
    want = [w for _, _, w in PAIRS] * 50
    assert stepwise.verify_batch(golds, preds) == want
    assert stepwise.verify_batch(golds, preds, threads=2) == want
    assert stepwise.verify_batch([["1", "2"]], ["2"]) == [True]


def test_verify_batch_releases_the_gil():
    # While a large batch runs, another Python thread keeps running.
    golds = ["x^2+2x+1"] * 20000
    preds = ["(x+1)^2"] * 20000
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    before = len(ticks)
    assert all(stepwise.verify_batch(golds, preds, threads=1))
    stop.set()
    t.join()
    assert len(ticks) - before > 5


def test_eight_threads_at_once():
    def work(i):
        return [stepwise.verify(g, p) for g, p, _ in PAIRS] + [stepwise.verify(str(i), f"{i}.0")]

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(work, range(64)))
    for r in results:
        assert r == [w for _, _, w in PAIRS] + [True]


def _in_process(i):
    return stepwise.verify(str(i), f"{2 * i}/2")


def test_process_pool():
    with ProcessPoolExecutor(2) as ex:
        assert list(ex.map(_in_process, range(16))) == [True] * 16


def test_asyncio_tasks():
    async def main():
        return await asyncio.gather(*(asyncio.to_thread(stepwise.verify, "2", "4/2") for _ in range(16)))

    assert asyncio.run(main()) == [True] * 16


HOSTILE = [
    "9^{9^{9^{9^{9^{9^{9^{9^{9}}}}}}}}",  # math-verify issue 65: the power tower
    "(" * 5000 + "1" + ")" * 5000,
    "\\frac{" * 3000 + "1" + "}" * 3000,
    "2^{2^{2^{2^{2^{2^{2^{2^{2^{2}}}}}}}}}!",
    "1" * 100000,
    "\\boxed{" * 2000 + "}" * 2000,
    "x" * 200000,
    "$" * 50000,
    "\\sqrt{" * 4000 + "2" + "}" * 4000,
    "[" + ",".join(["1"] * 20000) + "]",
    "99999999999999999999!",
    "10^{10^{10^{10}}} - 10^{10^{10^{10}}}",
]


def test_hostile_inputs_each_return_within_50ms():
    stepwise.verify("1", "1")  # warm up
    for h in HOSTILE:
        for g, p in ((h, "1"), ("1", h), (h, h)):
            t = time.perf_counter()
            got = stepwise.verify(g, p)
            dt = time.perf_counter() - t
            assert isinstance(got, bool)
            assert dt < 0.05, f"{dt * 1000:.1f} ms on {h[:40]!r}"


def test_math_verify_reported_bugs():
    assert not stepwise.verify("\\frac{1}{2004!}", "\\frac{1}{2006!}")
    assert not stepwise.verify("1-\\frac{1}{e}", "1+\\frac{1}{e}")
    assert not stepwise.verify("y = 2x + 1", "y = 3x + 1")
    assert stepwise.verify("\\sqrt{\\frac{1}{n}}", "\\frac{1}{\\sqrt{n}}")
    assert stepwise.verify("73", "The answer is **73**.")
    assert not stepwise.verify("2", "9^{9^{9^{9^{9^{9^{9^{9^{9}}}}}}}}")


def test_bad_arguments_are_errors_not_crashes():
    import pytest

    with pytest.raises(ValueError):
        stepwise.verify_batch(["1"], ["1", "2"])
    with pytest.raises(ValueError):
        stepwise.verify_batch(["1"], ["1"], threads=0)
    with pytest.raises(TypeError):
        stepwise.verify("1", "1", no_such_option=True)
