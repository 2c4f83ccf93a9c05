"""The identity infrastructure the API relies on: infra/identity.json, its local provisioning, real tokens."""

from __future__ import annotations

import json
import urllib.request

import jwt
from cfnlint import api as cfnlint_api

from local.aws import IDENTITY_TEMPLATE_PATH, identity_parameters, provision_identity
from local.users import token_for
from tests.functional.api_fixtures import STAGE, ApiEnv, api_env


def test_the_identity_template_lints_where_cognito_user_pools_exist() -> None:
    matches = cfnlint_api.lint(IDENTITY_TEMPLATE_PATH.read_text(encoding="utf-8"), regions=["us-east-1"])
    assert [str(match) for match in matches] == []


def test_provisioning_the_pool_again_keeps_its_ids_and_the_app_env_points_at_moto(api_env: ApiEnv) -> None:
    again = identity_parameters(provision_identity(api_env.infra.endpoint_url, STAGE))
    env = api_env.env
    assert again == {
        "IdentityUserPoolId": env["DYJ_COGNITO_USER_POOL_ID"],
        "IdentityClientId": env["DYJ_COGNITO_CLIENT_ID"],
        "IdentityIssuer": env["DYJ_COGNITO_ISSUER"],
        "IdentityJwksUrl": env["DYJ_COGNITO_JWKS_URL"],
    }
    assert env["DYJ_COGNITO_JWKS_URL"].startswith(api_env.infra.endpoint_url)
    assert env["DYJ_EVIDENCE_BUCKET"].startswith("dayingji-test-evidence-")


def test_a_seeded_user_gets_a_signed_id_token_with_its_group_and_scope(api_env: ApiEnv) -> None:
    token = token_for("ent-e-hc-01")
    with urllib.request.urlopen(api_env.env["DYJ_COGNITO_JWKS_URL"], timeout=10) as response:
        keys = json.load(response)["keys"]
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=api_env.env["DYJ_COGNITO_CLIENT_ID"])
    assert claims["iss"] == api_env.env["DYJ_COGNITO_ISSUER"]
    assert (claims["token_use"], claims["cognito:groups"], claims["custom:enterprise_id"]) == (
        "id",
        ["enterprise"],
        "E-HC-01",
    )


__all__ = ["api_env"]  # the fixtures this module uses
