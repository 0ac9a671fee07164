# Written by `stepwise bench serve`: the reference reward server.
# Accuracy follows open-r1's GRPO accuracy_reward recipe (src/open_r1/rewards.py).
import logging

from fastapi import FastAPI
from latex2sympy2_extended import NormalizationConfig
from math_verify import LatexExtractionConfig, parse, verify
from pydantic import BaseModel


class _TimeoutCounter(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.n = 0

    def emit(self, record):
        if "Timeout" in record.getMessage():
            self.n += 1


_timeouts = _TimeoutCounter()
logging.getLogger("math_verify").addHandler(_timeouts)
logging.getLogger("math_verify").setLevel(logging.WARNING)
# the recipe passes equations=True, which latex2sympy2_extended 1.x warns about on every
# parse (it is a no-op now); keep that warning out of the timed path
logging.getLogger("latex2sympy2_extended").setLevel(logging.ERROR)

GOLD_CONFIG = [LatexExtractionConfig()]


def answer_config(malformed_operators=False):
    return [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(
                nits=False,
                malformed_operators=malformed_operators,
                basic_latex=True,
                equations=True,
                boxed="all",
                units=True,
            ),
            boxed_match_priority=0,
            try_extract_without_anchor=False,
        )
    ]


ANSWER_CONFIG = answer_config()
ANSWER_CONFIG_MALFORMED_OPS = answer_config(malformed_operators=True)

app = FastAPI()


class Req(BaseModel):
    query: list[str]
    prompts: list[str]
    labels: list[str]


def format_ok(prompt: str, response: str) -> bool:
    r = response.strip()
    if r.count("</think>") != 1:
        return False
    opens = r.count("<think>")
    opened_here = r.startswith("<think>") and opens == 1
    prefilled = opens == 0 and prompt.rstrip().endswith("<think>")
    if not (opened_here or prefilled):
        return False
    after = r[r.find("</think>") + len("</think>"):]
    i = after.find("<answer>")
    return "\\boxed{" in after or (i >= 0 and "</answer>" in after[i:])


def parse_gold(label: str):
    return parse("\\boxed{" + label + "}", extraction_mode="first_match", extraction_config=GOLD_CONFIG)


def parse_answer(response: str, config=ANSWER_CONFIG):
    return parse(response, extraction_config=config, extraction_mode="first_match")


def safe_verify(a, b) -> float:
    try:
        return 1.0 if verify(a, b) else 0.0
    except Exception:
        return 0.0


def accuracy(response: str, label: str):
    """(accuracy, timed out, gold unparseable), as open-r1's accuracy_reward scores it."""
    before = _timeouts.n
    gold = parse_gold(label)
    if len(gold) == 0:
        return 1.0, 1.0 if _timeouts.n > before else 0.0, 1.0
    a = safe_verify(parse_answer(response), gold)
    return a, (1.0 if _timeouts.n > before else 0.0), 0.0


def split(q: str, p: str) -> str:
    return q[len(p):] if q.startswith(p) else q


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.post("/get_reward")
async def get_reward(req: Req):
    rewards, acc, fmt, timed_out, gold_unparsed = [], [], [], [], []
    for q, p, l in zip(req.query, req.prompts, req.labels):
        response = split(q, p)
        a, t, u = accuracy(response, l)
        f = 1.0 if format_ok(p, response) else 0.0
        rewards.append(a + f)
        acc.append(a)
        fmt.append(f)
        timed_out.append(t)
        gold_unparsed.append(u)
    return {
        "rewards": rewards,
        "scores": rewards,
        "extra_logs": {
            "accuracy": acc,
            "format": fmt,
            "timed_out": timed_out,
            "gold_unparsed": gold_unparsed,
        },
    }


@app.post("/diagnose")
async def diagnose(req: Req):
    out = {"gold": [], "answer": [], "malformed_operators_on": [], "gold_first": []}
    for q, p, l in zip(req.query, req.prompts, req.labels):
        response = split(q, p)
        gold = parse_gold(l)
        ans = parse_answer(response)
        out["gold"].append(str(gold))
        out["answer"].append(str(ans))
        out["malformed_operators_on"].append(
            safe_verify(parse_answer(response, ANSWER_CONFIG_MALFORMED_OPS), gold)
        )
        out["gold_first"].append(safe_verify(gold, ans))
    return out
