"""Regenerate the documents derived from code: the device message JSON Schema, the OpenAPI document, the error
code table of docs/api.md (between its `ERROR_TABLE_START` and `ERROR_TABLE_END` markers) and, in
docs/mobile-app.md, the table of the app's routes and of the error codes they answer (`MOBILE_OPERATIONS`).

Run: .venv/bin/python -m scripts.gen_docs   (a test fails when a committed document is stale)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from chalicelib.domain.sectors import MESSAGE_ADAPTER

DOCS = Path(__file__).resolve().parent.parent / "docs"


def device_message_schema() -> str:
    schema = MESSAGE_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dayingji device message"
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


REF = "#/components/schemas/{model}"


def _schemas(models: list[tuple[Any, JsonSchemaMode]]) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    from pydantic.json_schema import models_json_schema

    refs, top = models_json_schema(models, ref_template=REF)
    return {key[0]: ref for key, ref in refs.items()}, top.get("$defs", {})


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.get("$defs", {}))
    parameters = []
    for name, prop in schema["properties"].items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop["description"]
        if "anyOf" in prop and any(option.get("type") == "array" for option in prop["anyOf"]):
            parameter.update(style="form", explode=False, description="any of, comma-separated")
        parameters.append(parameter)
    return parameters


def _error_code_schema() -> dict[str, Any]:
    """Every code of the catalogue as a documented constant (what it means, what an app should do)."""
    from chalicelib.api.errors import CODES

    return {
        "type": "string",
        "description": 'What went wrong, for programs (docs/api.md "Error codes"); `message` says it in Chinese.',
        "oneOf": [
            {"const": code, "description": f"HTTP {entry.status}. {entry.meaning} App: {entry.app_should}"}
            for code, entry in CODES.items()
        ],
    }


def _error_responses(codes: tuple[str, ...], error_body: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.api.errors import CODES, STATUS_ZH

    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(CODES[code].status, []).append(code)
    return {
        str(status): {
            "description": f"{STATUS_ZH[status]}: " + ", ".join(f"`{code}`" for code in listed),
            "content": {"application/json": {"schema": error_body}},
        }
        for status, listed in sorted(by_status.items())
    }


def build_openapi(served: set[tuple[str, str]]) -> dict[str, Any]:
    """OpenAPI 3.1 from `ROUTES`; fails when the app serves a route the table lacks, or the reverse."""
    from chalicelib.api.models import ID_PATTERN, ROUTES, ErrorBody

    documented = {(route.path, route.method) for route in ROUTES}
    if documented != served:
        raise SystemExit(f"routes and ROUTES differ: {sorted(documented ^ served)}")
    models: list[tuple[Any, JsonSchemaMode]] = [(ErrorBody, "serialization")]
    models += [(route.body, "validation") for route in ROUTES if route.body is not None]
    models += [(route.response, "serialization") for route in ROUTES]
    refs, components = _schemas(list(dict.fromkeys(models)))
    components["ErrorCode"] = _error_code_schema()
    components["ErrorBody"]["properties"]["code"] = {"$ref": REF.format(model="ErrorCode")}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": ID_PATTERN}}
            for name in re.findall(r"{(\w+)}", route.path)
        ]
        if route.query is not None:
            parameters += _query_parameters(route.query, components)
        responses: dict[str, Any] = {
            str(route.status): {
                "description": "OK",
                "content": {"application/json": {"schema": refs[(route.response)]}},
            }
        }
        if route.etag:
            tag_header = {
                "ETag": {"description": "a strong tag of the answer's bytes", "schema": {"type": "string"}}
            }
            responses[str(route.status)]["headers"] = tag_header
            unchanged = "unchanged since the tag in If-None-Match: no body"
            responses["304"] = {"description": unchanged, "headers": tag_header}
            parameters.append(
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "description": "the ETag of the last answer (docs/api.md, Conditional polling)",
                    "schema": {"type": "string", "maxLength": 512},
                }
            )
        responses.update(_error_responses(route.error_codes, refs[ErrorBody]))
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": responses,
        }
        if route.roles:
            operation["description"] = "角色 roles: " + ", ".join(route.roles)
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[route.body]}},
            }
        if route.public:
            operation["security"] = []
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dayingji API",
            "version": "1",
            "description": "滨海新区大应急融合平台：预警处置闭环 API (see docs/api.md)",
        },
        "servers": [{"url": "/api"}],
        "security": [{"cognito": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def openapi_document() -> str:
    """docs/openapi.json: the route table of `chalicelib.api.models.ROUTES` (checked against the Chalice app's
    routes but the console's files) with the request/response models' JSON Schemas as components."""
    from app import app as chalice_app
    from chalicelib.api.console_route import PREFIX as CONSOLE

    served = {
        (path, method)
        for path, methods in chalice_app.routes.items()
        for method in methods
        if path != CONSOLE and not path.startswith(CONSOLE + "/")  # the console's files, not the API (console.md)
    }
    return json.dumps(build_openapi(served), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


ERROR_TABLE_START = "<!-- error codes: generated from chalicelib/api/errors.py by `python -m scripts.gen_docs` -->"
ERROR_TABLE_END = "<!-- end of error codes -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def error_table(codes: Iterable[str] | None = None) -> str:
    """The catalogue (or the `codes` of it) as a Markdown table, by status."""
    from chalicelib.api.errors import CODES

    wanted = set(CODES if codes is None else codes)
    rows = [
        "| status | `code` | meaning | what the app should do | `message` |",
        "|---|---|---|---|---|",
    ]
    for code, entry in sorted(CODES.items(), key=lambda pair: pair[1].status):
        if code not in wanted:
            continue
        where = " *(gateway)*" if entry.from_gateway else ""
        message = entry.message or "varies (names the action)"
        cells = [str(entry.status), f"`{code}`{where}", _cell(entry.meaning), _cell(entry.app_should), message]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _regenerated(name: str, sections: dict[tuple[str, str], str]) -> str:
    """docs/`name` with the text between each pair of markers replaced (the rest is written by hand)."""
    text = (DOCS / name).read_text(encoding="utf-8")
    for (start, end), body in sections.items():
        head, found, rest = text.partition(start)
        _old, ended, tail = rest.partition(end)
        if not found or not ended:
            raise SystemExit(f"docs/{name} lacks the markers {start!r} ... {end!r}")
        text = f"{head}{start}\n{body}\n{end}{tail}"
    return text


TOKEN_CONTRACT_START = (
    "<!-- token contract: generated from chalicelib/api/auth.py, identity.py by `python -m scripts.gen_docs` -->"
)
TOKEN_CONTRACT_END = "<!-- end of token contract -->"

_REQUIRED_CLAIM_RULES = {
    "iss": "equals `DYJ_COGNITO_ISSUER` exactly (the same string, trailing slash and all)",
    "aud": "equals `DYJ_COGNITO_CLIENT_ID`, or is a list that contains it",
    "exp": "not past ({leeway} leeway); past it, a token that passes every other check answers `token_expired`",
    "iat": "not in the future ({leeway} leeway)",
    "sub": "present; the user id when the token has no `{username}`",
}


def token_contract_table() -> str:
    """What the verifier accepts and how the claims become the caller (role, scope), from the constants the code
    uses (`chalicelib/api/auth.py`, `chalicelib/api/identity.py`)."""
    from chalicelib.api import auth, identity
    from chalicelib.domain.lifecycle import Role
    from chalicelib.domain.policy import DEPARTMENT_ZH

    leeway = f"{auth.LEEWAY_S:g} s"
    unknown = set(auth.REQUIRED_CLAIMS) - set(_REQUIRED_CLAIM_RULES)
    if unknown:
        raise SystemExit(f"the verifier requires claims the token contract does not describe: {sorted(unknown)}")
    roles = ", ".join(f"`{role.value}`" for role in Role if role.value in identity.PERSON_ROLES)
    departments = ", ".join(f"`{code}`" for code in DEPARTMENT_ZH)
    username, *fallbacks = identity.USER_ID_CLAIMS
    rows = [
        ("header", "`alg`", "yes", "one of " + ", ".join(f"`{alg}`" for alg in auth.ALGORITHMS)),
        (
            "header",
            "`kid`",
            "yes",
            "names an RSA key of the JWKS at `DYJ_COGNITO_JWKS_URL` (its `use` is `sig` or absent)",
        ),
    ]
    rows += [
        ("payload", f"`{name}`", "yes", _REQUIRED_CLAIM_RULES[name].format(leeway=leeway, username=username))
        for name in auth.REQUIRED_CLAIMS
    ]
    rows += [
        ("payload", "`nbf`", "no", f"if present, not in the future ({leeway} leeway)"),
        (
            "payload",
            f"`{auth.TOKEN_USE_CLAIM}`",
            "yes",
            f"`{auth.TOKEN_USE}` (an ID token); anything else is `invalid_token`",
        ),
        (
            "payload",
            f"`{identity.ROLES_CLAIM}`",
            "yes",
            f"a list of group names (or one string) with exactly one of {roles}; none or several: 403 `no_role`",
        ),
        (
            "payload",
            f"`{username}`",
            "no",
            "the user id (at most 128 characters; recorded in the audit trail); if absent, "
            + " or ".join(f"`{name}`" for name in fallbacks),
        ),
        ("payload", f"`{identity.NAME_CLAIM}`", "no", "the name shown in timelines (the user id if absent)"),
    ]
    scope_rules = {
        Role.ENTERPRISE: "the enterprise id of the registry (`E-HC-01`)",
        Role.REGULATOR: f"a department code: {departments}; its sectors come from the routing policy (a code "
        "that supervises no sector counts as missing)",
        Role.AREA: "area codes of the registry, comma-separated (`TJFTZ,XINHE`)",
    }
    for role, claim in identity.SCOPE_CLAIMS.items():
        rule = scope_rules[role] + "; missing or empty: 403 `scope_missing`"
        rows.append(("payload", f"`{claim}`", f"role `{role.value}`", rule))
    lines = ["| part | claim | required | what the API checks or takes from it |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def api_markdown() -> str:
    """docs/api.md with its error code table and token contract regenerated."""
    return _regenerated(
        "api.md",
        {
            (TOKEN_CONTRACT_START, TOKEN_CONTRACT_END): token_contract_table(),
            (ERROR_TABLE_START, ERROR_TABLE_END): error_table(),
        },
    )


MOBILE_OPERATIONS = (
    "me",
    "listNotifications",
    "readNotification",
    "listWarnings",
    "getWarning",
    "act",
    "evidenceUpload",
)
"""The routes of `ROUTES` (operation ids) the mobile app uses, as docs/mobile-app.md describes them."""
MOBILE_ROUTES_START = (
    "<!-- app routes: generated from chalicelib/api/models.py by `python -m scripts.gen_docs` -->"
)
MOBILE_ROUTES_END = "<!-- end of app routes -->"
MOBILE_CODES_START = (
    "<!-- app error codes: generated from chalicelib/api/errors.py by `python -m scripts.gen_docs` -->"
)
MOBILE_CODES_END = "<!-- end of app error codes -->"


def mobile_routes() -> list[Any]:
    from chalicelib.api.models import ROUTES

    by_id = {route.operation_id: route for route in ROUTES}
    missing = [operation for operation in MOBILE_OPERATIONS if operation not in by_id]
    if missing:
        raise SystemExit(f"MOBILE_OPERATIONS names routes ROUTES lacks: {missing}")
    return [by_id[operation] for operation in MOBILE_OPERATIONS]


def mobile_codes() -> list[str]:
    """Every code the app's routes may answer, and what the gateway answers in front of them."""
    from chalicelib.api.errors import CODES

    codes = [code for route in mobile_routes() for code in route.error_codes]
    codes += [code for code, entry in CODES.items() if entry.from_gateway]
    return list(dict.fromkeys(codes))


def mobile_route_table() -> str:
    rows = ["| method and path | roles | what | success |", "|---|---|---|---|"]
    for route in mobile_routes():
        roles = ", ".join(route.roles) or "all"
        rows.append(f"| `{route.method} {route.path}` | {roles} | {_cell(route.summary)} | {route.status} |")
    return "\n".join(rows)


def mobile_markdown() -> str:
    """docs/mobile-app.md with the app's routes, their error codes and the token contract regenerated."""
    return _regenerated(
        "mobile-app.md",
        {
            (MOBILE_ROUTES_START, MOBILE_ROUTES_END): mobile_route_table(),
            (MOBILE_CODES_START, MOBILE_CODES_END): error_table(mobile_codes()),
            (TOKEN_CONTRACT_START, TOKEN_CONTRACT_END): token_contract_table(),
        },
    )


DOCUMENTS = {
    "device-message.schema.json": device_message_schema,
    "openapi.json": openapi_document,
    "api.md": api_markdown,
    "mobile-app.md": mobile_markdown,
}


def main() -> None:
    for name, render in DOCUMENTS.items():
        (DOCS / name).write_text(render(), encoding="utf-8")
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
