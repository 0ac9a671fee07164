"""Drives a stepwise gateway with the official openai client, unchanged.

Usage: python openai_client.py BASE_URL; prints one JSON line per call for the Rust test to check.
"""

import json
import sys

from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key="unused")
out = {"models": [m.id for m in client.models.list().data]}
for model in ["bon/arith", "weighted/arith", "beam/arith"]:
    r = client.chat.completions.create(
        model=model,
        seed=5,
        messages=[{"role": "user", "content": "What is 3 + 4?"}],
        extra_body={"stepwise": {"n": 4, "id": "p1"}},
    )
    out[model] = {
        "content": r.choices[0].message.content,
        "usage": r.usage.model_dump(),
        "stepwise": r.model_extra["stepwise"],
    }
stream = client.chat.completions.create(
    model="bon/arith",
    messages=[{"role": "user", "content": "What is 3 + 4?"}],
    stream=True,
    stream_options={"include_usage": True},
)
text, usage = "", None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage.model_dump()
out["stream"] = {"content": text, "usage": usage}
print(json.dumps(out))
