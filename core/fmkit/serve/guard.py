"""The request guard: API key and body-size limit, as plain ASGI middleware.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which wraps every request in extra
tasks and streams and costs a measurable share of a small model's request time.
"""
from __future__ import annotations

import json
from typing import Any


class RequestGuard:
    """Answers 401 when ``/v1/predict*`` lacks the API key, 413 when a body exceeds ``max_body_bytes``.

    The size is checked from ``Content-Length`` before anything is read and, for bodies sent
    without one (chunked), while they are read: the first byte past the limit answers 413 and
    the application's own answer is dropped.
    """

    def __init__(self, app, api_key: str | None, max_body_bytes: int):
        self.app, self.max_body_bytes = app, max_body_bytes
        self.api_key = api_key.encode() if api_key else None

    @staticmethod
    async def _reply(send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key and scope["path"].startswith("/v1/predict") and headers.get(b"x-api-key") != self.api_key:
            return await self._reply(send, 401, "missing or wrong X-API-Key header")
        size = headers.get(b"content-length")
        if size is not None:
            if not size.isdigit():
                return await self._reply(send, 400, "Content-Length is not a number")
            if int(size) > self.max_body_bytes:
                return await self._reply(send, 413, f"request body of {int(size)} bytes exceeds the limit of "
                                                    f"{self.max_body_bytes}")
            return await self.app(scope, receive, send)
        return await self._streamed(scope, receive, send)

    async def _streamed(self, scope, receive, send) -> None:
        """A body without Content-Length: count it as it arrives."""
        state = {"read": 0, "refused": False}

        async def counted_receive():
            message = await receive()
            if message["type"] == "http.request" and not state["refused"]:
                state["read"] += len(message.get("body", b""))
                if state["read"] > self.max_body_bytes:
                    state["refused"] = True
                    await self._reply(send, 413, f"request body exceeds the limit of {self.max_body_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not state["refused"]:
                await send(message)

        await self.app(scope, counted_receive, guarded_send)
