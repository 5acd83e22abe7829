"""The shape every plain ASGI middleware of the web doors shares (ADR 0063: no BaseHTTPMiddleware).

A subclass implements :meth:`HttpMiddleware.http`; anything that is not an HTTP request (lifespan,
websockets) passes through untouched.
"""

from __future__ import annotations


class HttpMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope, receive, send) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
