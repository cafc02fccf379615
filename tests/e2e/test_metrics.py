"""METRICS_PORT end to end: the real bot against the stand-ins runs a /video job to delivery,
then /metrics is scraped over HTTP; and a port already taken stops `python -m bot` (exit 2)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sandbox.harness import Stack
from sandbox.process import run_bot_once
from storage.models import JobState
from tests.e2e.conftest import StackFactory
from tests.e2e.test_video_flow import answered, finished, stored

ROOT = Path(__file__).resolve().parents[2]
# The only labels any metric may carry: nothing that names a member, server, channel or job.
ALLOWED_LABELS = {"state", "model", "outcome", "version", "le"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def test_one_delivered_job_moves_the_metrics(make_stack: StackFactory) -> None:
    port = free_port()
    stack: Stack = await make_stack(
        metrics_port=port, together_requests_per_second=5, together_start_requests_per_second=1
    )
    before = await scrape(port)
    assert before[("videobot_queue_length", frozenset())] == 0
    assert ("videobot_jobs_finished_total", frozenset({("state", "delivered")})) not in before

    # Answers discord.py retries by itself: counted all the same.
    stack.discord.fail_next("PATCH", "/webhooks/*", 429, retry_after=0.3)
    stack.discord.fail_next("PATCH", "/webhooks/*", 502)
    message = await answered(stack, await stack.video(prompt="a lighthouse in a storm"))
    await finished(stack, message)
    job = await stored(stack.bot.jobs, 1, JobState.DELIVERED)
    assert job.cost_usd is not None and job.cost_usd > 0

    after = await scrape(port)
    discord_errors = "videobot_discord_errors_total"
    model = {("model", job.model)}
    assert after[("videobot_jobs_finished_total", frozenset({("state", "delivered"), *model}))] == 1
    assert after[("videobot_together_requests_total", frozenset({("outcome", "ok")}))] >= 2
    assert after[("videobot_spend_usd_total", frozenset(model))] == job.cost_usd
    assert after[("videobot_first_response_seconds_count", frozenset())] >= 1
    assert after[("videobot_delivery_delay_seconds_count", frozenset())] == 1
    assert after[("videobot_jobs", frozenset({("state", "running")}))] == 0
    assert after[("videobot_together_budget_ceiling", frozenset())] == 5
    assert after[("videobot_together_budget_rate", frozenset())] == 1
    for outcome in ("rate_limited", "server_error"):
        key = (discord_errors, frozenset({("outcome", outcome)}))
        assert before[key] == 0 and after[key] >= 1, outcome

    ids = {stack.discord.guild.id, stack.member.id, job.channel_id, job.id, job.interaction_id}
    for name, labels in after:
        assert {key for key, _ in labels} <= ALLOWED_LABELS, (name, labels)
        for _, value in labels:
            assert not re.fullmatch(r"\d{5,}", value) and value not in map(str, ids), (name, value)


async def test_a_taken_port_stops_the_bot_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        env = {
            "PATH": "/usr/bin:/bin",
            "DISCORD_TOKEN": "token",
            "TOGETHER_API_KEY": "key",
            "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
            "METRICS_PORT": str(port),
            # Never reached: the port is checked before Discord.
            "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",
            "TOGETHER_BASE_URL": "http://127.0.0.1:9",
        }
        code, out, err = await run_bot_once({**env, "PYTHONPATH": str(ROOT)}, tmp_path, timeout=60)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (
        f"video-bot: METRICS_PORT {port} on METRICS_HOST 127.0.0.1 cannot be used: Address "
        "already in use (choose another, or leave METRICS_PORT empty to turn metrics off)"
    )
    assert out == ""
    assert not (tmp_path / "bot.sqlite3").exists(), "stopped before the database was touched"
