"""The request guard: API key, body-size limit, body-read deadline and compressed bodies, as plain
ASGI middleware.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which wraps every request in extra
tasks and streams and costs a measurable share of a small model's request time.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import Any

#: paths FastAPI serves its documentation on
DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json", "/"})  # "/": the try-it page
#: the documentation page's own JavaScript, CSS and icon (Swagger UI's published files): always
#: public; the bundle's other files (its stock index.html) are keyed like the documentation
ASSETS_PREFIX = "/docs-assets/"
PUBLIC_ASSETS = frozenset(ASSETS_PREFIX + name for name in ("swagger-ui-bundle.js", "swagger-ui.css",
                                                            "favicon-32x32.png"))
#: always public: load balancers and Kubernetes probe it without a key
HEALTH_PATH = "/v1/health"


class BodyRefused(ValueError):
    """A compressed body that cannot be decompressed (400) or decompresses past the limit (413)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status


class BodyDecoder:
    """Decompresses a ``Content-Encoding: gzip`` or ``deflate`` body as it arrives (what tritonclient
    sends with request compression on), never past ``limit`` bytes: a small body that would
    decompress to gigabytes stops at the limit with a 413."""

    #: zlib's window bits for each coding: gzip's header, and deflate as HTTP means it (zlib-wrapped)
    WBITS = {b"gzip": 31, b"x-gzip": 31, b"deflate": 15}

    def __init__(self, coding: bytes, limit: int):
        import zlib

        self.coding, self.limit, self.size = coding.decode(), limit, 0
        self.zlib = zlib
        self.inflate = zlib.decompressobj(self.WBITS[coding])

    def feed(self, chunk: bytes, last: bool) -> bytes:
        try:
            out = self.inflate.decompress(chunk, self.limit - self.size + 1)
            self.size += len(out)
            if self.size > self.limit or self.inflate.unconsumed_tail:
                raise BodyRefused(413, f"the {self.coding} body decompresses past the limit of {self.limit} bytes")
            if last:
                out += self.inflate.flush()
                if not self.inflate.eof:
                    raise BodyRefused(400, f"the {self.coding} body is cut short: it ends before its compressed "
                                           "stream does")
        except self.zlib.error as e:
            raise BodyRefused(400, f"the body is not valid {self.coding} data ({e}); send it uncompressed, or "
                                   "compressed as Content-Encoding says") from None
        return out


