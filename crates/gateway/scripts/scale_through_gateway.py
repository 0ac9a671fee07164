"""Accuracy versus tokens of the gateway's served strategies, asked through the official
openai client, in the layout of `stepwise scale`'s table; with --scale-json, beside that
table row by row.

Every (strategy, N, problem) is one chat completion to model STRATEGY/arith with
extra_body {"stepwise": {"n": N, "id": PROBLEM_ID}} and the run's seed, so the gateway runs
the search `stepwise scale` runs for that unit (seeds derive from the seed and the problem
id). Correctness: `stepwise.verify(gold, stepwise.answer)` (the stepwise wheel). Tokens and
calls: the answer's `stepwise.spent` (policy + judge).

Usage:
  python scale_through_gateway.py --base-url http://127.0.0.1:8100/v1 --data arith40.jsonl \
      --strategies bon,weighted,beam --n 1,2,4 [--seed 0] [--scale-json scale-out/scale.json] \
      [--answers answers.jsonl | --from-answers answers.jsonl]
"""

import argparse
import contextlib
import json
import os
import sys

import stepwise
from openai import OpenAI


def rows_of(results, strategies, ns):
    rows = []
    for s in strategies:
        for n in ns:
            cell = [r for r in results if r["strategy"] == s and r["n"] == n]
            if not cell:
                continue
            k = len(cell)
            rows.append(
                {
                    "strategy": s,
                    "n": n,
                    "problems": k,
                    "correct": sum(r["correct"] for r in cell),
                    "mean_tokens": sum(r["tokens"] for r in cell) / k,
                    "mean_policy_tokens": sum(r["policy_tokens"] for r in cell) / k,
                    "mean_judge_tokens": sum(r["judge_tokens"] for r in cell) / k,
                    "mean_calls": sum(r["calls"] for r in cell) / k,
                }
            )
    return rows


def line(r):
    acc = 100.0 * r["correct"] / r["problems"]
    return (
        f"| {r['strategy']} | {r['n']} | {acc:.1f}% | {r['correct']}/{r['problems']} "
        f"| {r['mean_tokens']:.1f} | {r['mean_policy_tokens']:.1f} "
        f"| {r['mean_judge_tokens']:.1f} | {r['mean_calls']:.1f} |"
    )


HEADER = (
    "| strategy | N | accuracy | correct / problems | mean tokens (policy + judge) "
    "| policy | judge | calls |\n|---|---:|---:|---:|---:|---:|---:|---:|"
)


