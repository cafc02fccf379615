"""The model catalog: what each Together video model accepts, and what it is estimated to cost.

The bundled data lives in catalog.json beside this module; a self-hoster's override file can
replace or extend entries by id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUNDLED_CATALOG = Path(__file__).with_name("catalog.json")
DEFAULT_TIMEOUT_MINUTES = 30.0


class CatalogError(Exception):
    """A catalog file cannot be read or is invalid; the message names the file and the entry."""


def parse_size(size: str) -> tuple[int, int]:
    """'1366x768' -> (1366, 768); raises ValueError on anything else."""
    width, sep, height = size.strip().lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"{size!r} is not a size like 1366x768")
    return int(width), int(height)


class ModelSpec(BaseModel):
    """One video model and the options it takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    sizes: tuple[str, ...] = Field(min_length=1)
    default_size: str
    durations: tuple[int, ...] = Field(min_length=1)
    default_seconds: int
    first_frame: bool = True
    last_frame: bool = False
    reference_images: bool = False
    max_prompt_chars: int = Field(default=32000, ge=1, le=32000)
    # Most models take width and height; newer ones (Wan 2.7) take resolution and ratio.
    dimensions: Literal["width_height", "resolution_ratio"] = "width_height"
    price_usd: float = Field(ge=0)
    # A guess at generation time until real jobs have been timed (polling and the ETA use it).
    expected_seconds: float = Field(default=120.0, gt=0)
    timeout_minutes: float = Field(default=DEFAULT_TIMEOUT_MINUTES, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        for size in self.sizes:
            parse_size(size)
        if self.default_size not in self.sizes:
            raise ValueError(f"default_size {self.default_size} is not one of sizes")
        if self.default_seconds not in self.durations:
            raise ValueError(f"default_seconds {self.default_seconds} is not one of durations")
        return self


class Catalog:
    """The models known to the bot, in a stable order, looked up by id (case-insensitive)."""

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self._models: dict[str, ModelSpec] = {}
        for model in models:
            self._models[model.id.lower()] = model

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def get(self, model_id: str) -> ModelSpec | None:
        return self._models.get(model_id.strip().lower())

    def search(self, text: str, limit: int = 25) -> list[ModelSpec]:
        """Models whose id or display name contains the typed text, for autocomplete."""
        needle = text.strip().lower()
        found = [m for m in self if needle in m.id.lower() or needle in m.name.lower()]
        return found[:limit]


def _read_entries(path: Path) -> list[ModelSpec]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"model catalog {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"model catalog {path} is not readable JSON: {exc}") from None
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CatalogError(f'model catalog {path} must be an object with a "models" list')
    models: list[ModelSpec] = []
    for index, entry in enumerate(entries):
        try:
            models.append(ModelSpec.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "entry"
            label = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else f"#{index}"
            msg = str(first["msg"]).removeprefix("Value error, ")
            raise CatalogError(f"model catalog {path}: model {label}: {where}: {msg}") from None
    return models


def load_catalog(override: Path | None = None) -> Catalog:
    """The bundled catalog, with the override file's entries replacing or extending it by id."""
    models = {m.id.lower(): m for m in _read_entries(BUNDLED_CATALOG)}
    if override is not None:
        for model in _read_entries(override):
            models[model.id.lower()] = model
    return Catalog(models.values())
