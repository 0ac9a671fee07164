# Written by `stepwise bench verify`: times math-verify's parse+verify calls, one pair at a time,
# then (when a fifth argument names a file and the venv has the `stepwise` wheel) the same pairs
# through `stepwise.verify` per call and `stepwise.verify_batch`, in this same process.
import json, sys, time
from math_verify import parse, verify
pairs_path, out_path, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
sw_out, sw_threads = (sys.argv[4], int(sys.argv[5])) if len(sys.argv) > 5 else (None, 0)
pairs = [json.loads(l) for l in open(pairs_path, encoding="utf-8")]
with open(out_path, "w", encoding="utf-8") as out:
    for i, p in enumerate(pairs):
        err = False
        t0 = time.perf_counter()
        try:
            g = parse(p["gold"], parsing_timeout=timeout)
            q = parse(p["pred"], parsing_timeout=timeout)
            ok = bool(verify(g, q, timeout_seconds=timeout))
        except Exception:
            ok, err = False, True
        dt = time.perf_counter() - t0
        out.write(json.dumps({"i": i, "eq": ok, "s": dt, "err": err}) + "\n")
        if i % 200 == 0:
            out.flush()
            print(i, flush=True)
if sw_out:
    import stepwise
    golds = [p["gold"] for p in pairs]
    preds = [p["pred"] for p in pairs]
    # Each timing repeats the whole pass until a second has gone by; seconds are per pass.
    def timed(f):
        reps, t0 = 0, time.perf_counter()
        while reps == 0 or time.perf_counter() - t0 < 1.0:
            f()
            reps += 1
        return (time.perf_counter() - t0) / reps
    verdicts = [stepwise.verify(g, q) for g, q in zip(golds, preds)]
    single = timed(lambda: [stepwise.verify(g, q) for g, q in zip(golds, preds)])
    batch = timed(lambda: stepwise.verify_batch(golds, preds, threads=sw_threads))
    same = stepwise.verify_batch(golds, preds, threads=sw_threads) == verdicts
    with open(sw_out, "w", encoding="utf-8") as f:
        json.dump({"single": single, "batch": batch, "eq": verdicts, "batch_same": same}, f)
