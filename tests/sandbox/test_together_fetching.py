"""The stand-in fetches video and audio inputs as Together does; and its odd job statuses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from sandbox.together import JobScript, TogetherSandbox
from sandbox.together.app import FIXTURE_MP4
from sandbox.together.scripts import CANCELLED_MESSAGE, FETCH_ERROR_CODE, MediaFetch

KEY = "sandbox-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
FIXTURE = FIXTURE_MP4.read_bytes()
WAN_EDIT = "Wan-AI/wan2.7-videoedit"
WAN_I2V = "Wan-AI/wan2.7-i2v"
SCRIPT = JobScript(queue_seconds=1, run_seconds=2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MediaHost:
    """A live aiohttp server on loopback with a clip, a song, a 404, an empty and a held file."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/clip.mp4", self._clip)
        app.router.add_get("/song.mp3", self._song)
        app.router.add_get("/empty.mp4", self._empty)
        app.router.add_get("/held.mp4", self._held)
        app.router.add_get("/moved.mp4", self._moved)
        app.router.add_get("/away.mp4", self._away)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    async def _clip(self, request: web.Request) -> web.Response:
        return web.Response(body=FIXTURE, content_type="video/mp4")

    async def _song(self, request: web.Request) -> web.Response:
        return web.Response(body=b"ID3" + bytes(997), content_type="audio/mpeg")

    async def _empty(self, request: web.Request) -> web.Response:
        return web.Response(body=b"", content_type="video/mp4")

    async def _held(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(body=b"late but whole", content_type="video/mp4")

    async def _moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/clip.mp4")

    async def _away(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("https://cdn.example/clip.mp4")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def host() -> AsyncIterator[MediaHost]:
    media = MediaHost()
    await media.start()
    yield media
    await media.close()


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[TogetherSandbox]:
    async with TogetherSandbox(clock=clock, default_script=SCRIPT) as sb:
        yield sb


@pytest.fixture
async def client(sandbox: TogetherSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH) as c:
        yield c


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("prompt", "make it snow")
    response = await client.post("/v2/videos", json=body)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def status(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v2/videos/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def edit(client: httpx.AsyncClient, source: Any) -> dict[str, Any]:
    return await create(client, model=WAN_EDIT, media={"source_video": source})


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone.mp4"


# -- fetching ----------------------------------------------------------------------------


async def test_a_live_input_is_fetched_and_the_job_completes(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock, host: MediaHost
) -> None:
    url = host.url("clip.mp4")
    job = await edit(client, {"video": url})
    assert job["status"] == "queued"
    await sandbox.media_fetcher.wait()
    record = sandbox.jobs[job["id"]]
    assert record.fetches == [MediaFetch("media.source_video", url, 200, len(FIXTURE), None)]
    assert record.fetch_error is None
    clock.advance(SCRIPT.done_after)
    assert (await status(client, job["id"]))["status"] == "completed"


async def test_every_video_and_audio_input_is_fetched_in_order(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, host: MediaHost
) -> None:
    media = {
        "frame_images": [{"input_image": "https://cdn.example/a.png", "frame": 0}],
        "frame_videos": [{"video": host.url("moved.mp4")}],
        "audio_inputs": [host.url("song.mp3"), {"audio": host.url("song.mp3")}],
    }
    job = await create(client, model=WAN_I2V, media=media)
    await sandbox.media_fetcher.wait()
    fetches = sandbox.jobs[job["id"]].fetches
    assert [(f.input, f.status, f.bytes, f.error) for f in fetches] == [
        ("media.frame_videos[0]", 200, len(FIXTURE), None),  # the redirect was followed
        ("media.audio_inputs[0]", 200, 1000, None),
        ("media.audio_inputs[1]", 200, 1000, None),
    ]


async def test_images_are_not_fetched(sandbox: TogetherSandbox, client: httpx.AsyncClient) -> None:
    media = {"reference_images": ["http://127.0.0.1:9/a.png"]}
    job = await create(client, model="Wan-AI/wan2.7-r2v", media=media)
    record = sandbox.jobs[job["id"]]
    assert (record.fetches, record.fetch_pending) == ([], False)


@pytest.mark.parametrize(
    ("path", "expected_status", "reason"),
    [("missing.mp4", 404, "HTTP 404"), ("empty.mp4", 200, "empty body")],
)
async def test_a_dead_input_fails_the_job(
    sandbox: TogetherSandbox,
    client: httpx.AsyncClient,
    host: MediaHost,
    path: str,
    expected_status: int,
    reason: str,
) -> None:
    job = await edit(client, host.url(path))
    assert job["status"] == "queued"  # accepted: the failure comes later, like a real job's
    await sandbox.media_fetcher.wait()
    [fetch] = sandbox.jobs[job["id"]].fetches
    assert (fetch.status, fetch.error) == (expected_status, reason)
    failed = await status(client, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "message": f"could not fetch media.source_video: {reason}",
        "code": FETCH_ERROR_CODE,
    }
    assert failed["completed_at"] == failed["created_at"]
    assert failed["claimed_at"] is None
    assert failed["outputs"] is None


async def test_connection_refused_fails_the_job(
    sandbox: TogetherSandbox, client: httpx.AsyncClient
) -> None:
    url = closed_port_url()
    job = await create(client, model=WAN_I2V, media={"frame_videos": [{"video": url}]})
    await sandbox.media_fetcher.wait()
    assert sandbox.jobs[job["id"]].fetches == [
        MediaFetch("media.frame_videos[0]", url, None, 0, "connection refused")
    ]
    failed = await status(client, job["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == (
        "could not fetch media.frame_videos[0]: connection refused"
    )


async def test_the_first_dead_input_stops_the_fetching(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, host: MediaHost
) -> None:
    media = {"audio_inputs": [host.url("song.mp3"), host.url("nope.mp3"), host.url("song.mp3")]}
    job = await create(client, model="Wan-AI/wan2.7-t2v", media=media)
    await sandbox.media_fetcher.wait()
    record = sandbox.jobs[job["id"]]
    assert [f.error for f in record.fetches] == [None, "HTTP 404"]
    assert record.fetch_error == "could not fetch media.audio_inputs[1]: HTTP 404"


async def test_a_slow_input_times_out(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, host: MediaHost
) -> None:
    sandbox.media_fetcher.timeout = 0.2
    job = await edit(client, host.url("held.mp4"))
    await sandbox.media_fetcher.wait()
    assert sandbox.jobs[job["id"]].fetch_error == "could not fetch media.source_video: timed out"


@pytest.mark.parametrize("where", ["outside", "redirected"])
async def test_a_non_loopback_url_is_not_fetched(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, host: MediaHost, where: str
) -> None:
    url = "https://cdn.example/clip.mp4" if where == "outside" else host.url("away.mp4")
    job = await edit(client, url)
    await sandbox.media_fetcher.wait()
    [fetch] = sandbox.jobs[job["id"]].fetches
    assert fetch.status is None
    assert fetch.error == "the stand-in fetches only loopback URLs"
    assert (await status(client, job["id"]))["status"] == "failed"


async def test_a_pending_fetch_keeps_the_job_from_completing(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock, host: MediaHost
) -> None:
    job = await edit(client, host.url("held.mp4"))
    assert (await status(client, job["id"]))["status"] == "queued"
    clock.advance(SCRIPT.done_after + 60)
    assert (await status(client, job["id"]))["status"] == "in_progress"
    assert sandbox.jobs[job["id"]].fetch_pending
    host.release.set()
    await sandbox.media_fetcher.wait()
    assert (await status(client, job["id"]))["status"] == "completed"
    assert sandbox.jobs[job["id"]].fetches[0].bytes == len(b"late but whole")


async def test_close_cancels_pending_fetches(clock: FakeClock, host: MediaHost) -> None:
    async with (
        TogetherSandbox(clock=clock) as sb,
        httpx.AsyncClient(base_url=sb.base_url, headers=AUTH) as c,
    ):
        await edit(c, host.url("held.mp4"))
    await asyncio.wait_for(sb.media_fetcher.wait(), 5)  # nothing left running


# -- cancelled and unknown statuses ------------------------------------------------------


async def test_cancel_marker_ends_the_job_cancelled(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    job = await create(client, model="google/veo-3.0", prompt="a cat [cancel]")
    clock.advance(SCRIPT.queue_seconds)
    assert (await status(client, job["id"]))["status"] == "in_progress"
    clock.advance(SCRIPT.run_seconds)
    done = await status(client, job["id"])
    assert done["status"] == "cancelled"
    assert done["error"] == {"message": CANCELLED_MESSAGE, "code": None}
    assert done["outputs"] is None


async def test_paused_marker_shows_an_unknown_status_then_completes(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    job = await create(client, model="google/veo-3.0", prompt="a cat [paused]")
    seen = []
    for _ in range(7):  # 0 .. 6 s: queue 1, paused 2, run 2 (then done)
        seen.append((await status(client, job["id"]))["status"])
        clock.advance(1)
    assert seen == [
        "queued",
        "paused",
        "paused",
        "in_progress",
        "in_progress",
        "completed",
        "completed",
    ]


async def test_scripted_unknown_status(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sandbox.script_next(
        JobScript(queue_seconds=0, run_seconds=1, unknown_status="held", unknown_status_seconds=5)
    )
    job = await create(client, model="google/veo-3.0")
    assert job["status"] == "held"
    assert job["claimed_at"] == job["created_at"]
    clock.advance(5)
    assert (await status(client, job["id"]))["status"] == "in_progress"
    clock.advance(1)
    done = await status(client, job["id"])
    assert done["status"] == "completed"
    assert done["completed_at"] == done["created_at"] + 6


async def test_scripted_cancelled_outcome(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sandbox.script_next(JobScript(outcome="cancelled", error_message=CANCELLED_MESSAGE))
    job = await create(client, model="google/veo-3.0")
    clock.advance(60)
    assert (await status(client, job["id"]))["status"] == "cancelled"


def test_unknown_status_seconds_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        JobScript(unknown_status="paused", unknown_status_seconds=-1)
