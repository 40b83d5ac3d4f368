"""Talks to Agentry's OpenAI-compatible API with the official `openai` client and prints
what it saw as one JSON object. Usage: openai_client.py BASE_URL API_KEY AGENT_SLUG"""

import json
import sys

import openai
from openai import OpenAI

base, key, slug = sys.argv[1:4]
client = OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=30)
out = {"models": [m.id for m in client.models.list()]}

whole = client.chat.completions.create(
    model=slug, messages=[{"role": "user", "content": "Hello from Python"}]
)
out["whole"] = whole.choices[0].message.content
out["whole_finish"] = whole.choices[0].finish_reason
out["whole_tokens"] = whole.usage.total_tokens if whole.usage else 0

deltas = []
finish = None
usage = 0
stream = client.chat.completions.create(
    model=slug,
    messages=[{"role": "user", "content": "Stream please"}],
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage.total_tokens
    for choice in chunk.choices:
        if choice.delta.content:
            deltas.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
out["deltas"] = deltas
out["stream_finish"] = finish
out["stream_tokens"] = usage

try:
    client.chat.completions.create(model="no-such-agent", messages=[{"role": "user", "content": "x"}])
    out["unknown_model"] = "answered"
except openai.NotFoundError as e:
    out["unknown_model"] = e.body.get("code") if isinstance(e.body, dict) else "not_found"

try:
    OpenAI(base_url=f"{base}/v1", api_key="agk_wrong", max_retries=0).models.list()
    out["wrong_key"] = "answered"
except openai.AuthenticationError:
    out["wrong_key"] = "refused"

# The provider breaks off mid-answer: streamed, the client raises after the text it got;
# whole, the request fails with a 5xx. Neither passes for a finished answer.
got = []
try:
    for chunk in client.chat.completions.create(
        model=slug, messages=[{"role": "user", "content": "Break mid-stream"}], stream=True
    ):
        for choice in chunk.choices:
            if choice.delta.content:
                got.append(choice.delta.content)
    out["broken_stream"] = "finished"
except openai.APIError as e:
    out["broken_stream"] = type(e).__name__
out["broken_stream_text"] = "".join(got)

try:
    client.chat.completions.create(model=slug, messages=[{"role": "user", "content": "Break whole"}])
    out["broken_whole"] = "finished"
except openai.APIStatusError as e:
    out["broken_whole"] = e.status_code

print(json.dumps(out))
