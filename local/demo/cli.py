"""The command line: `python -m local.demo [--duration S] [--step S] [--fast] [--no-colour] [--summary PATH]`.

The exit code is the verdict: 0 when every check passed, 1 when one failed; 2 for a bad command line (or a summary
path that cannot be written), 130 when interrupted. The platform is stopped in every case."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from local.demo.evaluation import clear_report_dir
from local.demo.options import DEFAULT_DURATION_S, DEFAULT_STEP_S, DEFAULT_SUMMARY_PATH, DRAIN_S, Options
from local.demo.terminal import shown_path

EXIT_USAGE = 2  # as argparse exits on a bad command line
EXIT_INTERRUPTED = 130


def parse_args(argv: Sequence[str] | None = None, out: TextIO | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo", description="The whole platform locally, with a live fleet (docs/demo.md)."
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="SECONDS",
        help=(
            f"the run after start-up, the last {DRAIN_S:g} s kept for draining (default {DEFAULT_DURATION_S:g}); "
            "a busy machine makes it longer: the fleet waits for the platform, the drain for every message"
        ),
    )
    parser.add_argument(
        "--step",
        type=float,
        default=DEFAULT_STEP_S,
        metavar="SECONDS",
        help=f"every device reports once per step (default {DEFAULT_STEP_S:g})",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="deadlines and people about three times faster (for short runs and the tests)",
    )
    parser.add_argument("--no-colour", "--no-color", action="store_true", help="plain text, no ANSI colours")
    parser.add_argument(
        "--summary",
        type=Path,
        default=DEFAULT_SUMMARY_PATH,
        metavar="PATH",
        help=f"where to write the machine-readable summary (JSON; default {shown_path(DEFAULT_SUMMARY_PATH)})",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.step <= 0:
        parser.error("--duration and --step must be positive")
    stream = out or sys.stdout
    colour = not args.no_colour and "NO_COLOR" not in os.environ and stream.isatty()
    return Options(
        duration_s=args.duration, step_s=args.step, colour=colour, fast=args.fast, summary_path=args.summary
    )


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    options = parse_args(argv, out)
    from local.demo.orchestration import run  # the platform's imports are heavy: not for --help

    stream = out or sys.stdout
    # A summary left by an earlier run must not pass for this one's if this one stops before writing its own; and a
    # path that cannot be written should fail now, not after minutes of running.
    try:
        options.summary_path.parent.mkdir(parents=True, exist_ok=True)
        options.summary_path.unlink(missing_ok=True)
        clear_report_dir(options.report_dir)
    except OSError as exc:
        sys.stderr.write(f"python -m local.demo: cannot write the summary to {exc.filename}: {exc.strerror}\n")
        return EXIT_USAGE
    try:
        return run(options, stream).exit_code
    except KeyboardInterrupt:
        stream.write("\ninterrupted; the platform was stopped\n")
        return EXIT_INTERRUPTED
