"""``fmkit serve``: ``POST /v1/predict``, ``GET /v1/health``, ``GET /v1/metadata``, ``GET /metrics``, and the
Open Inference Protocol (KServe v2) in :mod:`fmkit.serve.open_inference`.

Requests are validated (422 naming the field), bounded (413 for large bodies, too many items, or
inputs past the character limits), and inputs that cannot be decoded or are not valid Unicode get
400 naming the item; the server keeps serving. The work of a client that disconnects is dropped.
"""
from __future__ import annotations

import asyncio
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, field_validator

from ..errors import DataError, UsageError

try:  # module level: FastAPI resolves the endpoints' (string) annotations from these globals
    from fastapi import Body, File, Request, UploadFile
except ImportError:  # serving is optional: fmkit[serve]
    Body = File = Request = UploadFile = None  # type: ignore[assignment,misc]

#: every status an answer of the predict endpoints can have besides 200, for /docs
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "an input cannot be decoded or is not what the task takes; `detail` names it "
                         "(`inputs[i]`) and says why"},
    401: {"description": "missing or wrong `X-API-Key` header (only when the server runs with --api-key-env)"},
    408: {"description": "the request body did not arrive within --body-timeout seconds"},
    413: {"description": "too many inputs, an input or the request too large (--max-items, --max-input-chars, "
                         "--max-request-chars, --max-body-bytes); `detail` says which limit"},
    415: {"description": "/v1/predict was sent a body announced as something other than JSON (`curl -d` "
                         "sends `application/x-www-form-urlencoded`): send `Content-Type: application/json`"},
    422: {"description": "the body is not `{\"inputs\": [...]}` (or a file upload for /v1/predict/files)"},
    503: {"description": "the queue is full (--max-queue); retry after the `Retry-After` header's seconds"},
}

#: request limits (``fmkit serve`` flags and the recipe's ``serve:`` section may change them)
MAX_INPUT_CHARS = 1_000_000
MAX_REQUEST_CHARS = 4_000_000
#: inputs larger than this take the batcher's second lane (see :class:`MicroBatcher`)
HEAVY_INPUT_CHARS = 65_536


class UndecodableInput(ValueError):
    """An input the task cannot decode (a broken image or audio file, a wrong type): a 400 for its
    request, never an error for the others batched with it."""


def predict_each(predictor, items: list[Any], batch_size: int) -> list[Any]:
    """One outcome per item, run in the batcher's worker thread: a prediction, an
    :class:`UndecodableInput`, or the exception that item alone raised.

    Every item is decoded on its own, once (``task.raw_to_example``), so one that cannot be (a
    broken image) fails its own request with 400 while the rest of the micro-batch is answered;
    decoding, of large images and audio included, never holds up the event loop. The decoded
    examples go to the model together (``task.encode_examples``). Should that batch still fail (an
    item decoded but could not be prepared), each item is predicted alone to find the culprit.
    """
    task = predictor.task
    outcomes: list[Any] = [None] * len(items)
    good, examples = [], []
    for i, item in enumerate(items):
        try:
            examples.append(task.raw_to_example(item))
            good.append(i)
        except Exception as e:
            outcomes[i] = UndecodableInput(str(e))
    if task.encodes_examples():
        predict = predictor.predict_examples
    else:  # a task that only overrides encode_raw (API 1.1) gets the raw inputs, as before
        predict, examples = predictor.predict, [items[i] for i in good]
    try:
        preds = predict(examples, batch_size=batch_size) if examples else []
    except Exception:
        preds = [_predict_alone(predict, e) for e in examples]
    for i, p in zip(good, preds):
        outcomes[i] = p
    return outcomes


def _predict_alone(predict, item: Any) -> Any:
    try:
        return predict([item])[0]
    except DataError as e:  # the task's word for bad input: the client's fault
        return UndecodableInput(str(e))
    except Exception as e:
        return e


class PredictRequest(BaseModel):
    """Body of ``POST /v1/predict``: raw inputs in the task's format."""

    inputs: list[Any]

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_input(cls, v: Any) -> Any:
        """``{"inputs": "one text"}`` is one input."""
        return [v] if isinstance(v, str) else v


class PredictResponse(BaseModel):
    """Answer of ``POST /v1/predict``: one prediction per input, in order (``label`` and ``scores``
    for classification, ``forecast`` for series; the task decides)."""

    predictions: list[dict[str, Any]]


