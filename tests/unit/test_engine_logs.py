"""Every line the engine logs while it works on jobs says which job, in the JSON format too.

Jobs run side by side through the engine fakes, with the faults that make the engine talk (a
refused POST, a 429, a polling outage, lost edits and deliveries). One job's task often starts
another job's work (a freed budget token, an edit), so each line's job is checked against the
task that logged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.clock import ManualClock
from bot.log_context import about_job
from bot.logs import JobFields, make_handler
from bot.media.files import DownloadFailed
from bot.together.errors import TogetherRateLimited, TogetherServerError
from storage.models import Job, JobState
from tests.unit.fakes import FakeStore, make_job, status
from tests.unit.test_engine import POLL, Harness

# The engine's tasks are named after the job they work on: job-<id>, edit-<id>, edit-<id>-retry.
JOB_TASK = re.compile(r"(?:job|edit)-(\d+)(?:-retry)?")


@dataclass(frozen=True)
class Seen:
    logger: str
    message: str
    job_id: int | None
    task: str | None


class TaskRecorder(logging.Handler):
    """Which task logged each record, and the job id the bot's filter gave it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(JobFields())
        self.seen: list[Seen] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        job_id = getattr(record, "job_id", None)
        name = task.get_name() if task else None
        self.seen.append(Seen(record.name, record.getMessage(), job_id, name))


@contextlib.contextmanager
def bot_logs() -> Iterator[tuple[io.StringIO, TaskRecorder]]:
    """The bot's JSON handler (and the recorder) on the `bot` loggers, at DEBUG."""
    stream = io.StringIO()
    handler = make_handler("json", ["secret-interaction-token"], stream)
    recorder = TaskRecorder()
    bot = logging.getLogger("bot")
    level = bot.level
    bot.setLevel(logging.DEBUG)
    bot.addHandler(handler)
    bot.addHandler(recorder)
    try:
        yield stream, recorder
    finally:
        bot.removeHandler(handler)
        bot.removeHandler(recorder)
        bot.setLevel(level)


async def test_every_engine_line_about_a_job_carries_its_id_as_json(tmp_path: Path) -> None:
    h = Harness(tmp_path, requests_per_second=5, start_requests_per_second=1)
    h.api.post_errors = [
        TogetherRateLimited("slow down", status=429, retry_after=3.0),
        TogetherServerError("busy", status=429),
    ]
    outage = TogetherServerError("bad gateway", status=502)
    h.api.default_script = [
        outage,
        status("in_progress"),
        status("completed", video_url="https://x/v.mp4"),
    ]
    h.notifier.fail_shows = 2
    h.notifier.fail_deliveries = 1
    h.fetch.errors = [DownloadFailed("connection reset", code="connect")]
    with bot_logs() as (stream, recorder):
        for job_id in (1, 2, 3):
            h.add(job_id)
        for _ in range(200):
            await h.step(0.5)
            if all(h.state(job_id).is_final for job_id in (1, 2, 3)):
                break
    assert [h.state(job_id) for job_id in (1, 2, 3)] == [JobState.DELIVERED] * 3

    lines = stream.getvalue().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    engine = [e for e in entries if str(e["logger"]).startswith("bot.engine")]
    missing = [e["message"] for e in engine if "job_id" not in e]
    assert not missing, f"engine lines without a job id: {missing}"
    assert {e["job_id"] for e in engine} == {1, 2, 3}
    assert all(e["guild_id"] == 10 and e["user_id"] == 30 for e in engine)
    # The faults were logged, so the lines checked include the engine's warnings.
    warnings = {str(e["message"]).split(" (")[0] for e in engine if e["level"] == "WARNING"}
    assert {"Could not read its status", "Progress edit failed"} <= warnings
    assert any(str(e["message"]).startswith("Delivery attempt 1 failed") for e in engine)
    assert any(str(e["message"]).startswith("Together request budget now") for e in engine)

    # Each line logged by a job's task is about that job, not the task that started it.
    in_job_tasks = [s for s in recorder.seen if s.task and JOB_TASK.fullmatch(s.task)]
    assert len(in_job_tasks) > 20
    wrong = [
        (s.task, s.job_id, s.message)
        for s in in_job_tasks
        if s.job_id != int(JOB_TASK.fullmatch(s.task or "")[1])  # type: ignore[index]
    ]
    assert not wrong, f"lines carrying another job's id: {wrong}"


class SlowStore(FakeStore):
    """Time passes while a job is stored as "submitting" (as it does on a real disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock: ManualClock | None = None
        self.lag = 0.0

    async def transition(
        self, job_id: int, expected: JobState, new: JobState, now: float, **changes: object
    ) -> Job | None:
        if new is JobState.SUBMITTING and self.clock is not None:
            self.clock.advance(self.lag)
        return await super().transition(job_id, expected, new, now, **changes)


async def test_a_poll_started_by_another_jobs_task_is_about_its_own_job(tmp_path: Path) -> None:
    """Job 2's submission, made ready in its own task, hands the free tokens out, and job 1's
    poll, due meanwhile, gets one: that poll's task is job 1's, and so are its lines."""
    store = SlowStore()
    h = Harness(tmp_path, store=store)
    store.clock = h.clock
    h.api.default_script = [status("in_progress")]
    h.add(1)
    await h.step()
    assert h.state(1) is JobState.RUNNING
    h.api.scripts["vid_1"] = [TogetherServerError("bad gateway", status=502), status("queued")]
    store.lag = 1.0
    h.clock.advance(POLL - 0.5)  # job 1's poll is due half a second after job 2 is picked
    with bot_logs() as (stream, recorder):
        h.add(2)
        await h.step()
    assert h.state(2) is JobState.RUNNING and h.api.gets == ["vid_1"]
    (poll,) = [s for s in recorder.seen if s.message.startswith("Could not read its status")]
    assert poll.task == "job-1" and poll.job_id == 1
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {e["job_id"] for e in entries if "status" in str(e["message"])} == {1}


async def test_a_cancel_from_a_button_is_logged_about_its_job(tmp_path: Path) -> None:
    """The cancel runs in the member's interaction, not in one of the engine's tasks."""
    h = Harness(tmp_path)
    h.add(4)
    with bot_logs() as (stream, _):
        assert await h.engine.cancel(4, "Cancelled before it was sent to Together.") is not None
    (entry,) = (json.loads(line) for line in stream.getvalue().splitlines())
    assert entry["message"] == "queued -> cancelled" and entry["job_id"] == 4


async def test_the_loop_is_about_no_job_whoever_starts_it(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    def broken(now: float) -> None:
        raise RuntimeError("tick broke")

    h.engine._submitter.start_sends = broken  # type: ignore[method-assign]
    with bot_logs() as (stream, _):
        with about_job(make_job(5, 0.0)):  # say, started from a command about job 5
            await h.engine.start()
        for _ in range(20):
            if stream.getvalue():
                break
            await asyncio.sleep(0.01)
        await h.engine.stop(grace=0.1)
    entry = json.loads(stream.getvalue().splitlines()[0])
    assert entry["message"] == "Job engine tick failed; continuing"
    assert "job_id" not in entry and "tick broke" in entry["exception"]
