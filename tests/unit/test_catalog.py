"""The model catalog: bundled data, overrides, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.domain.catalog import CatalogError, load_catalog, parse_size


def test_bundled_catalog_is_consistent() -> None:
    catalog = load_catalog()
    assert len(catalog) >= 15
    hailuo = catalog.get("minimax/hailuo-02")
    assert hailuo is not None and "1366x768" in hailuo.sizes
    assert all(parse_size(s) for m in catalog for s in m.sizes)


def test_search_matches_id_and_name_and_caps_at_limit() -> None:
    catalog = load_catalog()
    assert {m.id for m in catalog.search("KLING")} == {
        "kwaivgI/kling-2.1-master",
        "kwaivgI/kling-2.1-standard",
        "kwaivgI/kling-2.1-pro",
    }
    assert len(catalog.search("", limit=5)) == 5


def test_override_replaces_and_extends(tmp_path: Path) -> None:
    override = tmp_path / "models.json"
    entry = {
        "id": "acme/wan-2.7",
        "name": "Wan 2.7",
        "dimensions": "resolution_ratio",
        "resolutions": ["720P"],
        "ratios": ["16:9", "1:1"],
        "default_resolution": "720P",
        "default_ratio": "16:9",
        "durations": {"min": 2, "max": 15},
        "default_seconds": 5,
        "price": {"usd": 0.1, "per": "second"},
    }
    replaced = dict(entry, id="minimax/hailuo-02", name="Hailuo (ours)")
    override.write_text(json.dumps({"models": [entry, replaced]}))
    catalog = load_catalog(override)
    wan = catalog.get("acme/wan-2.7")
    assert wan is not None and wan.durations == tuple(range(2, 16)) and wan.durations_are_range
    assert wan.estimate_usd(10) == pytest.approx(1.0)
    hailuo = catalog.get("minimax/hailuo-02")
    assert hailuo is not None and hailuo.name == "Hailuo (ours)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not readable JSON"),
        ('{"models": 3}', 'must be an object with a "models" list'),
        ('{"models": [{"id": "x"}]}', "model x: name"),
        (
            '{"models": [{"id": "x", "name": "X", "sizes": ["1x1"], "default_size": "2x2",'
            ' "durations": [5], "default_seconds": 5, "price_usd": 1}]}',
            "default_size 2x2 is not one of sizes",
        ),
    ],
)
def test_broken_override_is_named_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    override = tmp_path / "models.json"
    override.write_text(content)
    with pytest.raises(CatalogError) as info:
        load_catalog(override)
    assert message in str(info.value) and str(override) in str(info.value)
    assert "\n" not in str(info.value)
