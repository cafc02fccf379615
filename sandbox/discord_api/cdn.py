"""The attachment CDN: serves the bytes behind every attachment's ``url`` and ``proxy_url``."""

from __future__ import annotations

import time

from aiohttp import web

from .models import link_signature
from .state import SandboxState

CDN_ROUTE = "/attachments/{channel}/{attachment}/{filename}"


class Cdn:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [web.get(CDN_ROUTE, self.get_attachment)]

    async def get_attachment(self, request: web.Request) -> web.Response:
        raw_id = request.match_info["attachment"]
        attachment = self.state.attachments.get(int(raw_id)) if raw_id.isdigit() else None
        if (
            attachment is None
            or str(attachment.channel_id) != request.match_info["channel"]
            or attachment.filename != request.match_info["filename"]
        ):
            # The real CDN answers a bare 404 with a text body.
            return web.Response(status=404, text="Not Found")
        if not _signature_ok(request, attachment.url):
            return web.Response(status=404, text="This content is no longer available.")
        return web.Response(
            body=attachment.data, content_type=attachment.content_type or "application/octet-stream"
        )


def _signature_ok(request: web.Request, url: str) -> bool:
    """An unsigned request is served (tests fetch raw urls); a signed one must be unexpired
    and carry the CDN's own signature."""
    raw = request.query.get("ex")
    if raw is None:
        return True
    try:
        expires = int(raw, 16)
    except ValueError:
        return False
    return expires > time.time() and request.query.get("hm") == link_signature(url, expires)
