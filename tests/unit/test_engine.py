"""The job engine with a fake API, store and notifier, on virtual time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.engine import EngineConfig, FileRefused, JobEngine, MessageUnreachable, Progress
from bot.engine.ports import Recorder
from bot.engine.tracked import Submission
from bot.media.files import DownloadFailed, DownloadRefused
from bot.media.reencode import CannotFit, FitResult
from bot.together.errors import (
    TogetherBadRequest,
    TogetherConnectionError,
    TogetherRateLimited,
    TogetherServerError,
)
from bot.together.models import CreateVideoRequest, VideoJob
from storage.models import Job, JobState
from tests.unit.fakes import (
    WAN,
    FakeAPI,
    FakeFetcher,
    FakeStore,
    RecordingNotifier,
    make_job,
    status,
)

POLL = 5.0
EDIT = 10.0


class Harness:
    def __init__(
        self,
        tmp_path: Path,
        store: FakeStore | None = None,
        api: FakeAPI | None = None,
        recorder: Recorder | None = None,
        **config: object,
    ) -> None:
        self.clock = ManualClock()
        self.store = store or FakeStore()
        self.api = api or FakeAPI(self.clock)
        self.fetch = FakeFetcher()
        self.notifier = RecordingNotifier()
        options: dict[str, object] = dict(
            workdir=tmp_path / "downloads",
            poll_interval=POLL,
            edit_interval=EDIT,
            retry_delay=2.0,
            requests_per_second=0,
        )
        options.update(config)
        self.engine = JobEngine(
            self.store,
            self.api,
            self.fetch,
            self.clock,
            EngineConfig(**options),  # type: ignore[arg-type]
            recorder=recorder,
        )
        self.engine.attach(self.notifier)

    def add(self, job_id: int = 1, **overrides: object) -> None:
        overrides.setdefault("deadline_at", self.clock.now() + 600)  # a 10-minute model
        job = make_job(job_id, self.clock.now(), **overrides)
        self.store.jobs[job.id] = job
        self.engine.enqueue(job)

    async def step(self, seconds: float = 0.0) -> None:
        """Advance virtual time, run one scheduler pass, and let its work finish."""
        self.clock.advance(seconds)
        await self.engine.tick()
        await self.engine.drain()

    async def run_for(self, seconds: float, step: float = 1.0) -> None:
        elapsed = 0.0
        while elapsed < seconds:
            await self.step(step)
            elapsed += step

    def state(self, job_id: int = 1) -> JobState:
        return self.store.jobs[job_id].state


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


async def test_completed_job_is_delivered_once(h: Harness) -> None:
    h.api.default_script = [
        status("in_progress"),
        status("completed", video_url="https://x/v.mp4", cost=0.28, seed=7),
    ]
    h.add()
    await h.step()
    assert h.state() is JobState.RUNNING
    assert h.store.jobs[1].together_id == "vid_1"
    await h.step(POLL)
    assert h.store.jobs[1].provider_status == "in_progress"
    await h.step(POLL)
    await h.step()
    job = h.store.jobs[1]
    assert job.state is JobState.DELIVERED
    assert job.delivery == "attachment"
    assert job.cost_usd == 0.28 and job.params.seed == 7
    assert len(h.notifier.delivered) == 1
    assert h.notifier.delivered[0][1] == b"\0" * 2048
    assert len(h.api.posts) == 1
    assert h.api.posts[0].model == "minimax/hailuo-02" and h.api.posts[0].seconds == "6"
    assert not list((h.engine._config.workdir).iterdir()), "the download is removed"
    assert h.engine.tracked(1) is None
    assert [s for _, s, n in h.store.history] == [
        JobState.QUEUED,
        JobState.SUBMITTING,
        JobState.RUNNING,
        JobState.DELIVERING,
    ]


async def test_provider_failure_shows_its_reason(h: Harness) -> None:
    h.api.default_script = [status("failed", error_message="Prompt was flagged by moderation")]
    h.add()
    await h.step()
    await h.step(POLL)
    job = h.store.jobs[1]
    assert job.state is JobState.FAILED
    assert job.failure_reason == "Prompt was flagged by moderation"
    assert h.notifier.shown[-1].state is JobState.FAILED
    assert not h.notifier.delivered


async def test_post_that_already_failed_is_not_polled(h: Harness) -> None:
    h.api.post_result = {"status": "failed", "error_message": "unsupported size"}
    h.add()
    await h.step()
    assert h.state() is JobState.FAILED
    assert h.store.jobs[1].failure_reason == "unsupported size"
    assert h.api.gets == []


async def test_rejected_submission_fails_without_retry(h: Harness) -> None:
    h.api.post_errors = [TogetherBadRequest("steps must be <= 50", status=400)]
    h.add()
    await h.run_for(30)
    job = h.store.jobs[1]
    assert job.state is JobState.FAILED
    assert job.failure_reason == "Together refused the request: steps must be <= 50"
    assert len(h.api.posts) == 1


@pytest.mark.parametrize(
    "error",
    [
        TogetherServerError("upstream timeout", status=503),
        TogetherConnectionError("read timed out", kind="read_timeout"),
    ],
)
async def test_unconfirmed_submission_is_never_sent_twice(h: Harness, error: Exception) -> None:
    h.api.post_errors = [error]  # type: ignore[list-item]
    h.add()
    await h.run_for(60)
    job = h.store.jobs[1]
    assert job.state is JobState.FAILED
    assert "not sent again" in (job.failure_reason or "")
    assert len(h.api.posts) == 1


async def test_rate_limited_submission_waits_and_retries(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.api.post_errors = [TogetherRateLimited("slow down", status=429, retry_after=7.0)]
    h.add()
    await h.step()
    assert h.state() is JobState.QUEUED
    await h.step(6)
    assert len(h.api.posts) == 1, "Retry-After is honoured"
    await h.step(1.5)
    assert h.state() is JobState.RUNNING
    assert len(h.api.posts) == 2


async def test_connection_refused_gives_up_after_attempts(h: Harness) -> None:
    h.api.post_errors = [TogetherConnectionError("refused", kind="connect")] * 3
    h.add()
    await h.run_for(120)
    assert h.state() is JobState.FAILED
    assert len(h.api.posts) == 3
    assert (h.store.jobs[1].failure_reason or "").startswith("Together refused the request")


async def test_a_lost_final_edit_is_retried(tmp_path: Path) -> None:
    h = Harness(tmp_path, retry_delay=0.01)
    h.api.default_script = [status("failed", error_message="nope")]
    h.add()
    await h.step()
    h.notifier.fail_shows = 2  # the failure's edit is lost twice
    await h.step(POLL)
    assert h.state() is JobState.FAILED
    assert h.notifier.shown[-1].state is JobState.FAILED, "the third try got through"


async def test_a_lost_progress_edit_is_not_retried(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.add()
    h.notifier.fail_shows = 1
    await h.step()
    await h.engine.drain()
    assert all(j.state is not JobState.RUNNING for j in h.notifier.shown)


async def test_job_that_never_finishes_times_out(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.add()
    await h.step(30)  # time waiting in the bot's queue does not count
    await h.run_for(595, step=POLL)
    assert h.state() is JobState.RUNNING
    await h.run_for(10, step=POLL)
    job = h.store.jobs[1]
    assert job.state is JobState.TIMED_OUT
    assert "10 minutes" in (job.failure_reason or "")
    assert h.notifier.shown[-1].state is JobState.TIMED_OUT


async def test_polling_outage_backs_off_and_never_fails(h: Harness) -> None:
    outage = TogetherServerError("bad gateway", status=502)
    h.api.default_script = [outage] * 6 + [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(300)
    assert h.state() is JobState.DELIVERED
    # Backoff: far fewer polls than one every POLL seconds during the outage.
    assert len(h.api.gets) == 7


async def test_progress_edits_are_throttled(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.add()
    await h.step()  # submitted: one edit for the state change
    await h.run_for(60, step=0.5)
    running = [j for j in h.notifier.shown if j.state is JobState.RUNNING]
    # one for RUNNING, one for in_progress, then one per EDIT seconds
    assert 6 <= len(running) <= 8
    assert len(h.api.gets) >= 11


async def test_video_over_the_limit_is_posted_as_link(h: Harness) -> None:
    h.fetch.size = 11 * 1024 * 1024
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    job = h.store.jobs[1]
    assert job.state is JobState.DELIVERED and job.delivery == "link"
    assert h.notifier.delivered == [(h.notifier.delivered[0][0], None)]
    assert not list(h.engine._config.workdir.iterdir()), "the download is removed"


async def test_video_over_the_limit_is_reencoded_to_fit(tmp_path: Path) -> None:
    fits: list[tuple[Path, int]] = []

    async def fit(source: Path, limit: int, workdir: Path, *, source_format: str) -> FitResult:
        fits.append((source, limit))
        out = workdir / f"{source.stem}-fit.mp4"
        out.write_bytes(b"small")
        return FitResult(out, 5, True)

    h = Harness(tmp_path)
    h.engine._courier._fit = fit
    h.fetch.size = 11 * 1024 * 1024
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    job = h.store.jobs[1]
    assert job.state is JobState.DELIVERED and job.delivery == "attachment"
    assert h.notifier.delivered[0][1] == b"small"
    assert fits[0][1] == 10 * 1024 * 1024
    assert not list(h.engine._config.workdir.iterdir()), "both files are removed"


async def test_video_that_cannot_fit_is_posted_as_link(tmp_path: Path) -> None:
    async def fit(source: Path, limit: int, workdir: Path, *, source_format: str) -> FitResult:
        raise CannotFit("even at the lowest quality the video is too big")

    h = Harness(tmp_path)
    h.engine._courier._fit = fit
    h.fetch.size = 11 * 1024 * 1024
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    assert h.store.jobs[1].delivery == "link"
    assert h.notifier.delivered[0][1] is None


async def test_video_too_large_to_download_is_posted_as_link(tmp_path: Path) -> None:
    async def fit(source: Path, limit: int, workdir: Path, *, source_format: str) -> FitResult:
        raise AssertionError("a video over the cap is never downloaded, so never fitted")

    h = Harness(tmp_path, max_download_bytes=20 * 1024 * 1024)
    h.engine._courier._fit = fit
    h.fetch.size = 30 * 1024 * 1024
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    assert h.store.jobs[1].delivery == "link"
    # 8 times the 10 MiB upload limit is more than the 20 MiB cap: the cap holds.
    assert h.fetch.calls[0][2] == 20 * 1024 * 1024


async def test_without_ffmpeg_no_more_than_the_upload_limit_is_downloaded(h: Harness) -> None:
    h.fetch.size = 11 * 1024 * 1024
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    assert h.store.jobs[1].delivery == "link"
    assert h.fetch.calls[0][2] == 10 * 1024 * 1024, "nothing could shrink a larger file"


async def test_with_ffmpeg_the_cap_is_what_reencoding_can_bring_under_the_limit(
    tmp_path: Path,
) -> None:
    async def fit(source: Path, limit: int, workdir: Path, *, source_format: str) -> FitResult:
        return FitResult(source, 1, True)

    h = Harness(tmp_path)  # max_download_bytes: the default 512 MiB
    h.engine._courier._fit = fit
    h.api.default_script = [status("completed", video_url="https://x/v.webm")]
    h.add(output_format="WEBM", upload_limit=8 * 1024 * 1024)
    await h.run_for(10)
    assert h.fetch.calls[0][2] == 8 * 8 * 1024 * 1024
    assert h.fetch.formats == ["WEBM"], "the format asked for is the format checked"


async def test_delivery_failures_are_retried(h: Harness) -> None:
    h.notifier.fail_deliveries = 2
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(60)
    assert h.state() is JobState.DELIVERED
    assert len(h.notifier.delivered) == 1
    assert len(h.fetch.calls) == 1, "the downloaded file is kept between attempts"


class OutageNotifier(RecordingNotifier):
    """Discord's REST API answers 503 to everything until ``back_at`` on the virtual clock."""

    def __init__(self, clock: ManualClock, back_at: float) -> None:
        super().__init__()
        self.clock = clock
        self.back_at = back_at
        self.refused = 0

    async def show(self, job: Job, progress: Progress) -> int | None:
        self._outage()
        return await super().show(job, progress)

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        self._outage()
        return await super().deliver(job, video)

    def _outage(self) -> None:
        if self.clock.now() < self.back_at:
            self.refused += 1
            raise RuntimeError("503 Service Unavailable")


