"""The evaluation report's presentations (no AWS): `render_xlsx(report)` (the workbook, XlsxWriter) and
`render_html(report)` (a self-contained Chinese page with inline SVG charts, pygal). See docs/evaluation.md,
"Reports"."""
