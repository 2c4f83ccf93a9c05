"""`make demo` checks itself: a short live run through the whole local platform must account for every message,
raise every level in every sector, quarantine every bad message with exactly its reason, and close the loop:
escalations of every tier, reminders, closures confirmed by the duty centre and warnings archived by the state
machine, with the simulated people acting through the API. Its exit code says so.

One run (`--fast`, deadlines about three times shorter; ~75 s with start-up and summary on a quiet machine) is
shared by the tests of this module; they read the feed and the summary the demo prints. On a busy machine the run
takes longer (measured: 7–11 min with two CPU-bound processes on 2 cores) and passes the same checks: the fleet
waits for the platform to catch up before each step, and the drain waits on conditions (every message accounted
for, the closed loop's milestones, closed warnings archived), each bounded (`local/demo.py`). A few tests at the
end check the pieces the story rests on without a run (personas, the feed's escalation entries).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.bootstrap import reset
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.rejections import RejectReason
from local import demo
from local.actors import Persona, persona_for
from local.aws import reset_moto, start_moto_server
from local.feed import EscalationEntry, WarningFeed
from local.fleet import INCIDENTS
from local.seed import load_seed

pytestmark = pytest.mark.e2e

SHORT_RUN = ["--duration", "60", "--step", "2", "--fast", "--no-colour"]
LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)


@dataclass(frozen=True)
class DemoRun:
    exit_code: int
    output: str

    def count(self, pattern: str) -> int:
        """The number the pattern's group captures in the output (the first match)."""
        match = re.search(pattern, self.output)
        assert match, f"nothing matches {pattern!r}"
        return int(match.group(1))

    def row(self, first_word: str) -> list[str]:
        """The words of the summary line that starts with `first_word` (after indentation)."""
        for line in self.output.splitlines():
            words = line.split()
            if words and words[0] == first_word:
                return words
        raise AssertionError(f"no summary line for {first_word!r}")


