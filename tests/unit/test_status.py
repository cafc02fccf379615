"""/videoadmin status's text (cogs.status.status_text): a pure function of the facts."""

from __future__ import annotations

import math

from bot.engine.snapshot import BudgetView, EngineSnapshot
from bot.i18n import Text
from cogs.status import MESSAGE_LIMIT, REASON_SHOWN, StatusFacts, status_text, uptime_text
from storage.models import UNFINISHED_STATES, JobState
from tests.unit.fakes import make_job

NOW = 1_700_000_000.0
LEARNED = BudgetView(
    limited=True,
    learning=True,
    rate=1.0,
    ceiling=5.0,
    backing_off=False,
    paused_for=0.0,
    last_429_ago=None,
)


def snapshot(budget: BudgetView = LEARNED, **counts: int) -> EngineSnapshot:
    states = {state: 0 for state in JobState if state in UNFINISHED_STATES}
    states.update({JobState(name): n for name, n in counts.items()})
    return EngineSnapshot(states, budget)


def facts(**overrides: object) -> StatusFacts:
    values: dict[str, object] = dict(
        version="1.2.3", uptime=90.0, overall=snapshot(), here=snapshot(), failures=[]
    )
    values.update(overrides)
    return StatusFacts(**values)  # type: ignore[arg-type]


def test_an_idle_bot() -> None:
    text = status_text(facts())
    assert text.splitlines()[0] == "**Video bot 1.2.3** · up 1 min 30 s"
    assert "No unfinished videos." in text
    assert "1.00 requests/s now, at most 5.00/s · not backing off" in text
    assert text.endswith("**Recent failures here** (last 7 days)\nNone.")


def test_the_queue_overall_and_here() -> None:
    text = status_text(
        facts(overall=snapshot(queued=4, running=2), here=snapshot(queued=1, running=2))
    )
    assert "waiting: 4 / 1 · sending: 0 / 0 · generating: 2 / 2 · uploading: 0 / 0" in text


def test_the_budget_paused_after_a_429() -> None:
    paused = BudgetView(True, True, 0.7, 5.0, True, 42.0, 3.0)
    text = status_text(facts(overall=snapshot(paused)))
    assert (
        "0.70 requests/s now, at most 5.00/s · backing off after a 429: no requests for 42 s "
        "more · last 429 3 s ago"
    ) in text


def test_the_budget_climbing_back_then_recovered() -> None:
    climbing = BudgetView(True, True, 0.8, 5.0, True, 0.0, 600.0)
    assert "backing off after a 429: climbing back · last 429 10 min 00 s ago" in status_text(
        facts(overall=snapshot(climbing))
    )
    recovered = BudgetView(True, True, 1.1, 5.0, False, 0.0, 7200.0)
    assert "not backing off · last 429 2 h 00 min ago" in status_text(
        facts(overall=snapshot(recovered))
    )


def test_fixed_and_unlimited_budgets() -> None:
    fixed = BudgetView(True, False, 5.0, 5.0, False, 0.0, None)
    assert "fixed at 5.00 requests/s" in status_text(facts(overall=snapshot(fixed)))
    unlimited = BudgetView(False, False, math.inf, math.inf, False, 0.0, None)
    assert "no limit (TOGETHER_REQUESTS_PER_SECOND is 0)" in status_text(
        facts(overall=snapshot(unlimited))
    )


def test_failures_show_id_time_state_and_an_inert_reason() -> None:
    failed = make_job(
        12,
        NOW,
        state=JobState.FAILED,
        finished_at=NOW + 5,
        failure_reason="Bad **prompt** for @everyone\nsecond line",
    )
    timed_out = make_job(9, NOW, state=JobState.TIMED_OUT, finished_at=None, failure_reason=None)
    lines = status_text(facts(failures=[failed, timed_out])).splitlines()
    assert lines[-2] == (
        f"#12 · <t:{int(NOW + 5)}:R> · failed · Bad \\*\\*prompt\\*\\* for @\u200beveryone "
        "second line"
    )
    assert lines[-1] == f"#9 · <t:{int(NOW)}:R> · timed out · No reason was given."


def test_long_reasons_are_trimmed_and_the_reply_fits_discord() -> None:
    jobs = [
        make_job(i, NOW, state=JobState.FAILED, finished_at=NOW, failure_reason="_x" * 3000)
        for i in range(1, 6)
    ]
    text = status_text(facts(version="9" * 500, failures=jobs))
    assert len(text) <= MESSAGE_LIMIT
    for line in text.splitlines()[-5:]:
        assert len(line.split(" · ", 3)[3]) <= REASON_SHOWN


def test_uptime() -> None:
    assert uptime_text(5) == "5 s"
    assert uptime_text(3 * 86400 + 4 * 3600 + 59) == "3 d 4 h"
    assert uptime_text(-1) == "0 s"


def test_the_moderator_reads_it_in_their_language() -> None:
    paused = BudgetView(True, True, 0.7, 5.0, True, 42.0, 3.0)
    reason = Text("reason.timed_out", {"minutes": 30}).to_json()
    failed = make_job(
        12,
        NOW,
        state=JobState.TIMED_OUT,
        finished_at=NOW,
        failure_reason="Together had not finished after 30 minutes, so the job was stopped.",
        failure_text=reason,
    )
    text = status_text(facts(overall=snapshot(paused), failures=[failed]), "de")
    assert text.splitlines() == [
        "**Video-Bot 1.2.3** · läuft seit 1 Min. 30 Sek.",
        "",
        "**Warteschlange** (alle Server / dieser Server)",
        "Keine unfertigen Videos.",
        "",
        "**Anfragebudget bei Together**",
        "jetzt 0.70 Anfragen/s, höchstens 5.00/s · gedrosselt nach einem 429: noch 42 Sek. keine"
        " Anfragen · letzter 429 vor 3 Sek.",
        "",
        "**Letzte Fehlschläge hier** (letzte 7 Tage)",
        f"#12 · <t:{int(NOW)}:R> · Zeit überschritten · Together war nach 30 Minuten nicht fertig,"
        " daher wurde der Auftrag gestoppt.",
    ]
    busy = status_text(facts(overall=snapshot(queued=3), here=snapshot(queued=1)), "ja")
    assert "待機中：3 / 1" in busy and "**キュー**（全サーバー / このサーバー）" in busy
    assert uptime_text(3 * 86400 + 4 * 3600, "fr") == "3 j 4 h"


def test_the_shards_and_the_budget_shared_by_several_processes() -> None:
    shared = BudgetView(True, True, 5.0, 10.0, False, 0.0, None, processes=3, share=2.0)
    text = status_text(facts(overall=snapshot(shared), shards="0-1", shard_count=4))
    lines = text.splitlines()
    assert lines[1] == "This process runs shards 0-1 of 4."
    assert (
        "5.00 requests/s now, at most 10.00/s · not backing off · shared by 3 processes: "
        "2.00/s here"
    ) in lines
    fixed = BudgetView(True, False, 5.0, 5.0, False, 0.0, None, processes=2, share=3.0)
    german = status_text(facts(overall=snapshot(fixed), shards="1", shard_count=2), "de")
    assert "Dieser Prozess betreibt die Shards 1 von 2." in german
    assert "fest bei 5.00 Anfragen/s · geteilt von 2 Prozessen: 3.00/s hier" in german


def test_one_process_says_nothing_of_shards_or_shares() -> None:
    text = status_text(facts())
    assert "shard" not in text and "shared" not in text
