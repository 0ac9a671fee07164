"""Loads stepwise's exported SFT / DPO files with `datasets` and checks them with TRL's
own format functions (trl.data_utils): conversational rows, and the columns the SFT and
DPO trainers read. Usage: check_trl.py FILE... (.jsonl or .parquet). Exits 1 on failure."""

import sys

from datasets import load_dataset
from trl.data_utils import is_conversational, maybe_extract_prompt


def check(path: str) -> None:
    kind = "parquet" if path.endswith(".parquet") else "json"
    ds = load_dataset(kind, data_files=path, split="train")
    cols = set(ds.column_names)
    for row in ds:
        assert is_conversational(row), f"{path}: a row is not conversational: {row}"
        if "chosen" in cols:
            # the DPO trainer's columns: prompt, chosen, rejected (explicit prompt)
            assert {"prompt", "chosen", "rejected"} <= cols, f"{path}: {cols}"
            out = maybe_extract_prompt(row)
            assert out["prompt"] == row["prompt"], f"{path}: prompt not kept"
            assert row["chosen"][-1]["role"] == "assistant"
            assert row["rejected"][-1]["role"] == "assistant"
            assert row["chosen"] != row["rejected"], f"{path}: chosen equals rejected"
        elif "messages" in cols:
            assert row["messages"][-1]["role"] == "assistant"
        else:
            assert {"prompt", "completion"} <= cols, f"{path}: {cols}"
            assert row["completion"][-1]["role"] == "assistant"
    print(f"ok {path}: {len(ds)} rows, columns {sorted(cols)}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        check(p)
