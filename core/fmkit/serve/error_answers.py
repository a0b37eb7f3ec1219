"""How the server's own errors are answered: routing errors on the Open Inference Protocol's paths
in its ``{"error": ...}`` shape, and validation errors (422) that echo a refused input only when
it is small."""
from __future__ import annotations

from typing import Any


def error_answers(app) -> None:
    """Routing answers (404 for an unknown path, 405 for a method) on the Open Inference Protocol's
    paths use its error shape, ``{"error": ...}``; the rest keep FastAPI's ``{"detail": ...}``.
    A 422 echoes the refused input only when it is small (:func:`short_echo`)."""
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def handler(request, exc):
        path = request.url.path
        if path == "/v2" or path.startswith("/v2/"):
            return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        return await http_exception_handler(request, exc)

    app.add_exception_handler(StarletteHTTPException, handler)

    async def invalid(request, exc):
        from fastapi.encoders import jsonable_encoder

        errors = [{**e, "input": short_echo(e["input"])} if "input" in e else e for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)


#: the most values (and characters of a string or key) a 422 echoes of the input it refuses, and
#: the deepest nesting it echoes
ECHO_BUDGET = 1000
ECHO_DEPTH = 64


def short_echo(value: Any) -> Any:
    """The input a validation error names, as FastAPI echoes it when small; a large one is described
    instead (``a list of 5500000 items``), so refusing a 16 MB body takes no longer than reading it."""
    seen, stack = 0, [(value, 1)]
    while stack and seen <= ECHO_BUDGET:
        v, depth = stack.pop()
        seen += 1
        if depth > ECHO_DEPTH:  # FastAPI's encoder recurses: 980 levels overflowed it (a 500)
            seen = ECHO_BUDGET + 1
        elif isinstance(v, dict):
            stack.extend((k, depth + 1) for k in v)  # keys count too: a 15 MB key was echoed whole
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, (str, bytes)) and len(v) > ECHO_BUDGET:
            seen = ECHO_BUDGET + 1
    if seen <= ECHO_BUDGET:
        return value
    if isinstance(value, str):
        return value[:ECHO_BUDGET] + f"... ({len(value)} characters)"
    if isinstance(value, dict):
        keys = ", ".join(repr(k)[:40] for k in list(value)[:10])  # repr cut short: a key may be megabytes
        return f"an object of {len(value)} key(s) ({keys}{', ...' if len(value) > 10 else ''}), too large to echo"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items, too large to echo"
    return repr(value)[:ECHO_BUDGET]
