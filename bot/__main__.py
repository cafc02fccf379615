"""Composition root: Settings -> logging -> Storage -> TogetherClient -> JobEngine -> VideoBot.

`video-bot` (no command) runs the bot; `video-bot health`, `video-bot backup PATH` and
`video-bot migrate-db --to URL` are the operator's commands (bot/health.py, bot/backup.py,
bot/migrate_db.py) and need only DATABASE_PATH (backup copies SQLite only, and refuses when
DATABASE_URL is set; migrate-db copies SQLite into the PostgreSQL database at URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from bot.backup import run_backup
from bot.domain.catalog import Catalog, CatalogError, load_catalog
from bot.health import check_health
from bot.logs import configure_logging
from bot.migrate_db import run_migrate_db
from bot.settings import Settings, SettingsError, load_database_settings, load_settings
from storage.db import DatabaseUnusable
from storage.lock import DatabaseInUse

log = logging.getLogger("bot")

EXIT_CONFIG = 2
EXIT_UNHEALTHY = 1


async def run(settings: Settings) -> int:
    # Imported here: discord.py and the rest take a second to import, which a health check
    # run every 30 s by Docker should not pay.
    from bot.app import assemble
    from bot.client import TokenRefused

    async with assemble(settings) as bot:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, lambda: asyncio.ensure_future(bot.close()))
        try:
            async with bot:
                await bot.start(settings.discord_token.get_secret_value())
        except TokenRefused:
            log.error("DISCORD_TOKEN was refused by Discord: check the bot token in .env")
            return EXIT_CONFIG
    log.info("Stopped cleanly")
    return 0


def check_models(settings: Settings, catalog: Catalog) -> None:
    """Each model setting names a model of the catalog that is switched on and fit for it."""
    wanted = (
        ("DEFAULT_MODEL", settings.default_model, None),
        ("ANIMATE_MODEL", settings.animate_model, ("first_frame", "a first frame")),
        ("EDIT_MODEL", settings.edit_model, ("source_video", "a video to edit")),
    )
    for name, model_id, needs in wanted:
        model = catalog.get(model_id)
        if model is None or not model.enabled:
            state = "is not in the model catalog" if model is None else "is switched off"
            raise SettingsError(
                f"{name} is invalid: {model_id} {state} (see bot/domain/catalog.json and "
                "MODELS_FILE)"
            )
        if needs is not None and needs[0] not in model.inputs:
            raise SettingsError(f"{name} is invalid: {model_id} does not take {needs[1]}")


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args:
        return run_command(args)
    # Here, not at the top: prometheus_client and aiohttp are half a second a health check
    # should not pay.
    from bot.metrics import MetricsPortUnavailable

    try:
        settings = load_settings()
        catalog = load_catalog(settings.models_file)  # fail fast, in one line, if broken
        check_models(settings, catalog)
    except (SettingsError, CatalogError) as exc:
        print(f"video-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(
        settings.log_level_number,
        [
            settings.discord_token.get_secret_value(),
            settings.together_api_key.get_secret_value(),
            *database_password(settings.database_url_text),
        ],
        settings.log_format,
    )
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0
    except (DatabaseInUse, DatabaseUnusable) as exc:
        # Raised by assemble() before the bot starts: nothing to log, one line to read.
        print(f"video-bot: {describe_database_error(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    except MetricsPortUnavailable as exc:
        print(f"video-bot: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def run_command(args: Sequence[str]) -> int:
    """`health`, `backup PATH` or `migrate-db --to URL`; argparse answers a wrong command
    (usage, exit code 2)."""
    parser = argparse.ArgumentParser(
        prog="video-bot", description="Without a command: run the bot."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "health",
        help="exit 0 if the bot on DATABASE_PATH is connected and working, else 1 and why",
    )
    backup = commands.add_parser(
        "backup", help="copy the database to PATH (a new file), safely while the bot runs"
    )
    backup.add_argument("path", type=Path, metavar="PATH")
    migrate = commands.add_parser(
        "migrate-db",
        help="copy the SQLite database at DATABASE_PATH into an empty PostgreSQL database, "
        "with the bot stopped",
    )
    migrate.add_argument("--to", required=True, metavar="POSTGRESQL_URL", dest="url")
    chosen = parser.parse_args(args)
    try:
        database_settings = load_database_settings()
    except SettingsError as exc:
        print(f"video-bot: {exc}", file=sys.stderr)
        # Docker reserves a health check's exit code 2: unhealthy is 1, whatever the reason.
        return EXIT_UNHEALTHY if chosen.command == "health" else EXIT_CONFIG
    database = database_settings.database_path
    if chosen.command == "health":
        # With DATABASE_URL too: the bot holds DATABASE_PATH's lock and writes its heartbeat
        # beside it, and the heartbeat's database probe goes to PostgreSQL.
        return health(database)
    if chosen.command == "migrate-db":
        return migrate_to(database, chosen.url)
    if database_settings.database_url is not None:
        print(f"video-bot: {BACKUP_NEEDS_SQLITE}", file=sys.stderr)
        return EXIT_CONFIG
    return backup_to(database, chosen.path)


def health(database: Path) -> int:
    verdict = check_health(database)
    if verdict.healthy:
        print(f"video-bot: {verdict.line}")
        return 0
    print(f"video-bot: {verdict.line}", file=sys.stderr)
    return EXIT_UNHEALTHY


def backup_to(database: Path, target: Path) -> int:
    outcome = run_backup(database, target)
    print(f"video-bot: {outcome.line}", file=sys.stdout if outcome.code == 0 else sys.stderr)
    return outcome.code


def migrate_to(database: Path, url: str) -> int:
    outcome = run_migrate_db(database, url)
    stream = sys.stdout if outcome.code == 0 else sys.stderr
    for line in outcome.lines:
        print(f"video-bot: {line}", file=stream)
    return outcome.code


BACKUP_NEEDS_SQLITE = (
    "backup copies the SQLite database at DATABASE_PATH, but DATABASE_URL is set: back up "
    "PostgreSQL with pg_dump instead (see README, Backups)"
)


def database_password(url: str | None) -> list[str]:
    """DATABASE_URL's password, for the log redaction (none when there is no URL)."""
    password = urlsplit(url).password if url else None
    return [password] if password else []


def describe_database_error(exc: DatabaseInUse | DatabaseUnusable) -> str:
    if isinstance(exc, DatabaseInUse):
        holder = f"pid {exc.holder_pid}" if exc.holder_pid is not None else "pid unknown"
        return (
            f"DATABASE_PATH {exc.database_path} is in use by another bot process ({holder}); "
            "stop it first, or give this one its own DATABASE_PATH"
        )
    return f"{exc.setting} {exc.target} cannot be used: {exc.reason}"


if __name__ == "__main__":
    sys.exit(main())
