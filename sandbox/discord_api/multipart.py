"""Request bodies: JSON, or multipart with ``payload_json`` and ``files[N]`` parts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import invalid_json

_FILE_FIELD = re.compile(r"^files\[(\d+)\]$")


@dataclass
class Upload:
    part_name: str  # the multipart field, "files[N]"
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    index: int  # N from "files[N]", which the attachments list refers to as its id

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class RequestBody:
    json: Any = None
    uploads: list[Upload] = field(default_factory=list)


async def read_body(request: web.Request) -> RequestBody:
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request)
    raw = await request.read()
    if not raw.strip():
        return RequestBody()
    return RequestBody(json=_parse_json(raw))


def _parse_json(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise invalid_json() from exc


async def _read_multipart(request: web.Request) -> RequestBody:
    body = RequestBody()
    form_fields: dict[str, str] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue  # nested multipart: Discord does not use it
        name = part.name or ""
        if part.filename is not None:
            data = await part.read(decode=False)
            match = _FILE_FIELD.match(name)
            index = int(match.group(1)) if match else len(body.uploads)
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            body.uploads.append(Upload(name, part.filename, content_type, bytes(data), index))
        elif name == "payload_json":
            body.json = _parse_json(await part.text())
        else:
            form_fields[name] = await part.text()
    if body.json is None and form_fields:
        # Discord also takes plain form fields ("content=...") instead of payload_json.
        body.json = form_fields
    return body
