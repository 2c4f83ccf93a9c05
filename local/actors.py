"""Simulated people of the closed loop: the enterprises' mobile apps and the duty console.

They act only through the API, over HTTP, with real ID tokens of the local user pool, signed in the way
docs/mobile-app.md tells an app to (`local.users.session_for`: USER_PASSWORD_AUTH, refreshed before expiry, and
once more on a 401 `token_expired`), like the apps would: an enterprise watches its open warnings and the duty
centre `GET /wall`, and both act with `POST /warnings/{id}/actions` (bodies per docs/api.md and
`chalicelib/domain/lifecycle.py`). The enterprise app asks for its open warnings as
`GET /warnings?status=<every open status>` rather than `?open=true`: the same warnings, from one query of the
`by_enterprise` index instead of one query per sector of `open_by_sector` (six), which matters when 32 apps refresh
every few seconds on one machine. A push notification (`nudge`, from the demo's feed of the enterprise queue) makes
an app refresh at once.

Who does what is decided by the enterprise's number (the digits at the end of its id, `persona_for`), so every run
plays the same:

- 1, 4, 7 prompt (按时处置): acknowledge, verify `real`, start disposal, and request clear (`disposed`) once the
  reading is normal again;
- 5 false alarm (核实为误报): acknowledge, verify `false_alarm`, request clear (`false_alarm`), which the duty
  centre confirms;
- 2, 8 late (超时签收): nothing until the duty centre phones after the acknowledge deadline (tier 1 shows; at the
  latest `late_fallback_s` after the deadline), then as prompt;
- 3, 6 silent (不响应): never act, so tier 2 shows, and tier 3 on a red (E-HC-06, E-CS-06 and E-OG-03 have red
  incidents in `local.fleet.INCIDENTS`).

The duty centre phones the enterprise of every warning escalated to tier 1 and records the call (a silent
enterprise does not answer), confirms every clear request (orange and red need it, and any request whose reason
makes the reading untrusted), and marks data-quality findings as false alarms (a sensor fault is not a hazard).
Enterprise apps leave data-quality findings to the duty centre.

Every request is reported as an `ActorEvent` (who, what, HTTP status, the warning as answered) to `on_event`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.domain.changes import DATA_QUALITY
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import ActionType, ClearReason, Role, VerificationOutcome
from chalicelib.domain.warnings import WarningStatus
from local.seed import SeedRegistry
from local.users import DUTY_USER, enterprise_user, session_for

__all__ = [
    "ActorCrew",
    "ActorEvent",
    "ActorTiming",
    "ApiClient",
    "ApiResponse",
    "DutyActor",
    "EnterpriseActor",
    "Persona",
    "persona_for",
]

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------- personas


class Persona(StrEnum):
    PROMPT = "prompt"
    FALSE_ALARM = "false_alarm"
    LATE = "late"
    SILENT = "silent"

    @property
    def zh(self) -> str:
        return PERSONA_ZH[self]


PERSONA_ZH = {
    Persona.PROMPT: "按时处置",
    Persona.FALSE_ALARM: "核实为误报",
    Persona.LATE: "超时签收",
    Persona.SILENT: "不响应",
}

PERSONA_BY_NUMBER: Mapping[int, Persona] = {
    1: Persona.PROMPT,
    2: Persona.LATE,
    3: Persona.SILENT,
    4: Persona.PROMPT,
    5: Persona.FALSE_ALARM,
    6: Persona.SILENT,
    7: Persona.PROMPT,
    8: Persona.LATE,
}
_NUMBER = re.compile(r"(\d+)$")


def persona_for(enterprise_id: str) -> Persona:
    """The persona of an enterprise, from the number its id ends with (prompt when it has none)."""
    match = _NUMBER.search(enterprise_id)
    return PERSONA_BY_NUMBER.get(int(match.group(1)), Persona.PROMPT) if match else Persona.PROMPT


OPEN_STATUSES = ",".join(status.value for status in WarningStatus if status.is_open)

DISPOSAL_NOTE: Mapping[Sector, str] = {
    Sector.ROAD_TRANSPORT: "已通知驾驶员就近停车休息,调度跟踪车辆",
    Sector.HAZCHEM: "关闭进料阀,启动喷淋和强制通风,撤离无关人员",
    Sector.FIRE: "消防控制室人员到场,排查管网并恢复供水压力",
    Sector.CONSTRUCTION: "停止作业,撤离塔吊和作业面人员,专人监护",
    Sector.CHEM_PIPELINE: "巡线人员到场,制止施工,启动管段监护",
    Sector.OIL_GAS_PIPELINE: "调控中心降压运行,巡线人员到场排查",
}


@dataclass(frozen=True)
class ActorTiming:
    """How quickly people act (seconds)."""

    react_s: float = 3.0  # from seeing a warning (or taking the phone call) to the first action on it
    step_s: float = 3.0  # between one person's successive actions on the same warning
    poll_s: float = 2.0  # an app with open warnings refreshes this often
    wall_poll_s: float = 2.0  # the duty console refreshes the wall this often
    idle_poll_s: float = 20.0  # an app without open warnings; a push notification (`nudge`) wakes it earlier
    late_fallback_s: float = 12.0  # a late enterprise acknowledges by itself this long after the deadline

    def scaled(self, factor: float) -> ActorTiming:
        return ActorTiming(**{name: value * factor for name, value in asdict(self).items()})


# --------------------------------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str:
        if self.ok:
            return ""
        return str(self.body.get("code", "")) if isinstance(self.body, dict) else ""


RENEW_ON = frozenset({"token_expired", "invalid_token"})  # 401 codes after which a new token may help, once


class ApiClient:
    """JSON over HTTP to the API as one seeded user, with the ID token of its signed-in session (mobile-app.md):
    refreshed before it expires; on a 401 `token_expired` refreshed and the request repeated once, on
    `invalid_token` signed in again and repeated once.

    The timeout is generous: on a busy machine an answer is slow, and an action that timed out on the client may
    still have been applied (the person would not know what they did)."""

    def __init__(self, base_url: str, username: str, app: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._app = app
        self._timeout_s = timeout_s

    def get(self, path: str, params: Mapping[str, str] | None = None) -> ApiResponse:
        query = f"?{urllib.parse.urlencode(dict(params))}" if params else ""
        return self._call("GET", f"{path}{query}", None)

    def post(self, path: str, body: Mapping[str, Any]) -> ApiResponse:
        return self._call("POST", path, json.dumps(body, ensure_ascii=False).encode("utf-8"))

    def _call(self, method: str, path: str, data: bytes | None) -> ApiResponse:
        session = session_for(self.username)
        response = self._send(method, path, data, session.id_token())
        if response.status == 401 and response.error_code in RENEW_ON:
            token = session.renew(sign_in_again=response.error_code == "invalid_token")
            response = self._send(method, path, data, token)
        return response

    def _send(self, method: str, path: str, data: bytes | None, id_token: str) -> ApiResponse:
        headers = {"Authorization": f"Bearer {id_token}", "Accept": "application/json", "x-dyj-app": self._app}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return ApiResponse(response.status, _json(response.read()))
        except urllib.error.HTTPError as exc:
            return ApiResponse(exc.code, _json(exc.read()))

    def pages(self, path: str, params: Mapping[str, str]) -> Iterable[dict[str, Any]]:
        """Every item of a paginated listing (stops at the first failing page)."""
        cursor: str | None = None
        while True:
            response = self.get(path, {**params, **({"cursor": cursor} if cursor else {})})
            if not response.ok or not isinstance(response.body, dict):
                logger.warning("%s %s answered %s %s", self.username, path, response.status, response.error_code)
                return
            yield from response.body.get("items", [])
            cursor = response.body.get("next_cursor")
            if not cursor:
                return


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"code": "not_json"}


# --------------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ActorEvent:
    """One action someone took through the API, and what the API answered."""

    at: float  # epoch seconds, when the request was sent
    username: str
    role: Role
    warning_id: str
    action: ActionType
    detail: str  # the action's code: verification outcome, clear reason, contact outcome; "" if none
    status: int  # HTTP status
    error: str  # the error `code` when not 2xx
    before: Mapping[str, Any]  # the warning as the actor saw it (a WarningView)
    after: Mapping[str, Any] | None  # the warning the API answered (2xx)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def after_status(self) -> str:
        return str((self.after or {}).get("status", ""))

    @property
    def closed(self) -> bool:
        return self.ok and self.after_status == WarningStatus.CLOSED.value


OnEvent = Callable[[ActorEvent], None]


@dataclass
class _Track:
    """What one actor remembers about one warning."""

    first_seen: float
    last_action: float = 0.0
    retry_at: float = 0.0  # after a refused action, not before this
    woken_at: float | None = None  # late enterprise: when the duty centre's call reached it
    done: set[str] = field(default_factory=set)  # one-off actions taken (duty: contact, closure)


class _Actor:
    role: Role

    def __init__(self, client: ApiClient, timing: ActorTiming, on_event: OnEvent) -> None:
        self.client = client
        self.timing = timing
        self._on_event = on_event
        self._tracks: dict[str, _Track] = {}

    def _track(self, warning: Mapping[str, Any], now: float) -> _Track:
        return self._tracks.setdefault(str(warning["warning_id"]), _Track(first_seen=now))

    def _act(self, warning: Mapping[str, Any], body: dict[str, Any], detail: str = "") -> ActorEvent:
        warning_id = str(warning["warning_id"])
        sent = time.time()
        response = self.client.post(f"/warnings/{urllib.parse.quote(warning_id)}/actions", body)
        after = response.body if response.ok and isinstance(response.body, dict) else None
        event = ActorEvent(
            at=sent,
            username=self.client.username,
            role=self.role,
            warning_id=warning_id,
            action=ActionType(body["type"]),
            detail=detail,
            status=response.status,
            error=response.error_code,
            before=dict(warning),
            after=after,
        )
        track = self._tracks.get(warning_id)
        if track is not None:
            now = time.monotonic()
            track.last_action = now
            if not response.ok:
                track.retry_at = now + self.timing.step_s
        try:
            self._on_event(event)
        except Exception:
            logger.exception("actor event handler failed for %s", warning_id)
        return event

    def _forget_except(self, warning_ids: Iterable[str]) -> None:
        keep = set(warning_ids)
        for warning_id in [w for w in self._tracks if w not in keep]:
            del self._tracks[warning_id]


# --------------------------------------------------------------------------------------------------- enterprise


class EnterpriseActor(_Actor):
    """One enterprise's mobile app."""

    role = Role.ENTERPRISE

    def __init__(
        self, enterprise_id: str, persona: Persona, client: ApiClient, timing: ActorTiming, on_event: OnEvent
    ) -> None:
        super().__init__(client, timing, on_event)
        self.enterprise_id = enterprise_id
        self.persona = persona
        self.next_poll = 0.0  # time.monotonic()
        self.open_warnings = 0

    def nudge(self) -> None:
        """A push notification: refresh at once."""
        self.next_poll = 0.0

    def tick(self) -> None:
        warnings = self.client.pages("/warnings", {"status": OPEN_STATUSES, "limit": "100"})
        now = time.monotonic()
        mine = [w for w in warnings if w.get("risk_type") != DATA_QUALITY]
        self.open_warnings = len(mine)
        self._forget_except(str(w["warning_id"]) for w in mine)
        for warning in mine:
            self._step(warning, self._track(warning, now), now)
        self.next_poll = now + (self.timing.poll_s if mine else self.timing.idle_poll_s)

    def _step(self, warning: Mapping[str, Any], track: _Track, now: float) -> None:
        if self.persona is Persona.SILENT or now < track.retry_at:
            return
        status = WarningStatus(str(warning["status"]))
        if status is WarningStatus.RAISED:
            if self._ready_to_acknowledge(warning, track, now):
                self._act(warning, {"type": ActionType.ACKNOWLEDGE.value, "note": "已收到,马上核实"})
            return
        if now - track.last_action < self.timing.step_s:
            return
        if status is WarningStatus.ACKNOWLEDGED:
            false_alarm = self.persona is Persona.FALSE_ALARM
            outcome = VerificationOutcome.FALSE_ALARM if false_alarm else VerificationOutcome.REAL
            note = "现场核实:设备误报,无异常" if false_alarm else "现场核实属实"
            self._act(warning, {"type": ActionType.VERIFY.value, "outcome": outcome.value, "note": note}, outcome)
        elif status is WarningStatus.VERIFIED:
            verification = (warning.get("details") or {}).get("verification") or {}
            if verification.get("outcome") == VerificationOutcome.FALSE_ALARM:
                self._request_clear(warning, ClearReason.FALSE_ALARM, "现场核实为误报,申请消警")
            else:
                note = DISPOSAL_NOTE.get(Sector(str(warning["sector"])), "正在处置")
                self._act(warning, {"type": ActionType.START_DISPOSAL.value, "note": note})
        elif status is WarningStatus.DISPOSING and warning.get("reading_normal"):
            self._request_clear(warning, ClearReason.DISPOSED, "已处置完毕,监测值恢复正常")

    def _ready_to_acknowledge(self, warning: Mapping[str, Any], track: _Track, now: float) -> bool:
        if self.persona is not Persona.LATE:
            return now - track.first_seen >= self.timing.react_s
        if track.woken_at is None and int((warning.get("details") or {}).get("contact_count", 0)) > 0:
            track.woken_at = now  # the duty centre's call reached us
        if track.woken_at is not None:
            return now - track.woken_at >= self.timing.react_s
        deadline = float(warning.get("deadlines", {}).get("acknowledge_by", 0.0))
        return bool(deadline) and time.time() >= deadline + self.timing.late_fallback_s

    def _request_clear(self, warning: Mapping[str, Any], reason: ClearReason, text: str) -> None:
        body = {"type": ActionType.REQUEST_CLEAR.value, "reason": reason.value, "text": text}
        self._act(warning, body, reason)


