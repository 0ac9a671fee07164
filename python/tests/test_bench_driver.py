"""The driver `stepwise bench verify` runs in its reference venv: math-verify's results per
pair, then the wheel's Python rows on the same pairs (this venv has both)."""

import json
import subprocess
import sys
from pathlib import Path

DRIVER = Path(__file__).resolve().parents[2] / "crates" / "bench" / "assets" / "math_verify_driver.py"


def test_driver_times_math_verify_then_the_wheel(tmp_path):
    pairs = [("$\\frac12$", "The answer is $0.5$"), ("$3$", "$4$"), ("$x^2$", "$x \\cdot x$")]
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps({"gold": g, "pred": p}) + "\n" for g, p in pairs))
    out, rows = tmp_path / "mv.jsonl", tmp_path / "rows.json"
    cmd = [sys.executable, str(DRIVER), str(src), str(out), "5", str(rows), "2"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    mv = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["i"] for r in mv] == [0, 1, 2]
    assert [r["eq"] for r in mv] == [True, False, True]
    assert all(r["s"] > 0 and not r["err"] for r in mv)
    py = json.loads(rows.read_text())
    assert py["eq"] == [True, False, True]
    assert py["batch_same"] is True
    assert py["single"] > 0 and py["batch"] > 0
    # without the last two arguments the driver times math-verify only
    rows.unlink()
    subprocess.run(cmd[:5], check=True, capture_output=True, timeout=120)
    assert not rows.exists()
