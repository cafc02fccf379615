"""The errors a call to Together can end in; no I/O."""

from __future__ import annotations

from bot.together.limits import RateLimitHeaders

# --------------------------------------------------------------------------- errors


class TogetherError(Exception):
    """A failed call. ``message`` is the API's own text (truncated), never the API key."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        limits: RateLimitHeaders | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.retry_after = retry_after
        self.limits = limits  # the answer's x-ratelimit-* headers, if it had any
        super().__init__(self._describe())

    def _describe(self) -> str:
        head = f"Together API HTTP {self.status}" if self.status else "Together API error"
        label = self.code or self.type
        return f"{head} ({label}): {self.message}" if label else f"{head}: {self.message}"

    @property
    def request_not_created(self) -> bool:
        """True only when it is certain a POST created no job (so no cost and no retry risk).

        A 4xx answer means the server refused the request. Anything else (5xx, a timeout
        while waiting for the answer, a garbled answer) may hide a created, billed job.
        """
        return self.status is not None and 400 <= self.status < 500


class TogetherAuthError(TogetherError):
    """401/403: the API key is missing, wrong or not allowed this model."""


class TogetherRateLimited(TogetherError):
    """429: slow down; ``retry_after`` holds the server's hint when it gave one."""


class TogetherBadRequest(TogetherError):
    """Any other 4xx: the request itself was refused."""


class TogetherServerError(TogetherError):
    """5xx: the job may or may not have been created."""


class TogetherProtocolError(TogetherError):
    """A 2xx (or unexpected 1xx/3xx) answer that could not be used, e.g. a body without an id."""


# Transport failures that happen before any byte of the request can reach the server.
_NOT_SENT_KINDS = frozenset({"connect", "connect_timeout", "pool_timeout"})


class TogetherConnectionError(TogetherError):
    """The HTTP exchange failed: ``kind`` says where (``connect``, ``read_timeout``, ...)."""

    def __init__(self, message: str, *, kind: str) -> None:
        self.kind = kind
        super().__init__(message, code=kind)

    def _describe(self) -> str:
        return f"Together API connection error ({self.kind}): {self.message}"

    @property
    def request_not_created(self) -> bool:
        return self.kind in _NOT_SENT_KINDS
