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
from collections.abc import Sequence
from datetime import datetime

from chalicelib.domain.changes import DATA_QUALITY
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.warnings import WarningRecord
from local.actors import ApiClient
from local.demo.summary import DeclarationScene
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