async def test_a_ten_minute_discord_outage_delays_the_video_but_never_fails_it(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, retry_delay=5.0)
    h.api.default_script = [status("completed", video_url="https://x/v.mp4", cost=0.28)]
    h.add()
    await h.step()  # submitted; Together has already finished
    assert h.state() is JobState.RUNNING
    back_at = h.clock.now() + 600  # the outage starts as the job finishes at Together
    outage = OutageNotifier(h.clock, back_at)
    h.engine.attach(outage)
    while h.clock.now() < back_at:
        await h.step(1.0)
        assert not h.state().is_final, "a passing fault never fails a paid video"
    assert h.state() is JobState.DELIVERING
    assert outage.refused >= 10, "delivery kept trying during the outage"
    delivered_at = None
    for _ in range(120):
        await h.step(1.0)
        if h.state() is JobState.DELIVERED:
            delivered_at = h.clock.now()
            break
    assert delivered_at is not None
    assert delivered_at - back_at <= 60.0, "within one (capped) backoff interval of recovery"
    assert len(outage.delivered) == 1, "uploaded once"
    assert len(h.fetch.calls) == 1, "the file was kept, not downloaded again"
    assert not list(h.engine._config.workdir.iterdir()), "its folder is removed once delivered"


async def test_passing_delivery_failures_back_off_to_at_most_a_minute(h: Harness) -> None:
    h.notifier.fail_deliveries = 10_000
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(3600, step=5)
    assert h.state() is JobState.DELIVERING
    tracked = h.engine._jobs[1]
    assert tracked.due_at - h.clock.now() <= 60.0
    assert h.engine._courier.holding(1)
    assert len(h.fetch.calls) == 1


