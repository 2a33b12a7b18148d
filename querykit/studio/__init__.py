"""querykit studio: a local web app to browse the database through querykit's own builders.

Install with ``pip install 'querykit[studio]'`` and run ``querykit studio``.
Starlette serves Jinja2 pages made live with htmx (vendored in ``static/``, no
CDN and no build step) on 127.0.0.1, behind a random token. Every table view
is a querykit query that the page shows as SQL.

    >>> server = StudioServer(load_settings(), port=0)
    >>> server.url
    'http://127.0.0.1:40123/?token=...'
"""

from __future__ import annotations

from .app import create_app
from .context import read_only_url
from .server import StudioServer

__all__ = ["StudioServer", "create_app", "read_only_url"]