class RequestGuard:
    """Answers 401 when a request lacks the API key, 413 when a body exceeds ``max_body_bytes``,
    408 (and closes the connection) when a body has not fully arrived ``body_timeout`` seconds
    after its headers.

    With an API key every path needs it except ``/v1/health`` (and ``/v2/health/...``), and
    ``/metrics`` or the documentation (``/docs``, ``/openapi.json``, ``/docs-assets/``) when
    ``public_metrics`` or ``public_docs`` says so; the documentation page's own script, style sheet
    and icon are always public. A key sent twice is refused; keys are compared in constant time. The size is checked from ``Content-Length`` before anything is read
    and, for bodies sent without one (chunked), while they are read: the first byte past the limit
    answers 413 and the application's own answer is dropped.
    """

    def __init__(self, app, api_key: str | None, max_body_bytes: int, body_timeout: float | None = 30.0,
                 public_metrics: bool = False, public_docs: bool = False):
        self.app, self.max_body_bytes, self.body_timeout = app, max_body_bytes, body_timeout
        self.api_key = api_key.encode() if api_key else None
        from .open_inference import HEALTH_PATHS

        self.public = ({HEALTH_PATH} | set(HEALTH_PATHS) | PUBLIC_ASSETS | ({"/metrics"} if public_metrics else set())
                       | (DOC_PATHS if public_docs else set()))
        self.public_prefixes = (ASSETS_PREFIX,) if public_docs else ()

    @staticmethod
    async def _reply(send, scope: dict[str, Any], status: int, detail: str, close: bool = False) -> None:
        # the Open Inference Protocol's errors (/v2/...) are {"error": ...}; the /v1 API's FastAPI's {"detail": ...}
        key = "error" if scope["path"] == "/v2" or scope["path"].startswith("/v2/") else "detail"
        body = json.dumps({key: detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key and scope["path"] not in self.public and not scope["path"].startswith(self.public_prefixes):
            keys = [value for name, value in scope["headers"] if name == b"x-api-key"]
            if len(keys) > 1:  # a proxy reading the first and this server the last would disagree
                return await self._reply(send, scope, 401, "the X-API-Key header is sent more than once; send it once")
            if not keys or not hmac.compare_digest(keys[0], self.api_key):  # constant time
                return await self._reply(send, scope, 401, "missing or wrong X-API-Key header")
        # every Content-Encoding header, every coding in each (a repeated header is not the last one's)
        codings = [c.strip().lower() for name, value in scope["headers"] if name == b"content-encoding"
                   for c in value.split(b",")]
        codings = [c for c in codings if c not in (b"identity", b"")]
        decoder = None
        if codings:
            if len(codings) > 1 or codings[0] not in BodyDecoder.WBITS:
                return await self._reply(send, scope, 415, f"Content-Encoding {b', '.join(codings).decode('latin-1')[:60]!r} "
                                                           "is not supported: send the body uncompressed, or as gzip "
                                                           "or deflate")
            decoder = BodyDecoder(codings[0], self.max_body_bytes)
            # the application reads the body decompressed: without the coding, or the compressed length
            scope = {**scope, "headers": [(n, v) for n, v in scope["headers"]
                                          if n not in (b"content-encoding", b"content-length")]}
        transfer = [c.strip().lower() for name, value in scope["headers"] if name == b"transfer-encoding"
                    for c in value.split(b",")]
        other = next((c for c in transfer if c not in (b"chunked", b"")), None)
        if other is not None:  # the server removes chunked framing only: gzip would reach the parser as bytes
            return await self._reply(send, scope, 501, f"Transfer-Encoding {other.decode('latin-1')[:40]!r} is not "
                                                       "supported: send the body uncompressed (chunked is fine)",
                                     close=True)
        size = headers.get(b"content-length")
        if size is not None:
            if not size.isdigit():
                return await self._reply(send, scope, 400, "Content-Length is not a number")
            if int(size) > self.max_body_bytes:
                return await self._reply(send, scope, 413, f"request body of {int(size)} bytes exceeds the limit "
                                                           f"of {self.max_body_bytes}")
        return await self._guarded(scope, receive, send, counted=size is None, decoder=decoder)

    async def _guarded(self, scope, receive, send, counted: bool, decoder: BodyDecoder | None = None) -> None:
        """Read the body against its deadline (and, without Content-Length, count it as it arrives;
        with a ``decoder``, decompress it, the decompressed size held to the same limit); once
        refused, the application reads a disconnect and its answer is dropped."""
        state = {"read": 0, "refused": False, "complete": False}
        deadline = time.monotonic() + self.body_timeout if self.body_timeout else None

        async def guarded_receive():
            if state["refused"]:
                return {"type": "http.disconnect"}
            if state["complete"] or deadline is None:
                message = await receive()
            else:
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        message = await receive()
                except TimeoutError:
                    state["refused"] = True
                    await self._reply(send, scope, 408,
                                      f"the request body did not arrive within {self.body_timeout:g} s", close=True)
                    return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                state["complete"] = not message.get("more_body", False)
                if counted:
                    state["read"] += len(message.get("body", b""))
                    if state["read"] > self.max_body_bytes:
                        state["refused"] = True
                        await self._reply(send, scope, 413,
                                          f"request body exceeds the limit of {self.max_body_bytes} bytes")
                        return {"type": "http.disconnect"}
                if decoder is not None:
                    try:
                        message = {**message, "body": decoder.feed(message.get("body", b""), state["complete"])}
                    except BodyRefused as e:
                        state["refused"] = True
                        await self._reply(send, scope, e.status, str(e))
                        return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not state["refused"]:
                await send(message)

        from starlette.requests import ClientDisconnect

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except ClientDisconnect:
            if not state["refused"]:
                raise
            # the body was refused (answered above): the application's "client left" is no error to log