# --------------------------------------------------------------------------------------------------- duty


class DutyActor(_Actor):
    """The duty centre's console (duty officer 01)."""

    role = Role.DUTY

    def __init__(
        self,
        client: ApiClient,
        timing: ActorTiming,
        on_event: OnEvent,
        answers_phone: Callable[[str], bool],
        contact_names: Mapping[str, str],
    ) -> None:
        super().__init__(client, timing, on_event)
        self._answers_phone = answers_phone
        self._contact_names = dict(contact_names)

    def tick(self) -> None:
        wall = list(self.client.pages("/wall", {"limit": "100"}))
        now = time.monotonic()
        self._forget_except(str(w["warning_id"]) for w in wall)
        for warning in wall:
            track = self._track(warning, now)
            if now < track.retry_at or now - track.first_seen < self.timing.react_s:
                continue
            self._step(warning, track)

    def _step(self, warning: Mapping[str, Any], track: _Track) -> None:
        details: Mapping[str, Any] = warning.get("details") or {}
        status = WarningStatus(str(warning["status"]))
        if warning.get("risk_type") == DATA_QUALITY:
            note = "传感器数据异常,非真实险情,判定误报并通知企业检修设备"
            self._act(warning, {"type": ActionType.MARK_FALSE_ALARM.value, "note": note}, ClearReason.FALSE_ALARM)
        elif status is WarningStatus.CLEAR_REQUESTED and "closure" not in track.done:
            self._settle_clear_request(warning, track, details)
        elif (
            int(details.get("escalation_tier", 0)) >= 1
            and not details.get("contact_count")
            and ("contact" not in track.done)
        ):
            self._phone(warning, track)

    def _phone(self, warning: Mapping[str, Any], track: _Track) -> None:
        enterprise_id = str(warning["enterprise_id"])
        reached = self._answers_phone(enterprise_id)
        body = {
            "type": ActionType.RECORD_CONTACT.value,
            "channel": "phone",
            "outcome": "reached" if reached else "no_answer",
            "contact_name": self._contact_names.get(enterprise_id, ""),
            "note": "已电话督促企业立即签收核实" if reached else "电话无人接听,继续联系",
        }
        if self._act(warning, body, body["outcome"]).ok:
            track.done.add("contact")

    def _settle_clear_request(self, warning: Mapping[str, Any], track: _Track, details: Mapping[str, Any]) -> None:
        reason = str((details.get("clear_request") or {}).get("reason", ""))
        if reason == ClearReason.DISPOSED and not warning.get("reading_normal"):
            body = {"type": ActionType.REJECT_CLEAR.value, "note": "监测数据再次异常,请继续处置"}
            self._act(warning, body, "rejected")
            return
        body = {"type": ActionType.CONFIRM_CLOSURE.value, "note": "已核实处置情况,同意消警"}
        if self._act(warning, body, reason).ok:
            track.done.add("closure")


