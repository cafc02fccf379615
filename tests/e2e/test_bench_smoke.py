"""The benchmark runs end to end with tiny numbers and prints a full table.

No timing is asserted (figures depend on the machine): only that every column is there and
holds a number, and that the targets section is printed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bench import floor
from bench.__main__ import main, run_bench
from bench.report import COLUMNS, NEW_ACCOUNT_COLUMNS

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bench reads /proc")

NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?%?$")
TEXT_COLUMNS = {"Scenario", "Strategy", "Delivered"}


def table_rows(markdown: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    split = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return split[0], split[2:]


@pytest.mark.timeout(90)
async def test_light_scenario_prints_every_column_with_numbers(tmp_path: Path) -> None:
    result = await run_bench(["light"], scale=50, members=2, seed=3, jobs=2, workdir=tmp_path)

    header, rows = table_rows(result.markdown)
    assert header == [name for name, _ in COLUMNS]
    assert [row[:2] for row in rows] == [["light", "adaptive"], ["light", "baseline 5 s"]]
    for row in rows:
        assert row[header.index("Delivered")] == "2/2"
        for name, cell in zip(header, row, strict=True):
            if name not in TEXT_COLUMNS:
                assert NUMBER.match(cell), f"{name}: {cell!r} is not a number"
    assert "Targets:" in result.markdown
    assert re.search(r"\*\*(PASS|MISS)\*\* light: Together requests per job", result.markdown)
    # Both runs' bots were measured through /proc.
    assert all(m.cpu_seconds and m.peak_rss_mb for m in result.rows)
    assert (tmp_path / "light-adaptive" / "bot-1.log").exists()


def test_command_line_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.md"
    args = ["--scenario", "light", "--jobs", "1", "--scale", "50", "--members", "1"]
    assert main([*args, "--out", str(out)]) == 0

    written = out.read_text()
    assert written in capsys.readouterr().out
    header, rows = table_rows(written)
    assert len(rows) == 2 and len(header) == len(COLUMNS)


@pytest.mark.timeout(90)
async def test_floor_compares_the_bot_with_discord_py_alone(tmp_path: Path) -> None:
    results = await floor.run(commands=5, runs=1, workdir=tmp_path)
    assert [r.who for r in results] == ["floor", "bot"]
    assert all(r.p99_ms > 0 and r.cpu_seconds is not None for r in results)
    table = floor.render(results, 5)
    assert "| discord.py alone (answers `ok`) | 1 |" in table
    assert "| this bot | 1 |" in table


@pytest.mark.timeout(120)
async def test_new_account_scenario_compares_learning_with_a_fixed_budget(
    tmp_path: Path,
) -> None:
    result = await run_bench(["new-account"], scale=20, members=2, seed=3, jobs=3, workdir=tmp_path)

    assert [m.strategy for m in result.rows] == ["learning, ceiling 5/s", "fixed 5/s"]
    section = result.markdown.split("New account", 1)[1].split("Targets:", 1)[0]
    header, rows = table_rows(section)
    assert header == [name for name, _ in NEW_ACCOUNT_COLUMNS]
    assert [row[1] for row in rows] == ["learning, ceiling 5/s", "fixed 5/s"]
    for row in rows:
        assert row[header.index("Delivered")] == "3/3"
        for name in ("Together 429s", "429s/job", "Done→Discord p50 (s)"):
            assert NUMBER.match(row[header.index(name)]), f"{name}: {row!r}"
    assert re.search(
        r"\*\*(PASS|MISS)\*\* new-account, learning, ceiling 5/s: Together 429s after the first "
        r"minute",
        result.markdown,
    )
    # The learning run's bot said where its budget started.
    log = (tmp_path / "new-account-learning" / "bot-1.log").read_text()
    assert "Together request budget starts at" in log
