"""The engine's settings, from bot/settings.py through bot/app.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EngineConfig:
    workdir: Path  # DOWNLOAD_DIR: each job's files live in a private folder below it
    poll_interval: float = 5.0
    edit_interval: float = 10.0
    max_active: int = 20
    max_active_per_guild: int = 10
    # Requests to Together (submissions and polls) in any one-second window; 0: unlimited.
    # With a start rate it is the ceiling of the rate learned from Together's answers.
    requests_per_second: float = 5.0
    # The learned rate starts here (TOGETHER_START_REQUESTS_PER_SECOND, 1.0 in the bot);
    # 0: no learning, a fixed requests_per_second.
    start_requests_per_second: float = 0.0
    # Periodic edits per channel in any 5 seconds (state changes always go out).
    edits_per_channel: int = 4
    submit_attempts: int = 3
    final_edit_attempts: int = 5
    retry_delay: float = 5.0
    max_retry_delay: float = 120.0
    # Deliveries retry passing faults at least this often, for as long as the video is in hand.
    max_delivery_delay: float = 60.0
    # Videos over the upload limit are downloaded up to this size and re-encoded to fit.
    max_download_bytes: int = 512 * 1024 * 1024
    # How long after completion Together's video link is assumed to work (not published).
    link_lifetime: float = 3600.0
    # A member's video or soundtrack link (Discord's, signed for about a day) with less than
    # this left when its POST is prepared is fetched again from its message: Together may
    # fetch it only once the job leaves its own queue.
    input_link_margin: float = 3600.0
    # Final states whose edit failed (an outage) are shown again this often.
    reannounce_interval: float = 60.0
    # At its deadline a job gets one last status check; while Together cannot answer it, the
    # check is retried for this long before the job is timed out.
    final_check_grace: float = 900.0
    # LEASE_SECONDS: a job's lease lasts this long unless renewed (every third of it); a
    # process silent for longer loses its jobs to the others (ARCHITECTURE.md, "Leases").
    lease_seconds: float = 30.0
    # How often free jobs (lease expired) are looked for, and how many one look takes.
    claim_interval: float = 5.0
    claim_batch: int = 20
