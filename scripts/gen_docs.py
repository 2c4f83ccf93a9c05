"""Regenerate the documents derived from code: the device message JSON Schema, the OpenAPI document and the error
code table of docs/api.md (between its `ERROR_TABLE_START` and `ERROR_TABLE_END` markers).

Run: .venv/bin/python -m scripts.gen_docs   (a test fails when a committed document is stale)
"""

from __future__ import annotations

import json
import re
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
    routes) with the request/response models' JSON Schemas as components."""
    from app import app as chalice_app

    served = {(path, method) for path, methods in chalice_app.routes.items() for method in methods}
    return json.dumps(build_openapi(served), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


ERROR_TABLE_START = "<!-- error codes: generated from chalicelib/api/errors.py by `python -m scripts.gen_docs` -->"
ERROR_TABLE_END = "<!-- end of error codes -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def error_table() -> str:
    """The catalogue as a Markdown table, by status."""
    from chalicelib.api.errors import CODES

    rows = [
        "| status | `code` | meaning | what the app should do | `message` |",
        "|---|---|---|---|---|",
    ]
    for code, entry in sorted(CODES.items(), key=lambda pair: pair[1].status):
        where = " *(gateway)*" if entry.from_gateway else ""
        message = entry.message or "varies (names the action)"
        cells = [str(entry.status), f"`{code}`{where}", _cell(entry.meaning), _cell(entry.app_should), message]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def api_markdown() -> str:
    """docs/api.md with its error code table regenerated (the rest is written by hand)."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    head, found, rest = text.partition(ERROR_TABLE_START)
    _old, end, tail = rest.partition(ERROR_TABLE_END)
    if not found or not end:
        raise SystemExit("docs/api.md lacks the error code table markers")
    return f"{head}{ERROR_TABLE_START}\n{error_table()}\n{ERROR_TABLE_END}{tail}"


DOCUMENTS = {
    "device-message.schema.json": device_message_schema,
    "openapi.json": openapi_document,
    "api.md": api_markdown,
}


def main() -> None:
    for name, render in DOCUMENTS.items():
        (DOCS / name).write_text(render(), encoding="utf-8")
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
