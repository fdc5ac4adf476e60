"""Render a small report as escaped HTML and as JSON, with two C extensions."""
import sys

import markupsafe
import markupsafe._speedups  # noqa: F401  (the compiled module; fails if the sdist built pure Python)
import ujson

rows = [{"name": "<layer 1>", "bytes": 1234}, {"name": "layer & 2", "bytes": 5678}]
html = "".join(markupsafe.Markup("<li>{}: {}</li>").format(r["name"], r["bytes"]) for r in rows)
print(html)
print(ujson.dumps({"rows": rows, "total": sum(r["bytes"] for r in rows)}))
sys.exit(0)
