"""The multi-process bench runs end to end with tiny numbers: two bot processes, one shard each,
on PostgreSQL (TEST_DATABASE_URL: skipped without it, failed when CI=true).

No timing is asserted: only that both processes worked and were measured, and that every
column holds a figure.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bench.processes import HEADING, run_processes_bench, write_section
from bench.sharded_report import COLUMNS
from tests.databases import server_url

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bench reads /proc")

FIGURE = re.compile(r"^-?[\d,]+(\.\d+)?%?$")
TEXT_COLUMNS = {"Scenario", "Database", "Delivered", "1 s windows over budget", "Budget held"}


@pytest.mark.timeout(120)
async def test_burst_with_two_processes_on_postgresql(tmp_path: Path) -> None:
    url = server_url()
    result = await run_processes_bench(
        ["burst"], [2], url, workdir=tmp_path, scale=20, members=2, seed=3, jobs=4
    )

    [metrics] = result.rows
    # Members alternate between a server on shard 0 and one on shard 1, and the Discord
    # stand-in sends a server's commands only to its shard's process: all delivered means
    # both processes answered and delivered theirs.
    assert metrics.processes == 2 and metrics.base.delivered == 4
    assert metrics.base.missed_deadline == 0
    assert len(metrics.cpu_per_process) == 2
    assert all(cpu is not None and cpu > 0 for cpu in metrics.cpu_per_process)
    assert metrics.windows >= 1 and metrics.capacity == 100  # 5 per virtual second x 20
    for shard in (0, 1):
        assert (
            "Logged in as" in (tmp_path / "burst-2p" / f"shard-{shard}" / "bot-1.log").read_text()
        )

    lines = [line for line in result.markdown.splitlines() if line.startswith("|")]
    header, row = ([c.strip() for c in line.strip("|").split("|")] for line in (lines[0], lines[2]))
    assert header == [name for name, _ in COLUMNS]
    assert row[:5] == ["burst", "2", "PostgreSQL", "20", "4/4"]
    for name, cell in zip(header, row, strict=True):
        if name in ("CPU per process (s)", "CPU busy per process"):
            assert all(FIGURE.match(part) for part in cell.split(" / ")), f"{name}: {cell!r}"
        elif name not in TEXT_COLUMNS:
            assert FIGURE.match(cell), f"{name}: {cell!r}"

    # The section replaces an earlier one and leaves the rest of results.md alone.
    out = tmp_path / "results.md"
    out.write_text("# Earlier results\n\n" + HEADING + "\n\nold table\n")
    write_section(out, result.markdown)
    written = out.read_text()
    assert written.startswith("# Earlier results\n\n" + HEADING)
    assert "old table" not in written and written.count(HEADING) == 1