def _wipe_moto() -> None:
    """Moto keeps one state per process: start from (and leave) an empty one."""
    server, endpoint_url = start_moto_server()
    try:
        reset_moto(endpoint_url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def short_run() -> Iterator[DemoRun]:
    saved_environ = dict(os.environ)
    _wipe_moto()
    out = io.StringIO()
    try:
        exit_code = demo.main(SHORT_RUN, out=out)
        yield DemoRun(exit_code, out.getvalue())
    finally:
        _wipe_moto()
        os.environ.clear()
        os.environ.update(saved_environ)
        reset()


def test_every_published_message_is_graded_quarantined_or_a_rule_error(short_run: DemoRun) -> None:
    assert "→ every message accounted for" in short_run.output
    assert "UNACCOUNTED" not in short_run.output


@pytest.mark.parametrize("sector", list(Sector), ids=lambda sector: sector.value)
def test_all_four_levels_are_raised_in_every_sector(short_run: DemoRun, sector: Sector) -> None:
    words = short_run.row(sector.zh)
    assert words[1] == sector.value
    counts = dict(zip(LEVELS, words[2:6], strict=True))
    assert all(count.isdigit() and int(count) > 0 for count in counts.values()), counts


# `unstorable_value` is the store refusing what the domain let through: a safety net no input is known to reach
SENT_BY_THE_FLEET = [reason for reason in RejectReason if reason is not RejectReason.UNSTORABLE_VALUE]


@pytest.mark.parametrize(
    "reason",
    SENT_BY_THE_FLEET,
    ids=lambda reason: reason.value,
)
def test_every_bad_reason_is_quarantined_exactly_as_expected(short_run: DemoRun, reason: RejectReason) -> None:
    *_, expected, got, mark = short_run.row(reason.value)
    assert int(expected) >= 1  # the fleet sends at least one message of every kind
    assert (got, mark) == (expected, "✓")
    assert not re.search(rf"✗ \S+: expected {reason.value},", short_run.output)


def test_no_good_message_is_quarantined(short_run: DemoRun) -> None:
    assert "✗ unexpected:" not in short_run.output


def test_the_demo_exits_zero_when_every_check_passes(short_run: DemoRun) -> None:
    assert short_run.exit_code == 0, short_run.output[-3000:]
    assert "OK: every check passed" in short_run.output


@pytest.mark.parametrize("tier", [1, 2, 3])
def test_the_workflow_escalates_every_tier_of_a_missed_deadline(short_run: DemoRun, tier: int) -> None:
    assert short_run.count(rf"escalations published:.*?tier {tier} (\d+)") > 0
    label = {1: "一级", 2: "二级", 3: "三级"}[tier]
    assert re.search(rf"超时升级·{label} .*\n\s+→ 送达 ", short_run.output)


def test_a_red_past_its_clear_deadline_reaches_the_emergency_bureau(short_run: DemoRun) -> None:
    tier3 = re.findall(r"红色 超时升级·三级 .*\n\s+→ 送达 (\S+) ", short_run.output)
    assert tier3 and all(consoles == "应急管理局" for consoles in tier3), tier3


def test_reminders_repeat_while_a_warning_is_not_acknowledged(short_run: DemoRun) -> None:
    assert short_run.count(r"reminders (\d+) · escalation SMS") >= 2
    assert "第2次提醒" in short_run.output


def test_the_duty_centre_phones_the_enterprise_of_a_tier_one_warning(short_run: DemoRun) -> None:
    contact = r"✎ 值守中心记录电话/视频督促 .*: (已接通|无人接听) → \S+ · duty-01 HTTP 200"
    assert re.search(contact, short_run.output)


def test_the_duty_centre_confirms_a_closure(short_run: DemoRun) -> None:
    assert short_run.count(r"值守中心确认 confirmed by the duty centre (\d+)") > 0
    assert "✔ 消警关闭: 值守中心确认消警" in short_run.output


def test_closed_warnings_are_archived_by_their_archive_timers(short_run: DemoRun) -> None:
    assert short_run.count(r"archived \(by their archive timers\) (\d+)") > 0
    assert re.search(r"▣ 归档 .*: 时限计时器到期归档,移出值守大屏", short_run.output)
    assert re.search(r"a typical closed and archived warning \d+ \(median of \d+", short_run.output)


def test_silent_enterprises_leave_warnings_open(short_run: DemoRun) -> None:
    assert short_run.count(r"still open (\d+)") > 0


def test_every_action_through_the_api_is_accepted_or_refused_by_the_lifecycle(short_run: DemoRun) -> None:
    assert short_run.count(r"\+ the duty console · (\d+) actions") > 0
    assert not re.search(r"HTTP (?!200|409)\d{3}", short_run.output)


# --- the pieces, without a run -----------------------------------------------------------------------------------


def test_personas_cover_every_behaviour_and_a_silent_enterprise_has_a_red_incident() -> None:
    registry = load_seed()
    personas = {e.enterprise_id: persona_for(e.enterprise_id) for e in registry.enterprises}
    assert set(personas.values()) == set(Persona)
    red_incidents = [i for i in INCIDENTS if re.search(r"\bred\b", i.label)]
    silent_reds = [
        i for i in red_incidents if personas[registry.by_device[i.device_id].enterprise_id] is Persona.SILENT
    ]
    assert silent_reds, "tier 3 needs a red nobody answers"


class _Queues:
    """Just enough SQS for the feed: each queue hands out its messages once."""

    def __init__(self, messages: dict[str, list[dict[str, Any]]]) -> None:
        self._messages = messages

    def receive_message(self, QueueUrl: str, **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return {"Messages": self._messages.pop(QueueUrl, [])}

    def delete_message_batch(self, **_: Any) -> None:
        return None


def _escalation_message(body: dict[str, Any], audiences: list[str], receipt: str) -> dict[str, Any]:
    attribute = {"DataType": "String.Array", "StringValue": json.dumps(audiences)}
    return {"Body": json.dumps(body), "ReceiptHandle": receipt, "MessageAttributes": {"audience": attribute}}


def test_the_feed_shows_an_escalation_once_with_the_queues_and_the_sms_naming_its_warning() -> None:
    body = {
        "type": "escalation",
        "warning_id": "WTEST0001",
        "change": "escalation_tier1",
        "tier": 1,
        "reason": "acknowledge_overdue",
        "level": "red",
        "sector": "hazchem",
        "enterprise_id": "E-HC-06",
        "at": "2025-06-01T03:12:00.123456+00:00",
    }
    queues = _Queues(
        {
            "duty-url": [_escalation_message(body, ["duty", "enterprise"], "d1")],
            "enterprise-url": [_escalation_message(body, ["duty", "enterprise"], "e1")],
        }
    )
    sms = [
        ("+8613800000001", "【滨海大应急】红色预警WTEST0001 塘沽化工超时未签收"),
        ("+8613800000002", "【滨海大应急】红色预警WTEST0001 塘沽化工超时未签收"),
        ("+8613800000003", "【滨海大应急】红色预警WOTHER001 别的预警超时未签收"),
    ]
    sent: list[tuple[str, str]] = []
    shown: list[EscalationEntry] = []
    feed = WarningFeed(
        queues,
        {"duty": "duty-url", "enterprise": "enterprise-url"},
        lambda: sent,
        {"+8613800000001": "duty", "+8613800000002": "enterprise", "+8613800000003": "duty"},
        lambda entry: None,
        on_escalation=shown.append,
        escalation_wait_s=0.0,
    )
    feed.poll_once()
    sent.extend(sms)
    feed.poll_once()
    feed.poll_once()

    assert len(shown) == 1
    entry = shown[0]
    assert (entry.tier, entry.warning_id, entry.delivered_to) == (1, "WTEST0001", {"duty", "enterprise"})
    assert dict(entry.sms_sent) == {"duty": 1, "enterprise": 1}
    assert feed.stats().escalations_by_tier == {1: 1}


def test_no_message_of_the_demo_is_refused_by_the_store(short_run: DemoRun) -> None:
    *_, expected, got, mark = short_run.row(RejectReason.UNSTORABLE_VALUE.value)
    assert (expected, got, mark) == ("0", "0", "✓")