async def test_an_unreachable_channel_fails_the_job_with_the_reason(h: Harness) -> None:
    h.notifier.deliver_error = MessageUnreachable("the channel was deleted")
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    job = h.store.jobs[1]
    assert job.state is JobState.FAILED and job.delivery == "failed"
    assert "the channel was deleted" in (job.failure_reason or "")
    assert not list(h.engine._config.workdir.iterdir()), "its folder is removed"


async def test_a_file_discord_refuses_is_posted_as_the_link(h: Harness) -> None:
    h.notifier.deliver_error = FileRefused("413")
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    job = h.store.jobs[1]
    assert job.state is JobState.DELIVERED and job.delivery == "link"
    assert h.notifier.delivered[0][1] is None


async def test_a_refused_download_fails_the_job_and_posts_nothing(h: Harness) -> None:
    h.fetch.errors = [DownloadRefused("The file Together sent is not a video.", code="not_a_video")]
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    job = h.store.jobs[1]
    assert job.state is JobState.FAILED
    assert "not a video" in (job.failure_reason or "")
    assert not h.notifier.delivered
    assert len(h.fetch.calls) == 1, "a permanent refusal is not retried"


async def test_a_failing_download_is_retried_while_the_link_may_work(h: Harness) -> None:
    h.fetch.errors = [DownloadFailed("The download was too slow.", code="too_slow")] * 3
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(120)
    assert h.state() is JobState.DELIVERED
    assert len(h.fetch.calls) == 4


