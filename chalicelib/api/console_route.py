"""Where the duty console's files are served (chalicelib/api/console.py). A module of its own, without imports:
`app.py` registers the console's routes with it, and every function imports `app.py`, but only the API loads
the console (the ingest's cold start, bench/coldstart.py)."""

PREFIX = "/console"
