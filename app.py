"""Chalice entrypoints: routing only. Each handler parses its event, calls one service, returns."""

from __future__ import annotations

from chalice.app import Chalice

app = Chalice(app_name="dayingji")


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
