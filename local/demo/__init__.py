"""`make demo`: the whole platform on this machine, with the fleet reporting live over MQTT and simulated people
closing the loop through the API (docs/demo.md).

    python -m local.demo [--duration SECONDS] [--step SECONDS] [--fast] [--no-colour] [--summary PATH]

The platform runs with seconds-scale deadlines; every registered device reports once per step (scripted incidents
and one message of every bad kind mixed in), and the enterprise apps and the duty console (`local/actors.py`) act
on the warnings over HTTP with real tokens: some in time, some late, some never. The live feed prints each warning
change as the audience consoles receive it, every escalation and reminder the disposal workflow publishes, every
action taken through the API, closures and archives. Then the run drains, and its summary checks itself; the exit
code is non-zero when a check fails.

The parts:
- `cli`: the command line and the exit code; `options`: what a run is asked to do;
- `orchestration`: the platform, the watchers, the people, the drain;
- `publishing`: the fleet and its back-pressure;
- `observations`: what the run and the platform's tables observed, as a `summary.DemoSummary`;
- `checks`: the pass/fail checks, as data read from the summary; `summary`: the JSON summary's model;
- `terminal`, `live_lines`, `summary_lines`: what a person reads; `deadlines`: the seconds-scale clock.
"""
