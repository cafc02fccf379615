"""The Together stand-in's dynamic request limit (opt-in), over loopback with a hand-moved
clock: 60 requests a minute to begin with, twice the past hour's successful rate later."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandbox.together import TogetherSandbox
from sandbox.together.limits import DYNAMIC_LIMIT_CODE, DynamicLimit

AUTH = {"Authorization": "Bearer sandbox-key"}
BODY = {"model": "minimax/video-01-director", "prompt": "a red fox in the snow"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        TogetherSandbox(clock=clock, dynamic_limit=DynamicLimit()) as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers=AUTH) as c,
    ):
        yield c


async def test_the_61st_request_in_a_minute_is_refused(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    created = await client.post("/v2/videos", json=BODY)
    job_id = created.json()["id"]
    for second in range(1, 60):  # POSTs and GETs count alike
        clock.now = 1000.0 + second * 0.5
        assert (await client.get(f"/v2/videos/{job_id}")).status_code == 200
    clock.now = 1030.0
    refused = await client.post("/v2/videos", json=BODY)
    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "message": refused.json()["error"]["message"],
        "type": "rate_limit",
        "param": None,
        "code": DYNAMIC_LIMIT_CODE,
    }
    # The first request leaves the window at 1060: 30 s from now.
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert float(refused.headers["x-ratelimit-reset"]) == pytest.approx(30.0)
    assert float(refused.headers["x-ratelimit-limit"]) == pytest.approx(1.0)  # per second
    clock.now = 1060.0
    assert (await client.get(f"/v2/videos/{job_id}")).status_code == 200


async def test_a_refused_request_does_not_count(clock: Clock) -> None:
    limit = DynamicLimit(base=2, window=10.0)
    assert limit.admit(0.0) and limit.admit(1.0)
    assert not limit.admit(2.0) and not limit.admit(3.0)
    assert limit.refused == 2
    assert limit.admit(10.0)  # only the two admitted ones filled the window


def test_the_limit_rises_to_twice_the_past_hours_successful_rate() -> None:
    limit = DynamicLimit()  # 60 a minute
    for i in range(3600):  # an hour at 60 a minute, every one a success
        now = float(i)
        assert limit.admit(now)
        limit.succeeded(now)
    # 3600 successes in the past hour: 60 a minute, twice that allowed.
    assert limit.limit(3599.5) == 120
    # An hour later with nothing sent: back to the base.
    assert limit.limit(3600.0 * 2) == 60
