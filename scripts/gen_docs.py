"""Regenerate the documents derived from code: the device message JSON Schema (and the OpenAPI document).

Run: .venv/bin/python -m scripts.gen_docs   (a test fails when a committed document is stale)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from chalicelib.domain.telemetry import MESSAGE_ADAPTER

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


def build_openapi(served: set[tuple[str, str]]) -> dict[str, Any]:
    """OpenAPI 3.1 from `ROUTES`; fails when the app serves a route the table lacks, or the reverse."""
    from chalicelib.api.errors import ERROR_CODES
    from chalicelib.api.models import ID_PATTERN, ROUTES, ErrorBody

    documented = {(route.path, route.method) for route in ROUTES}
    if documented != served:
        raise SystemExit(f"routes and ROUTES differ: {sorted(documented ^ served)}")
    models: list[tuple[Any, JsonSchemaMode]] = [(ErrorBody, "serialization")]
    models += [(route.body, "validation") for route in ROUTES if route.body is not None]
    models += [(route.response, "serialization") for route in ROUTES]
    refs, components = _schemas(list(dict.fromkeys(models)))
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
        for status in route.errors:
            responses[str(status)] = {
                "description": ERROR_CODES[status],
                "content": {"application/json": {"schema": refs[ErrorBody]}},
            }
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


DOCUMENTS = {"device-message.schema.json": device_message_schema, "openapi.json": openapi_document}


def main() -> None:
    for name, render in DOCUMENTS.items():
        (DOCS / name).write_text(render(), encoding="utf-8")
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
