"""Errors whose message is meant for the member who ran the command.

Each carries a catalog key and its placeholders (bot.i18n), rendered in the reader's language
by `text_for`; `message` is the English text, for logs and tests.
"""

from __future__ import annotations

from bot.i18n import Text


class UserFacingError(Exception):
    """Raised where the member should read the reason: `key` in bot/i18n's catalogs."""

    def __init__(self, key: str | Text, **params: object) -> None:
        # A Text comes whole (a quota Refusal's); a key comes with its placeholders.
        self.text = key if isinstance(key, Text) else Text(key, params)
        self.message = self.text.render(None)
        super().__init__(self.message)

    @property
    def key(self) -> str:
        return self.text.key

    def text_for(self, locale: str | None) -> str:
        """The reason in the reader's language (English when it is not shipped)."""
        return self.text.render(locale)


class InvalidOptionError(UserFacingError):
    """An option of /video is out of range or unknown; nothing was submitted."""


class NotAllowedError(UserFacingError):
    """The member may not do this here (wrong person, wrong channel, blocked)."""
