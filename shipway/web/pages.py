"""Server-rendered pages of the dashboard."""

from __future__ import annotations

from html import escape

from shipway import __version__


def index() -> str:
    """The landing page: where the API, its reference and the health report are."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shipway</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .25rem}}</style></head>
<body><h1>shipway <small>{escape(__version__)}</small></h1>
<p>Push code, get a live URL. This server answers the API and the CLI.</p>
<ul>
<li><a href="/api/v1/docs">API reference</a> (OpenAPI at <code>/api/v1/openapi.json</code>)</li>
<li><a href="/healthz">Health</a> of the store, Temporal and NATS</li>
</ul>
<p>From a shell on this machine: <code>shipway apps create myapp</code>,
then <code>shipway apps list</code>.</p>
</body></html>"""
