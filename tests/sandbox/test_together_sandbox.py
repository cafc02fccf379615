"""The Together stand-in, driven over loopback with httpx and a hand-moved clock."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.together import MODELS, JobScript, TogetherSandbox
from sandbox.together.app import FIXTURE_MP4
from sandbox.together.scripts import FAILURE_REASONS, RecordedRequest
from sandbox.together.validation import PROMPT_MAX_CHARS

KEY = "sandbox-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MODEL = "minimax/video-01-director"
REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = FIXTURE_MP4.read_bytes()


class FakeClock:
    """A clock that only moves when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[TogetherSandbox]:
    async with TogetherSandbox(clock=clock) as sb:
        yield sb


@pytest.fixture
async def client(sandbox: TogetherSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH) as c:
        yield c


def video_body(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "a red fox in the snow", **extra}


async def create(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v2/videos", json=video_body(**extra))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def get_job(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v2/videos/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_error_body(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


# -- auth --------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
async def test_post_rejects_missing_or_bad_key(
    sandbox: TogetherSandbox, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url, headers=headers) as anon:
        response = await anon.post("/v2/videos", json=video_body())
    assert assert_error_body(response, 401)["code"] == "invalid_api_key"
    assert sandbox.jobs == {}
    assert sandbox.requests[-1].auth_ok is False
    assert KEY not in repr(sandbox.requests[-1])


async def test_get_rejects_bad_key(sandbox: TogetherSandbox, client: httpx.AsyncClient) -> None:
    job = await create(client)
    async with httpx.AsyncClient(base_url=sandbox.base_url) as anon:
        response = await anon.get(f"/v2/videos/{job['id']}", headers={"Authorization": "Bearer x"})
    assert_error_body(response, 401)
    assert sandbox.jobs[job["id"]].get_count == 0


async def test_records_redact_the_key(sandbox: TogetherSandbox, client: httpx.AsyncClient) -> None:
    await create(client)
    [post] = sandbox.posts()
    assert post.headers["authorization"] == "Bearer ***"
    assert KEY not in repr(post)
    assert post.auth_ok is True
    assert post.status == 200
    assert post.body == video_body()


async def test_api_key_none_accepts_any_token(clock: FakeClock) -> None:
    async with (
        TogetherSandbox(api_key=None, clock=clock) as sb,
        httpx.AsyncClient(base_url=sb.base_url) as anon,
    ):
        ok = await anon.post(
            "/v2/videos", json=video_body(), headers={"Authorization": "Bearer anything"}
        )
        empty = await anon.post(
            "/v2/videos", json=video_body(), headers={"Authorization": "Bearer"}
        )
        missing = await anon.post("/v2/videos", json=video_body())
    assert ok.status_code == 200
    assert_error_body(empty, 401)
    assert_error_body(missing, 401)


# -- validation --------------------------------------------------------------------------

INVALID_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "x"}, "model"),
    ({"model": "", "prompt": "x"}, "model"),
    ({"model": "acme/not-a-model", "prompt": "x"}, "model"),
    ({"model": MODEL}, "prompt"),
    ({"model": MODEL, "prompt": ""}, "prompt"),
    ({"model": MODEL, "prompt": "x" * (PROMPT_MAX_CHARS + 1)}, "prompt"),
    ({"model": MODEL, "prompt": 5}, "prompt"),
    (video_body(steps=9), "steps"),
    (video_body(steps=51), "steps"),
    (video_body(steps="20"), "steps"),
    (video_body(seconds=5), "seconds"),
    (video_body(width="1366"), "width"),
    (video_body(height=768.0), "height"),
    (video_body(output_format="MOV"), "output_format"),
    (video_body(media={"frame_images": "abc"}), "media.frame_images"),
    (video_body(media={"frame_images": ["abc"]}), "media.frame_images"),
    (video_body(media={"frame_images": [{"frame": 0}]}), "media.frame_images"),
    (
        video_body(media={"frame_images": [{"input_image": "b64", "frame": "middle"}]}),
        "media.frame_images",
    ),
    (video_body(media={"reference_images": "http://x/a.png"}), "media.reference_images"),
    (video_body(media={"reference_images": [1]}), "media.reference_images"),
]


@pytest.mark.parametrize(("body", "param"), INVALID_BODIES)
async def test_invalid_bodies_answer_400(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    response = await client.post("/v2/videos", json=body)
    error = assert_error_body(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["code"] is None
    assert sandbox.jobs == {}


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]"])
async def test_non_json_body_answers_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v2/videos", content=raw, headers={"Content-Type": "application/json"}
    )
    assert assert_error_body(response, 400)["param"] is None