async def test_a_download_failing_past_the_links_lifetime_gives_up(tmp_path: Path) -> None:
    h = Harness(tmp_path, link_lifetime=300.0)
    h.fetch.errors = [
        DownloadFailed("Together's file server did not answer.", code="connect")
    ] * 1000
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(400, step=5)
    job = h.store.jobs[1]
    assert job.state is JobState.FAILED
    assert "did not answer" in (job.failure_reason or "")


async def test_a_video_that_finished_during_a_poll_backoff_is_not_timed_out(h: Harness) -> None:
    outage = TogetherServerError("bad gateway", status=502)
    finished = status("completed", video_url="https://x/v.mp4", cost=0.28)
    h.api.default_script = [status("in_progress")] * 3 + [outage] * 8 + [finished]
    h.add()
    await h.run_for(900, step=5)
    job = h.store.jobs[1]
    assert job.state is JobState.DELIVERED, "the last status check found the finished video"
    assert job.cost_usd == 0.28


async def test_together_down_at_the_deadline_times_out_after_the_grace(tmp_path: Path) -> None:
    h = Harness(tmp_path, final_check_grace=300.0)
    outage = TogetherServerError("bad gateway", status=502)
    h.api.default_script = [status("in_progress"), outage]
    h.add()
    await h.run_for(620, step=5)
    assert h.state() is JobState.RUNNING, "waiting for one last answer"
    await h.run_for(400, step=5)
    assert h.state() is JobState.TIMED_OUT


