"""The demo's declared outage (申报, docs/declarations.md): before the fleet starts, the enterprise declares a
planned stop (停产检修) of one gas detector and the sector's regulator approves it, through the API.
After the fleet has published, the detector reports alarm setpoints unlike its registration (`config`,
docs/device-protocol.md "Reported configuration"): a `config_mismatch` data-quality finding, which the approved
window suppresses — recorded, never raised nor told — and which `GET /declarations/{id}/findings` lists.

The ingest reads the open declarations at most every `open_cache_s` (1 s in the demo's policy), so the finding
comes long after the approval. What the scene saw goes into the summary (`DeclarationScene`) for the checks.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from chalicelib.domain.changes import DATA_QUALITY
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.warnings import WarningRecord
from local.actors import ApiClient
from local.demo.summary import DeclarationCase, DeclarationScene
from local.fleet import SimMessage
from local.seed import SeedRegistry
from local.users import DUTY_USER, enterprise_user, regulator_user
from local.waiting import wait_until

DECLARED_DEVICE = "HC01-T1-GT3"  # no incident and no bad message of the fleet is on it
REPORTED_L1 = 30.0  # registered 25 %LEL: the detector says it alarms at 30
WINDOW_S = 3600.0
FINDINGS_TIMEOUT_S = 30.0  # the message is accounted for before this is asked: only the read may lag


class DeclaredOutage:
    def __init__(self, api_url: str, registry: SeedRegistry) -> None:
        self.reg = registry.by_device[DECLARED_DEVICE]
        self.enterprise = enterprise_user(self.reg.enterprise_id)
        self.regulator = regulator_user(self.reg.sector.spec.regulators[0])
        self._api_url = api_url
        self.scene = DeclarationScene(
            declaration_id=None,
            device_id=DECLARED_DEVICE,
            reason="planned_stop",
            declared_by=self.enterprise,
            approved_by=None,
            status=None,
            answers={},
            suppressed=[],
            raised_for_device=0,
            problem=None,
        )

    def declare_and_approve(self) -> None:
        now = time.time()
        declarer = ApiClient(self._api_url, self.enterprise, "dyj-demo-enterprise-app")
        declared = declarer.post(
            "/declarations",
            {
                "device_ids": [DECLARED_DEVICE],
                "reason": "planned_stop",
                "starts_at": now,
                "ends_at": now + WINDOW_S,
                "note": "停产检修(演示):更换探头",
            },
        )
        self._answered("declare", declared.status)
        if not declared.ok:
            self._failed(f"POST /declarations answered {declared.status} {declared.error_code}")
            return
        ident = str(declared.body["declaration_id"])
        approver = ApiClient(self._api_url, self.regulator, "dyj-demo-regulator-console")
        approved = approver.post(f"/declarations/{ident}/approve", {"note": "同意检修"})
        self._answered("approve", approved.status)
        self.scene = self.scene.model_copy(
            update={
                "declaration_id": ident,
                "status": str(approved.body.get("status")) if approved.ok else None,
                "approved_by": str(approved.body.get("verified_by")) if approved.ok else None,
            }
        )
        if not approved.ok:
            self._failed(f"POST /declarations/{ident}/approve answered {approved.status} {approved.error_code}")

    def mismatch_message(self, at: float) -> SimMessage:
        """A reading of the declared detector with its reported alarm setpoints (level-1 unlike the registered)."""
        reg = self.reg
        topic = f"dyj/{reg.sector.value}/{reg.enterprise_id}/{reg.device_id}/telemetry"
        body = {
            "device_id": reg.device_id,
            "enterprise_id": reg.enterprise_id,
            "sector": reg.sector.value,
            "ts": datetime.fromtimestamp(at, SHANGHAI).isoformat(timespec="milliseconds"),
            "metrics": {"gas_lel_pct": 1.0},
            "config": {"setpoints": {"gas_lel_pct": {"l1": REPORTED_L1}}},
        }
        return SimMessage(reg.device_id, topic, json.dumps(body).encode(), at)

    def outcome(self, records: Sequence[WarningRecord]) -> DeclarationScene:
        """What the duty console reads of the declaration (GET /declarations/{id}/findings) and whether anything
        was raised for the device's data quality meanwhile (it must not have been)."""
        raised = sum(1 for r in records if r.device_id == DECLARED_DEVICE and r.risk_type == DATA_QUALITY)
        scene = self.scene.model_copy(update={"raised_for_device": raised})
        ident = scene.declaration_id
        if ident is None:
            return scene
        duty = ApiClient(self._api_url, DUTY_USER, "dyj-demo-duty-console")
        answers: list[int] = []

        def listed() -> list[str] | None:
            found = duty.get(f"/declarations/{ident}/findings")
            answers.append(found.status)
            reasons = [str(item["reason"]) for item in found.body.get("items", [])] if found.ok else []
            return reasons or None

        try:
            reasons = wait_until(
                listed, timeout_s=FINDINGS_TIMEOUT_S, what="the suppressed finding", interval_s=0.5
            )
        except AssertionError:
            reasons = []
        scene = scene.model_copy(
            update={"suppressed": reasons, "answers": {**scene.answers, "findings": answers[-1]}}
        )
        if not reasons and scene.problem is None:
            scene = scene.model_copy(
                update={"problem": "GET /declarations/{id}/findings listed nothing suppressed"}
            )
        return scene

    def _answered(self, request: str, status: int) -> None:
        self.scene = self.scene.model_copy(update={"answers": {**self.scene.answers, request: status}})

    def _failed(self, problem: str) -> None:
        self.scene = self.scene.model_copy(update={"problem": problem})