# --------------------------------------------------------------------------------------------------- the crew


class ActorCrew:
    """Every enterprise app and the duty console, each desk in its own daemon thread; `stop()` joins them."""

    def __init__(
        self,
        api_url: str,
        registry: SeedRegistry,
        on_event: OnEvent,
        timing: ActorTiming | None = None,
        personas: Callable[[str], Persona] = persona_for,
    ) -> None:
        self.timing = timing or ActorTiming()
        self.personas = {e.enterprise_id: personas(e.enterprise_id) for e in registry.enterprises}
        self.enterprises = {
            enterprise_id: EnterpriseActor(
                enterprise_id,
                persona,
                ApiClient(api_url, enterprise_user(enterprise_id), "dyj-demo-enterprise-app"),
                self.timing,
                on_event,
            )
            for enterprise_id, persona in self.personas.items()
        }
        contacts = {e.enterprise_id: e.contacts[0].name for e in registry.enterprises if e.contacts}
        self.duty = DutyActor(
            ApiClient(api_url, DUTY_USER, "dyj-demo-duty-console"),
            self.timing,
            on_event,
            answers_phone=lambda enterprise_id: self.personas.get(enterprise_id) is not Persona.SILENT,
            contact_names=contacts,
        )
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._enterprise_desk, name="actors-enterprises", daemon=True),
            threading.Thread(target=self._duty_desk, name="actors-duty", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def nudge(self, enterprise_id: str) -> None:
        actor = self.enterprises.get(enterprise_id)
        if actor is not None:
            actor.nudge()

    def _enterprise_desk(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            due = sorted((a for a in self.enterprises.values() if a.next_poll <= now), key=lambda a: a.next_poll)
            for actor in due:
                if self._stop.is_set():
                    return
                self._safely(actor.tick, actor.client.username)
            self._stop.wait(0.1)

    def _duty_desk(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self._safely(self.duty.tick, self.duty.client.username)
            self._stop.wait(max(0.05, self.timing.wall_poll_s - (time.monotonic() - started)))

    def _safely(self, tick: Callable[[], None], who: str) -> None:
        try:
            tick()
        except Exception:  # one failed refresh (a timeout, the API restarting) must not end the desk
            logger.exception("actor %s failed", who)
