"""Regenerate the documents derived from code: the device message JSON Schema (and the OpenAPI document).

Run: .venv/bin/python -m scripts.gen_docs   (a test fails when a committed document is stale)
"""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.domain.telemetry import MESSAGE_ADAPTER

DOCS = Path(__file__).resolve().parent.parent / "docs"


def device_message_schema() -> str:
    schema = MESSAGE_ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dayingji device message"
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


DOCUMENTS = {"device-message.schema.json": device_message_schema}


def main() -> None:
    for name, render in DOCUMENTS.items():
        (DOCS / name).write_text(render(), encoding="utf-8")
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
