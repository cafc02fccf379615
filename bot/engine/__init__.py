"""The job engine: queue, submission, polling, delivery and progress edits.

Imports neither discord, aiosqlite nor httpx; it talks to the world through the ports in
``bot.engine.ports``. See ARCHITECTURE.md for the job's life and who writes what.
"""

from bot.engine.config import EngineConfig
from bot.engine.core import JobEngine
from bot.engine.leases import Leasing
from bot.engine.ports import (
    FileRefused,
    JobStore,
    MessageUnreachable,
    Notifier,
    Progress,
    VideoAPI,
    VideoFetcher,
    VideoFitter,
)
from bot.engine.request import build_request

__all__ = [
    "EngineConfig",
    "FileRefused",
    "JobEngine",
    "JobStore",
    "Leasing",
    "MessageUnreachable",
    "Notifier",
    "Progress",
    "VideoAPI",
    "VideoFetcher",
    "VideoFitter",
    "build_request",
]
