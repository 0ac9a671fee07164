# Written by `stepwise bench verify`: times math-verify's parse+verify calls, one pair at a time.
import json, sys, time
from math_verify import parse, verify
pairs_path, out_path, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
