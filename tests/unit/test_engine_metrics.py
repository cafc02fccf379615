"""What the engine tells its Recorder (bot.engine.ports), and its snapshot: fakes, virtual time."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bot.engine.budget import outcome_of
from bot.engine.ports import TogetherOutcome
from bot.together.errors import (
    TogetherBadRequest,
    TogetherConnectionError,
    TogetherError,
    TogetherProtocolError,
    TogetherRateLimited,
    TogetherServerError,
)
from storage.models import JobState
from tests.unit.fakes import status
from tests.unit.test_engine import POLL, Harness


class CountingRecorder:
    def __init__(self) -> None:
        self.answers: list[TogetherOutcome] = []
        self.finished: list[tuple[JobState, str]] = []
        self.spend: list[tuple[str, float]] = []
        self.delays: list[float] = []

    def together_answered(self, outcome: TogetherOutcome) -> None:
        self.answers.append(outcome)

    def job_finished(self, state: JobState, model: str) -> None:
        self.finished.append((state, model))

    def spent(self, model: str, usd: float) -> None:
        self.spend.append((model, usd))

    def delivered(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def rec() -> CountingRecorder:
    return CountingRecorder()


async def test_a_delivered_job_is_counted_with_its_cost_and_delay(
    tmp_path: Path, rec: CountingRecorder
) -> None:
    h = Harness(tmp_path, recorder=rec)
    done_at = h.clock.now() + 7.0  # Together says it finished between the two polls
    h.api.default_script = [
        status("in_progress"),
        status("completed", video_url="https://x/v.mp4", cost=0.28, completed_at=done_at),
    ]
    h.add()
    await h.step()  # POST
    await h.step(POLL)  # in_progress
    await h.step(POLL)  # completed
    await h.step()
    assert h.state() is JobState.DELIVERED
    assert rec.answers == ["ok", "ok", "ok"]
    assert rec.finished == [(JobState.DELIVERED, "minimax/hailuo-02")]
    assert rec.spend == [("minimax/hailuo-02", 0.28)]
    delivered_at = h.store.jobs[1].delivered_at
    assert delivered_at is not None and delivered_at > done_at
    assert rec.delays == [pytest.approx(delivered_at - done_at)]


async def test_a_failed_job_with_a_cost_counts_its_spend_once(
    tmp_path: Path, rec: CountingRecorder
) -> None:
    h = Harness(tmp_path, recorder=rec)
    h.api.default_script = [status("failed", error_message="flagged", cost=0.1)]
    h.add()
    await h.step()
    await h.run_for(3 * POLL)
    assert rec.finished == [(JobState.FAILED, "minimax/hailuo-02")]
    assert rec.spend == [("minimax/hailuo-02", 0.1)]
    assert rec.delays == []


async def test_a_429_then_a_success_are_both_counted(tmp_path: Path, rec: CountingRecorder) -> None:
    h = Harness(tmp_path, recorder=rec)
    h.api.default_script = [status("in_progress")]
    h.api.post_errors = [TogetherRateLimited("slow down", status=429, retry_after=1.0)]
    h.add()
    await h.run_for(3)
    assert rec.answers[:2] == ["rate_limited", "ok"]
    assert rec.finished == [] and rec.spend == []


async def test_a_cancel_is_counted(tmp_path: Path, rec: CountingRecorder) -> None:
    h = Harness(tmp_path, recorder=rec, max_active=1)
    h.api.default_script = [status("in_progress")]
    h.add(1)
    h.add(2)
    await h.step()
    assert await h.engine.cancel(2, "cancelled by its member") is not None
    assert rec.finished == [(JobState.CANCELLED, "minimax/hailuo-02")]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (TogetherRateLimited("x", status=429), "rate_limited"),
        (TogetherBadRequest("x", status=400), "client_error"),
        (TogetherError("x", status=404), "client_error"),
        (TogetherServerError("x", status=503), "server_error"),
        (TogetherConnectionError("x", kind="read_timeout"), "network"),
        (TogetherProtocolError("x", status=200), "bad_answer"),
    ],
)
def test_each_failure_has_one_outcome(error: TogetherError, outcome: str) -> None:
    assert outcome_of(error) == outcome


async def test_the_snapshot_counts_jobs_by_state_overall_and_per_server(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, max_active=1, requests_per_second=5, start_requests_per_second=1)
    h.api.default_script = [status("in_progress")]
    h.add(1)
    h.add(2, guild_id=99)
    h.add(3)
    await h.step()
    overall = h.engine.snapshot()
    assert overall.states[JobState.RUNNING] == 1 and overall.waiting == 2
    assert overall.unfinished == 3
    assert list(overall.states) == [
        JobState.QUEUED,
        JobState.SUBMITTING,
        JobState.RUNNING,
        JobState.DELIVERING,
    ]
    other = h.engine.snapshot(guild_id=99)
    assert other.waiting == 1 and other.unfinished == 1
    budget = overall.budget
    assert budget.limited and budget.learning
    assert (budget.rate, budget.ceiling) == (1.0, 5.0)
    assert not budget.backing_off and budget.last_429_ago is None


async def test_the_snapshot_shows_a_429_backoff(tmp_path: Path) -> None:
    h = Harness(tmp_path, requests_per_second=5, start_requests_per_second=1)
    h.api.post_errors = [TogetherRateLimited("slow down", status=429, retry_after=30.0)]
    h.add()
    await h.step()
    await h.step(2)
    budget = h.engine.snapshot().budget
    assert budget.backing_off and budget.rate == pytest.approx(0.7)
    assert 0 < budget.paused_for <= 30 and budget.last_429_ago == pytest.approx(2.0)


def test_an_unlimited_budget_has_no_rate(tmp_path: Path) -> None:
    budget = Harness(tmp_path).engine.snapshot().budget
    assert not budget.limited and math.isinf(budget.rate)
