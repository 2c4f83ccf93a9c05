"""`make demo`: run the platform locally. Until the ingest pipeline lands this runs the engine demo."""

from __future__ import annotations

from local.engine_demo import run

if __name__ == "__main__":
    run()
