FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.sqlite3

# ffmpeg re-encodes videos that are over a server's upload limit (Debian 12's 5.1).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg=7:5.1.* \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 bot \
    && useradd --create-home --uid 10001 --gid 10001 bot \
    && mkdir -p /data/downloads \
    && chown -R bot:bot /data

WORKDIR /app
# The same install steps .ci/run proves in a fresh virtual environment: the dependencies exactly
# as locked, every file checked against its hash, then the bot itself without resolving again.
COPY requirements/bot.lock ./requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/bot.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage
COPY sandbox ./sandbox
RUN pip install --no-cache-dir --no-deps .

USER 10001:10001
VOLUME ["/data"]
# `video-bot health` (README, "Health"): healthy while the bot is connected to Discord (or
# reconnecting for under a minute), its database answers and its job engine runs. No port:
# it reads the heartbeat file beside DATABASE_PATH. Start-up (integrity check, log-in) gets
# a minute before failures count; three failures in a row, 1.5 min, mark it unhealthy.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot", "health"]
CMD ["python", "-m", "bot"]
