"""Videos and soundtracks Together fetches by URL: the link must still work when the POST
leaves. And a job Together cancels ends cancelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.together.errors import TogetherRateLimited
from storage.models import JobState, MediaLink
from tests.unit.fakes import status
from tests.unit.test_engine import POLL, Harness

HOUR = 3600.0


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def link(h: Harness, expires_in: float | None, on_message: bool = True) -> MediaLink:
    expires = None if expires_in is None else h.clock.now() + expires_in
    where = (7, 8, 9) if on_message else (None, None, None)
    return MediaLink("video", "https://cdn/old.mp4", expires, *where)


def add_with(h: Harness, *links: MediaLink) -> None:
    h.store.link_map[1] = list(links)
    h.add(1, media=tuple(sorted(lk.kind for lk in links)))


def sent_video(h: Harness) -> str:
    media = h.api.posts[-1].media
    assert media is not None and media.frame_videos is not None
    return media.frame_videos[0].video


async def test_a_link_with_time_left_is_sent_as_it_is(h: Harness) -> None:
    add_with(h, link(h, 20 * HOUR), MediaLink("soundtrack", "https://cdn/a.mp3", None))
    await h.step()
    assert sent_video(h) == "https://cdn/old.mp4"
    media = h.api.posts[-1].media
    assert media is not None and media.audio_inputs is not None
    assert media.audio_inputs[0].audio == "https://cdn/a.mp3"
    assert not h.notifier.refreshed


async def test_a_link_about_to_expire_is_fetched_again_from_its_message(h: Harness) -> None:
    old = link(h, 10 * 60)
    h.notifier.fresh_links = MediaLink("video", "https://cdn/new.mp4", h.clock.now() + 24 * HOUR)
    add_with(h, old)
    await h.step()
    assert h.notifier.refreshed == [old]
    assert sent_video(h) == "https://cdn/new.mp4"
    assert h.state() is JobState.RUNNING


async def test_an_expired_link_whose_message_is_gone_fails_before_anything_is_sent(
    h: Harness,
) -> None:
    h.notifier.fresh_links = None  # the message or the attachment was deleted
    add_with(h, link(h, -60))
    await h.step()
    job = h.store.jobs[1]
    assert job.state is JobState.FAILED and job.together_id is None  # quota given back
    assert "not charged" in (job.failure_reason or "")
    assert not h.api.posts


async def test_a_slash_command_link_is_used_while_it_lasts(h: Harness) -> None:
    add_with(h, link(h, 5 * 60, on_message=False))
    await h.step()
    assert sent_video(h) == "https://cdn/old.mp4" and not h.notifier.refreshed


async def test_an_expired_slash_command_link_fails_the_job_unsent(h: Harness) -> None:
    add_with(h, link(h, -1, on_message=False))
    await h.step()
    assert h.state() is JobState.FAILED and not h.api.posts


async def test_discord_down_while_renewing_keeps_a_link_that_still_works(h: Harness) -> None:
    h.notifier.fresh_links = RuntimeError("Discord said 503")
    add_with(h, link(h, 10 * 60))
    await h.step()
    assert sent_video(h) == "https://cdn/old.mp4"


async def test_discord_down_with_an_expired_link_fails_the_job_unsent(h: Harness) -> None:
    h.notifier.fresh_links = RuntimeError("Discord said 503")
    add_with(h, link(h, -10))
    await h.step()
    assert h.state() is JobState.FAILED and not h.api.posts


async def test_a_job_together_cancels_ends_cancelled(h: Harness) -> None:
    h.api.default_script = [status("in_progress"), status("cancelled")]
    h.add()
    await h.step()
    await h.step(POLL)
    await h.step(POLL)
    job = h.store.jobs[1]
    assert job.state is JobState.CANCELLED
    assert "does not count against your limits" in (job.failure_reason or "")
    assert h.notifier.shown[-1].state is JobState.CANCELLED


async def test_an_unknown_status_keeps_the_job_polling(h: Harness) -> None:
    h.api.default_script = [
        status("paused"),
        status("paused"),
        status("completed", video_url="https://x/v.mp4"),
    ]
    h.add()
    await h.step()
    await h.step(POLL)
    assert h.state() is JobState.RUNNING and h.store.jobs[1].provider_status == "paused"
    await h.run_for(4 * POLL)
    assert h.state() is JobState.DELIVERED


async def test_a_rate_limited_submission_is_never_failed_for_it(h: Harness) -> None:
    h.api.default_script = [status("in_progress")]
    h.api.post_errors = [TogetherRateLimited("slow down", status=429)] * 5
    h.add()
    await h.run_for(200, step=2)
    assert h.state() is JobState.RUNNING
    assert len(h.api.posts) == 6
