"""The web UI and JSON API: `vidsearch serve`, or `create_app(index)` for any WSGI server."""
from .app import create_app

__all__ = ["create_app"]
