import json
import os
from pathlib import Path

import pytest


def _data_dir() -> Path:
    env = os.environ.get("STEPWISE_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for p in here.parents:
        cand = p / "shared" / "data"
        if cand.is_dir():
            return cand
        cand = p.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    raise RuntimeError("shared/data not found above the repository (set STEPWISE_DATA)")


@pytest.fixture(scope="session")
def math_verify_cases():
    path = _data_dir() / "math_verify_cases" / "cases.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