def model_identity(meta: dict[str, Any], path: str | Path) -> dict[str, str]:
    """The served model's name and version, never a path: the run's name (the recipe's
    ``tracking.run_name``, else the run directory's or export folder's own name) and the export's
    creation time (for a run directory, the time of its best checkpoint)."""
    recipe = meta.get("recipe") or {}
    source = meta.get("source_run") or meta.get("source") or str(path)
    name = (recipe.get("tracking") or {}).get("run_name") or Path(str(source)).name
    version = meta.get("created")
    if not version:
        best = Path(path) / "checkpoints" / "best" / "model.safetensors"
        version = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(best.stat().st_mtime)) if best.is_file() else ""
    return {"name": str(name), "version": str(version)}


#: a body above this many bytes has its inputs sized on a worker thread (a small one: no hop)
LARGE_BODY_BYTES = 65_536


def _large(request) -> bool:
    """Whether ``request``'s body is large (by its Content-Length; a chunked body counts as large)."""
    size = request.headers.get("content-length")
    return size is None or not size.isdigit() or int(size) > LARGE_BODY_BYTES


async def _disconnected(request) -> None:
    """Returns when the client of ``request`` (whose body has been read) goes away."""
    while True:
        if (await request.receive())["type"] == "http.disconnect":
            return


