"""Evaluation (评估报告, DOMAIN.md §6, 第十八条): indicators per enterprise and period, rollups, the safety-state
score, bands, rankings and the priority-inspection list. Pure: the services read the records, extract the facts
(`facts.facts_of`) and the device-days, and call these. docs/evaluation.md describes every formula.

- `periods`: local calendar months, quarters, years (UTC+8) as [start, end)
- `facts`: the input models (`WarningFacts`, `StageFact`, `DeviceDay`, `FleetFacts`) and their extraction
- `indicators`: the formulas, `Ratio`/`Tally`, `evaluate`, and the rollups by sector, area and department
- `score`: the score, band, rankings and the priority list
- `policy`: `EvaluationPolicy` (`Policy.evaluation`)
"""
