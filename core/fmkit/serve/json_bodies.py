"""Request bodies parsed with orjson, which reads the large bodies a server may be sent (up to
``--max-body-bytes``) faster than the standard library (1.6x on a 1 MB body,
``benchmarks/json_parse.py``): the parse runs on the event loop (it holds the GIL, so no worker
thread can take it off), and every other client's request waits while it does.

Whatever orjson refuses (``NaN``, ``Infinity``, malformed JSON) is parsed again by
:func:`json.loads`, so every body gets the answer it got before: the same value, or the same
``json.JSONDecodeError`` (FastAPI's 422). One difference remains: an integer beyond 64 bits (past
18446744073709551615 or below -9223372036854775808) arrives as the nearest float, as JavaScript
reads it, where ``json`` keeps it exact; no task takes such numbers. Unpaired surrogate escapes
(``"\\ud800"``) pass through both alike and the server answers 400 naming the input. Without
orjson installed the standard library parses everything.
"""
from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # optional: part of fmkit[serve]
    orjson = None  # type: ignore[assignment]


def loads(body: bytes | str) -> Any:
    """The JSON value of ``body``; raises :class:`json.JSONDecodeError` as :func:`json.loads` does,
    and also where ``json`` raises something else for bad input: JSON nested deeper than its recursion
    allows, a body that is not UTF-8, a number with more digits than Python converts."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # the standard library decides: it accepts a little more, and its error is the one users see
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except RecursionError:  # thousands of nested brackets: bad input, not a server error
        raise json.JSONDecodeError("the JSON is nested too deeply", "", 0) from None
    except UnicodeDecodeError as e:
        raise json.JSONDecodeError(f"the body is not UTF-8 text ({e.reason}: byte 0x{e.object[e.start]:02x} "
                                   f"at offset {e.start})", "", 0) from None
    except ValueError as e:  # a number past Python's digit limit, and the like
        raise json.JSONDecodeError(str(e).split(";")[0], "", 0) from None


def _content_type(value: str) -> tuple[str, str]:
    """``(maintype, subtype)`` of a ``Content-Type`` value, read as FastAPI reads it (the standard
    library's e-mail parser, which takes anything malformed for ``text/plain``)."""
    from email.message import Message

    message = Message()
    message["content-type"] = value
    return message.get_content_maintype(), message.get_content_subtype()


def is_json_content_type(value: str | None) -> bool:
    """Whether a ``Content-Type`` header announces JSON as FastAPI decides it (``application/json``,
    ``application/*+json``, parameters such as ``charset`` allowed). An absent header does not:
    FastAPI no longer reads such a body as JSON (a browser form may post one across sites without
    asking first)."""
    if not value:
        return False
    main, sub = _content_type(value)
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def is_form_content_type(value: str | None) -> bool:
    """Whether a ``Content-Type`` header announces a form (``multipart/form-data`` or URL-encoded)."""
    if not value:
        return False
    main, sub = _content_type(value)
    return (main, sub) in (("multipart", "form-data"), ("application", "x-www-form-urlencoded"))


def _said(sent: str | None) -> str:
    """How a 415 names the Content-Type a request sent (a long value is cut)."""
    if sent is None:
        return "this request has no Content-Type header"
    if not sent.strip():
        return "this request's Content-Type header is empty"
    return f"this request's Content-Type is {sent[:100] + '...' if len(sent) > 100 else sent!r}"


def fast_json_route_class():
    """A FastAPI route class whose requests parse their JSON body with :func:`loads` (FastAPI's own
    handler reads it through ``Request.json``). A route that takes a JSON body answers a request
    announcing another content type (``text/plain``, or ``application/x-www-form-urlencoded``, which
    is what ``curl -d`` sends unless told otherwise) with a 415 saying what to send, where FastAPI
    would validate the raw bytes and answer "Input should be a valid dictionary"; a route that takes
    files answers a request that is not a form likewise (FastAPI: "Field required")."""
    from fastapi import params
    from fastapi.responses import JSONResponse
    from fastapi.routing import APIRoute
    from starlette.requests import Request

    class FastJSONRequest(Request):
        async def json(self) -> Any:
            if not hasattr(self, "_json"):
                self._json = loads(await self.body())
            return self._json

    class FastJSONRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()
            takes_form = self.body_field is not None and isinstance(self.body_field.field_info, params.Form)
            takes_json = self.body_field is not None and not takes_form

            async def handle(request: Request):
                sent = request.headers.get("content-type")
                if takes_json and not is_json_content_type(sent):
                    return JSONResponse({"detail": f"{self.path} takes a JSON body; {_said(sent)}: send it as "
                                                   "application/json (with curl: -H 'Content-Type: "
                                                   "application/json')"}, status_code=415)
                if takes_form and not is_form_content_type(sent):
                    return JSONResponse({"detail": f"{self.path} takes files as multipart/form-data; {_said(sent)}: "
                                                   "send a form (with curl: -F files=@FILE)"}, status_code=415)
                return await handler(FastJSONRequest(request.scope, request.receive))

            return handle

    return FastJSONRoute
