"""docs/mobile-app.md says what the code and the template do: the app client's settings, the codes it names.
(Its generated tables are checked by test_docs.py; its examples are replayed by
tests/functional/test_mobile_sign_in.py.)"""

from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.api.errors import CODES
from scripts.gen_docs import DOCS, mobile_codes

GUIDE = (DOCS / "mobile-app.md").read_text(encoding="utf-8")
IDENTITY = json.loads((DOCS.parent / "infra" / "identity.json").read_text(encoding="utf-8"))


def _section(title: str) -> str:
    start = GUIDE.index(f"## {title}\n")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start : end if end != -1 else None]


def _resource(name: str) -> dict[str, Any]:
    properties: dict[str, Any] = IDENTITY["Resources"][name]["Properties"]
    return properties


def test_the_guide_states_the_app_clients_settings_as_the_template_has_them() -> None:
    client = _resource("UserPoolClient")
    assert client["GenerateSecret"] is False and "no client secret" in GUIDE
    for flow in client["ExplicitAuthFlows"]:
        assert f"`{flow}`" in GUIDE
    assert not any("ADMIN" in flow for flow in client["ExplicitAuthFlows"]) and "no admin flow" in GUIDE
    units = client["TokenValidityUnits"]
    assert (units["IdToken"], units["AccessToken"], units["RefreshToken"]) == ("minutes", "minutes", "days")
    assert client["IdTokenValidity"] == client["AccessTokenValidity"]
    assert f"ID and access tokens valid **{client['IdTokenValidity']} minutes**" in GUIDE
    assert f"refresh tokens **{client['RefreshTokenValidity']} days**" in GUIDE
    assert f"within **{client['AuthSessionValidity']} minutes**" in GUIDE
    assert client["PreventUserExistenceErrors"] == "ENABLED" and "`PreventUserExistenceErrors: ENABLED`" in GUIDE
    assert client["WriteAttributes"] == ["name"] and "may change their `name` only" in GUIDE


def test_the_guide_states_the_password_policy_and_invitation_as_the_pool_has_them() -> None:
    pool = _resource("UserPool")
    policy = pool["Policies"]["PasswordPolicy"]
    assert f"at least {policy['MinimumLength']} characters" in GUIDE
    assert (policy["RequireUppercase"], policy["RequireLowercase"], policy["RequireNumbers"]) == (True, True, True)
    assert "an upper-case letter, a lower-case letter and a digit" in GUIDE
    assert policy["RequireSymbols"] is False and "symbols allowed, not required" in GUIDE
    assert f"valid {policy['TemporaryPasswordValidityDays']} days" in GUIDE
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert [m["Name"] for m in pool["AccountRecoverySetting"]["RecoveryMechanisms"]] == ["admin_only"]


def test_every_code_the_retry_table_names_is_one_the_apps_routes_answer() -> None:
    rows = [line.split("|")[1] for line in _section("9. Retries").split("\n\n")[1].splitlines()[2:]]
    named = {code for answer in rows for code in re.findall(r"`([a-z_]+)`", answer)}
    assert named, "the retry table names no code"
    assert named <= set(CODES), named - set(CODES)
    assert named <= set(mobile_codes()), named - set(mobile_codes())
