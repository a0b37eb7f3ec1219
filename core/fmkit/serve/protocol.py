"""The HTTP server's own limits against slow clients: uvicorn's configuration and a protocol that
closes a connection whose request headers do not arrive in time (slowloris).

Body timeouts are the request guard's (:mod:`fmkit.serve.guard`); this module covers what happens
before the application sees a request: a connection that sends nothing, or its headers a byte at
a time, is closed ``header_timeout`` seconds after it opened (or after its previous answer).
"""
from __future__ import annotations

from typing import Any


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

        def connection_lost(self, exc) -> None:
            self._fmkit_disarm()
            super().connection_lost(exc)

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
