"""Prompt screening with a moderation model (Llama Guard) on Together's chat completions API.

The bot.domain.safety.PromptScreen port: one POST per prompt, never retried (the whole check
must fit a short deadline), and every failure becomes ScreenUnavailable with a short reason.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.domain.safety import ScreenUnavailable
from bot.together.client import TogetherClient
from bot.together.errors import (
    TogetherAuthError,
    TogetherBadRequest,
    TogetherConnectionError,
    TogetherError,
    TogetherRateLimited,
    TogetherServerError,
)

log = logging.getLogger(__name__)

# Llama Guard answers in a line or two ("unsafe\nS1,S10"): a few tokens are plenty.
MAX_ANSWER_TOKENS = 20


class TogetherModeration:
    """Asks `model` (e.g. meta-llama/Llama-Guard-4-12B) about a prompt through `client`."""

    def __init__(self, client: TogetherClient, model: str, timeout: float) -> None:
        self._client = client
        self._model = model
        self._timeout = timeout

    async def screen(self, prompt: str) -> str:
        body = {
            "model": self._model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_ANSWER_TOKENS,
            "temperature": 0,
        }
        try:
            answer = await self._client.chat_completion(body, http_timeout=self._timeout)
        except TogetherError as exc:
            reason = _reason(exc)
            if isinstance(exc, TogetherAuthError | TogetherBadRequest):
                # Not passing: the key or SAFETY_MODEL is wrong. Say so where the host looks.
                log.error("Prompt screening with %s is refused: %s", self._model, exc)
            raise ScreenUnavailable(reason) from exc
        content = _content(answer)
        if content is None:
            raise ScreenUnavailable("unreadable answer")
        return content


def _reason(exc: TogetherError) -> str:
    if isinstance(exc, TogetherConnectionError):
        return "timeout" if "timeout" in exc.kind else f"unreachable ({exc.kind})"
    if isinstance(exc, TogetherRateLimited):
        return "rate limited (429)"
    if isinstance(exc, TogetherServerError):
        return f"server error ({exc.status})"
    return f"HTTP {exc.status}" if exc.status else "unreadable answer"


def _content(answer: dict[str, Any]) -> str | None:
    """choices[0].message.content, when it is text."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None
