"""The stand-in's /v1/chat/completions, for moderation models only: Llama Guard's answers.

Markers in the last user message choose the answer:
  `[unsafe:S1]` (or `[unsafe:S1,S10]`) -> "unsafe\nS1"   `[screen-down]` -> 503
  `[screen-busy]` -> 429   `[screen-garbled]` -> an answer that is neither safe nor unsafe
  `[screen-slow]` -> no answer until the client gives up (or the stand-in closes)
anything else -> "safe".
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from aiohttp import web

from sandbox.together.responses import error_response

CHAT_PATH = "/v1/chat/completions"
# The moderation models the stand-in serves (Together's serverless Llama Guard models).
MODERATION_MODELS = frozenset(
    {
        "meta-llama/Llama-Guard-4-12B",
        "meta-llama/Meta-Llama-Guard-3-8B",
        "meta-llama/Llama-Guard-3-11B-Vision-Turbo",
    }
)
UNSAFE_MARKER = re.compile(r"\[unsafe:(S\d{1,2}(?:,S\d{1,2})*)\]")
DOWN_MARKER = "[screen-down]"
BUSY_MARKER = "[screen-busy]"
GARBLED_MARKER = "[screen-garbled]"
SLOW_MARKER = "[screen-slow]"


class Stall(Exception):
    """The answer to `[screen-slow]`: the route waits instead of answering."""


def _last_user_text(messages: list[Any]) -> str | None:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # OpenAI-style parts
                return " ".join(
                    str(part.get("text", "")) for part in content if isinstance(part, dict)
                )
            return None
    return None


def chat_answer(body: Any) -> web.Response:
    """The response to an authenticated POST body; raises Stall for `[screen-slow]`."""
    if not isinstance(body, dict):
        return error_response(400, "Request body must be valid JSON.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_response(400, "model is required.", param="model")
    if model not in MODERATION_MODELS:
        return error_response(
            404, f"Unable to access model {model}.", param="model", code="model_not_available"
        )
    messages = body.get("messages")
    text = _last_user_text(messages) if isinstance(messages, list) else None
    if text is None:
        return error_response(400, "messages must end with a user message.", param="messages")
    if DOWN_MARKER in text:
        return error_response(503)
    if BUSY_MARKER in text:
        return error_response(429)
    if SLOW_MARKER in text:
        raise Stall
    unsafe = UNSAFE_MARKER.search(text)
    if GARBLED_MARKER in text:
        content = "I cannot help with classifying that."
    elif unsafe is not None:
        content = f"unsafe\n{unsafe.group(1)}"
    else:
        content = "safe"
    return web.json_response(_completion(model, content))


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chat-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "prompt": [],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "tool_calls": []},
                "finish_reason": "eos",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 200, "completion_tokens": 3, "total_tokens": 203},
    }
