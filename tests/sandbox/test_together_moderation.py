"""The Together stand-in's /v1/chat/completions (moderation models), and the bot's client for it
(bot.together.moderation) over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.domain.safety import ScreenUnavailable, Verdict, parse_guard_answer
from bot.together.client import TogetherClient
from bot.together.moderation import TogetherModeration
from sandbox.together import TogetherSandbox
from sandbox.together.moderation import CHAT_PATH

KEY = "sandbox-key"
GUARD = "meta-llama/Llama-Guard-4-12B"


@pytest.fixture
async def sandbox() -> AsyncIterator[TogetherSandbox]:
    async with TogetherSandbox(api_key=KEY) as sb:
        yield sb


def chat(text: str, model: str = GUARD) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def post(sandbox: TogetherSandbox, body: Any, key: str = KEY) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as client:
        return await client.post(CHAT_PATH, json=body, headers={"Authorization": f"Bearer {key}"})


def content(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("a cat on a skateboard", "safe"),
        ("a fight [unsafe:S1]", "unsafe\nS1"),
        ("[unsafe:S1,S10] two", "unsafe\nS1,S10"),
    ],
)
async def test_answers_like_llama_guard(sandbox: TogetherSandbox, text: str, answer: str) -> None:
    response = await post(sandbox, chat(text))
    assert response.status_code == 200
    assert content(response) == answer
    assert sandbox.chat_requests()[-1].auth_ok


@pytest.mark.parametrize(
    ("body", "key", "status"),
    [
        (chat("x"), "wrong-key", 401),
        (chat("x", model="meta-llama/Llama-3.3-70B-Instruct-Turbo"), KEY, 404),
        ({"model": GUARD}, KEY, 400),
        ({"model": GUARD, "messages": [{"role": "system", "content": "x"}]}, KEY, 400),
        ("not an object", KEY, 400),
        (chat("[screen-down]"), KEY, 503),
        (chat("[screen-busy]"), KEY, 429),
    ],
)
async def test_refusals_and_outages(
    sandbox: TogetherSandbox, body: Any, key: str, status: int
) -> None:
    response = await post(sandbox, body, key)
    assert response.status_code == status
    assert "error" in response.json()


@pytest.fixture
async def together(sandbox: TogetherSandbox) -> AsyncIterator[TogetherClient]:
    async with TogetherClient(KEY, sandbox.base_url, get_retries=0) as client:
        yield client


async def test_the_bots_screen_reads_the_answers(
    sandbox: TogetherSandbox, together: TogetherClient
) -> None:
    screen = TogetherModeration(together, GUARD, timeout=5.0)
    assert parse_guard_answer(await screen.screen("a quiet lake")) == Verdict(safe=True)
    flagged = parse_guard_answer(await screen.screen("[unsafe:S12] x"))
    assert flagged == Verdict(safe=False, categories=("S12",))
    sent = sandbox.chat_requests()[-1].body
    assert sent["model"] == GUARD
    assert sent["messages"] == [{"role": "user", "content": "[unsafe:S12] x"}]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[screen-down]", "server error (503)"),
        ("[screen-busy]", "rate limited (429)"),
        ("[screen-slow]", "timeout"),
    ],
)
async def test_the_bots_screen_turns_failures_into_unavailable(
    sandbox: TogetherSandbox, together: TogetherClient, text: str, reason: str
) -> None:
    screen = TogetherModeration(together, GUARD, timeout=0.3)
    with pytest.raises(ScreenUnavailable) as caught:
        await screen.screen(text)
    assert caught.value.reason == reason
    # Never retried: one request per check.
    assert len(sandbox.chat_requests()) <= 1


async def test_a_wrong_model_is_unavailable_not_a_crash(
    sandbox: TogetherSandbox, together: TogetherClient
) -> None:
    screen = TogetherModeration(together, "meta-llama/Not-A-Guard", timeout=5.0)
    with pytest.raises(ScreenUnavailable) as caught:
        await screen.screen("x")
    assert caught.value.reason == "HTTP 404"


async def test_garbled_answer_is_unparseable(together: TogetherClient) -> None:
    screen = TogetherModeration(together, GUARD, timeout=5.0)
    assert parse_guard_answer(await screen.screen("[screen-garbled]")) is None
