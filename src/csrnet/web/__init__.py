"""The local web app (``csrnet web``): FastAPI handlers in :mod:`csrnet.web.app`, the page in ``static/``."""

from .app import create_app

__all__ = ["create_app"]