async def test_a_final_state_lost_in_an_outage_is_shown_by_the_periodic_pass(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, retry_delay=0.001, reannounce_interval=60.0)
    h.api.default_script = [status("failed", error_message="nope")]
    h.add()
    h.notifier.fail_shows = 1000
    await h.run_for(10)
    await asyncio.sleep(0.05)  # the final edit's own retries (real time) run out
    await h.engine.drain()
    assert h.state() is JobState.FAILED and not h.store.jobs[1].announced
    h.notifier.fail_shows = 0  # Discord is back; no restart
    await h.run_for(61)
    job = h.store.jobs[1]
    assert job.announced
    assert h.notifier.shown[-1].state is JobState.FAILED
    assert job.interaction_token == "", "no token is kept once the end is shown"


async def test_an_unreachable_final_message_counts_as_announced(h: Harness) -> None:
    h.api.default_script = [status("failed", error_message="nope")]
    h.add()
    h.notifier.show_error = MessageUnreachable("the channel was deleted")
    await h.run_for(10)
    assert h.store.jobs[1].announced, "nobody is left there to tell: not shown forever"


async def test_a_delivered_job_keeps_no_interaction_token(h: Harness) -> None:
    h.api.default_script = [status("completed", video_url="https://x/v.mp4")]
    h.add()
    await h.run_for(10)
    job = h.store.jobs[1]
    assert job.state is JobState.DELIVERED and job.interaction_token == ""


