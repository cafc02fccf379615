"""deploy/grafana/video-bot.json: importable, on a Prometheus datasource variable, and every
metric it queries is one the bot exports (so a renamed metric fails here, not on a screen)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.budget import AdaptiveBudget
from bot.engine.snapshot import take_snapshot
from bot.metrics import PrometheusRecorder
from storage.models import JobState

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "video-bot.json"


def exported_names() -> set[str]:
    rec = PrometheusRecorder()
    rec.watch(lambda: take_snapshot([], AdaptiveBudget(5.0, 1.0), 0.0))
    rec.job_finished(JobState.DELIVERED, "m")
    rec.spent("m", 1.0)
    rec.delivered(1.0)
    rec.first_response(1.0)
    text = generate_latest(rec.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_dashboard_is_importable_with_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert dashboard["title"] and dashboard["uid"] and "id" not in dashboard
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]


def test_every_queried_metric_is_exported() -> None:
    exported = exported_names()
    used = {
        name
        for expr in queries(json.loads(DASHBOARD.read_text()))
        for name in re.findall(r"\bvideobot_[a-z_]+", expr)
    }
    assert used and used <= exported, used - exported
    assert {"videobot_first_response_seconds_bucket", "videobot_spend_usd_total"} <= used
