"""The options of a run, as the command line gives them (`local.demo.cli`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from local.actors import ActorTiming
from local.demo.deadlines import FAST_ACTOR_PACE
from local.fleet import INCIDENTS

DEFAULT_DURATION_S = 150.0
DEFAULT_STEP_S = 4.0
DRAIN_S = 10.0
REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_SUMMARY_PATH = REPOSITORY / "build" / "demo-summary.json"
STEPS_FOR_EVERY_LEVEL = max(incident.start_step + min(incident.steps, 2) for incident in INCIDENTS)
"""Every scripted incident has raised by then (a breach raises on its second consecutive reading)."""


@dataclass(frozen=True)
class Options:
    duration_s: float = DEFAULT_DURATION_S
    step_s: float = DEFAULT_STEP_S
    colour: bool = True
    fast: bool = False
    summary_path: Path = DEFAULT_SUMMARY_PATH

    @property
    def report_dir(self) -> Path:
        """Where the evaluation's report is written (`demo-report/` beside the summary: build/demo-report)."""
        return self.summary_path.parent / "demo-report"

    @property
    def drain_s(self) -> float:
        """The tail of the run kept for draining: at most DRAIN_S, and never more than a quarter of it. It sets the
        number of publishing steps; the drain itself lasts until everything has settled (bounded)."""
        return min(DRAIN_S, self.duration_s / 4)

    @property
    def publishing_steps(self) -> int:
        return int((self.duration_s - self.drain_s) // self.step_s)

    @property
    def actor_timing(self) -> ActorTiming:
        timing = ActorTiming()
        return timing.scaled(FAST_ACTOR_PACE) if self.fast else timing
