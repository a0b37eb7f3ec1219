"""The HTTP server's own limits against slow and greedy clients: uvicorn's configuration and a
protocol that closes a connection whose request headers do not arrive in time (slowloris), whose
headers grow past a size or count, or that piles up pipelined requests it does not read answers to.

Body timeouts are the request guard's (:mod:`fmkit.serve.guard`); this module covers what happens
before the application sees a request: a connection that sends nothing, or its headers a byte at
a time, is closed ``header_timeout`` seconds after it opened (or after its previous answer).
uvicorn's httptools protocol keeps every header line it is sent (h11's stops at 16 KiB): here a
request head past :data:`MAX_HEADER_BYTES` or :data:`MAX_HEADERS` gets a 431 and the connection is
closed. Pipelined requests are parsed ahead of their answers only up to :data:`MAX_PIPELINED`; the
connection is not read again until its queue is empty.
"""
from __future__ import annotations

from typing import Any

#: the largest request head (request line and headers) read, in bytes; nginx allows 32 KiB, h11 16 KiB
MAX_HEADER_BYTES = 64 * 1024
#: the most header lines one request may have
MAX_HEADERS = 256
#: the most requests of one connection parsed ahead of their answers; past it the connection is closed
MAX_PIPELINED = 64
#: the most bytes received outside a body before a request head is complete: the head's limit plus
#: room for the start of a body arriving in the same read
MAX_RAW_HEAD_BYTES = MAX_HEADER_BYTES + 1024 * 1024

_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
              b"connection: close\r\ncontent-length: %d\r\n\r\n%s")


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request head past the limits."""


def header_timeout_protocol(header_timeout: float):
    """uvicorn's HTTP protocol class (httptools or h11, whichever it picks) with a deadline for the
    request headers: a request whose headers are complete starts a new request cycle; a connection
    whose cycle has not changed when the deadline passes is closed."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class HeaderTimeoutProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
        _fmkit_timer = None

        def _fmkit_arm(self) -> None:
            self._fmkit_disarm()
            armed = self.cycle

            def expire() -> None:
                if self.cycle is armed and not self.transport.is_closing():
                    self.transport.close()

            self._fmkit_timer = self.loop.call_later(header_timeout, expire)

        def _fmkit_disarm(self) -> None:
            if self._fmkit_timer is not None:
                self._fmkit_timer.cancel()
                self._fmkit_timer = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._fmkit_arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._fmkit_arm()  # the next request's headers get the same deadline
                self._fmkit_hold_while_queued()

        def connection_lost(self, exc) -> None:
            self._fmkit_disarm()
            if hasattr(self, "pipeline"):
                self._fmkit_drop_all()
            super().connection_lost(exc)

        # -- limits on what one connection may make the server hold (httptools only: h11 has its own)
        _fmkit_head_bytes = 0
        _fmkit_head_lines = 0
        _fmkit_raw_head = 0  # bytes received since the last complete head, outside any body
        _fmkit_in_body = False

        def data_received(self, data: bytes) -> None:
            # counted before parsing: httptools hands a header over only once its line ends, and grows
            # an unfinished one by copying (a 64 MiB line that never ends stalled every client)
            if not self._fmkit_in_body:
                self._fmkit_raw_head += len(data)
                if self._fmkit_raw_head > MAX_RAW_HEAD_BYTES:
                    self._fmkit_too_large()
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            self._fmkit_head_bytes = self._fmkit_head_lines = 0
            super().on_message_begin()

        def _fmkit_too_large(self) -> None:
            detail = (f"request headers over the server's limit of {MAX_HEADER_BYTES} bytes or {MAX_HEADERS} "
                      "lines").encode()
            body = b'{"detail": "' + detail + b'"}'
            if not self.transport.is_closing():
                self.transport.write(_TOO_LARGE % (len(body), body))
                self._fmkit_drop_all()
                self.transport.close()

        def _fmkit_count(self, size: int, lines: int = 0) -> None:
            self._fmkit_head_bytes += size
            self._fmkit_head_lines += lines
            if self._fmkit_head_bytes > MAX_HEADER_BYTES or self._fmkit_head_lines > MAX_HEADERS:
                self._fmkit_too_large()
                raise _HeadTooLarge()  # stops the parser: nothing more of this connection is read

        def on_url(self, url: bytes) -> None:
            self._fmkit_count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._fmkit_count(len(name) + len(value) + 4, 1)
            super().on_header(name, value)

        def send_400_response(self, msg: str) -> None:
            if not self.transport.is_closing():  # not after the 431 above
                super().send_400_response(msg)

        def on_headers_complete(self) -> None:
            self._fmkit_raw_head, self._fmkit_in_body = 0, True
            super().on_headers_complete()
            if len(getattr(self, "pipeline", ())) > MAX_PIPELINED and not self.transport.is_closing():
                self._fmkit_drop_all()  # a client sending requests far ahead of reading its answers
                self.transport.close()

        def on_message_complete(self) -> None:
            self._fmkit_in_body = False
            super().on_message_complete()

        _fmkit_running = None

        def _start_asgi_task(self, cycle, app) -> None:
            self._fmkit_running = cycle  # uvicorn tracks only the newest parsed cycle, not the one answering
            super()._start_asgi_task(cycle, app)

        def _fmkit_drop_all(self) -> None:
            """Mark every request of this connection disconnected (the one being answered and those
            queued): their answers are dropped instead of written to a closed transport."""
            queued = [cycle for cycle, _ in getattr(self, "pipeline", ())]
            for cycle in {id(c): c for c in [self._fmkit_running, self.cycle, *queued] if c is not None}.values():
                if not cycle.response_complete:
                    cycle.disconnected = True
                cycle.message_event.set()
            self.pipeline.clear()

        def _fmkit_hold_while_queued(self) -> None:
            if getattr(self, "pipeline", None) and not self.transport.is_closing():
                self.flow.pause_reading()  # uvicorn resumes reading after every answer: not while some wait

    if not hasattr(AutoHTTPProtocol, "on_header"):  # h11: its own limits; keep only the deadline
        for name in ("on_message_begin", "on_url", "on_header", "send_400_response", "on_headers_complete",
                     "_start_asgi_task", "data_received", "on_message_complete"):
            delattr(HeaderTimeoutProtocol, name)
    return HeaderTimeoutProtocol


def uvicorn_config(app, host: str = "127.0.0.1", port: int = 8000, header_timeout: float = 10.0,
                   keep_alive: float = 5.0, access_log: bool = False, log_level: str = "info", **kw: Any):
    """The uvicorn configuration ``fmkit serve`` runs with (and the tests start): the header
    deadline above, idle keep-alive connections closed after ``keep_alive`` seconds, a graceful
    shutdown that finishes the requests in flight."""
    import uvicorn

    kw.setdefault("timeout_graceful_shutdown", 30)
    return uvicorn.Config(app, host=host, port=port, http=header_timeout_protocol(header_timeout),
                          timeout_keep_alive=keep_alive, access_log=access_log, log_level=log_level, **kw)