def offline_docs(app) -> None:
    """``/docs`` from Swagger UI's files shipped in the ``swagger-ui-bundle`` wheel, served by this
    server under ``/docs-assets/``: the page works without internet (FastAPI's default fetches
    them from a CDN, and a server offline showed a blank page)."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # the page is then FastAPI's, with its assets from the CDN
        from fastapi.openapi.docs import get_swagger_ui_html as page

        @app.get("/docs", include_in_schema=False)
        async def docs_online():
            return page(openapi_url=app.openapi_url, title=f"{app.title} - docs")
        return
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - docs",
                                   oauth2_redirect_url="/docs/oauth2-redirect",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_redirect():
        return get_swagger_ui_oauth2_redirect_html()


def create_app(path: str, backend: str = "torch", max_batch_size: int = 16, max_wait_ms: float = 5.0,
               max_items: int = 64, max_body_bytes: int = 16 * 1024 * 1024, api_key: str | None = None,
               batching: bool = True, precision: str = "auto", max_queue: int | None = 1024,
               max_input_chars: int | None = MAX_INPUT_CHARS, max_request_chars: int | None = MAX_REQUEST_CHARS,
               heavy_input_chars: int | None = HEAVY_INPUT_CHARS, body_timeout: float | None = 30.0,
               public_metrics: bool = False, public_docs: bool = False, trust_remote_code: bool = False):
    """The FastAPI app serving the export (or run directory) at ``path``.

    With ``api_key`` every path but ``/v1/health`` needs it (``public_metrics``/``public_docs`` open
    ``/metrics`` and the documentation). ``max_input_chars`` and ``max_request_chars`` bound the
    size of one input and of one request's inputs (413 past them); inputs over
    ``heavy_input_chars`` are predicted in a lane of their own so they never hold up the others.
    ``trust_remote_code``: see :func:`fmkit.load`.
    """
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from ..exporting.loading import load_predictor
    from .batching import MicroBatcher, Overloaded
    from .error_answers import error_answers
    from .guard import RequestGuard
    from .limits import InputRejected, check_inputs, input_size
    from .json_bodies import fast_json_route_class
    from .metrics import CONTENT_TYPE, MetricsMiddleware, ServingMetrics
    from .priority import background_predictor, heavy_lane_mode

    lane_mode = heavy_lane_mode()  # checked before the model loads
    predictor = load_predictor(path, backend=backend, precision=precision, trust_remote_code=trust_remote_code)
    task = predictor.task
    meta = predictor.metadata
    served = ServingMetrics({**model_identity(meta, path), "task": str((meta.get("task") or {}).get("name", "")),
                             "backend": backend, "precision": predictor.precision})

    def predict_items(items: list[Any]) -> list[Any]:
        served.observe_batch(len(items))
        return predict_each(predictor, items, max_batch_size)

    background = background_predictor(predictor, lane_mode)

    def predict_heavy(items: list[Any]) -> list[Any]:  # the large-input lane: the model in the background
        served.observe_batch(len(items))
        return predict_each(background, items, max_batch_size)

    batcher = MicroBatcher(predict_items, max_batch_size if batching else 1, max_wait_ms if batching else 0,
                           max_queue=max_queue, size=input_size, heavy_size=heavy_input_chars,
                           heavy_predict=predict_heavy if background is not None else None)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()  # graceful: finish requests in flight
        if background is not None:
            background.run_batch.close()

    # redirect_slashes off: "/v1/predict/" is a 404, not a 307 to a Location built from the Host header
    app = FastAPI(title="fmkit model server", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  redirect_slashes=False)
    error_answers(app)
    app.router.route_class = fast_json_route_class()  # every route declared below parses its body with orjson
    offline_docs(app)
    who = model_identity(meta, path)
    app.state.summary = (f"{who['name']} {who['version']} ({(meta.get('task') or {}).get('name', 'task')}, "
                         f"backend {backend}, precision {predictor.precision})")

    app.add_middleware(RequestGuard, api_key=api_key, max_body_bytes=max_body_bytes, body_timeout=body_timeout,
                       public_metrics=public_metrics, public_docs=public_docs)
    paths: set[str] = set()  # the app's routes, filled in once they are declared below
    app.add_middleware(MetricsMiddleware, metrics=served, paths=paths)  # added last: outermost, counts 401/413 too

    async def run_items(items: list[Any], what: str, request) -> Response:
        preds = await predict_list(items, what, request)
        # predictions are plain JSON already: answered as they are, without FastAPI's encoder walk
        return preds if isinstance(preds, Response) else JSONResponse({"predictions": preds})

    async def predict_list(items: list[Any], what: str, request) -> list[Any] | Response:
        """The answers to ``items`` in order, or the 499 response when the client has left."""
        try:
            if _large(request):  # sizing millions of values takes a while: not on the event loop
                await run_in_threadpool(check_inputs, items, what, max_items, max_input_chars, max_request_chars)
            else:
                check_inputs(items, what, max_items, max_input_chars, max_request_chars)
        except InputRejected as e:
            raise HTTPException(e.status, e.detail) from None
        submitted = asyncio.ensure_future(batcher.submit(items, return_exceptions=True))
        gone = asyncio.ensure_future(_disconnected(request))
        await asyncio.wait({submitted, gone}, return_when=asyncio.FIRST_COMPLETED)
        gone.cancel()
        if not submitted.done():  # the client left: its items still waiting are dropped, not predicted
            submitted.cancel()
            return Response(status_code=499)  # nobody reads it; counted in /metrics as a client close
        try:
            preds = submitted.result()
        except Overloaded as e:
            raise HTTPException(503, str(e), headers={"Retry-After": "1"}) from None
        for i, p in enumerate(preds):
            if isinstance(p, BaseException):
                if isinstance(p, UndecodableInput):
                    raise HTTPException(400, f"{what}[{i}] cannot be decoded: {p}")
                raise p
        return preds

    shipped = (meta.get("signature") or {}).get("example_inputs") or []
    examples = {"from the model": {"summary": "inputs this model takes (from its export)",
                                   "value": {"inputs": shipped[:2]}}} if shipped else None

    @app.post("/v1/predict", response_model=PredictResponse, responses=ERROR_RESPONSES)
    async def predict(request: Request, req: PredictRequest = Body(openapi_examples=examples)):
        """Raw inputs as JSON: text strings, base64 images or audio, arrays for series."""
        return await run_items(req.inputs, "inputs", request)

    @app.post("/v1/predict/files", response_model=PredictResponse, responses=ERROR_RESPONSES)
    async def predict_files(request: Request, files: list[UploadFile] = File(...), records: bool = False):
        """Multipart uploads (images, audio, text files), one prediction per file in order. With
        ``?records=true`` each upload is a CSV or JSON Lines file and each of its rows or lines is
        an input (in order, file after file); each answer then echoes its input."""
        if not records:
            return await run_items([await f.read() for f in files], "files", request)
        from ..errors import DataError
        from ..records import TooManyRecords, decode_upload, echo, inputs_of, is_record_file

        def read_records(data: bytes, name: str, limit: int) -> list[Any]:
            return inputs_of(decode_upload(data, name), name, task, limit=limit)

        items: list[Any] = []
        for i, f in enumerate(files):
            name = f.filename or f"files[{i}]"
            if not is_record_file(name):
                raise HTTPException(400, f"files[{i}] ({name}): records=true reads .csv or .jsonl uploads")
            try:  # parsed off the event loop, and only as far as the request's limit of inputs
                items += await run_in_threadpool(read_records, await f.read(), name, max_items - len(items))
            except TooManyRecords:
                raise HTTPException(413, f"more than {max_items} records in one request; the limit is {max_items} "
                                         "(--max-items)") from None
            except DataError as e:
                raise HTTPException(400, f"files[{i}]: {e}") from None
        preds = await predict_list(items, "records", request)
        if isinstance(preds, Response):
            return preds
        return JSONResponse({"predictions": [{"input": echo(x), **(p if isinstance(p, dict) else {"prediction": p})}
                                             for x, p in zip(items, preds)]})

    from fastapi.responses import HTMLResponse

    from .page import render_page

    try:  # a run directory has no export.json: its task knows example inputs of the right kind
        page_examples = shipped or list(task.example_inputs())
    except Exception:  # noqa: BLE001 - the page then asks for JSON
        page_examples = []
    page = render_page(who["name"], app.state.summary, page_examples)

    @app.get("/", include_in_schema=False)
    async def try_it():
        """A page to try the model in a browser (public or keyed like /docs)."""
        return HTMLResponse(page)

    @app.get("/v1/health")
    @app.head("/v1/health", include_in_schema=False)  # probes that only want the status
    async def health():
        return {"status": "ok"}

    @app.get("/v1/metadata")
    async def metadata():
        return {"task": meta.get("task"), "labels": task.labels, "signature": meta.get("signature"),
                "versions": meta.get("versions"), "metrics": meta.get("metrics"), "backend": backend,
                "precision": predictor.precision,
                "batching": {"enabled": batching, "max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms},
                "limits": {"max_items": max_items, "max_input_chars": max_input_chars,
                           "max_request_chars": max_request_chars, "max_body_bytes": max_body_bytes}}

    @app.get("/metrics")
    async def metrics():
        """Prometheus text format: requests by path and status, latency and batch-size histograms."""
        return Response(served.exposition(), media_type=CONTENT_TYPE)

    from .open_inference import add_routes

    add_routes(app, who["name"], who["version"], task, meta, predict_list, max_items,
               max_request_chars if max_request_chars is not None else MAX_REQUEST_CHARS)
    paths.update(route.path for route in app.routes)
    app.state.batcher, app.state.metrics = batcher, served
    app.state.background = background  # the large-input lane's predictor (None: it shares the model's)
    return app


def serve(path: str, host: str = "127.0.0.1", port: int = 8000, backend: str = "torch", max_batch_size: int = 16,
          max_wait_ms: float = 5.0, api_key_env: str | None = None, batching: bool = True,
          precision: str = "auto", access_log: bool = False, max_queue: int | None = 1024, max_items: int = 64,
          max_body_bytes: int = 16 * 1024 * 1024, max_input_chars: int | None = MAX_INPUT_CHARS,
          max_request_chars: int | None = MAX_REQUEST_CHARS, header_timeout: float = 10.0,
          body_timeout: float = 30.0, public_metrics: bool = False, public_docs: bool = False,
          trust_remote_code: bool = False) -> None:
    """Serve ``path`` over HTTP until interrupted (``fmkit serve``; the flags are its parameters)."""
    try:
        import uvicorn
    except ImportError:
        raise UsageError("serving needs fastapi and uvicorn: pip install 'fmkit[serve]'") from None
    from .protocol import uvicorn_config
    from .settings import resolve_backend

    backend = resolve_backend(path) if backend == "auto" else backend
    api_key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        raise UsageError(f"--api-key-env {api_key_env}: that environment variable is empty")
    if api_key and (api_key != api_key.strip() or not api_key.isprintable() or not api_key.isascii()):
        raise UsageError(f"--api-key-env {api_key_env}: the key has white space at an end (a secret file's final "
                         "newline?) or characters outside printable ASCII; HTTP strips header values, so no client "
                         "could send it: store the key without them")
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"warning: listening on {host} without an API key (use --api-key-env)")
    if backend == "onnx":
        import torch

        # torch only decodes inputs and formats answers here; its idle worker threads would spin on
        # the cores ONNX Runtime's own threads need (this process serves, nothing else)
        torch.set_num_threads(1)
    app = create_app(path, backend, max_batch_size, max_wait_ms, max_items=max_items, max_body_bytes=max_body_bytes,
                     api_key=api_key, batching=batching, precision=precision, max_queue=max_queue,
                     max_input_chars=max_input_chars, max_request_chars=max_request_chars, body_timeout=body_timeout,
                     public_metrics=public_metrics, public_docs=public_docs, trust_remote_code=trust_remote_code)
    shown = "[" + host + "]" if ":" in host else host
    print(f"serving {app.state.summary} at http://{shown}:{port}  (docs: http://{shown}:{port}/docs)", flush=True)
    uvicorn.Server(uvicorn_config(app, host, port, header_timeout=header_timeout, access_log=access_log)).run()


__all__ = ["create_app", "model_identity", "serve"]
