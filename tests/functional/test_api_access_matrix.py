"""The access matrix over HTTP, one pass per role: real ID tokens from moto's Cognito for the seeded users, and for
each role `/me`, one call it may make and one it may not, through the routes, the token check and the error map.

The full matrix (every use × every role × a record in and out of scope → allow, 403 or 404) runs against the use
cases in `tests/unit/test_access_matrix.py`; this pass shows that the API hands each role's token to them as that
role and maps their refusals to 403 and 404 (DOMAIN.md §1, docs/api.md "Roles and scopes").

The resources: a red hazchem warning of E-HC-01 (areas TJFTZ, GULIN), in the scope of its enterprise user, the
区应急局 regulator (hazchem) and the TJFTZ area official; and a red road-transport warning of E-RT-01 (areas TEDA,
TAIDA), out of all three scopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http, raise_warning

IN, OUT = "in_scope", "out_of_scope"


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # `{in}` / `{out}`: the warning in / out of the caller's scope
    body: Any = None

    def on(self, pair: dict[str, WarningRecord]) -> str:
        return self.path.format(**{"in": pair[IN].warning_id, "out": pair[OUT].warning_id})


@dataclass(frozen=True)
class Pass:
    user: str
    me: dict[str, Any]  # what `/me` must say beside the role
    allowed: Call
    status: int
    denied: Call
    refusal: tuple[int, str]


PASSES = {
    "enterprise": Pass(
        "ent-e-hc-01",
        {"enterprise_id": "E-HC-01"},
        Call("POST", "/warnings/{in}/actions", {"type": "acknowledge"}),
        200,
        Call("GET", "/warnings/{out}"),
        (404, "warning_not_found"),
    ),
    "duty": Pass(
        "duty-01",
        {},
        Call(
            "POST", "/warnings/{out}/actions", {"type": "record_contact", "channel": "phone", "outcome": "reached"}
        ),
        200,
        Call("POST", "/warnings/{in}/actions", {"type": "acknowledge"}),
        (403, "role_not_permitted"),
    ),
    "regulator": Pass(
        "reg-emergency-bureau",
        {"sectors": ["hazchem", "chem_pipeline"]},
        Call(
            "POST", "/warnings/{in}/actions", {"type": "record_inspection", "findings": "现场核查：储罐区已疏散"}
        ),
        200,
        Call("POST", "/warnings/{out}/actions", {"type": "record_inspection", "findings": "越权核查"}),
        (404, "warning_not_found"),
    ),
    "area": Pass(
        "area-tjftz",
        {"area_codes": ["TJFTZ"]},
        Call("POST", "/warnings/{in}/evidence", {"content_type": "image/jpeg"}),
        201,
        Call("POST", "/warnings/{in}/actions", {"type": "mark_false_alarm", "note": "误报"}),
        (403, "role_not_permitted"),
    ),
    "emergency": Pass(
        "emg-01",
        {},
        Call("POST", "/warnings/{out}/actions", {"type": "escalate", "tier": 3}),
        200,
        Call("GET", "/admin/users"),
        (403, "role_not_permitted"),
    ),
    "admin": Pass(
        "admin",
        {},
        Call("GET", "/warnings/{out}/audit"),
        200,
        Call("POST", "/warnings/{in}/actions", {"type": "archive"}),
        (403, "role_not_permitted"),
    ),
}


@pytest.fixture
def pair(api_env: ApiEnv) -> dict[str, WarningRecord]:
    return {
        IN: raise_warning(api_env.registry, "E-HC-01", Level.RED),
        OUT: raise_warning(api_env.registry, "E-RT-01", Level.RED),
    }


@pytest.mark.parametrize("role", list(PASSES))
def test_each_role_is_itself_through_its_token_may_do_its_part_and_is_refused_the_rest(
    http: Http, pair: dict[str, WarningRecord], role: str
) -> None:
    case = PASSES[role]

    me = http.get("/me", case.user)
    allowed = http.call(case.allowed.method, case.allowed.on(pair), case.user, case.allowed.body)
    denied = http.call(case.denied.method, case.denied.on(pair), case.user, case.denied.body)

    assert me.status == 200 and me.body["role"] == role
    assert {field: me.body[field] for field in case.me} == case.me
    assert allowed.status == case.status, allowed
    assert (denied.status, denied.code) == case.refusal, denied


__all__ = ["api_env", "http"]  # the fixtures this module uses
