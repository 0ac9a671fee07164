"""Drives a stepwise gateway with the official openai client, unchanged.

Usage: python openai_client.py BASE_URL CALLS_JSON

CALLS_JSON is a list of calls; each is {"kind": "models"}, or {"kind": "chat" | "completion",
"model": ..., "messages" | "prompt": ..., "stream": bool, "max_retries": int, ...} where every
other key is passed to create() (extra_body carries the stepwise field). Prints one JSON list
with one result per call: {"content", "finish_reason", "usage", "stepwise", "progress"} or
{"error": {"status", "message"}} for the Rust tests to check. The bearer token is
$OPENAI_API_KEY (as the client reads it), else "unused".
"""

import json
import os
import sys

import openai
from openai import OpenAI


def run(client, call):
    kind = call.pop("kind")
    if kind == "models":
        return {"models": [m.id for m in client.models.list().data]}
    retries = call.pop("max_retries", 2)
    c = client.with_options(max_retries=retries)
    create = c.chat.completions.create if kind == "chat" else c.completions.create
    try:
        r = create(**call)
    except openai.APIStatusError as e:
        return {"error": {"status": e.status_code, "message": str(e)}}
    if not call.get("stream"):
        choice = r.choices[0]
        text = choice.message.content if kind == "chat" else choice.text
        return {
            "content": text,
            "finish_reason": choice.finish_reason,
            "usage": r.usage.model_dump(),
            "stepwise": r.model_extra["stepwise"],
        }
    text, usage, stepwise, finish = "", None, None, None
    for chunk in r:
        if chunk.choices:
            choice = chunk.choices[0]
            piece = choice.delta.content if kind == "chat" else choice.text
            text += piece or ""
            finish = choice.finish_reason or finish
        if chunk.usage:
            usage = chunk.usage.model_dump()
        extra = chunk.model_extra or {}
        if "stepwise" in extra:
            stepwise = extra["stepwise"]
    return {
        "content": text,
        "finish_reason": finish,
        "usage": usage,
        "stepwise": stepwise,
    }


def main():
    client = OpenAI(
        base_url=sys.argv[1], api_key=os.environ.get("OPENAI_API_KEY", "unused")
    )
    print(json.dumps([run(client, call) for call in json.loads(sys.argv[2])]))


if __name__ == "__main__":
    main()
