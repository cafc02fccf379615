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
CMD ["python", "-m", "bot"]