def compare(ours, scale_rows):
    by_key = {(r["strategy"], r["n"]): r for r in scale_rows}
    out = [
        (
            "| strategy | N | gateway accuracy | scale accuracy | gateway tokens "
            "| scale tokens | gateway calls | scale calls | equal |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in ours:
        s = by_key.get((r["strategy"], r["n"]))
        if s is None:
            out.append(f"| {r['strategy']} | {r['n']} | | (not in scale) | | | | | |")
            continue
        same = (
            r["correct"] == s["correct"]
            and r["problems"] == s["problems"]
            and abs(r["mean_tokens"] - s["mean_tokens"]) < 1e-9
            and abs(r["mean_calls"] - s["mean_calls"]) < 1e-9
        )
        out.append(
            f"| {r['strategy']} | {r['n']} | {r['correct']}/{r['problems']} "
            f"| {s['correct']}/{s['problems']} | {r['mean_tokens']:.1f} "
            f"| {s['mean_tokens']:.1f} | {r['mean_calls']:.1f} | {s['mean_calls']:.1f} "
            f"| {'yes' if same else 'NO'} |"
        )
    return "\n".join(out)


def per_problem(results, export_path):
    """Answers and tokens of every (strategy, N, problem) against the scale run's records
    (`stepwise data export RUN`): sampling strategies at N use the first N samples of the
    problem's draw (tokens compared; the answer follows from the same samples), tree
    searches their own unit (answer and tokens compared)."""
    units = {}
    with open(export_path, encoding="utf-8") as f:
        for x in f:
            if x.strip():
                u = json.loads(x)
                units[u["key"]] = u["payload"]
    diffs = {}
    for r in results:
        draw = units.get(f"{r['id']}/samples")
        tree = units.get(f"{r['id']}/{r['strategy']}/n={r['n']}")
        if tree is not None:
            o = tree["outcome"]
            want = (
                o["answer"],
                o["spent"]["policy_tokens"] + o["spent"]["judge_tokens"],
            )
            got = (r["answer"], r["tokens"])
        elif draw is not None:
            first = draw["samples"][: r["n"]]
            want = sum(x["tokens"] + x["judge"]["judge_tokens"] for x in first)
            got = r["tokens"]
        else:
            want, got = "no record", r["tokens"]
        if want != got:
            diffs.setdefault((r["strategy"], r["n"]), []).append((r["id"], got, want))
    return diffs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--data", required=True, help="JSONL with id, question, gold")
    p.add_argument("--strategies", default="bon,weighted,beam")
    p.add_argument("--n", default="1,2,4")
    p.add_argument("--scorer", default="arith")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--scale-json", help="scale.json of `stepwise scale` to compare with"
    )
    p.add_argument(
        "--scale-export",
        help="`stepwise data export` JSONL of the scale run, for a per-problem check",
    )
    p.add_argument(
        "--answers",
        help="append every answer (one JSON line each) here; those already there are kept",
    )
    p.add_argument(
        "--from-answers", help="tabulate the answers of an earlier --answers file"
    )
    a = p.parse_args()
    strategies = a.strategies.split(",")
    ns = [int(x) for x in a.n.split(",")]
    if a.from_answers:
        with open(a.from_answers, encoding="utf-8") as f:
            results = [json.loads(x) for x in f if x.strip()]
    else:
        results = ask(a, strategies, ns)
    ours = rows_of(results, strategies, ns)
    print(HEADER)
    for r in ours:
        print(line(r))
    partial = sum(r["partial"] for r in results)
    print(f"\n{len(results)} requests, {partial} answered partial.")
    if a.scale_json:
        with open(a.scale_json, encoding="utf-8") as f:
            scale_rows = json.load(f)
        print("\n" + compare(ours, scale_rows))
    if a.scale_export:
        diffs = per_problem(results, a.scale_export)
        print("\nPer problem (answer and tokens against the scale run's records):")
        for r in ours:
            d = diffs.get((r["strategy"], r["n"]), [])
            print(
                f"- {r['strategy']} N={r['n']}: {r['problems'] - len(d)}/{r['problems']} equal"
            )
            for pid, got, want in d:
                print(f"  - {pid}: gateway {got}, scale {want}")


def ask(a, strategies, ns):
    """Every (strategy, N, problem) through the gateway."""
    with open(a.data, encoding="utf-8") as f:
        problems = [json.loads(x) for x in f if x.strip()]
    client = OpenAI(base_url=a.base_url, api_key="unused", timeout=600)
    # answers already in the --answers file are kept, not asked again
    results = []
    if a.answers and os.path.exists(a.answers):
        with open(a.answers, encoding="utf-8") as f:
            results = [json.loads(x) for x in f if x.strip()]
    done = {(r["strategy"], r["n"], r["id"]) for r in results}
    with contextlib.ExitStack() as stack:
        answers = (
            stack.enter_context(open(a.answers, "a", encoding="utf-8"))
            if a.answers
            else None
        )
        for s in strategies:
            for n in ns:
                for prob in problems:
                    if (s, n, prob["id"]) in done:
                        continue
                    r = client.chat.completions.create(
                        model=f"{s}/{a.scorer}",
                        seed=a.seed,
                        messages=[{"role": "user", "content": prob["question"]}],
                        extra_body={"stepwise": {"n": n, "id": prob["id"]}},
                    )
                    sw = r.model_extra["stepwise"]
                    spent = sw["spent"]
                    res = {
                        "strategy": s,
                        "n": n,
                        "id": prob["id"],
                        "answer": sw["answer"],
                        "partial": sw["partial"],
                        "correct": sw["answer"] is not None
                        and stepwise.verify(prob["gold"], sw["answer"]),
                        "policy_tokens": spent["policy_tokens"],
                        "judge_tokens": spent["judge_tokens"],
                        "tokens": spent["policy_tokens"] + spent["judge_tokens"],
                        "calls": spent["policy_calls"] + spent["judge_calls"],
                    }
                    results.append(res)
                    if answers:
                        answers.write(json.dumps(res) + "\n")
                        answers.flush()
                print(f"{s} N={n}: done", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
