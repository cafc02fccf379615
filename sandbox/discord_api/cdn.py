"""The attachment CDN: serves the bytes behind every attachment's ``url`` and ``proxy_url``."""

from __future__ import annotations

from aiohttp import web

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
        return web.Response(
            body=attachment.data, content_type=attachment.content_type or "application/octet-stream"
        )
