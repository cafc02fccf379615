"""Errors whose message is meant for the member who ran the command."""


class UserFacingError(Exception):
    """Raised where the member should read the reason; the text is shown to them as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidOptionError(UserFacingError):
    """An option of /video is out of range or unknown; nothing was submitted."""


class NotAllowedError(UserFacingError):
    """The member may not do this here (wrong person, wrong channel, blocked)."""
