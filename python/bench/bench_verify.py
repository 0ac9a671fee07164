"""Per-call cost of stepwise from Python vs math-verify, side by side on the same pairs.

    .venv/bin/python python/bench/bench_verify.py [--rounds 3]

Pairs: math-verify's own cases (shared/data/math_verify_cases). Rows: math-verify
``verify(parse(gold), parse(pred))``, ``stepwise.verify`` per call, ``stepwise.verify_batch``
on 2 threads; rounds alternate and the median per-pair time of each is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import stepwise


def cases() -> list[tuple[str, str]]:
    here = Path(__file__).resolve()
    for p in here.parents:
        for d in (p / "shared" / "data", p.parent / "shared" / "data"):
            f = d / "math_verify_cases" / "cases.jsonl"
            if f.is_file():
                rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
                return [(r["gold"], r["pred"]) for r in rows]
    sys.exit("math_verify_cases not found")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    from math_verify import parse, verify

    pairs = cases()
    golds = [g for g, _ in pairs]
    preds = [p for _, p in pairs]
    t: dict[str, list[float]] = {"math-verify": [], "stepwise.verify": [], "verify_batch(2)": []}
    for _ in range(a.rounds):
        s = time.perf_counter()
        for g, p in pairs:
            verify(parse(g), parse(p))
        t["math-verify"].append((time.perf_counter() - s) / len(pairs))
        s = time.perf_counter()
        for g, p in pairs:
            stepwise.verify(g, p)
        t["stepwise.verify"].append((time.perf_counter() - s) / len(pairs))
        s = time.perf_counter()
        stepwise.verify_batch(golds, preds, threads=2)
        t["verify_batch(2)"].append((time.perf_counter() - s) / len(pairs))
    base = statistics.median(t["math-verify"])
    print(f"{len(pairs)} pairs, {a.rounds} rounds (median per pair; range)")
    print("| row | per pair | range | speed-up vs math-verify |")
    print("|---|---|---|---|")
    for k, v in t.items():
        m = statistics.median(v)
        print(f"| {k} | {m * 1e6:.1f} µs | {min(v) * 1e6:.1f}–{max(v) * 1e6:.1f} µs | {base / m:.0f}x |")


if __name__ == "__main__":
    main()