@pytest.mark.parametrize(
    "extra",
    [
        {"steps": 10, "seconds": "5", "width": 1366, "height": 768, "output_format": "WEBM"},
        {
            "model": "google/veo-2.0",
            "media": {"frame_images": [{"input_image": "aGk=", "frame": "last"}]},
        },
        {"media": {"frame_images": [{"input_image": "https://x/a.png", "frame": 0}]}},
        # The 2026 spec: an omitted frame is the first (two: first and last).
        {"media": {"frame_images": [{"input_image": "aGk="}]}},
        {"model": "vidu/vidu-2.0", "media": {"reference_images": ["https://x/a.png", "aGk="]}},
        {"prompt": "x" * PROMPT_MAX_CHARS},
    ],
)
async def test_valid_bodies_are_accepted(client: httpx.AsyncClient, extra: dict[str, Any]) -> None:
    await create(client, **extra)


async def test_prompt_may_be_absent_with_keyframes(client: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "media": {"frame_images": [{"input_image": "aGk=", "frame": "first"}]}}
    assert (await client.post("/v2/videos", json=body)).status_code == 200


# -- job life ----------------------------------------------------------------------------


async def test_job_goes_queued_in_progress_completed(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sandbox.script_next(JobScript(queue_seconds=1, run_seconds=2, cost=0.5))
    created = await create(client, width=1366, height=768, seconds="5")
    assert created["status"] == "queued"
    assert created["object"] == "video"
    assert created["outputs"] is None
    assert created["size"] == "1366x768"
    assert created["seconds"] == "5"

    clock.advance(1)
    running = await get_job(client, created["id"])
    assert running["status"] == "in_progress"
    assert running["claimed_at"] == created["created_at"] + 1

    clock.advance(2)
    done = await get_job(client, created["id"])
    assert done["status"] == "completed"
    assert done["outputs"] == {
        "video_url": f"{sandbox.base_url}/shrt/{created['id']}",
        "cost": 0.5,
    }
    assert done["completed_at"] == created["created_at"] + 3
    assert done["error"] is None
    assert sandbox.jobs[created["id"]].status == "completed"


async def test_defaults_fill_size_and_seconds_from_model(client: httpx.AsyncClient) -> None:
    job = await create(client)
    assert (job["size"], job["seconds"]) == (MODELS[MODEL].size, MODELS[MODEL].seconds)
    assert job["inputs"]["prompt"] == "a red fox in the snow"


async def test_cost_none_leaves_it_out(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sandbox.script_next(JobScript(cost=None))
    job = await create(client)
    clock.advance(10)
    assert "cost" not in (await get_job(client, job["id"]))["outputs"]


@pytest.mark.parametrize("outcome", ["failed", "cancelled"])
async def test_job_ends_with_error(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock, outcome: str
) -> None:
    sandbox.script_next(JobScript(outcome=outcome, error_message="boom", error_code="oops"))  # type: ignore[arg-type]
    job = await create(client)
    clock.advance(2.6)
    done = await get_job(client, job["id"])
    assert done["status"] == outcome
    assert done["error"] == {"message": "boom", "code": "oops"}
    assert done["outputs"] is None


async def test_fail_immediately(sandbox: TogetherSandbox, client: httpx.AsyncClient) -> None:
    sandbox.script_next(JobScript(fail_immediately=True))
    job = await create(client)
    assert job["status"] == "failed"
    assert job["error"]["message"] == "The video could not be generated."
    assert job["completed_at"] == job["created_at"]


async def test_scripts_apply_in_order_then_default(
    sandbox: TogetherSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.script_next(JobScript(fail_immediately=True), JobScript(shape="id_only"))
    first, second, third = [await create(client) for _ in range(3)]
    assert first["status"] == "failed"
    assert set(second) == {"id"}
    assert third["status"] == "queued"
    assert len(sandbox.jobs) == 3


# -- response shapes ---------------------------------------------------------------------


async def test_id_only_shape(sandbox: TogetherSandbox, client: httpx.AsyncClient) -> None:
    sandbox.script_next(JobScript(shape="id_only"))
    created = await create(client)
    assert created == {"id": created["id"]}
    assert (await get_job(client, created["id"]))["status"] == "queued"


async def test_info_errors_shape(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sandbox.script_next(JobScript(shape="info_errors", outcome="failed", error_message="nsfw"))
    job = await create(client)
    assert job["info"]["errors"] is None
    clock.advance(5)
    done = await get_job(client, job["id"])
    assert done["status"] == "failed"
    assert done["error"] is None
    assert done["info"]["errors"] == [{"message": "nsfw", "code": None}]


async def test_iso_timestamps_shape(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    sandbox.script_next(JobScript(shape="iso_timestamps", queue_seconds=1, run_seconds=1))
    job = await create(client)
    assert job["completed_at"] is None
    assert job["claimed_at"] == "0001-01-01T00:00:00Z"
    clock.advance(2)
    done = await get_job(client, job["id"])
    created = datetime.fromisoformat(done["created_at"])
    completed = datetime.fromisoformat(done["completed_at"])
    assert (completed - created).total_seconds() == pytest.approx(2)
    assert done["done_at"] == done["completed_at"]


async def test_object_shape_carries_extra_fields(client: httpx.AsyncClient) -> None:
    job = await create(client)
    assert {"inputs", "claimed_at", "info", "done_at"} <= set(job)
    assert isinstance(job["created_at"], int)


# -- faults ------------------------------------------------------------------------------


async def test_get_faults_by_call_number(
    sandbox: TogetherSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.script_next(JobScript(get_faults={1: 503, 2: 429}))
    job = await create(client)
    path = f"/v2/videos/{job['id']}"
    first, second, third = [await client.get(path) for _ in range(3)]
    assert_error_body(first, 503)
    assert_error_body(second, 429)
    assert second.headers["retry-after"] == "1"
    assert third.status_code == 200
    assert sandbox.jobs[job["id"]].get_count == 3


async def test_post_429_sets_headers_and_creates_no_job(
    sandbox: TogetherSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.script_next(JobScript(post_status=429))
    response = await client.post("/v2/videos", json=video_body())
    assert_error_body(response, 429)
    assert response.headers["retry-after"] == "1"
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert name in response.headers
    assert sandbox.jobs == {}
    await create(client)  # the script is used up; the retry gets a job
    assert len(sandbox.jobs) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_post_server_errors_create_no_job(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, status: int
) -> None:
    sandbox.script_next(JobScript(post_status=status))
    assert_error_body(await client.post("/v2/videos", json=video_body()), status)
    assert sandbox.jobs == {}


async def test_post_fail_after_create_keeps_the_job(
    sandbox: TogetherSandbox, client: httpx.AsyncClient
) -> None:
    sandbox.script_next(JobScript(post_fail_after_create=True))
    assert_error_body(await client.post("/v2/videos", json=video_body()), 500)
    assert len(sandbox.jobs) == 1
    assert sandbox.posts()[0].status == 500


async def test_unknown_job_and_route_answer_json_404(client: httpx.AsyncClient) -> None:
    assert_error_body(await client.get("/v2/videos/nope"), 404)
    assert_error_body(await client.get("/v1/whatever"), 404)


# -- download ----------------------------------------------------------------------------


async def finished_job(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock, script: JobScript
) -> dict[str, Any]:
    sandbox.script_next(script)
    job = await create(client)
    clock.advance(script.done_after)
    return await get_job(client, job["id"])


async def test_short_link_redirects_to_a_real_mp4(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    job = await finished_job(sandbox, client, clock, JobScript())
    async with httpx.AsyncClient() as public:  # no key: signed links are public
        redirect = await public.get(job["outputs"]["video_url"])
        assert redirect.status_code == 302
        assert redirect.headers["location"] == f"/files/{job['id']}.mp4"
        video = await public.get(job["outputs"]["video_url"], follow_redirects=True)
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert int(video.headers["content-length"]) == len(FIXTURE)
    assert video.content[4:8] == b"ftyp"
    assert video.content == FIXTURE
    assert sandbox.jobs[job["id"]].downloads == 1


@pytest.mark.parametrize("size", [len(FIXTURE) + 1, 300_000])
async def test_video_bytes_pads_the_file(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock, size: int
) -> None:
    job = await finished_job(sandbox, client, clock, JobScript(video_bytes=size))
    video = await client.get(job["outputs"]["video_url"], follow_redirects=True)
    assert int(video.headers["content-length"]) == size
    assert len(video.content) == size
    assert video.content.startswith(FIXTURE)
    assert video.content[len(FIXTURE) :].count(0) == size - len(FIXTURE)


async def test_unfinished_job_has_no_file(
    sandbox: TogetherSandbox, client: httpx.AsyncClient
) -> None:
    job = await create(client)
    assert_error_body(await client.get(f"/shrt/{job['id']}"), 404)
    assert_error_body(await client.get(f"/files/{job['id']}.mp4"), 404)


async def test_redirect_to_sends_the_short_link_elsewhere(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    target = "http://169.254.169.254/latest/meta-data"
    job = await finished_job(sandbox, client, clock, JobScript(redirect_to=target))
    async with httpx.AsyncClient() as public:
        redirect = await public.get(job["outputs"]["video_url"])
    assert redirect.status_code == 302
    assert redirect.headers["location"] == target


async def test_video_body_replaces_the_fixture(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    page = b"<!doctype html><p>Access denied</p>"
    job = await finished_job(sandbox, client, clock, JobScript(video_body=page))
    video = await client.get(job["outputs"]["video_url"], follow_redirects=True)
    assert video.status_code == 200
    assert int(video.headers["content-length"]) == len(page)
    assert video.content == page


async def test_video_bytes_pads_a_video_body(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    script = JobScript(video_body=b"abc", video_bytes=10)
    job = await finished_job(sandbox, client, clock, script)
    video = await client.get(job["outputs"]["video_url"], follow_redirects=True)
    assert video.content == b"abc" + bytes(7)


async def test_trickle_delivers_the_whole_video_in_pieces(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    script = JobScript(trickle_bytes_per_second=100_000.0)  # pieces of 5 000 bytes
    job = await finished_job(sandbox, client, clock, script)
    pieces: list[bytes] = []
    async with client.stream("GET", f"/files/{job['id']}.mp4") as response:
        assert int(response.headers["content-length"]) == len(FIXTURE)
        async for piece in response.aiter_raw():
            pieces.append(piece)
    assert b"".join(pieces) == FIXTURE
    assert len(pieces) >= 2
    assert sandbox.jobs[job["id"]].downloads_cut == 0


async def test_trickle_stops_cleanly_when_the_client_leaves(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    file_answered = asyncio.Event()

    def on_request(record: RecordedRequest) -> None:
        if record.path.startswith("/files/"):
            file_answered.set()

    script = JobScript(trickle_bytes_per_second=1_000.0)  # the fixture would take ~8 s
    async with (
        TogetherSandbox(clock=clock, on_request=on_request) as sandbox,
        httpx.AsyncClient(base_url=sandbox.base_url, headers=AUTH) as client,
    ):
        job = await finished_job(sandbox, client, clock, script)
        async with client.stream("GET", f"/files/{job['id']}.mp4") as response:
            first = await anext(response.aiter_raw())
        await client.aclose()  # the pooled connection too: the client is gone
        async with asyncio.timeout(30):  # generous: only "it ends", never "it ends fast"
            await file_answered.wait()
        assert sandbox.jobs[job["id"]].downloads_cut == 1
    assert FIXTURE.startswith(first)
    assert len(first) < len(FIXTURE)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_trickle_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        JobScript(trickle_bytes_per_second=0)


# -- hand-testing hooks ------------------------------------------------------------------


async def test_prompt_markers(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    failing = await create(client, prompt="a cat [fail]")
    slow = await create(client, prompt="a cat [slow]")
    normal_done = JobScript().done_after
    clock.advance(normal_done)
    assert (await get_job(client, failing["id"]))["status"] == "failed"
    assert (await get_job(client, slow["id"]))["status"] == "queued"
    clock.advance(normal_done * 9 - 0.1)
    assert (await get_job(client, slow["id"]))["status"] == "in_progress"
    clock.advance(0.1)
    assert (await get_job(client, slow["id"]))["status"] == "completed"


async def test_fail_rate_fails_jobs_with_realistic_reasons(clock: FakeClock) -> None:
    sb = TogetherSandbox(clock=clock, fail_rate=1.0, rng=random.Random(7))
    async with sb, httpx.AsyncClient(base_url=sb.base_url, headers=AUTH) as c:
        job = await create(c)
        clock.advance(10)
        done = await get_job(c, job["id"])
    assert done["status"] == "failed"
    assert (done["error"]["message"], done["error"]["code"]) in FAILURE_REASONS


async def test_requests_are_recorded_with_clock_time(
    sandbox: TogetherSandbox, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    job = await create(client)
    clock.advance(3)
    await client.get(f"/v2/videos/{job['id']}", params={"x": "1"})
    post, get = sandbox.requests
    assert (post.method, post.path, post.time) == ("POST", "/v2/videos", 1000.0)
    assert (get.method, get.query, get.body, get.status, get.time) == (
        "GET",
        {"x": "1"},
        None,
        200,
        1003.0,
    )


# -- CLI ---------------------------------------------------------------------------------


async def wait_until_answers(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=1) as c:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                await c.get("/v2/videos/probe")
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{base_url} never answered")


async def test_cli_serves_until_terminated() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.together",
        "--port",
        "0",
        "--duration",
        "0",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        base_url = next(word for word in banner.split() if word.startswith("http://127.0.0.1:"))
        await wait_until_answers(base_url)
        async with httpx.AsyncClient(base_url=base_url) as c:
            created = await c.post(
                "/v2/videos", json=video_body(), headers={"Authorization": "Bearer secret-123"}
            )
        assert created.status_code == 200
    finally:
        if proc.returncode is None:
            proc.terminate()
        out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 0, err.decode()
    log = out.decode()
    assert "POST /v2/videos 200" in log
    assert "secret-123" not in log + err.decode()
