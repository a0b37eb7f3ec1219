"""``fmkit serve``: ``POST /v1/predict``, ``GET /v1/health``, ``GET /v1/metadata``, ``GET /metrics``.

Requests are validated (422 naming the field), bounded (413 for large bodies or too many items),
and inputs that cannot be decoded get 400 naming the item; the server keeps serving.
"""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

from pydantic import BaseModel

from ..errors import DataError, UsageError

try:  # module level: FastAPI resolves the upload endpoint's (string) annotations from these globals
    from fastapi import File, UploadFile
except ImportError:  # serving is optional: fmkit[serve]
    File = UploadFile = None  # type: ignore[assignment,misc]


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


class PredictResponse(BaseModel):
    """Answer of ``POST /v1/predict``: one prediction per input, in order (``label`` and ``scores``
    for classification, ``forecast`` for series; the task decides)."""

    predictions: list[dict[str, Any]]


def create_app(path: str, backend: str = "torch", max_batch_size: int = 16, max_wait_ms: float = 5.0,
               max_items: int = 64, max_body_bytes: int = 16 * 1024 * 1024, api_key: str | None = None,
               batching: bool = True, precision: str = "auto", max_queue: int | None = 1024):
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse, Response
    from ..exporting.loading import load_predictor
    from .batching import MicroBatcher, Overloaded
    from .guard import RequestGuard
    from .metrics import CONTENT_TYPE, MetricsMiddleware, ServingMetrics

    predictor = load_predictor(path, backend=backend, precision=precision)
    task = predictor.task
    meta = predictor.metadata
    served = ServingMetrics({"task": str((meta.get("task") or {}).get("name", "")), "backend": backend,
                            "precision": predictor.precision, "source": str(path)})

    def predict_items(items: list[Any]) -> list[Any]:
        served.observe_batch(len(items))
        return predict_each(predictor, items, max_batch_size)

    batcher = MicroBatcher(predict_items, max_batch_size if batching else 1, max_wait_ms if batching else 0,
                           max_queue=max_queue)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()  # graceful: finish requests in flight

    app = FastAPI(title="fmkit model server", version="1", lifespan=lifespan)

    app.add_middleware(RequestGuard, api_key=api_key, max_body_bytes=max_body_bytes)
    paths: set[str] = set()  # the app's routes, filled in once they are declared below
    app.add_middleware(MetricsMiddleware, metrics=served, paths=paths)  # added last: outermost, counts 401/413 too

    async def run_items(items: list[Any], what: str) -> JSONResponse:
        if len(items) > max_items:
            raise HTTPException(413, f"{len(items)} inputs in one request; the limit is {max_items}")
        try:
            preds = await batcher.submit(items, return_exceptions=True)
        except Overloaded as e:
            raise HTTPException(503, str(e), headers={"Retry-After": "1"}) from None
        for i, p in enumerate(preds):
            if isinstance(p, BaseException):
                if isinstance(p, UndecodableInput):
                    raise HTTPException(400, f"{what}[{i}] cannot be decoded: {p}")
                raise p
        # predictions are plain JSON already: answered as they are, without FastAPI's encoder walk
        return JSONResponse({"predictions": preds})

    @app.post("/v1/predict", response_model=PredictResponse)
    async def predict(req: PredictRequest):
        """Raw inputs as JSON: text strings, base64 images or audio, arrays for series."""
        return await run_items(req.inputs, "inputs")

    @app.post("/v1/predict/files", response_model=PredictResponse)
    async def predict_files(files: list[UploadFile] = File(...)):
        """Multipart uploads (images, audio, text files), one prediction per file in order."""
        return await run_items([await f.read() for f in files], "files")

    @app.get("/v1/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/metadata")
    async def metadata():
        return {"task": meta.get("task"), "labels": task.labels, "signature": meta.get("signature"),
                "versions": meta.get("versions"), "metrics": meta.get("metrics"), "backend": backend,
                "batching": {"enabled": batching, "max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms}}

    @app.get("/metrics")
    async def metrics():
        """Prometheus text format: requests by path and status, latency and batch-size histograms."""
        return Response(served.exposition(), media_type=CONTENT_TYPE)

    paths.update(route.path for route in app.routes)
    app.state.batcher, app.state.metrics = batcher, served
    return app


def serve(path: str, host: str = "127.0.0.1", port: int = 8000, backend: str = "torch", max_batch_size: int = 16,
          max_wait_ms: float = 5.0, api_key_env: str | None = None, batching: bool = True,
          precision: str = "auto", access_log: bool = False, max_queue: int | None = 1024) -> None:
    try:
        import uvicorn
    except ImportError:
        raise UsageError("serving needs fastapi and uvicorn: pip install 'fmkit[serve]'") from None
    api_key = os.environ.get(api_key_env) if api_key_env else None
    if api_key_env and not api_key:
        raise UsageError(f"--api-key-env {api_key_env}: that environment variable is empty")
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"warning: listening on {host} without an API key (use --api-key-env)")
    if backend == "onnx":
        import torch

        # torch only decodes inputs and formats answers here; its idle worker threads would spin on
        # the cores ONNX Runtime's own threads need (this process serves, nothing else)
        torch.set_num_threads(1)
    app = create_app(path, backend, max_batch_size, max_wait_ms, api_key=api_key, batching=batching,
                     precision=precision, max_queue=max_queue)
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=30, log_level="info", access_log=access_log)


__all__ = ["create_app", "serve"]