REJECTED_DEVICE = "HC04-T1-GT3"  # E-HC-04: a planned stop the regulator rejects
EXPIRING_DEVICE = "HC02-T1-GT3"  # E-HC-02: a damaged detector declared for a short window that ends by itself
EXPIRING_WINDOW_S = 30.0  # reminded `declarations.remind_before_end_s` (the demo's: 20 s) before its end
REJECTION_REASON = "检修方案未附,请补充后重新申报"
SWEPT_TIMEOUT_S = 60.0  # at the end: the sweep (every 2 s in the demo) has long reminded and expired it


class DeclarationCases:
    """Two more declarations at the start of the run: a planned stop (停产检修) that the sector's regulator rejects
    with a reason, and an equipment-damage outage (设备损坏, in effect as soon as declared) whose short window the
    declaration sweep reminds the declarer of and then ends. What each became is read back at the end as the
    duty centre sees it (GET /declarations/{id} and its audit trail)."""

    def __init__(self, api_url: str, registry: SeedRegistry) -> None:
        self._api_url = api_url
        self._registry = registry
        self.cases: list[DeclarationCase] = []

    def declare(self) -> list[DeclarationCase]:
        self.cases = [self._rejected(), self._expiring()]
        return self.cases

    def _rejected(self) -> DeclarationCase:
        reg = self._registry.by_device[REJECTED_DEVICE]
        now = time.time()
        case, ident = self._declare(
            "rejected", REJECTED_DEVICE, "planned_stop", now + 600, now + 600 + WINDOW_S, "停产检修(演示):年度检修"
        )
        if ident is None:
            return case
        regulator = regulator_user(reg.sector.spec.regulators[0])
        rejected = ApiClient(self._api_url, regulator, "dyj-demo-regulator-console").post(
            f"/declarations/{ident}/reject", {"reason": REJECTION_REASON}
        )
        case = case.model_copy(
            update={
                "answers": {**case.answers, "reject": rejected.status},
                "decided_by": regulator if rejected.ok else None,
                "status": str(rejected.body.get("status")) if rejected.ok else None,
            }
        )
        if not rejected.ok:
            case = case.model_copy(update={"problem": f"reject answered {rejected.status} {rejected.error_code}"})
        return case

    def _expiring(self) -> DeclarationCase:
        now = time.time()
        case, _ = self._declare(
            "expiring",
            EXPIRING_DEVICE,
            "equipment_damage",
            now,
            now + EXPIRING_WINDOW_S,
            "设备损坏(演示):探头受潮,更换中",
        )
        return case

    def _declare(
        self, case: str, device_id: str, reason: str, starts_at: float, ends_at: float, note: str
    ) -> tuple[DeclarationCase, str | None]:
        reg = self._registry.by_device[device_id]
        declarer = enterprise_user(reg.enterprise_id)
        declared = ApiClient(self._api_url, declarer, "dyj-demo-enterprise-app").post(
            "/declarations",
            {
                "device_ids": [device_id],
                "reason": reason,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "note": note,
            },
        )
        ident = str(declared.body["declaration_id"]) if declared.ok else None
        found = DeclarationCase(
            case=case,
            declaration_id=ident,
            device_id=device_id,
            reason=reason,
            declared_by=declarer,
            decided_by=None,
            status=str(declared.body.get("status")) if declared.ok else None,
            rejection_reason=None,
            window_s=ends_at - starts_at,
            reminded_at=None,
            audit=[],
            delivered={},
            answers={"declare": declared.status},
            problem=None
            if declared.ok
            else f"POST /declarations answered {declared.status} {declared.error_code}",
        )
        return found, ident

    def outcome(self, receipts: Callable[[str], list[dict[str, Any]]]) -> list[DeclarationCase]:
        """Each declaration as the duty centre reads it now, with its audit trail's events and its notices'
        delivery receipts (`receipts(subject)`, subject `declaration:{id}`); the expiring one is waited for
        (bounded) until the sweep's reminder and expiry are both in its trail."""
        duty = ApiClient(self._api_url, DUTY_USER, "dyj-demo-duty-console")
        return [self._read(duty, case, receipts) for case in self.cases]

    def _read(
        self, duty: ApiClient, case: DeclarationCase, receipts: Callable[[str], list[dict[str, Any]]]
    ) -> DeclarationCase:
        ident = case.declaration_id
        if ident is None:
            return case
        wanted = {"declaration_reminded", "declaration_expired"} if case.case == "expiring" else set()
        answers: dict[str, int] = {}

        def trail() -> list[str] | None:
            audit = duty.get(f"/declarations/{ident}/audit")
            answers["audit"] = audit.status
            events = [str(e["type"]) for e in audit.body.get("events", [])] if audit.ok else []
            return events if wanted <= set(events) else None

        try:
            events = wait_until(trail, timeout_s=SWEPT_TIMEOUT_S, what="the sweep's steps", interval_s=1.0)
        except AssertionError:
            events = []
        read = duty.get(f"/declarations/{ident}")
        answers["read"] = read.status
        body = read.body if read.ok else {}
        problem = case.problem
        if wanted and not events and problem is None:
            problem = f"its audit trail lacks {sorted(wanted)} after {SWEPT_TIMEOUT_S:.0f} s"
        reminded = body.get("reminded_at")
        sent = Counter(
            f"{row.get('kind')}/{row.get('channel')}"
            for row in receipts(f"declaration:{ident}")
            if row.get("outcome") == "sent"
        )
        return case.model_copy(
            update={
                "delivered": dict(sorted(sent.items())),
                "status": str(body["status"]) if "status" in body else case.status,
                "rejection_reason": body.get("rejection_reason"),
                "reminded_at": float(reminded) if isinstance(reminded, (int, float)) else None,
                "audit": events,
                "answers": {**case.answers, **answers},
                "problem": problem,
            }
        )