async def test_a_deleted_message_is_replaced_and_the_new_one_kept(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.add()
    h.notifier.posted_id = 777

    async def show_in_new_message(job: Job, progress: Progress) -> int | None:
        h.notifier.shown.append(job)
        return 777 if job.message_id != 777 else None

    h.notifier.show = show_in_new_message  # type: ignore[method-assign]
    await h.run_for(30)
    assert h.store.jobs[1].message_id == 777
    assert h.engine.tracked(1) is not None and h.engine.tracked(1).message_id == 777  # type: ignore[union-attr]


async def test_jobs_waiting_for_a_slot_do_not_wake_the_loop(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_active=1)
    h.api.default_script = [status("in_progress")]
    for job_id in range(1, 101):
        h.add(job_id, user_id=job_id)
    await h.step()
    assert h.state(1) is JobState.RUNNING
    for tracked in h.engine._jobs.values():
        tracked.last_edit_at = h.clock.now()  # no periodic edit due either
    assert h.engine._next_due() > h.clock.now(), "99 queued jobs with no free slot are not due"


async def test_lost_race_changes_nothing(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.add()
    await h.step()
    # Someone else (a moderator's cancel, another process) finishes the job first.
    await h.store.transition(1, JobState.RUNNING, JobState.CANCELLED, h.clock.now())
    h.api.scripts["vid_1"] = [status("completed", video_url="https://x/v.mp4")]
    await h.run_for(20)
    assert h.state() is JobState.CANCELLED
    assert not h.notifier.delivered
    assert h.engine.tracked(1) is None


async def test_max_active_jobs_holds_the_rest_in_queue(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_active=2)
    h.api.default_script = [status("in_progress")]
    for job_id in (1, 2, 3):
        h.add(job_id)
    await h.step()
    assert [h.state(i) for i in (1, 2, 3)] == [JobState.RUNNING, JobState.RUNNING, JobState.QUEUED]


async def test_a_submission_in_flight_holds_its_slot(tmp_path: Path) -> None:
    """A job arriving while another's submission has not yet been written must wait."""
    h = Harness(tmp_path, max_active=1)
    h.api.default_script = [status("in_progress")]
    h.add(1)
    await h.engine.tick()  # job 1's submission is spawned; its state write has not run yet
    h.add(2)
    await h.engine.tick()
    await h.engine.drain()
    assert len(h.api.posts) == 1
    await h.step()
    assert [h.state(1), h.state(2)] == [JobState.RUNNING, JobState.QUEUED]


async def test_cancel_only_while_queued(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_active=1)
    h.api.default_script = [status("in_progress")]
    h.add(1)
    h.add(2)
    await h.step()
    assert await h.engine.cancel(1, "too late") is None
    cancelled = await h.engine.cancel(2, "changed my mind")
    assert cancelled is not None and cancelled.state is JobState.CANCELLED
    await h.engine.drain()
    assert h.notifier.shown[-1].state is JobState.CANCELLED
    await h.run_for(20)
    assert h.state(2) is JobState.CANCELLED and len(h.api.posts) == 1


async def test_one_members_many_jobs_do_not_starve_others(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_active=2)
    h.api.default_script = [status("in_progress")]
    for job_id in range(1, 11):
        h.add(job_id, user_id=1)
    h.add(11, user_id=2)
    await h.step()
    await h.step()  # places in line are computed for the jobs still waiting
    assert {j for j in h.store.jobs if h.state(j) is JobState.RUNNING} == {1, 11}
    waiting = [p for p in h.notifier.progress if p.place is not None]
    assert waiting, "queued jobs were told their place in line"


async def test_per_server_limit(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_active=10, max_active_per_guild=2)
    h.api.default_script = [status("in_progress")]
    for job_id in range(1, 5):
        h.add(job_id, guild_id=1, user_id=job_id)
    h.add(5, guild_id=2, user_id=9)
    await h.step()
    running = {j for j in h.store.jobs if h.state(j) is JobState.RUNNING}
    assert running == {1, 2, 5}


async def test_request_budget_holds_under_overload(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_active=500, max_active_per_guild=500, requests_per_second=5)
    h.api.default_script = [status("in_progress")]
    for job_id in range(1, 201):
        h.add(job_id, user_id=job_id)
    await h.run_for(120, step=0.1)
    times = sorted(h.api.request_times)
    assert len(times) >= 5 * 100
    for i, start in enumerate(times):
        assert sum(1 for t in times[i : i + 6] if t < start + 1.0 - 1e-9) <= 5


async def test_final_state_is_announced_once_shown_and_reshown_after_restart(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, retry_delay=0.001)
    h.api.default_script = [status("failed", error_message="nope")]
    h.add()
    h.notifier.fail_shows = 100  # Discord loses every edit, then the bot "crashes"
    await h.run_for(10)
    assert h.state() is JobState.FAILED and not h.store.jobs[1].announced

    restarted = Harness(tmp_path, store=h.store)
    await restarted.engine.recover()
    await restarted.engine.drain()
    assert [j.state for j in restarted.notifier.shown] == [JobState.FAILED]
    assert h.store.jobs[1].announced
    assert await h.store.unannounced() == []


async def test_a_job_without_a_message_gets_one_and_keeps_it(h: Harness) -> None:
    h.api.default_script = [status("in_progress"), status("completed", video_url="u")]
    h.add(message_id=None)
    await h.run_for(30)
    assert h.state() is JobState.DELIVERED
    assert h.store.jobs[1].message_id == h.notifier.posted_id
    without = [j for j in h.notifier.shown if j.message_id is None]
    assert len(without) == 1, "only the first edit had to post a message"
    assert h.notifier.delivered[0][0].message_id == h.notifier.posted_id


async def test_recovery_follows_the_restart_rules(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    now = h.clock.now()
    h.store.jobs = {
        1: make_job(1, now, state=JobState.QUEUED),
        2: make_job(2, now, state=JobState.SUBMITTING),
        3: make_job(3, now, state=JobState.RUNNING, together_id="vid_old"),
        4: make_job(4, now, state=JobState.DELIVERING, together_id="vid_done", video_url="u"),
        5: make_job(5, now, state=JobState.DELIVERED),
    }
    h.api.scripts["vid_old"] = [status("in_progress")]
    h.api.default_script = [status("in_progress")]
    leftover = tmp_path / "downloads" / "job-9.mp4"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    await h.engine.recover()
    await h.step()
    assert h.state(2) is JobState.FAILED
    assert "not charged twice" in (h.store.jobs[2].failure_reason or "")
    assert h.notifier.shown and any(j.id == 2 for j in h.notifier.shown)
    assert h.state(1) is JobState.RUNNING  # queued waits again, then goes
    assert "vid_old" in h.api.gets  # running is polled again
    assert h.state(4) is JobState.DELIVERED  # delivering is delivered
    # Only job 1 was POSTed.
    assert [p.prompt for p in h.api.posts] == [h.store.jobs[1].params.prompt]
    assert not leftover.exists()


def test_request_body_carries_images_and_the_models_dimensions() -> None:
    from bot.engine import build_request

    job = make_job(1, 0.0, width=1280, height=720, seconds=5, seed=3)
    body = build_request(job, {"first_frame": b"\x01\x02", "last_frame": b"\x03"}).to_body()
    assert (body["width"], body["height"], body["seconds"], body["seed"]) == (1280, 720, "5", 3)
    assert body["media"] == {
        "frame_images": [
            {"input_image": "AQI=", "frame": 0},
            {"input_image": "Aw==", "frame": "last"},
        ]
    }
    body = build_request(job, {"reference": b"\xff"}, WAN).to_body()
    assert (body["resolution"], body["ratio"]) == ("720P", "16:9")
    assert "width" not in body and "height" not in body
    assert body["media"] == {"reference_images": ["/w=="]}
    assert "media" not in build_request(job).to_body()


async def test_submission_sends_the_stored_images(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.store.images[1] = {"first_frame": b"jpeg-bytes"}
    h.add()
    await h.step()
    media = h.api.posts[0].media
    assert media is not None and media.frame_images is not None
    assert media.frame_images[0].frame == 0


class LaggingStore(FakeStore):
    """Writes to "submitting" wait, like SQLite writes queued behind a burst of commands."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None:
        if new_state is JobState.SUBMITTING:
            await self.released.wait()
        return await super().transition(job_id, expected, new_state, now, **changes)


async def test_request_budget_holds_when_writes_lag_behind(tmp_path: Path) -> None:
    """A budget token is spent when the POST leaves, not when its job's write was started."""
    store = LaggingStore()
    h = Harness(
        tmp_path, store=store, max_active=100, max_active_per_guild=100, requests_per_second=5
    )
    h.api.default_script = [status("in_progress")]
    for job_id in range(1, 41):
        h.add(job_id, user_id=job_id)
    start = h.clock.now()
    for _ in range(100):  # 5 virtual seconds, the first of them with every write held up
        h.clock.advance(0.05)
        if h.clock.now() - start >= 1.0:
            store.released.set()
        await h.engine.tick()
        for _ in range(20):
            await asyncio.sleep(0)
    times = sorted(h.api.request_times)
    assert len(times) >= 15
    for i, first in enumerate(times):
        in_window = [t for t in times[i:] if t < first + 1.0 - 1e-9]
        assert len(in_window) <= 5, f"{len(in_window)} requests in the second from {first}"
    h.store.released.set()
    await h.engine.drain()


async def test_a_job_built_but_not_sent_at_shutdown_is_queued_again(tmp_path: Path) -> None:
    h = Harness(tmp_path, requests_per_second=1)
    h.api.default_script = [status("in_progress")]
    h.add(1, user_id=1)
    h.add(2, user_id=2)
    await h.step()  # job 1 takes the only token of this second
    tracked = h.engine._jobs[2]
    tracked.submission = Submission.PREPARING  # job 2's submission starts, finds no token
    await h.engine._submitter.submit(tracked)
    assert h.state(2) is JobState.SUBMITTING and len(h.api.posts) == 1
    await h.engine.stop()
    assert h.state(2) is JobState.QUEUED, "never sent, so safe to submit after the restart"

    restarted = Harness(tmp_path, store=h.store, requests_per_second=1)
    restarted.api.default_script = [status("in_progress")]
    restarted.api.scripts["vid_1"] = [status("in_progress")]
    await restarted.engine.recover()
    await restarted.run_for(3)
    assert h.state(2) is JobState.RUNNING
    assert len(restarted.api.posts) == 1


class ExplodingAPI(FakeAPI):
    async def create_video(self, request: CreateVideoRequest) -> VideoJob:
        await super().create_video(request)
        raise RuntimeError("bug after the request left")


async def test_an_unexpected_error_during_the_post_fails_the_job_without_resending(
    tmp_path: Path,
) -> None:
    api = ExplodingAPI()
    h = Harness(tmp_path, api=api)
    h.add()
    await h.run_for(30)
    assert h.state() is JobState.FAILED
    assert "not charged twice" in (h.store.jobs[1].failure_reason or "")
    assert len(api.posts) == 1


class ForgetfulStore(FakeStore):
    """Fails the first write that would record Together's id."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None:
        if new_state is JobState.RUNNING and self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        return await super().transition(job_id, expected, new_state, now, **changes)


async def test_a_failed_write_after_the_post_is_retried_not_resent(tmp_path: Path) -> None:
    store = ForgetfulStore()
    h = Harness(tmp_path, store=store, retry_delay=1.0)
    h.api.default_script = [status("in_progress")]
    h.add()
    await h.run_for(5)
    assert h.state() is JobState.RUNNING
    assert h.store.jobs[1].together_id == "vid_1"
    assert len(h.api.posts) == 1
