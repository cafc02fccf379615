"""The stand-in for Together's /v2/videos API (and /v1/chat/completions for moderation models):
an aiohttp app plus an in-process control."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from sandbox.together.fetching import MediaFetcher
from sandbox.together.limits import DynamicLimit
from sandbox.together.moderation import CHAT_PATH, Stall, chat_answer
from sandbox.together.responses import error_response, job_object
from sandbox.together.scripts import (
    JobScript,
    RecordedRequest,
    SandboxJob,
    apply_prompt_markers,
    maybe_fail,
)
from sandbox.together.validation import validate_create

log = logging.getLogger(__name__)

FIXTURE_MP4 = Path(__file__).resolve().parent.parent / "fixtures" / "sample.mp4"
VIDEOS_PATH = "/v2/videos"
CHUNK_BYTES = 64 * 1024
_ZEROS = bytes(CHUNK_BYTES)
# A trickling download sends a piece about this often.
TRICKLE_TICK_SECONDS = 0.05
# Random faults (`fault_rate`): what a faulted GET answers, and the retry-after they carry.
FAULT_GET_STATUSES = (503, 429)
FAULT_RETRY_AFTER = 1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TogetherSandbox:
    """Serves a scriptable imitation of Together's video API on loopback and records it all.

    Each created job takes the next script queued with `script_next`, else `default_script`.
    Job timelines follow the injected `clock`, so tests and benchmarks can move time by hand.
    `fail_rate` makes jobs end failed; `fault_rate` makes requests fail transiently (opt-in,
    off by default); both draw from `rng`, so a seeded rng replays the same choices.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sandbox-key",
        clock: Callable[[], float] = time.monotonic,
        default_script: JobScript | None = None,
        fail_rate: float = 0.0,
        fault_rate: float = 0.0,
        rng: random.Random | None = None,
        on_request: Callable[[RecordedRequest], None] | None = None,
        dynamic_limit: DynamicLimit | None = None,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        self.api_key = api_key
        self.clock = clock
        self.default_script = default_script or JobScript()
        self.fail_rate = fail_rate
        # Transient API faults, unlike fail_rate (jobs that end failed): this fraction of valid,
        # authenticated POSTs answer 503 and create no job, and this fraction of authenticated
        # GETs of a job answer 503 or 429, each with a retry-after header.
        self.fault_rate = fault_rate
        self.faults_injected = 0
        self.jobs: dict[str, SandboxJob] = {}
        self.requests: list[RecordedRequest] = []
        self.base_url = ""
        self._rng = rng or random.Random()
        self._on_request = on_request
        self._scripts: deque[JobScript] = deque()
        self._video = FIXTURE_MP4.read_bytes()
        self._runner: web.AppRunner | None = None
        # Together's per-account dynamic request limit (opt-in): see sandbox/together/limits.py.
        self.dynamic_limit = dynamic_limit
        # Fetches each job's video and audio inputs; set `media_fetcher.timeout` to shorten.
        self.media_fetcher = MediaFetcher()
        # Set on close: a stalled moderation answer (`[screen-slow]`) stops waiting.
        self._closing = asyncio.Event()

    # -- control ---------------------------------------------------------------------------

    def script_next(self, *scripts: JobScript) -> None:
        """The next accepted POSTs follow these scripts, in order, before `default_script`."""
        self._scripts.extend(scripts)

    def posts(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == VIDEOS_PATH]

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._record_middleware])
        if self.dynamic_limit is not None:
            app.middlewares.append(self._limit_middleware)
        app.router.add_post(VIDEOS_PATH, self._create)
        app.router.add_get(VIDEOS_PATH + "/{id}", self._retrieve)
        app.router.add_get("/shrt/{id}", self._short_link)
        app.router.add_get("/files/{id}.mp4", self._file)
        app.router.add_post(CHAT_PATH, self._chat)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on host:port (0 picks a free port) and set `base_url`."""
        if self._runner is not None:
            raise RuntimeError("sandbox already started")
        runner = web.AppRunner(self.build_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self.base_url = f"http://{_url_host(bound_host)}:{bound_port}"

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == CHAT_PATH]

    async def close(self) -> None:
        self._closing.set()
        await self.media_fetcher.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TogetherSandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- recording -------------------------------------------------------------------------

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        body = _parse_json(await request.read())
        response = await _run_handler(request, handler)
        self._record(request, body, response.status)
        return response

    @web.middleware
    async def _limit_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Together's dynamic limit on every authenticated /v2/videos request."""
        limit = self.dynamic_limit
        if limit is None or not request.path.startswith(VIDEOS_PATH) or not self._auth_ok(request):
            return await handler(request)
        if not limit.admit(self.clock()):
            return limit.refusal(self.clock())
        response = await handler(request)
        if response.status < 400:
            limit.succeeded(self.clock())
        return response

    def _record(self, request: web.Request, body: Any, status: int) -> None:
        headers = {name.lower(): value for name, value in request.headers.items()}
        if "authorization" in headers:
            headers["authorization"] = _redact(headers["authorization"])
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=headers,
            auth_ok=self._auth_ok(request),
            body=body,
            status=status,
            time=self.clock(),
        )
        self.requests.append(record)
        if self._on_request is not None:
            self._on_request(record)

    def _auth_ok(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return self.api_key is None or token == self.api_key

    # -- routes ----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not self._auth_ok(request):
            return error_response(401, code="invalid_api_key")
        body = _parse_json(await request.read())
        if body is None:
            return error_response(400, "Request body must be valid JSON.")
        problem = validate_create(body)
        if problem is not None:
            return error_response(400, problem.message, param=problem.param)
        if self._roll_fault():
            # Unclear to the client: a 5xx may hide a created job, so it must not retry.
            return _with_retry_after(error_response(503), FAULT_RETRY_AFTER)
        script = self._take_script(body)
        if script.post_status is not None:
            return error_response(script.post_status, retry_after=script.retry_after)
        job = self._new_job(script, body)
        if script.post_fail_after_create:
            return error_response(500)
        if script.shape == "id_only":
            return web.json_response({"id": job.id})
        return web.json_response(job_object(job, self.clock(), self.base_url, script.shape))

    async def _retrieve(self, request: web.Request) -> web.StreamResponse:
        if not self._auth_ok(request):
            return error_response(401, code="invalid_api_key")
        if self._roll_fault():
            status = self._rng.choice(FAULT_GET_STATUSES)
            return _with_retry_after(
                error_response(status, retry_after=FAULT_RETRY_AFTER), FAULT_RETRY_AFTER
            )
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return error_response(404, "Video job not found.")
        job.get_count += 1
        fault = job.script.get_faults.get(job.get_count)
        if fault is not None:
            return error_response(fault, retry_after=job.script.retry_after)
        # id_only only changes the POST answer; GET always returns the whole job.
        shape = "object" if job.script.shape == "id_only" else job.script.shape
        return web.json_response(job_object(job, self.clock(), self.base_url, shape))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        """Moderation models only (sandbox/together/moderation.py)."""
        if not self._auth_ok(request):
            return error_response(401, code="invalid_api_key")
        try:
            return chat_answer(_parse_json(await request.read()))
        except Stall:
            await self._closing.wait()
            return error_response(504)

    async def _short_link(self, request: web.Request) -> web.StreamResponse:
        # Public like Together's signed links: no auth.
        job = self._completed_job(request)
        if job is None:
            return error_response(404, "File not found.")
        location = job.script.redirect_to or f"/files/{job.id}.mp4"
        return web.Response(status=302, headers={"Location": location})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        job = self._completed_job(request)
        if job is None:
            return error_response(404, "File not found.")
        script = job.script
        body = self._video if script.video_body is None else script.video_body
        total = len(body) if script.video_bytes is None else script.video_bytes
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = total
        await response.prepare(request)
        if request.method != "HEAD":
            job.downloads += 1
            try:
                await _write_video(response, body, total, script.trickle_bytes_per_second)
            except ConnectionError:
                # The client went away mid-body (a downloader giving up on a trickle).
                job.downloads_cut += 1
                return response
        await response.write_eof()
        return response

    # -- helpers ---------------------------------------------------------------------------

    def _roll_fault(self) -> bool:
        if self.fault_rate <= 0 or self._rng.random() >= self.fault_rate:
            return False
        self.faults_injected += 1
        return True

    def _take_script(self, body: dict[str, Any]) -> JobScript:
        if self._scripts:
            script = self._scripts.popleft()
        else:
            script = maybe_fail(self.default_script, self.fail_rate, self._rng)
        prompt = body.get("prompt")
        return apply_prompt_markers(script, prompt if isinstance(prompt, str) else None)

    def _new_job(self, script: JobScript, body: dict[str, Any]) -> SandboxJob:
        job = SandboxJob(
            id=str(uuid.uuid4()),
            script=script,
            body=body,
            created_at=self.clock(),
            created_unix=time.time(),
            clock=self.clock,
        )
        self.jobs[job.id] = job
        self._start_media_fetches(job)
        return job

    def _start_media_fetches(self, job: SandboxJob) -> None:
        # Like Together, fetch the video and audio URLs after answering; a dead one fails the job.
        self.media_fetcher.start(job)

    def _completed_job(self, request: web.Request) -> SandboxJob | None:
        job = self.jobs.get(request.match_info["id"])
        return job if job is not None and job.status == "completed" else None


async def _write_video(
    response: web.StreamResponse, body: bytes, total: int, trickle: float | None
) -> None:
    """Send `body` cut or zero-padded to `total` bytes; at `trickle` bytes/s when given."""
    if trickle is None:
        for piece in _video_pieces(body, total, CHUNK_BYTES):
            await response.write(piece)
        return
    piece_size = min(CHUNK_BYTES, max(1, int(trickle * TRICKLE_TICK_SECONDS)))
    for piece in _video_pieces(body, total, piece_size):
        await response.write(piece)
        await asyncio.sleep(len(piece) / trickle)


def _video_pieces(body: bytes, total: int, size: int) -> Iterator[bytes]:
    # In pieces, so a padded multi-GB "video" never sits in memory at once.
    head = body[:total]
    for start in range(0, len(head), size):
        yield head[start : start + size]
    remaining = total - len(head)
    while remaining > 0:
        piece = min(remaining, size)
        yield _ZEROS[:piece]
        remaining -= piece


async def _run_handler(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a route; turn aiohttp's raised errors (404, 405 ...) into JSON error bodies."""
    try:
        return await handler(request)
    except web.HTTPRedirection as exc:
        return web.Response(status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        return error_response(exc.status, exc.reason)
    except Exception:
        log.exception("sandbox handler failed for %s %s", request.method, request.path)
        return error_response(500)


def _with_retry_after(response: web.Response, seconds: int) -> web.Response:
    response.headers["retry-after"] = str(seconds)
    return response


def _parse_json(raw: bytes) -> Any | None:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _redact(value: str) -> str:
    # Keep only the scheme, and only when it is the expected one: a bare key has no scheme.
    return "Bearer ***" if value.lower().startswith("bearer") else "***"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
